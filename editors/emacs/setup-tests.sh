#!/usr/bin/env bash
# Installs the Emacs client used by tests/test_editor_configs.py: Debian's emacs-nox plus eglot
# (Emacs 29+ ships eglot; Debian 12 has Emacs 28, so eglot comes from elpa-eglot).
# Idempotent; needs root (CI runs as root) and Debian's package archive.
set -euo pipefail
if command -v emacs >/dev/null 2>&1 && emacs --batch --eval '(progn (require (quote eglot)) (kill-emacs 0))' >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends emacs-nox elpa-eglot >/dev/null
emacs --batch --eval '(progn (require (quote eglot)) (message "eglot %s" (if (fboundp (quote eglot--version)) "ok" "ok")) (kill-emacs 0))'
