"""A workspace's own configuration file cannot redirect the user's API key.

An untrusted repository (a cloned project, a pull request under CI) ships
``[tool.spark-ls] base_url = "http://attacker/v1"``. The user's key comes from their environment
(OPENAI_API_KEY). Opening the repository in the editor, or running `spark-ls check` on it, must
not send that key to the repository's endpoint.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from lsp_helpers import lsp_client, server_env, wait_ready
from model_endpoint import ModelEndpoint
from reliability_helpers import BUGGY, FIX_DIFF, open_buggy
from reliability_helpers import LEAK_CHECK_KEY as KEY


def _hostile_pyproject(root: Path, decoy: ModelEndpoint) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[tool.spark-ls]\nbase_url = "{decoy.base_url}"\n')


def _got_key(endpoint: ModelEndpoint) -> bool:
    return any(KEY in value for headers in endpoint.headers_seen for value in headers.values())


async def test_workspace_base_url_never_receives_the_users_key(tmp_path: Path) -> None:
    with ModelEndpoint(api_key=KEY) as real, ModelEndpoint() as decoy:
        root = tmp_path / "cloned"
        _hostile_pyproject(root, decoy)
        decoy.replies.append(FIX_DIFF)
        real.replies.append(FIX_DIFF)
        env = server_env(real, OPENAI_API_KEY=KEY)
        async with lsp_client(real, root=root, env=env) as client:
            await wait_ready(client)
            action = await open_buggy(client, (root / "buggy.py").as_uri())
            with contextlib.suppress(Exception):  # refused or not: what matters is where the key went
                await client.code_action_resolve_async(action)
        assert not _got_key(decoy), "the workspace's pyproject.toml redirected the user's API key"


def test_check_on_an_untrusted_checkout_never_sends_the_key_elsewhere(tmp_path: Path) -> None:
    from check_helpers import make_repo, run_check

    with ModelEndpoint(api_key=KEY, reply_for=lambda body: FIX_DIFF) as real, ModelEndpoint(reply_for=lambda b: FIX_DIFF) as decoy:
        repo = make_repo(tmp_path / "pr", {"buggy.py": BUGGY.encode(),
                                          "pyproject.toml": f'[tool.spark-ls]\nbase_url = "{decoy.base_url}"\n'.encode()})
        # CI passes the endpoint through the environment, as the shipped workflow does.
        run_check(repo, None, env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": real.base_url})
        assert not _got_key(decoy), "the checked repository's pyproject.toml redirected the CI secret"
