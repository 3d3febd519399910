"""The dashboard app against the real Redis: the board's order and fields, the score history, health, the
page, and alerts arriving on the event stream. Keys are written by hand per the documented schema
(tests/riskboard.py), under a key prefix of the test's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
import redis
import structlog
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from streams.dashboard import create_app
from tests import riskboard as rb

pytestmark = pytest.mark.integration

A, B, C, D, E = "GENHOSP|1000001", "GENHOSP|1000002", "NORTHCL|2000003", "GENHOSP|1000004", "GENHOSP|1000005"


@pytest.fixture
def board_settings(service_settings):
    """The session's Redis under a key prefix of this test's own; its keys are deleted afterwards."""
    settings = service_settings.model_copy(update={"redis_key_prefix": f"dash-{uuid.uuid4().hex[:10]}"})
    r = redis.Redis.from_url(settings.redis)
    yield settings, r
    rb.clear(r, settings.redis_key_prefix)
    r.close()


def run(coro):
    return asyncio.run(coro)


async def started(settings, **kwargs) -> TestClient:
    client = TestClient(TestServer(create_app(settings, **kwargs)))
    await client.start_server()
    return client


def populate(r: redis.Redis, prefix: str) -> None:
    rb.put_patient(r, prefix, B, score=5, band="medium", flags=["news2_medium"], history=[2, 3, 4], qsofa=1, sirs=2)
    rb.put_patient(r, prefix, A, score=7, band="high", flags=["news2_high", "sepsis", "critical_lactate"],
                   history=[3, 5, 6], qsofa=2, sirs=3,
                   evidence={"sepsis": ["note: 'urosepsis' (present)"], "critical_lactate": ["lactate 5.1 mmol/L > 4"]})
    rb.put_patient(r, prefix, C, score=3, band="low-medium", flags=["news2_low_medium"], stale=["temperature_c"])
    rb.put_patient(r, prefix, D, score=1, band="low", flags=[], missing=["spo2", "temperature_c"], history=[1])
    rb.put_patient(r, prefix, E, score=None, band=None, flags=["stroke"])  # a note's stroke, no vital signs: rank 0.1


def test_board_is_ranked_with_each_patients_summary_and_history(board_settings):
    settings, r = board_settings
    prefix = settings.redis_key_prefix
    populate(r, prefix)

    async def go():
        client = await started(settings)
        try:
            with structlog.testing.capture_logs() as logs:
                response = await client.get("/api/board")
                assert response.status == 200
                assert response.headers["Cache-Control"] == "no-store"
                board = await response.json()
                top2 = await (await client.get("/api/board?limit=2")).json()
                bad = await client.get("/api/board?limit=many")
            return board, top2, bad.status, logs
        finally:
            await client.close()

    board, top2, bad_status, logs = run(go())
    assert [p["patient_key"] for p in board["patients"]] == [A, B, C, D, E]
    assert [p["rank"] for p in board["patients"]] == pytest.approx([7.2, 5.0, 3.0, 1.0, 0.1])
    assert [p["patient_key"] for p in top2["patients"]] == [A, B]
    assert bad_status == 400
    assert board["generated_at"]

    a = board["patients"][0]
    assert set(a) == {"patient_key", "rank", "score", "band", "flags", "evidence", "missing", "stale", "qsofa", "sirs", "time", "history"}
    assert (a["score"], a["band"], a["flags"], a["qsofa"], a["sirs"]) == (7, "high", ["news2_high", "sepsis", "critical_lactate"], 2, 3)
    assert a["evidence"]["critical_lactate"] == ["lactate 5.1 mmol/L > 4"]
    assert a["time"] == rb.iso(rb.T0)
    assert [h["score"] for h in a["history"]] == [3, 5, 6, 7]  # oldest first, the current score last
    assert a["history"][-1] == {"at": rb.iso(rb.T0), "score": 7, "band": "high"}
    assert a["history"][0]["at"] == rb.iso(rb.T0 - timedelta(hours=3))

    by_key = {p["patient_key"]: p for p in board["patients"]}
    assert by_key[D]["missing"] == ["spo2", "temperature_c"] and by_key[D]["band"] == "low"
    assert by_key[C]["stale"] == ["temperature_c"]
    assert (by_key[E]["score"], by_key[E]["band"], by_key[E]["flags"], by_key[E]["history"]) == (None, None, ["stroke"], [])

    # patient keys are shown, never logged
    assert not [entry for entry in logs if any(k in json.dumps(entry, default=str) for k in (A, B, C, D, E))]


def test_board_keeps_the_last_48_points_hides_expired_patients_and_reads_a_hash_without_summary(board_settings):
    settings, r = board_settings
    prefix = settings.redis_key_prefix
    rb.put_patient(r, prefix, A, score=6, band="medium", flags=["news2_medium"], history=list(range(60)))
    r.zadd(f"{prefix}:board", {B: 9.0})  # the board still lists B, whose risk hash has expired
    # a writer that stores no summary: the plain score, band, flags and time stand in
    r.hset(f"{prefix}:risk:{C}", mapping={"score": "8", "band": "high", "flags": '["news2_high"]', "time": rb.iso(rb.T0),
                                           "message_id": "m1", "state": "{}"})
    r.zadd(f"{prefix}:board", {C: 8.0})

    async def go():
        client = await started(settings)
        try:
            return await (await client.get("/api/board")).json()
        finally:
            await client.close()

    board = run(go())
    assert [p["patient_key"] for p in board["patients"]] == [C, A]
    assert board["expired"] == 1
    history = board["patients"][1]["history"]
    assert len(history) == 48 and history[-1]["score"] == 6 and history[0]["score"] == 60 - 47
    c = board["patients"][0]
    assert (c["score"], c["band"], c["flags"], c["missing"], c["history"]) == (8, "high", ["news2_high"], [], [])


def test_health_pings_redis(board_settings):
    settings, _ = board_settings
    nowhere = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})  # discard port: refused

    async def go(s):
        client = await started(s)
        try:
            response = await client.get("/health")
            return response.status, await response.json()
        finally:
            await client.close()

    assert run(go(settings)) == (200, {"status": "ok"})
    status, body = run(go(nowhere))
    assert status == 503 and body["status"] == "unavailable"


def test_page_is_one_self_contained_document(board_settings):
    settings, _ = board_settings

    async def go():
        client = await started(settings)
        try:
            response = await client.get("/")
            return response.status, response.headers, await response.text()
        finally:
            await client.close()

    status, headers, html = run(go())
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"
    assert 'id="board"' in html and "api/board" in html and "api/events" in html
    # nothing fetched from elsewhere: no external scripts, styles, fonts or images (the SVG namespace is a name, not a fetch)
    assert "<link" not in html and " src=" not in html and "@import" not in html and "url(" not in html
    assert html.replace("http://www.w3.org/2000/svg", "").count("http") == 0


async def read_events(response, want: int, timeout: float = 10.0) -> list[tuple[str, str]]:
    """(field, value) lines of an SSE response until `want` alerts' data lines (or a keep-alive when want == 0) came."""
    lines: list[tuple[str, str]] = []
    async with asyncio.timeout(timeout):
        while True:
            raw = await response.content.readline()
            assert raw, "the event stream ended"
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                lines.append(("comment", line[1:].strip()))
            elif line:
                field, _, value = line.partition(": ")
                lines.append((field, value))
            alerts = sum(1 for f, _ in lines if f == "data")  # the data line ends an alert's fields
            if (want and alerts >= want) or (not want and ("comment", "keep-alive") in lines):
                return lines


