"""Start the spark-ls server bundled in the VS Code extension (see scripts/bundle.py).

    <python 3.11+> bundled/tool/server.py serve

SPARK_LS_IMPORT_STRATEGY (the `spark.importStrategy` setting):
- ``useBundled`` (default): the bundled spark-ls and libraries come first on ``sys.path``;
- ``fromEnvironment``: the interpreter's own spark-ls when it has one, else the bundled one.
Packages only the interpreter has (the ``[local]`` extra: xllamacpp and the model weights) are
found either way. The line printed to stderr says which spark-ls runs (the extension's log).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

BUNDLED = Path(__file__).resolve().parent.parent
TAG = f"cp{sys.version_info[0]}{sys.version_info[1]}"


def _use_bundled() -> None:
    own = BUNDLED / f"libs-{TAG}"
    if sys.version_info < (3, 11) or not own.is_dir():
        have = sorted(p.name.removeprefix("libs-") for p in BUNDLED.glob("libs-cp3*"))
        print(
            f"spark-ls: the bundled server has no libraries for Python {sys.version_info[0]}.{sys.version_info[1]} "
            f"({sys.executable}); it has them for {', '.join(have) or 'none'}. Set spark.pythonPath to one of "
            "those, or install spark-ls into this interpreter and set spark.importStrategy to fromEnvironment.",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2)
    sys.path[0:0] = [str(own), str(BUNDLED / "libs")]


def main() -> int:
    strategy = os.environ.get("SPARK_LS_IMPORT_STRATEGY", "useBundled")
    if strategy != "fromEnvironment" or importlib.util.find_spec("spark_ls") is None:
        _use_bundled()
    import spark_ls
    from spark_ls.cli import main as cli_main

    origin = (
        "bundled"
        if Path(spark_ls.__file__).resolve().is_relative_to(BUNDLED)
        else "environment"
    )
    print(
        f"spark-ls {spark_ls.__version__} ({origin}: {Path(spark_ls.__file__).parent}) "
        f"on Python {sys.version.split()[0]} ({sys.executable})",
        file=sys.stderr,
        flush=True,
    )
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
