"""Both stage processes serve /health, /ready and /metrics on their ports (pipeline fixture), and the counters move
with the messages that go through, without a patient key or message id in any series."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams import topics
from tests.streams.test_stages import send, vitals

pytestmark = pytest.mark.integration


def fetch(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = fetch(port, "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def total(series: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in series.items() if n == name and labels.items() <= dict(ls).items())


def test_health_ready_and_metrics(pipeline, collector):
    ports = {"normalizer": pipeline.metrics_port_normalizer, "inference": pipeline.metrics_port_inference}
    for stage, port in ports.items():
        status, body = fetch(port, "/health")
        assert status == 200 and json.loads(body)["stage"] == stage
        deadline = time.monotonic() + 30
        while (ready := fetch(port, "/ready"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ready[0] == 200, ready
        assert json.loads(ready[1])["checks"] == (["kafka", "redis"] if stage == "inference" else ["kafka"])

    hl7_in = topics.topic_name(topics.INBOUND_HL7V2, pipeline)
    normalized, enriched = topics.topic_name(topics.NORMALIZED, pipeline), topics.topic_name(topics.ENRICHED, pipeline)
    before = {stage: samples(port) for stage, port in ports.items()}

    mid, mrn = f"T{uuid.uuid4().hex[:10]}", f"M{uuid.uuid4().hex[:6]}"
    send(pipeline, topics.INBOUND_HL7V2, vitals(mid, mrn), f"TESTHOSP|{mrn}")
    send(pipeline, topics.INBOUND_HL7V2, b"not hl7 at all", f"TESTHOSP|{mrn}")
    assert collector.wait_for(1, 1, timeout=120)

    deadline = time.monotonic() + 10  # the counters move right after delivery; the inference one a moment after enriched
    while True:
        after = {stage: samples(port) for stage, port in ports.items()}
        moved = total(after["inference"], "clinstream_messages_total", direction="out", topic=enriched) > \
            total(before["inference"], "clinstream_messages_total", direction="out", topic=enriched)
        if moved or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    def delta(process: str, name: str, **labels: str) -> float:
        return total(after[process], name, **labels) - total(before[process], name, **labels)

    assert delta("normalizer", "clinstream_messages_total", stage="normalizer", direction="in", topic=hl7_in) >= 2
    assert delta("normalizer", "clinstream_messages_total", direction="out", topic=normalized) >= 1
    assert delta("normalizer", "clinstream_dead_letters_total", kind="hl7_parse") >= 1
    assert delta("normalizer", "clinstream_batch_size_count") >= 1
    assert delta("inference", "clinstream_messages_total", stage="inference", direction="in", topic=normalized) >= 1
    assert delta("inference", "clinstream_messages_total", direction="out", topic=enriched) >= 1
    assert delta("inference", "clinstream_inference_seconds_count", step="ner") >= 1
    assert delta("inference", "clinstream_end_to_end_seconds_count") >= 1
    assert delta("inference", "clinstream_alerts_total", flag="news2_high", kind="raised") >= 1
    assert total(after["inference"], "clinstream_model_info", task="ner") == 1
    assert total(after["inference"], "clinstream_dependency_up", dependency="redis") == 1

    # consumer lag: sampled every few seconds for the partitions each process holds
    deadline = time.monotonic() + 15
    while not any(n == "clinstream_consumer_lag" for n, _ in samples(ports["inference"])) and time.monotonic() < deadline:
        time.sleep(0.5)
    lag = {dict(ls)["partition"]: v for (n, ls), v in samples(ports["inference"]).items() if n == "clinstream_consumer_lag"}
    assert set(lag) == {str(p) for p in range(pipeline.partitions)} and all(v >= 0 for v in lag.values())

    for port in ports.values():
        text = fetch(port, "/metrics")[1]
        assert mid not in text and mrn not in text, "a message id or patient key in a metric"