def test_new_alerts_reach_the_event_stream(board_settings):
    settings, r = board_settings
    prefix = settings.redis_key_prefix
    old = rb.alert(A, "news2_medium", score=5, band="medium")
    old_id = rb.add_alert(r, prefix, old)  # before the browser connects: not sent
    fresh = rb.alert(A, "news2_high", score=8, band="high")
    resolved = rb.alert(B, "sepsis", kind="resolved", source="nlp")

    async def go():
        client = await started(settings, keepalive_s=0.3)
        try:
            with structlog.testing.capture_logs() as logs:
                response = await client.get("/api/events")
                assert response.status == 200 and response.headers["Content-Type"].startswith("text/event-stream")
                preamble = await read_events(response, 0)  # connected, then a keep-alive while nothing comes
                fresh_id = await asyncio.to_thread(rb.add_alert, r, prefix, fresh)
                await asyncio.to_thread(rb.add_alert, r, prefix, resolved)
                lines = await read_events(response, 2)
                response.close()
                # a browser reconnecting with Last-Event-ID resumes after what it had
                again = await client.get("/api/events", headers={"Last-Event-ID": old_id})
                resumed = await read_events(again, 2)
                again.close()
                for _ in range(50):  # the handlers notice the closed connections on their next write
                    if sum(1 for e in logs if e["event"] == "dashboard events: client gone") == 2:
                        break
                    await asyncio.sleep(0.1)
            return preamble, lines, resumed, fresh_id, logs
        finally:
            await client.close()

    preamble, lines, resumed, fresh_id, logs = run(go())
    assert ("comment", "connected") in preamble and ("retry", "3000") in preamble
    data = [json.loads(v) for f, v in lines if f == "data"]
    assert data == [fresh, resolved]
    assert ("id", fresh_id) in lines
    assert [json.loads(v)["alert_id"] for f, v in resumed if f == "data"] == [fresh["alert_id"], resolved["alert_id"]]
    assert not [e for e in logs if A in json.dumps(e, default=str) or B in json.dumps(e, default=str)]


def test_dashboard_command_and_port_setting(monkeypatch):
    from clinstream.cli import app
    from clinstream.settings import Settings

    result = CliRunner().invoke(app, ["dashboard", "--help"])
    assert result.exit_code == 0 and "--host" in result.output and "--port" in result.output
    monkeypatch.delenv("CLINSTREAM_DASHBOARD_PORT", raising=False)
    assert Settings().dashboard_port == 8088
    monkeypatch.setenv("CLINSTREAM_DASHBOARD_PORT", "9191")
    assert Settings().dashboard_port == 9191
