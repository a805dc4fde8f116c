#!/bin/sh
# Make sure headless Chromium (Debian package `chromium`) is installed; print its path.
# Used by the report test to screenshot report.html. Exit 1 (with a reason on stderr) if it
# cannot be installed (no root, no apt, no network).
set -eu
for c in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -x "$c" ]; then echo "$c"; exit 0; fi
done
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_chromium: apt-get not available" >&2; exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "ensure_chromium: not root and no password-less sudo" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
    $SUDO apt-get update >/dev/null 2>&1 || true
    $SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
        || { echo "ensure_chromium: apt-get install chromium failed" >&2; exit 1; }
fi
for c in /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -x "$c" ]; then echo "$c"; exit 0; fi
done
echo "ensure_chromium: chromium installed but no binary found" >&2; exit 1
