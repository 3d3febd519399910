"""The metrics module and the ops endpoints without Kafka: names and labels, the lag arithmetic, /metrics, /health and
/ready, and a Redis outage seen through the worker's retries (a Redis server of the test's own, stopped and restarted)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from streams import metrics
from streams.ops import Health, routes


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_names_are_prefixed_and_exported():
    """Every metric of the stages is clinstream_*; exported_names lists the series a dashboard may query, observed
    or not (histograms as _bucket/_sum/_count, counters as _total)."""
    names = metrics.exported_names()
    for name in ("clinstream_messages_total", "clinstream_dead_letters_total", "clinstream_batch_size_bucket",
                 "clinstream_batch_seconds_count", "clinstream_inference_seconds_bucket", "clinstream_end_to_end_seconds_sum",
                 "clinstream_consumer_lag", "clinstream_redis_errors_total", "clinstream_alerts_total", "clinstream_model_info",
                 "clinstream_dependency_up", "clinstream_ready", "process_resident_memory_bytes"):
        assert name in names, name
    families = [f for f in metrics.REGISTRY.collect() if not f.name.startswith("process_")]
    assert families and all(f.name.startswith("clinstream_") for f in families)
    assert not any(n.endswith("_created") for n in names)


def test_labels_are_bounded_sets():
    """No metric takes a label that could hold a patient key, a message id or message text."""
    allowed = {"stage", "direction", "topic", "partition", "kind", "operation", "step", "flag", "task", "name", "version", "dependency"}
    for m in (metrics.MESSAGES, metrics.DEAD_LETTERS, metrics.BATCH_SIZE, metrics.BATCH_SECONDS, metrics.INFERENCE_SECONDS,
              metrics.END_TO_END_SECONDS, metrics.CONSUMER_LAG, metrics.REDIS_ERRORS, metrics.ALERTS, metrics.MODEL_INFO,
              metrics.DEPENDENCY_UP, metrics.READY):
        assert set(m._labelnames) <= allowed, m._name


def test_lag_from_committed_else_position():
    ends = {("t", 0): 100, ("t", 1): 50, ("t", 2): 7, ("t", 3): 9}
    committed = {("t", 0): 90, ("t", 1): None, ("t", 2): None, ("t", 3): 12}
    positions = {("t", 1): 45}
    # t-2: neither committed nor a position -> unknown, left out; t-3: a stale end offset never gives a negative lag
    assert metrics.lag(ends, committed, positions) == {("t", 0): 10, ("t", 1): 5, ("t", 3): 0}


def test_set_lag_drops_revoked_partitions():
    metrics.set_lag("normalizer", {("in", 0): 3, ("in", 1): 4})
    assert value("clinstream_consumer_lag", stage="normalizer", topic="in", partition="1") == 4
    metrics.set_lag("normalizer", {("in", 0): 2})
    assert value("clinstream_consumer_lag", stage="normalizer", topic="in", partition="0") == 2
    assert metrics.REGISTRY.get_sample_value("clinstream_consumer_lag", {"stage": "normalizer", "topic": "in", "partition": "1"}) is None


def test_end_to_end_observes_seconds_and_skips_unknown_times():
    count, total = value("clinstream_end_to_end_seconds_count"), value("clinstream_end_to_end_seconds_sum")
    metrics.observe_end_to_end("2026-01-01T10:00:00.000+00:00", "2026-01-01T10:00:01.500+00:00")
    metrics.observe_end_to_end(None, "2026-01-01T10:00:01.500+00:00")
    metrics.observe_end_to_end("not a time", "2026-01-01T10:00:01.500+00:00")
    assert value("clinstream_end_to_end_seconds_count") == count + 1
    assert value("clinstream_end_to_end_seconds_sum") == pytest.approx(total + 1.5)


def test_dead_letter_counts_by_kind_not_reason():
    from streams.app import dead_letter

    before = value("clinstream_dead_letters_total", stage="normalizer", kind="hl7_parse")
    record = SimpleNamespace(topic="in", partition=0, offset=5, key=b"GENHOSP|123", value=b"MSH|x", headers=None)
    dead_letter(SimpleNamespace(), record, stage="normalizer", reason="segment PID of patient Smith is broken", kind="hl7_parse")
    assert value("clinstream_dead_letters_total", stage="normalizer", kind="hl7_parse") == before + 1
    text = metrics_text()
    assert "Smith" not in text and "GENHOSP" not in text


def metrics_text() -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.REGISTRY).decode()


async def get(client: TestClient, path: str) -> tuple[int, object]:
    response = await client.get(path)
    body = await (response.json() if path != "/metrics" else response.text())
    return response.status, body


def test_endpoints_follow_the_stage():
    """/health answers at once; /ready says starting until the group assigned partitions and the agent consumes,
    then ready; a failing dependency makes both say degraded (/health still 200: the process lives)."""
    broken = {"now": False}

    async def kafka() -> None:
        if broken["now"]:
            raise ConnectionError("broker away")

    async def run() -> None:
        health = Health("normalizer", checks={"kafka": kafka})
        async with TestClient(TestServer(routes(health))) as client:
            status, body = await get(client, "/health")
            assert (status, body["status"], body["stage"], body["consuming"]) == (200, "starting", "normalizer", False)
            status, body = await get(client, "/ready")
            assert status == 503 and body["status"] == "starting" and "assign" in body["reason"]
            health.assigned = True
            status, body = await get(client, "/ready")
            assert status == 503 and body["reason"] == "starting the agent"
            health.consuming = True
            status, body = await get(client, "/ready")
            assert (status, body["status"], body["checks"]) == (200, "ready", ["kafka"])
            assert (await get(client, "/health"))[1]["status"] == "ok"
            assert value("clinstream_ready", stage="normalizer") == 1
            assert value("clinstream_dependency_up", stage="normalizer", dependency="kafka") == 1

            broken["now"] = True
            status, body = await get(client, "/ready")
            assert (status, body["status"], body["reason"]) == (503, "degraded", "kafka: ConnectionError")
            status, body = await get(client, "/health")
            assert (status, body["status"], body["failing"]) == (200, "degraded", {"kafka": "ConnectionError"})
            assert value("clinstream_ready", stage="normalizer") == 0
            assert value("clinstream_dependency_up", stage="normalizer", dependency="kafka") == 0

            metrics.count_in("normalizer", "clinical.inbound.hl7v2", 3)
            status, text = await get(client, "/metrics")
            assert status == 200
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for f in text_string_to_metric_families(text) for s in f.samples}
            key = ("clinstream_messages_total", (("direction", "in"), ("stage", "normalizer"), ("topic", "clinical.inbound.hl7v2")))
            assert samples[key] >= 3

    asyncio.run(run())


def test_slow_dependency_counts_as_failing():
    async def hangs() -> None:
        await asyncio.sleep(10)

    async def run() -> dict:
        health = Health("inference", checks={"redis": hangs})
        started = time.monotonic()
        await health.probe(timeout=0.2)
        assert time.monotonic() - started < 2
        return health.failing

    assert asyncio.run(run()) == {"redis": "TimeoutError"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen[bytes]:
    from clinstream.services import redis_server_binary

    proc = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def test_redis_outage_degrades_then_recovers():
    """The worker's Redis write retries through an outage: meanwhile redis_errors counts the failures, /health says
    degraded and /ready 503 naming Redis; once Redis is back the write goes through and both recover."""
    from clinstream.settings import Settings
    from streams.riskstore import RiskStore
    from streams.stages import InferenceWorker

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_proc = start_redis(port)
    worker = InferenceWorker(Settings(redis_url=url))
    health = worker.health
    health.assigned = health.consuming = True

    async def run() -> None:
        worker.store = RiskStore(url, "clinstream-metrics-test", 60)
        health.checks["redis"] = worker.store.redis.ping  # what InferenceWorker.start wires
        async with TestClient(TestServer(routes(health))) as client:
            assert (await get(client, "/ready"))[0] == 200
            errors = value("clinstream_redis_errors_total", operation="save")
            nonlocal redis_proc
            redis_proc.terminate()
            redis_proc.wait()
            write = asyncio.create_task(worker.with_retry("save", lambda: worker.store.redis.set("clinstream-metrics-test:x", "1")))
            deadline = time.monotonic() + 10
            while "redis save" not in health.failing and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            status, body = await get(client, "/health")
            assert (status, body["status"]) == (200, "degraded") and body["failing"]["redis save"]
            status, body = await get(client, "/ready")
            assert status == 503 and body["status"] == "degraded" and "redis" in body["reason"]
            assert value("clinstream_redis_errors_total", operation="save") > errors
            assert not write.done()  # never dropped: still retrying

            redis_proc = start_redis(port)
            await asyncio.wait_for(write, 15)
            status, body = await get(client, "/ready")
            assert (status, body["status"]) == (200, "ready")
            assert (await get(client, "/health"))[1]["status"] == "ok"
            await worker.store.redis.aclose()

    try:
        asyncio.run(run())
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        worker.executor.shutdown()


def test_unmapped_content_is_counted_by_segment_id_only():
    """The envelope's unmapped segments and fields, by segment id: structure, never the values kept."""
    before = (value("clinstream_unmapped_total", kind="segment", segment="ZPI"), value("clinstream_unmapped_total", kind="field", segment="PID"))
    metrics.count_unmapped(["ZPI"], ["PID-10", "PID-22"])
    assert value("clinstream_unmapped_total", kind="segment", segment="ZPI") == before[0] + 1
    assert value("clinstream_unmapped_total", kind="field", segment="PID") == before[1] + 2
    assert "PID-10" not in metrics_text()
