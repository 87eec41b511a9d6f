#!/usr/bin/env bash
# What the test suite needs beyond the pipeline's own packages:
# - a real browser for the UI tests: Debian's chromium, driven by Playwright with its
#   executable path (so Playwright downloads nothing);
# - from the npm registry, into .test-deps/: the MCP Inspector (an MCP client we did not
#   write) and s3rver (a test server speaking the S3 protocol).
# Installs whatever is missing when run as root (or with password-less sudo); otherwise says
# what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

NPM_PACKAGES=(@modelcontextprotocol/inspector@2.12.0 s3rver@3.7.1)
npm_missing() {
  local pkg name
  for pkg in "${NPM_PACKAGES[@]}"; do
    name=${pkg%@*}
    [ -f ".test-deps/node_modules/$name/package.json" ] || return 0
  done
  return 1
}

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo="sudo -n"
    else
      echo "NOTE: not root, so these Debian packages were not installed: ${missing[*]}" >&2
      echo "      the browser and MCP tests need them: sudo apt-get install ${missing[*]}" >&2
      sudo=skip
    fi
  fi
  if [ "$sudo" != skip ]; then
    echo "installing Debian packages for the tests: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi
if command -v npm >/dev/null && npm_missing; then
  echo "installing npm packages for the tests into .test-deps: ${NPM_PACKAGES[*]}" >&2
  npm install --silent --no-audit --no-fund --prefix .test-deps "${NPM_PACKAGES[@]}" >/dev/null
fi
