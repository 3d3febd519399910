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
ROWS: list[dict] = []  # each case's audit, printed as one table when the suite ends
TABLE = ["case", "valid_in", "enriched_distinct", "duplicates_deduped", "missing", "malformed_in", "dead_lettered_malformed",
         "poison_dead_lettered", "alerts_expected", "alerts_distinct", "alert_records", "alert_events_with_two_ids",
         "redis_state_mismatches", "seconds", "ok"]


def table_lines(rows: list[dict]) -> list[str]:
    """The audit table (tests/faults/conftest.py prints it at the end of the run, captured or not)."""
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in TABLE]
    lines = ["FAULT AUDIT", "  ".join(c.ljust(w) for c, w in zip(TABLE, widths))]
    lines += ["  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(TABLE, widths)) for r in rows]
    for r in rows:
        extra = {k: v for k, v in r.items() if k not in TABLE and k not in ("examples", "malformed_missing", "valid_dead_lettered",
                                                                              "poison_enriched", "alerts_missing", "alerts_unexpected",
                                                                              "enriched_records", "redis_states_checked")}
        if extra:
            lines.append(f"{r['case']}: {json.dumps(extra)}")
    return lines


def group_lag(settings, stage: str, specs) -> int:
    """Records the stage's consumer group has not committed yet, over its input topics."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    from streams.topics import topic_name

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    try:
        group = f"{settings.app_id}-{stage}"
        committed = admin.list_group_offsets(group).get(group, {})
        parts = [TopicPartition(topic_name(spec, settings), p) for spec in specs
                 for p in consumer.partitions_for_topic(topic_name(spec, settings)) or ()]
        ends = consumer.end_offsets(parts)
        starts = consumer.beginning_offsets(parts)
        return sum(ends[tp] - (committed[tp].offset if tp in committed and committed[tp] and committed[tp].offset >= 0 else starts[tp]) for tp in parts)
    finally:
        consumer.close()
        admin.close()
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
        """SIGKILL: the audits are done, and a graceful faust shutdown (leave the group, commit) cost up to 20 s a process."""
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture(scope="module")
def rig(service_settings, tmp_path_factory):
    """A broker and Redis of the suite's own (it stops and restarts them), and the four stage processes."""
    run = uuid.uuid4().hex[:8]
    settings = service_settings.model_copy(update={
        "state_dir": REPO_ROOT / ".cache" / "fault-services",
        "kafka_port": int(os.environ.get("CLINSTREAM_FAULT_KAFKA_PORT", 24092)),
        "kafka_controller_port": int(os.environ.get("CLINSTREAM_FAULT_KAFKA_CONTROLLER_PORT", 24093)),
        "redis_port": int(os.environ.get("CLINSTREAM_FAULT_REDIS_PORT", 24379)),
        "topic_prefix": f"faults-{run}.", "app_id": f"clinstream-faults-{run}", "redis_key_prefix": f"faults-{run}", "torch_threads": 1,
        "batch_max_wait_s": float(os.environ.get("CLINSTREAM_FAULT_BATCH_WAIT_S", 0.2))})
    services.up(settings)
    ensure_topics(settings)
    r = Rig(settings, tmp_path_factory.mktemp("fault-logs"))
    names = ["normalizer-0", "normalizer-1", "inference-0", "inference-1"]
    try:
        for n in names:
            r.start(n)
        r.wait_ready(names)
        warm_up(r)
        yield r
    finally:
        r.stop()
        services.down(settings)


def warm_up(rig: Rig) -> None:
    """A short feed through every stage first, so each case (and the flood's memory baseline) meets working processes
    whatever the order the cases run in: an idle process has not yet loaded the mappers, validators and model paths
    (run alone, the flood measured an idle normalizer, 76 MB, against 112 MB after; warmed up, 90 against 103)."""
    feed = generate(1000, seed=7, malformed_share=0.02, note_share=0.05)
    collector = Collector(rig.settings)
    publish(rig.settings, feed.messages, None)
    valid = sum(1 for m in feed.messages if m.valid)
    try:
        assert collector.wait_for(valid, len(feed.messages) - valid, timeout=300), "the stages did not take the warm-up feed"
    finally:
        collector.close()


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


def run_case(rig: Rig, name: str, seed: int, fault, rate: float | None = RATE, publish_first: bool = False) -> dict:
    feed, poison_id = poisoned_feed(seed)
    collector = Collector(rig.settings)
    valid = {m.message_id for m in feed.messages if m.valid} - {poison_id}
    n_malformed = sum(1 for m in feed.messages if not m.valid)
    published: list[tuple[int, float]] = []
    publisher = threading.Thread(target=lambda: published.append(publish(rig.settings, feed.messages, rate)), daemon=True)
    started = time.monotonic()
    publisher.start()
    if publish_first:
        publisher.join(timeout=900)
    flowing = time.monotonic()  # when the stages could start on the feed
    extra = fault(rig, started, collector) or {}
    publisher.join(timeout=900)
    extra["offered_msgs_per_s"] = round(published[0][0] / published[0][1], 1) if published else None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        collector.poll()
        seen = {e["message_id"] for e in collector.outputs.enriched}
        if valid <= seen and len(collector.outputs.deadletter) >= n_malformed + 1:
            break
    drained = time.monotonic()
    collector.wait_for(10**9, 0, timeout=5)  # late duplicates and alerts
    seconds = time.monotonic() - started
    extra["sustained_msgs_per_s"] = round(len(feed.messages) / (drained - flowing), 1)
    deadline = time.monotonic() + 60  # Redis may trail Kafka by a batch (or an outage's backlog)
    while True:
        states = redis_states(rig.settings, feed.expected_state)
        row = audit(feed, collector.outputs.enriched, collector.outputs.deadletter, collector.outputs.alerts, states, poison=[poison_id])
        if row["redis_state_mismatches"] == 0 or time.monotonic() > deadline:
            break
        time.sleep(2)
    collector.close()
    row = {"case": name, **row, "seconds": round(seconds, 1), **extra}
    ROWS.append(row)
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
    # aiokafka logs each failed reconnect (about 9,000 lines from the four stages in one outage before
    # clinstream.logs.RepeatedWarnings): at most one line per template and logger every 5 s now
    reconnect_lines = sum(Path(p.log).read_text(errors="replace").count("Unable connect to node") for p in rig.procs.values())  # type: ignore[attr-defined]
    print(f"broker-down: {reconnect_lines} 'Unable connect to node' lines in the stages' logs")
    assert reconnect_lines < 200, reconnect_lines


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
    assert "redis unavailable" in logs  # the workers said so (a save kept pending, or a new patient's load waiting)


def resume_then(fault, rig: Rig, started: float, collector: Collector) -> dict:
    for p in rig.procs.values():
        p.send_signal(signal.SIGCONT)
    return fault(rig, time.monotonic(), collector)


def test_flood_ten_times_the_sustainable_rate(rig):
    """The whole feed at once (sent while the stages are paused, so they meet it as one backlog, far beyond ten times what
    they sustain): memory stays bounded, lag drains."""
    before = rig.peak_rss_mb()

    def fault(rig: Rig, started: float, collector: Collector) -> dict:
        """Sample both groups' lag every 2 s until it has grown and drained again."""
        from streams import topics

        peak = {"normalizer": 0, "inference": 0}
        drained = None
        while time.monotonic() - started < 600:
            lag = {"normalizer": group_lag(rig.settings, "normalizer", [topics.INBOUND_HL7V2, topics.INBOUND_FHIR]),
                   "inference": group_lag(rig.settings, "inference", [topics.NORMALIZED])}
            peak = {k: max(peak[k], lag[k]) for k in peak}
            collector.poll()
            if max(peak.values()) > 0 and not any(lag.values()):
                drained = time.monotonic() - started
                break
            time.sleep(2)
        return {"peak_lag_normalizer": peak["normalizer"], "peak_lag_inference": peak["inference"],
                "lag_drained_after_s": round(drained, 1) if drained else None}

    # the stages are paused (SIGSTOP) while the publisher sends the whole feed, so it is offered far faster than they
    # drain it even on 2 shared cores; they are resumed at once and meet the feed as one flood
    for p in rig.procs.values():
        p.send_signal(signal.SIGSTOP)
    try:
        row = run_case(rig, "flood", seed=104, fault=lambda rig, started, collector: resume_then(fault, rig, started, collector), rate=None,
                       publish_first=True)
    finally:
        for p in rig.procs.values():
            p.send_signal(signal.SIGCONT)
    peak = rig.peak_rss_mb()
    row["peak_rss_mb"] = peak
    print("PEAK RSS MB before", json.dumps(before), "after", json.dumps(peak))
    assert row["ok"], row
    # the stages were paused while the publisher sent the whole feed, so they met all of it as one backlog: the
    # normalizer's lag reached the feed. (The publisher's own rate says nothing about that: 2,079 and 9,913 msg/s in two
    # CI runs of 2026-12-04 on the same machine, against 265-276 msg/s sustained; the first failed a check of ten times.)
    assert row["peak_lag_normalizer"] >= 0.9 * (row["valid_in"] + row["malformed_in"]), ("not a flood", row)
    assert row["peak_lag_inference"] + row["peak_lag_normalizer"] > 1000 and row["lag_drained_after_s"], "the flood never built up or never drained"
    # the caps that bound a worker's memory under a flood: faust's stream buffer and fetch sizes, the held-record
    # backlog (BACKLOG_MAX_RECORDS) and the patient cache (STATE_CACHE_PATIENTS); a flood must not grow it by more than 25 %
    assert all(peak[n] <= before[n] * 1.25 for n in before if n in peak), (before, peak)
