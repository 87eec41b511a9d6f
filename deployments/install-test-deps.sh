#!/usr/bin/env bash
# What the test suite needs beyond the pipeline's own Debian packages: a real browser for
# the UI tests (Debian's chromium, driven by Playwright with its executable path, so
# Playwright downloads nothing). Installs whatever is missing when run as root (or with
# password-less sudo); otherwise says what to install.
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    echo "NOTE: not root, so these Debian packages were not installed: ${missing[*]}" >&2
    echo "      the browser tests need them: sudo apt-get install ${missing[*]}" >&2
    exit 0
  fi
fi
echo "installing Debian packages for the tests: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
