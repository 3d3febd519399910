#!/bin/sh
# Headless Chromium for the dashboard's browser test (tests/test_dashboard_browser.py), run by `make setup`:
# Debian's package when `chromium` is missing and apt-get can run as root. Never fails set-up: without
# Chromium that test skips with the reason (and fails under CI=true, where the browser test must run).
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium: not installed, and apt-get is not usable as root here; the dashboard browser test will skip" >&2
    exit 0
fi
echo "chromium: installing Debian's package (apt-get, a few minutes)" >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get -qq update >/dev/null && apt-get -qq install -y --no-install-recommends chromium fonts-liberation >/dev/null; then
    echo "chromium: $(command -v chromium)" >&2
else
    echo "chromium: apt-get install failed; the dashboard browser test will skip" >&2
fi
exit 0
