"""Fault injection against the real local broker and Redis, Jepsen style: feed 5,000 messages (some malformed,
one poison note that makes the NER model raise), inject the fault, then audit every message: inbound ids
against what came out on enriched, dead-letter and alerts, and Redis against the generator's from-scratch
state (clinstream/audit.py). Two normalizers and two inference workers share their consumer groups.

Each case prints its audit row; together they make the table of the closing note."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from clinstream import services
from clinstream.audit import audit
from clinstream.settings import REPO_ROOT
from clinstream.run import Collector, publish, settings_env, wait_ready
from clinstream.synthetic import FeedMessage, generate
from streams.topics import ensure_topics
from tests.faults.poisoned import MARKER

pytestmark = pytest.mark.integration

N_MESSAGES = 5000
RATE = 150.0  # messages/s offered: about half what the stages sustain without notes on 2 cores


class Rig:
    """Stage processes by name ("normalizer-0"...), each logging to its own file; all in their stage's group."""

    def __init__(self, settings, logs: Path) -> None:
        self.settings, self.logs = settings, logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0

    def start(self, name: str) -> None:
        stage = name.split("-")[0]
        log = self.logs / f"{name}.{self.started}.log"
        self.started += 1
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "tests.faults.poisoned", stage], stdout=out,
                                                stderr=subprocess.STDOUT, env=settings_env(self.settings))
        self.procs[name].log = log  # type: ignore[attr-defined]

    def wait_ready(self, names: list[str]) -> None:
        wait_ready([self.procs[n].log for n in names], [self.procs[n] for n in names], timeout=240)  # type: ignore[attr-defined]

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def peak_rss_mb(self) -> dict[str, float]:
        out = {}
        for name, p in self.procs.items():
            try:
                status = Path(f"/proc/{p.pid}/status").read_text()
            except OSError:
                continue
            kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            out[name] = round(kb / 1024, 1)
        return out

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def rig(service_settings, tmp_path_factory):
    """A broker and Redis of the suite's own (it stops and restarts them), and the four stage processes."""
    run = uuid.uuid4().hex[:8]
    settings = service_settings.model_copy(update={
        "state_dir": REPO_ROOT / ".cache" / "fault-services",
        "kafka_port": int(os.environ.get("CLINSTREAM_FAULT_KAFKA_PORT", 39092)),
        "kafka_controller_port": int(os.environ.get("CLINSTREAM_FAULT_KAFKA_CONTROLLER_PORT", 39093)),
        "redis_port": int(os.environ.get("CLINSTREAM_FAULT_REDIS_PORT", 36379)),
        "topic_prefix": f"faults-{run}.", "app_id": f"clinstream-faults-{run}", "redis_key_prefix": f"faults-{run}", "torch_threads": 1})
    services.up(settings)
    ensure_topics(settings)
    r = Rig(settings, tmp_path_factory.mktemp("fault-logs"))
    names = ["normalizer-0", "normalizer-1", "inference-0", "inference-1"]
    try:
        for n in names:
            r.start(n)
        r.wait_ready(names)
        yield r
    finally:
        r.stop()
        services.down(settings)


