"""Bundle the spark-ls server into the VS Code extension (editors/vscode/bundled/), the way
Microsoft's Python-tool extensions do (vscode-python-tools-extension-template, ruff-vscode).

    python3 editors/vscode/scripts/bundle.py [--vsce-target linux-x64] [--python 3.11 3.12 3.13]

- ``bundled/libs/``: spark-ls itself and every dependency that runs on any CPython 3.11+ of the
  target platform (pure-Python wheels, and ``abi3`` wheels such as the tree-sitter grammars);
- ``bundled/libs-cp3XX/``: the binary wheels built for one CPython version (tree-sitter's core,
  websockets' speedups), one folder per supported version;
- ``bundled/tool/server.py`` (in git) puts both on ``sys.path`` and runs ``spark-ls``;
- ``bundled/manifest.json``: what was bundled, for the extension and the tests.

Exact versions come from requirements.lock; wheels come from the package index (or pip's cache)
at build time, for the platform of ``--vsce-target`` (``vsce package --target``), never at run
time. The embedded local model (xllamacpp and 1.1 GB of weights) is not bundled: it is used when
the interpreter running the server has spark-ls's ``[local]`` extra installed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXT = Path(__file__).resolve().parent.parent
REPO = EXT.parent.parent
BUNDLED = EXT / "bundled"
# vsce --target -> the pip platform tags whose wheels run there.
PLATFORMS = {
    "linux-x64": [
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
        "manylinux_2_5_x86_64",
        "manylinux1_x86_64",
    ],
    "linux-arm64": ["manylinux_2_17_aarch64", "manylinux2014_aarch64"],
    "darwin-x64": ["macosx_10_9_x86_64", "macosx_10_13_x86_64", "macosx_11_0_x86_64"],
    "darwin-arm64": ["macosx_11_0_arm64"],
    "win32-x64": ["win_amd64"],
}
PYTHONS = ["3.11", "3.12", "3.13"]


def run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def build_wheel(out: Path) -> Path:
    try:
        import build  # noqa: F401 - the test extra has it, with setuptools>=77
        import setuptools

        offline = int(setuptools.__version__.split(".")[0]) >= 77
    except ImportError:
        offline = False
    if offline:  # nothing fetched
        run(
            [
                sys.executable,
                "-m",
                "build",
                "--wheel",
                "--no-isolation",
                "--outdir",
                str(out),
                str(REPO),
            ],
            stdout=subprocess.DEVNULL,
        )
    else:  # pip builds in an isolated environment (fetches the build backend)
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--wheel-dir",
                str(out),
                str(REPO),
            ]
        )
    (wheel,) = out.glob("spark_ls-*.whl")
    return wheel


def runtime_constraints(out: Path) -> Path:
    """requirements.lock without spark-ls's test tools (only constrains what is installed)."""
    target = out / "constraints.txt"
    target.write_text((REPO / "requirements.lock").read_text())
    return target


def install_for(
    python: str, platforms: list[str], wheel: Path, constraints: Path, target: Path
) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "-c",
        str(constraints),
    ]
    for platform in platforms:
        cmd += ["--platform", platform]
    run([*cmd, str(wheel)])


def is_portable(dist_info: Path) -> bool:
    """A wheel that runs on every CPython 3.11+ of the platform: pure Python or abi3."""
    wheel = (dist_info / "WHEEL").read_text()
    if "Root-Is-Purelib: true" in wheel:
        return True
    tags = [
        line.split(":", 1)[1].strip()
        for line in wheel.splitlines()
        if line.startswith("Tag:")
    ]
    return bool(tags) and all("-abi3-" in tag or "-none-" in tag for tag in tags)


def dist_files(site: Path, dist_info: Path) -> list[Path]:
    files = []
    for line in (dist_info / "RECORD").read_text().splitlines():
        rel = line.rsplit(",", 2)[0]
        path = (site / rel).resolve()
        if path.is_file() and path.is_relative_to(site.resolve()):
            files.append(path)
    return files


def move(site: Path, files: list[Path], dest: Path) -> None:
    for path in files:
        rel = path.relative_to(site.resolve())
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), dest / rel)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vsce-target", default="linux-x64", choices=sorted(PLATFORMS))
    parser.add_argument(
        "--python",
        nargs="+",
        default=PYTHONS,
        help="CPython versions to bundle binary wheels for",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="spark-ls-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        wheel = build_wheel(tmp / "dist")
        constraints = runtime_constraints(tmp)
        for folder in [BUNDLED / "libs", *BUNDLED.glob("libs-cp3*")]:
            shutil.rmtree(folder, ignore_errors=True)
        common = BUNDLED / "libs"
        common.mkdir(parents=True)
        manifest: dict[str, object] = {
            "vsceTarget": args.vsce_target,
            "pythons": [],
            "portable": {},
            "binary": {},
        }
        for python in args.python:
            site = tmp / f"site-{python}"
            install_for(python, PLATFORMS[args.vsce_target], wheel, constraints, site)
            tag = "cp" + python.replace(".", "")
            own = BUNDLED / f"libs-{tag}"
            own.mkdir()
            for dist_info in sorted(site.glob("*.dist-info")):
                name = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
                files = dist_files(site, dist_info)
                if is_portable(dist_info):
                    if not (common / dist_info.name).exists():
                        move(site, files, common)
                        manifest["portable"][name] = dist_info.name  # type: ignore[index]
                else:
                    move(site, files, own)
                    manifest["binary"].setdefault(tag, {})[name] = dist_info.name  # type: ignore[union-attr]
            manifest["pythons"].append(python)  # type: ignore[union-attr]
            shutil.rmtree(site)
        # Nothing of the server's own may be left out; bin/ scripts are not needed.
        shutil.rmtree(common / "bin", ignore_errors=True)
        for stray in common.rglob("__pycache__"):
            shutil.rmtree(stray, ignore_errors=True)
        (BUNDLED / "manifest.json").write_text(
            json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        )
    print(
        f"bundled spark-ls for {args.vsce_target}, CPython {', '.join(args.python)} into {BUNDLED}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
