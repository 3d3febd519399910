"""The live dashboard end to end in headless Chromium: `clinstream dashboard` runs as a process against the
real Redis, the page shows the patients in rank order, and a new alert re-ranks them without a reload
(through the event stream: the page's polling is set far beyond the test's waits); the polling fallback
re-ranks on its own. A screenshot is saved to CLINSTREAM_SCREENSHOT_DIR (default .cache/screenshots).

The Redis keys are written by hand per the documented schema (tests/riskboard.py). To drive it from the
running pipeline instead, publish a feed with the `pipeline` fixture, wait for the alerts, and compare the
page's order with ZREVRANGE <prefix>:board (the worker's prefix is the fixture's redis_key_prefix)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import redis

from clinstream.settings import REPO_ROOT, Settings
from tests import browser
from tests import riskboard as rb

pytestmark = pytest.mark.integration

ORDER = "[...document.querySelectorAll('#board tbody tr[data-patient]')].map(r => r.dataset.patient)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def screenshot_path() -> Path:
    folder = os.environ.get("CLINSTREAM_SCREENSHOT_DIR")
    return (Path(folder) if folder else REPO_ROOT / ".cache" / "screenshots") / "dashboard.png"


class Dashboard:
    """`clinstream dashboard` as a process, its log in a file."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        env = {**os.environ, "REDIS_URL": settings.redis, "CLINSTREAM_REDIS_KEY_PREFIX": settings.redis_key_prefix,
               "CLINSTREAM_LOG_LEVEL": "debug"}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "clinstream.cli", "dashboard", "--port", str(self.port)],
                                         cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "health", timeout=2) as response:
                    if json.load(response) == {"status": "ok"}:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the dashboard did not come up: {log.read_text()[-2000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


A, B, C, D, E, F = "GENHOSP|300001", "GENHOSP|300002", "NORTHCL|300003", "GENHOSP|300004", "GENHOSP|300005", "GENHOSP|300006"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)
AT = NOW - timedelta(minutes=25)  # the latest observations, so the page's ages read as a ward's would


def populate(r: redis.Redis, prefix: str) -> list[str]:
    """Six patients, observed hourly; returns their keys in the expected rank order."""
    put = partial(rb.put_patient, r, prefix, at=AT)
    put(A, score=7, band="high", flags=["news2_high", "sepsis", "critical_lactate"],
                   history=[2, 3, 5, 5, 6], qsofa=2, sirs=3,
                   evidence={"news2_high": ["respiratory rate 26/min (3)", "SpO2 90 % (3)", "heart rate 125/min (2)"],
                             "sepsis": ["MDM note: 'concern for urosepsis' (present)"],
                             "critical_lactate": ["lactate 5.1 mmol/L > 4 mmol/L"]})
    put(B, score=5, band="medium", flags=["news2_medium"], history=[1, 2, 4, 4], qsofa=1, sirs=2,
                   evidence={"news2_medium": ["systolic BP 98 mm[Hg] (2)", "temperature 38.4 Cel (1)"]})
    put(C, score=3, band="low-medium", flags=["news2_low_medium"], history=[0, 0, 3],
                   stale=["temperature_c"], qsofa=0, sirs=1)
    put(D, score=1, band="low", flags=[], history=[1, 1])
    put(F, score=0, band="low", flags=[], history=[0], missing=["spo2", "temperature_c", "consciousness"],
        at=AT - timedelta(hours=3))  # a low score only because half the chart is missing: the page says so
    put(E, score=None, band=None, flags=["stroke"], evidence={"stroke": ["MDM note: 'left MCA stroke' (present)"]})
    return [A, B, C, D, E, F]  # E's stroke (0.1) outranks F's NEWS2 of 0


def test_dashboard_ranks_patients_and_updates_live(service_settings, tmp_path):
    binary = browser.chromium_or_skip()
    settings = service_settings.model_copy(update={"redis_key_prefix": f"dash-ui-{uuid.uuid4().hex[:10]}"})
    prefix = settings.redis_key_prefix
    r = redis.Redis.from_url(settings.redis)
    expected = populate(r, prefix)
    dashboard = Dashboard(settings, tmp_path / "dashboard.log")
    try:
        with browser.launch(binary) as page:
            page.goto(dashboard.url + "?poll=600")
            page.wait_for(f"window.clinstreamDashboard && clinstreamDashboard.live && {ORDER}.length === 6")
            assert page.evaluate(ORDER) == expected

            rows = page.evaluate("""Object.fromEntries([...document.querySelectorAll('#board tbody tr[data-patient]')].map(r => [
                r.dataset.patient, {cls: r.className, text: r.innerText, badges: r.querySelectorAll('.badge').length,
                                    spark: r.querySelectorAll('svg polyline').length, details: r.querySelectorAll('details').length,
                                    open: !!r.querySelector('details[open]')}]))""")
            assert "band-high" in rows[A]["cls"] and rows[A]["badges"] == 3 and rows[A]["spark"] == 1
            assert rows[A]["details"] == 1 and not rows[A]["open"]  # evidence collapsed
            assert "band-medium" in rows[B]["cls"] and "band-low-medium" in rows[C]["cls"] and "band-low" in rows[D]["cls"]
            assert "missing SpO\u2082" in rows[F]["text"] and "score may be understated" in rows[F]["text"]
            assert "complete" in rows[D]["text"] and "understated" not in rows[D]["text"]
            assert "stale temperature" in rows[C]["text"]
            assert "not scored" in rows[E]["text"] and "no history" in rows[E]["text"]
            assert page.evaluate("getComputedStyle(document.querySelector('tr.band-high .score')).backgroundColor") == "rgb(211, 47, 47)"

            # a clinician opens A's evidence; a marker shows the page is never reloaded
            page.click(f'tr[data-patient="{A}"] details summary')
            page.evaluate("window.__sameDocument = true")

            # D deteriorates: the worker writes its new state, then the alert; the page re-ranks through the event stream
            renders = page.evaluate("clinstreamDashboard.renders")
            later = AT + timedelta(minutes=20)
            rb.put_patient(r, prefix, D, score=8, band="high", flags=["news2_high"], at=later,
                           evidence={"news2_high": ["SpO2 88 % (3)", "respiratory rate 27/min (3)", "heart rate 118/min (2)"]})
            rb.add_alert(r, prefix, rb.alert(D, "news2_high", score=8, band="high", at=later))
            page.wait_for(f"clinstreamDashboard.order[0] === {json.dumps(D)}", timeout=20)
            assert page.evaluate(ORDER) == [D, A, B, C, E, F]
            assert page.evaluate("window.__sameDocument") is True
            assert page.evaluate("clinstreamDashboard.alerts") == 1 and page.evaluate("clinstreamDashboard.renders") > renders
            ticker = page.evaluate("document.getElementById('last-alert').innerText")
            assert "news2 high" in ticker and D in ticker and "raised" in ticker.lower()
            assert page.evaluate(f"!!document.querySelector('tr[data-patient=\"{A}\"] details[open]')")  # still open
            assert page.evaluate(f"document.querySelector('tr[data-patient=\"{D}\"] polyline').getAttribute('points').split(' ').length") == 4  # 1, 1, 1, then 8

            time.sleep(2.2)  # the moved-up and ticker highlights fade first
            shot = page.screenshot(screenshot_path())
            print(f"dashboard screenshot: {shot}")

            # without the event stream's help, the polling fallback re-ranks too
            page.goto(dashboard.url + "?poll=1")
            page.wait_for(f"clinstreamDashboard.renders > 0 && {ORDER}.length === 6")
            rb.put_patient(r, prefix, C, score=9, band="high", flags=["news2_high", "respiratory_failure"], at=later)
            page.wait_for(f"clinstreamDashboard.order[0] === {json.dumps(C)}", timeout=20)
            assert page.evaluate("clinstreamDashboard.alerts") == 0
            assert page.errors == []
    finally:
        dashboard.stop()
        rb.clear(r, prefix)
        r.close()

    log = dashboard.log.read_text()
    assert "dashboard listening" in log and "dashboard board" in log  # debug: a line per board read
    assert not [k for k in (A, B, C, D, E, F) if k in log], "a patient key reached the dashboard's log"


def test_dashboard_follows_the_running_pipeline(pipeline, collector, tmp_path):
    """The scenario feed goes through the real pipeline while the page is open: the deteriorating patients
    come to the top in the right order (sepsis, then the hyperkalaemia patient's critical potassium, then the
    recovered respiratory failure) as their alerts arrive, without a reload; a screenshot is saved."""
    from clinstream.run import publish
    from clinstream.synthetic import scenarios

    binary = browser.chromium_or_skip()
    feed = scenarios(seed=6, first_mrn=9_100_001)
    by_scenario = {m.scenario: m.key for m in feed.messages}
    dashboard = Dashboard(pipeline, tmp_path / "dashboard.log")
    try:
        with browser.launch(binary) as page:
            page.goto(dashboard.url + "?poll=600&limit=500")
            page.wait_for("window.clinstreamDashboard && clinstreamDashboard.live")
            page.evaluate("window.__sameDocument = true")
            publish(pipeline, feed.messages)
            assert collector.wait_for(len(feed.messages), 0, timeout=300)
            ours = json.dumps(sorted(by_scenario.values()))
            top = [by_scenario[s] for s in ("sepsis", "hyperkalaemia", "respiratory_failure")]
            page.wait_for(f"clinstreamDashboard.order.filter(k => {ours}.includes(k)).slice(0, 3).join('|') === {json.dumps('|'.join(top))}", timeout=60)
            assert page.evaluate("window.__sameDocument") is True and page.evaluate("clinstreamDashboard.alerts") > 0
            time.sleep(2.2)  # highlights fade
            shot = page.screenshot(screenshot_path().with_name("dashboard-pipeline.png"))
            print(f"dashboard screenshot (pipeline): {shot}")
            assert page.errors == []
    finally:
        dashboard.stop()