def poisoned_feed(seed: int):
    """5,000 valid messages with 2 % notes and 2 % malformed; one note (that raises no flag) carries the marker."""
    feed = generate(N_MESSAGES, seed=seed, malformed_share=0.02, note_share=0.02)
    index = next(i for i, m in enumerate(feed.messages) if m.kind == "note" and not m.expected_flags and i > len(feed.messages) // 3)
    m = feed.messages[index]
    poison = FeedMessage(m.topic, m.key, m.value.replace(b"admitted under medicine.", f"admitted under medicine {MARKER}.".encode(), 1),
                         m.message_id, m.kind, True, (), m.observed_at, (), m.scenario)
    assert poison.value != m.value
    feed.messages[index] = poison
    return feed, poison.message_id


def redis_states(settings, keys) -> dict[str, dict]:
    r = redis.Redis.from_url(settings.redis, decode_responses=True)
    out = {}
    for key in keys:
        h = r.hgetall(f"{settings.redis_key_prefix}:risk:{key}")
        if h:
            out[key] = {"band": h["band"] or None, "score": int(h["score"]) if h["score"] else None, "flags": json.loads(h["flags"])}
    r.close()
    return out


def run_case(rig: Rig, name: str, seed: int, fault, rate: float | None = RATE) -> dict:
    feed, poison_id = poisoned_feed(seed)
    collector = Collector(rig.settings)
    valid = {m.message_id for m in feed.messages if m.valid} - {poison_id}
    n_malformed = sum(1 for m in feed.messages if not m.valid)
    publisher = threading.Thread(target=publish, args=(rig.settings, feed.messages, rate), daemon=True)
    started = time.monotonic()
    publisher.start()
    extra = fault(rig, started, collector) or {}
    publisher.join(timeout=900)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        collector.poll()
        seen = {e["message_id"] for e in collector.outputs.enriched}
        if valid <= seen and len(collector.outputs.deadletter) >= n_malformed + 1:
            break
    collector.wait_for(10**9, 0, timeout=5)  # late duplicates and alerts
    seconds = time.monotonic() - started
    deadline = time.monotonic() + 60  # Redis may trail Kafka by a batch (or an outage's backlog)
    while True:
        states = redis_states(rig.settings, feed.expected_state)
        row = audit(feed, collector.outputs.enriched, collector.outputs.deadletter, collector.outputs.alerts, states, poison=[poison_id])
        if row["redis_state_mismatches"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    collector.close()
    row = {"case": name, **row, "seconds": round(seconds, 1), **extra}
    print("\nAUDIT " + json.dumps(row))
    results_dir = Path(os.environ.get("CLINSTREAM_AUDIT_DIR", rig.logs))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"audit-{name}.json").write_text(json.dumps(row, indent=2) + "\n")
    return row


def test_sigkill_workers_at_random_points(rig):
    """One normalizer and one inference worker are SIGKILLed three times each at random moments and restarted."""
    def fault(rig: Rig, started: float, collector: Collector) -> dict:
        rng = random.Random(3)
        kills = 0
        for round_ in range(3):  # a restarted worker may be killed again before it is ready: that is the point
            time.sleep(rng.uniform(3, 8))
            victims = ["normalizer-1", "inference-1"] if round_ % 2 == 0 else ["normalizer-0", "inference-0"]
            for v in victims:
                rig.kill(v)
                kills += 1
            time.sleep(rng.uniform(0.5, 2))
            for v in victims:
                rig.start(v)
        rig.wait_ready(list(rig.procs))
        return {"kills": kills}

    row = run_case(rig, "sigkill", seed=101, fault=fault)
    assert row["ok"], row


def test_broker_stopped_for_20_s(rig):
    """The broker goes away for 20 s a third of the way through the feed, then comes back."""
    def fault(rig: Rig, started: float, collector: Collector) -> dict:
        time.sleep(N_MESSAGES / RATE / 3)
        services._stop(services.kafka_dir(rig.settings) / "broker.pid")
        down = time.monotonic()
        time.sleep(20)
        services.kafka_up(rig.settings)
        return {"broker_down_s": round(time.monotonic() - down, 1)}

    row = run_case(rig, "broker-down", seed=102, fault=fault)
    assert row["ok"], row
    assert all(p.poll() is None for p in rig.procs.values()), "a stage died with the broker"


def test_redis_stopped_for_30_s(rig):
    """Redis goes away for 30 s mid-feed: enrichment to Kafka goes on (for patients the workers hold), the Redis
    writes wait with their input records unacknowledged and land when Redis is back; the workers log degraded."""
    def fault(rig: Rig, started: float, collector: Collector) -> dict:
        time.sleep(N_MESSAGES / RATE / 3)
        collector.poll()
        before = len(collector.outputs.enriched)
        services._stop(rig.settings.state_dir / "redis" / "redis.pid")
        down = time.monotonic()
        while time.monotonic() - down < 30:
            collector.poll()
        during = len(collector.outputs.enriched) - before
        services.redis_up(rig.settings)
        return {"redis_down_s": round(time.monotonic() - down, 1), "enriched_while_redis_down": during}

    row = run_case(rig, "redis-down", seed=103, fault=fault)
    assert row["ok"], row
    assert row["enriched_while_redis_down"] > 100, "enrichment stopped with Redis"
    logs = "".join(Path(p.log).read_text() for p in rig.procs.values())  # type: ignore[attr-defined]
    assert "redis unavailable, enrichment goes on" in logs


def test_flood_ten_times_the_sustainable_rate(rig):
    """The whole feed at once (about ten times what the stages sustain): memory stays bounded, lag drains."""
    before = rig.peak_rss_mb()

    def fault(rig: Rig, started: float, collector: Collector) -> dict:
        return {}

    row = run_case(rig, "flood", seed=104, fault=fault, rate=None)
    peak = rig.peak_rss_mb()
    row["peak_rss_mb"] = peak
    print("PEAK RSS MB before", json.dumps(before), "after", json.dumps(peak))
    assert row["ok"], row
