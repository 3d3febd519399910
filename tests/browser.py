"""A small headless Chromium driver for end-to-end tests, over the DevTools protocol (no new dependency:
aiohttp's websocket client, on an event loop of its own in a thread, behind a plain synchronous API).

    with browser.launch() as page:              # skips (fails under CI=true) when there is no Chromium
        page.goto("http://127.0.0.1:8088/")
        page.wait_for("document.querySelectorAll('#board tbody tr').length > 0")
        order = page.evaluate("[...document.querySelectorAll('tr[data-patient]')].map(r => r.dataset.patient)")
        page.screenshot(path)

Chromium runs with --headless --no-sandbox --disable-gpu --disable-background-networking and a throw-away
profile; uncaught page errors and console errors are collected in `page.errors` (a test can assert none).
The binary is CLINSTREAM_CHROMIUM, else the first of chromium, chromium-browser, google-chrome on PATH.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--no-default-browser-check", "--disable-extensions", "--disable-sync", "--disable-component-update",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0"]


def find_chromium() -> str | None:
    explicit = os.environ.get("CLINSTREAM_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_or_skip() -> str:
    """The Chromium binary; without one the test skips with the reason, or fails under CI=true."""
    binary = find_chromium()
    if binary is None:
        reason = ("no Chromium on PATH (Debian: `apt-get install chromium`, which `make setup` runs as root; "
                  "or set CLINSTREAM_CHROMIUM to a Chromium/Chrome binary)")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}: CI must run the browser tests")
        pytest.skip(reason)
    return binary


class BrowserError(AssertionError):
    pass


class Page:
    """One tab of a headless Chromium; every method blocks until the browser answered."""

    def __init__(self, binary: str, width: int, height: int, timeout: float) -> None:
        self.timeout = timeout
        self.errors: list[str] = []  # uncaught exceptions and console.error lines, as text
        self.console: list[str] = []
        self._profile = Path(tempfile.mkdtemp(prefix="clinstream-chromium-"))
        self._log = open(self._profile / "chromium.log", "wb")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={self._profile}", f"--window-size={width},{height}",
                                       "about:blank"], stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chromium-devtools", daemon=True)
        self._thread.start()
        try:
            self._call(self._connect(self._devtools_port()))
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    # --- set-up and the protocol ---

    def _devtools_port(self) -> int:
        active = self._profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrowserError(f"Chromium exited with code {self._proc.returncode}: {self.log_tail()}")
            if active.exists() and active.read_text().strip():
                return int(active.read_text().split()[0])
            time.sleep(0.1)
        raise BrowserError(f"Chromium opened no DevTools port within {self.timeout:.0f} s: {self.log_tail()}")

    async def _connect(self, port: int) -> None:
        self._session = aiohttp.ClientSession()
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t.get("type") == "page")
        self._ws = await self._session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif data.get("method") == "Runtime.consoleAPICalled":
                params = data["params"]
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                self.console.append(f"{params.get('type')}: {text}")
                if params.get("type") == "error":
                    self.errors.append(f"console.error: {text}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BrowserError("the DevTools connection closed"))

    async def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        msg_id = next(self._ids)
        future = self._loop.create_future()
        self._pending[msg_id] = future
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, self.timeout)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout + 5)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools protocol command (https://chromedevtools.github.io/devtools-protocol/); its result."""
        return self._call(self._send(method, params))

    # --- what tests use ---

    def evaluate(self, expression: str) -> Any:
        """The value of a JS expression in the page (promises awaited; the value must be JSON-serialisable)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression!r} threw: {details.get('exception', {}).get('description') or details.get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float | None = None, interval: float = 0.1) -> Any:
        """Poll a JS expression until it is truthy; its value. Times out with the last value and the page's errors."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        value: Any = None
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError as exc:
                value = exc
            if value and not isinstance(value, BrowserError):
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"still false after {timeout or self.timeout:.0f} s: {expression!r} "
                                   f"(last value {value!r}; page errors {self.errors}; console {self.console[-5:]})")
            time.sleep(interval)

    def goto(self, url: str, timeout: float | None = None) -> None:
        """Navigate and wait until the document has loaded."""
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")
        self.wait_for(f"document.readyState === 'complete' && location.href === {json.dumps(url)}", timeout)

    def click(self, selector: str) -> None:
        """A DOM click() on the first element matching a CSS selector."""
        if not self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (e) e.click(); return !!e; }})()"):
            raise BrowserError(f"nothing matches {selector!r}")

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        """A PNG of the viewport (or the whole page); folders are created."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        result = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        path.write_bytes(base64.b64decode(result["data"]))
        return path

    def log_tail(self, chars: int = 2000) -> str:
        self._log.flush()
        return (self._profile / "chromium.log").read_text(errors="replace")[-chars:]

    def close(self) -> None:
        async def disconnect() -> None:
            if getattr(self, "_ws", None) is not None:
                try:
                    await asyncio.wait_for(self._send("Browser.close", {}), 5)
                except Exception:  # noqa: BLE001 - it may close the socket before answering
                    pass
                await self._ws.close()
            if getattr(self, "_session", None) is not None:
                await self._session.close()

        try:
            if self._thread.is_alive():
                self._call(disconnect())
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)  # the browser's own process group, which we started
                self._proc.wait(10)
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)


@contextmanager
def launch(binary: str | None = None, *, width: int = 1280, height: int = 900, timeout: float = 30.0) -> Iterator[Page]:
    """A headless Chromium with one page, closed afterwards."""
    page = Page(binary or chromium_or_skip(), width, height, timeout)
    try:
        yield page
    finally:
        page.close()
