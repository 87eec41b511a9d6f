#!/usr/bin/env bash
# Debian packages the pipeline uses that PyPI cannot provide: espeak-ng (the second offline
# voice engine), fontconfig and the Noto CJK fonts (subtitles in Chinese, Japanese, Korean).
# ffmpeg itself comes from PyPI (imageio-ffmpeg), so it is not installed here.
set -euo pipefail

missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v fc-match >/dev/null || missing+=(fontconfig)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || missing+=(fonts-dejavu-core)
if ! command -v fc-list >/dev/null || [ -z "$(fc-list :lang=zh-cn file 2>/dev/null)" ]; then
  missing+=(fonts-noto-cjk)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  sudo=""
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  if [ -z "$sudo" ]; then
    echo "NOTE: not root, so these Debian packages were not installed: ${missing[*]}" >&2
    echo "      install them with: sudo apt-get install ${missing[*]}" >&2
    echo "      (without them: no espeak voices, and CJK subtitles cannot be drawn)" >&2
    exit 0
  fi
else
  sudo=""
fi
echo "installing Debian packages: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
