"""Running the whole pipeline from outside: stage processes, publishing a feed, collecting what comes
out, and the summary. The demo, the end-to-end test and the benchmark all go through here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from clinstream.security import kafka_client_options
from clinstream.settings import Settings
from streams import topics

INBOUND = {"hl7v2": topics.INBOUND_HL7V2, "fhir": topics.INBOUND_FHIR}


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings. It holds the secrets (the SASL
    password, REDIS_URL with its password) in clear, as the child needs them: pass it on, never print or log it."""
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude={"kafka_bootstrap", "redis_url"}).items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()  # str() of a SecretStr is "**********"
        # None travels as "" (which every optional setting reads as unset), never as the string "None"
        env[f"CLINSTREAM_{name.upper()}"] = json.dumps(value) if isinstance(value, (dict, list)) else "" if value is None else str(value)
    env["KAFKA_BOOTSTRAP"] = settings.bootstrap
    env["REDIS_URL"] = settings.redis
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    return env


def start_stage(stage: str, settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen([sys.executable, "-m", "clinstream.cli", "worker", stage], stdout=out, stderr=subprocess.STDOUT,
                            env=settings_env(settings))


def stop_stages(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    procs = list(processes)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _consumer(settings: Settings, names: list[str]) -> Any:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_client_options(settings), enable_auto_commit=False, isolation_level="read_committed",
                             consumer_timeout_ms=200, fetch_max_bytes=50 * 1024 * 1024)
    parts = [TopicPartition(n, p) for n in names for p in range(settings.partitions)]
    consumer.assign(parts)
    return consumer


@dataclass
class Outputs:
    """Everything read back from the output topics since the collector started."""

    normalized: list[dict[str, Any]] = field(default_factory=list)
    enriched: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    deadletter: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)  # (original bytes, headers)


class Collector:
    """Reads the normalized, enriched, alerts and dead-letter topics from their end offsets at creation."""

    def __init__(self, settings: Settings) -> None:
        self.names = {spec: topics.topic_name(spec, settings) for spec in (topics.NORMALIZED, topics.ENRICHED, topics.ALERTS, topics.DEADLETTER)}
        self.by_name = {v: k for k, v in self.names.items()}
        self.consumer = _consumer(settings, list(self.names.values()))
        self.consumer.seek_to_end()
        for tp in self.consumer.assignment():
            self.consumer.position(tp)  # resolve now, before anything is published
        self.outputs = Outputs()

    def poll(self) -> int:
        got = 0
        for records in self.consumer.poll(timeout_ms=300, max_records=5000).values():
            for r in records:
                got += 1
                spec = self.by_name[r.topic]
                if spec is topics.DEADLETTER:
                    headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or [])}
                    self.outputs.deadletter.append((r.value, headers))
                else:
                    target = {topics.NORMALIZED: self.outputs.normalized, topics.ENRICHED: self.outputs.enriched,
                              topics.ALERTS: self.outputs.alerts}[spec]
                    target.append(json.loads(r.value))
        return got

    def wait_for(self, enriched: int, deadlettered: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if len(self.outputs.enriched) >= enriched and len(self.outputs.deadletter) >= deadlettered:
                self.poll()  # alerts may trail the enriched record of the same batch by a moment
                return True
        return False

    def close(self) -> None:
        self.consumer.close()


def publish(settings: Settings, messages: Iterable[Any], rate: float | None = None) -> tuple[int, float]:
    """Send FeedMessages to the inbound topics keyed by patient; `rate` in messages/s (None: as fast as
    possible). Returns (count, seconds)."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_client_options(settings), acks="all", linger_ms=5, max_request_size=8 * 1024 * 1024)
    started = time.monotonic()
    count = 0
    for m in messages:
        if rate:
            ahead = started + count / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        producer.send(topics.topic_name(INBOUND[m.topic], settings), key=m.key.encode(), value=m.value)
        count += 1
    producer.flush()
    producer.close()
    return count, time.monotonic() - started


def wait_ready(log_paths: list[Path], processes: list[subprocess.Popen[bytes]], timeout: float = 180.0) -> None:
    """Until every stage has started its agent (the worker after loading its model) and joined its group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [p for p in processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a stage exited with code {dead[0].returncode}; see " + ", ".join(map(str, log_paths)))
        texts = [p.read_text(errors="replace") if p.exists() else "" for p in log_paths]
        if all("stage ready" in t and "partitions assigned" in t for t in texts):
            return
        time.sleep(0.5)
    raise TimeoutError("stages did not report ready; see " + ", ".join(map(str, log_paths)))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summarize(published: int, outputs: Outputs, seconds: float) -> dict[str, Any]:
    """`seconds` is the wall time the caller waited; throughput is taken over the pipeline's own span,
    first inbound timestamp to last enriched, so the reader's lag does not count against the stages."""
    received = [datetime.fromisoformat(e["received_at"]) for e in outputs.enriched]
    enriched = [datetime.fromisoformat(e["enriched_at"]) for e in outputs.enriched]
    latencies = [(done - got).total_seconds() * 1000 for got, done in zip(received, enriched)]
    if enriched:
        seconds = max((max(enriched) - min(received)).total_seconds(), 1e-3)
    flags = Counter(a["flag"] for a in outputs.alerts if a["kind"] == "raised")
    reasons = Counter(h.get("clinstream.error", "?") for _, h in outputs.deadletter)
    return {
        "messages_in": published,
        "normalized": len(outputs.normalized),
        "dead_lettered": len(outputs.deadletter),
        "dead_letter_reasons": dict(reasons),
        "enriched": len(outputs.enriched),
        "with_entities": sum(1 for e in outputs.enriched if e["entities"]),
        "alerts": sum(1 for a in outputs.alerts if a["kind"] == "raised"),
        "resolved": sum(1 for a in outputs.alerts if a["kind"] == "resolved"),
        "suppressed": sum(len(e["risk"]["suppressed"]) for e in outputs.enriched if e.get("risk")),
        "alerts_by_flag": dict(sorted(flags.items())),
        "seconds": round(seconds, 2),
        "throughput_msgs_per_s": round(published / seconds, 1) if seconds else None,
        "latency_ms_p50": round(percentile(latencies, 0.5), 1),
        "latency_ms_p99": round(percentile(latencies, 0.99), 1),
    }
