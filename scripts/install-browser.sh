#!/usr/bin/env bash
# Install Debian's Chromium and its WebDriver for the web UI's browser tests.
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root (or sudo)
# for apt-get; never downloads a browser build of its own (Playwright drives this one).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser: need root or sudo to apt-get install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core
/usr/bin/chromium --version
