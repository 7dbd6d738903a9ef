"""The pre-commit hooks' entry point: ``spark-ls check`` after making sure a model can be used.

pre-commit installs a hook into its own environment (``pip install`` of this repository, without
extras), so the usual reason a hook cannot run is that there is neither a model endpoint
(``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``) nor the embedded local model. Instead of failing on
the first request, say so once, with the ways to get one, and exit 2 (an error, not a finding).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

HOW_TO_GET_A_MODEL = """\
spark-ls (pre-commit): no model to ask. spark-ls needs one of:
  * a hosted model: export OPENAI_API_KEY=... in the shell you commit from
    (and OPENAI_BASE_URL=... for another OpenAI-compatible endpoint, e.g. a local Ollama or
    llama.cpp server: OPENAI_BASE_URL=http://127.0.0.1:11434/v1);
  * the embedded local model (no key, nothing downloaded at run time): use the hook id
    `spark-ls-local` (or `spark-ls-fix-local`) instead of `{hook}` in .pre-commit-config.yaml;
    pre-commit then installs the model (1.1 GB, once) into the hook's environment.
To commit without the check this once: SKIP={hook} git commit ...
({detail})"""


def model_problem(cwd: Path | None = None) -> str | None:
    """Why no model can be used from here, or None when one can (or might: an endpoint is set)."""
    from spark_ls.config import load_settings

    settings = load_settings(cwd or Path.cwd())
    if getattr(settings, "replay", None) or not settings.uses_local_model:
        return None  # an endpoint (or a cassette) is configured: the check itself reports its errors
    if getattr(settings, "local_model_path", None):
        return None  # the user's own GGUF: the runtime reports a bad path clearly
    if importlib.util.find_spec("xllamacpp") is None:
        return "no OPENAI_API_KEY / OPENAI_BASE_URL, and the embedded model runtime (xllamacpp) is not installed"
    from spark_ls.model.types import ModelError
    from spark_ls.model.weights import QWEN_CODER_1_5B, find_installed_parts

    try:
        find_installed_parts(QWEN_CODER_1_5B)
    except ModelError as exc:
        return f"no OPENAI_API_KEY / OPENAI_BASE_URL, and {exc.message}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    hook = "spark-ls-fix" if "--fix" in args else "spark-ls"
    problem = model_problem()
    if problem:
        print(HOW_TO_GET_A_MODEL.format(hook=hook, detail=problem), file=sys.stderr)
        return 2
    from spark_ls.cli import main as cli_main

    return cli_main(["check", *args])


if __name__ == "__main__":
    raise SystemExit(main())
