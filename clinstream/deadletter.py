"""`clinstream deadletter replay`: send dead letters back to the topic they came from, once the cause is fixed.

A dead letter (streams/app.py `dead_letter`) is the original record's bytes, key and headers plus
`clinstream.*` headers saying what failed where. Replay re-sends the bytes and key to
`clinstream.source.topic` (the producer partitions by key, as the sender did, so a patient's records stay
in order) with the original headers and `clinstream.replayed_from: <dead-letter topic>/<partition>/<offset>`.

Never twice: each replayed dead letter gets a record on the ledger topic `clinical.deadletter.replayed`
(key `<partition>/<offset>`), written after the broker has acknowledged the replayed records, and the
consumer group `<app_id>-deadletter-replay` commits, per partition, the offset below which every dead
letter has been replayed. A run reads from the committed offset to the end offsets it found at start and
skips what the ledger holds, so a second run replays only dead letters that are new or that an earlier
run's filters left out. A crash between sending and writing the ledger replays those records again on
the next run: delivery stays at-least-once, and the pipeline's outputs carry stable ids.

Printing never shows a record's key or bytes (patient data): dead-letter offsets, stage, reason kind,
reason (reasons name segments and elements, never values), message id, source, time and size.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clinstream.security import kafka_client_options
from clinstream.settings import Settings

# the headers streams/app.py dead_letter() adds; every other header of a dead letter is the original record's
DEAD_LETTER_HEADERS = ("clinstream.stage", "clinstream.reason", "clinstream.error", "clinstream.source.topic",
                       "clinstream.source.partition", "clinstream.source.offset", "clinstream.failed_at", "clinstream.message_id")
REPLAYED_FROM = "clinstream.replayed_from"


def parse_time(text: str) -> datetime:
    """ISO 8601; without an offset it is UTC."""
    at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", "replace")
        return None

    @property
    def reason_kind(self) -> str:
        return self.header("clinstream.error") or "?"

    @property
    def failed_at(self) -> datetime | None:
        text = self.header("clinstream.failed_at")
        try:
            return parse_time(text) if text else None
        except ValueError:
            return None

    @property
    def address(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The original record's headers, and where this replay comes from."""
        kept = [(k, v) for k, v in self.headers if k not in DEAD_LETTER_HEADERS and k != REPLAYED_FROM]
        return [*kept, (REPLAYED_FROM, self.address.encode())]

    def describe(self) -> dict[str, Any]:
        """What may be printed: no key, no bytes."""
        return {"dead_letter": f"{self.partition}/{self.offset}", "stage": self.header("clinstream.stage"),
                "reason_kind": self.reason_kind, "reason": self.header("clinstream.reason"),
                "message_id": self.header("clinstream.message_id"), "to": self.header("clinstream.source.topic"),
                "source": "/".join(str(self.header(f"clinstream.source.{n}")) for n in ("topic", "partition", "offset")),
                "failed_at": self.header("clinstream.failed_at"), "bytes": len(self.value or b"")}


@dataclass(frozen=True)
class Filters:
    """A dead letter is replayed when it passes every filter given: its reason kind (`clinstream.error`)
    is one of `reason_kinds`, `since` <= `clinstream.failed_at` < `until`, its `clinstream.message_id` is
    one of `message_ids`."""

    reason_kinds: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    message_ids: frozenset[str] = frozenset()

    def matches(self, dl: DeadLetter) -> bool:
        if self.reason_kinds and dl.reason_kind not in self.reason_kinds:
            return False
        if self.message_ids and dl.header("clinstream.message_id") not in self.message_ids:
            return False
        if self.since or self.until:
            at = dl.failed_at
            if at is None or (self.since and at < self.since) or (self.until and at >= self.until):
                return False
        return True


@dataclass
class Report:
    dry_run: bool
    scanned: int = 0
    already_replayed: int = 0
    not_matching: int = 0
    unreplayable: int = 0  # no source topic header or no value: nothing to send
    selected: list[DeadLetter] = field(default_factory=list)
    committed: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "scanned": self.scanned, ("would_replay" if self.dry_run else "replayed"): len(self.selected),
                "already_replayed": self.already_replayed, "not_matching": self.not_matching, "unreplayable": self.unreplayable,
                "by_reason_kind": dict(sorted(Counter(d.reason_kind for d in self.selected).items())),
                "committed": {str(p): o for p, o in sorted(self.committed.items())}}


def group_id(settings: Settings) -> str:
    return f"{settings.app_id}-deadletter-replay"


def _read_to_end(consumer: Any, tps: list[Any], start: dict[Any, int], end: dict[Any, int], timeout_s: float) -> list[Any]:
    """Every record of `tps` from `start` up to (not including) `end`."""
    for tp in tps:
        consumer.seek(tp, start[tp])
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while any(consumer.position(tp) < end[tp] for tp in tps):
        if time.monotonic() > deadline:
            raise TimeoutError("could not read the dead-letter topic to its end in time")
        for tp, batch in consumer.poll(timeout_ms=500, max_records=2000).items():
            records += [r for r in batch if r.offset < end[tp]]
    return records


def _partitions(consumer: Any, name: str) -> list[Any]:
    from kafka import TopicPartition

    return [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]


def read_ledger(settings: Settings, timeout_s: float = 60.0) -> set[tuple[int, int]]:
    """(partition, offset) of every dead letter already replayed."""
    from kafka import KafkaConsumer

    from streams.topics import DEADLETTER_REPLAYED, topic_name

    consumer = KafkaConsumer(**kafka_client_options(settings), enable_auto_commit=False)
    try:
        tps = _partitions(consumer, topic_name(DEADLETTER_REPLAYED, settings))
        if not tps:
            return set()
        consumer.assign(tps)
        records = _read_to_end(consumer, tps, consumer.beginning_offsets(tps), consumer.end_offsets(tps), timeout_s)
    finally:
        consumer.close()
    done = set()
    for r in records:
        partition, _, offset = (r.key or b"").decode().partition("/")
        if partition.isdigit() and offset.isdigit():
            done.add((int(partition), int(offset)))
    return done


def replay(settings: Settings, filters: Filters = Filters(), *, dry_run: bool = False, timeout_s: float = 120.0,
           emit: Callable[[dict[str, Any]], None] | None = None) -> Report:
    """Replay the dead letters that pass `filters` and were not replayed before; `emit` gets each one's
    `describe()` (plus where it went). A dry run sends, writes and commits nothing."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata

    from streams.topics import DEADLETTER, DEADLETTER_REPLAYED, ensure_topics, topic_name

    if not dry_run:
        ensure_topics(settings)  # the ledger topic, on a deployment whose topics predate it
    name = topic_name(DEADLETTER, settings)
    report = Report(dry_run=dry_run)
    ledger = read_ledger(settings, timeout_s)
    consumer = KafkaConsumer(**kafka_client_options(settings), group_id=group_id(settings), enable_auto_commit=False,
                             max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
    try:
        tps = _partitions(consumer, name)
        if not tps:
            return report
        consumer.assign(tps)
        first, end = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        start = {tp: max(first[tp], consumer.committed(tp) or 0) for tp in tps}
        records = _read_to_end(consumer, tps, start, end, timeout_s)
        handled: set[tuple[int, int]] = set()
        for r in records:
            report.scanned += 1
            dl = DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
            if (r.partition, r.offset) in ledger:
                report.already_replayed += 1
                handled.add((r.partition, r.offset))
            elif not filters.matches(dl):
                report.not_matching += 1
            elif r.value is None or not dl.header("clinstream.source.topic"):
                report.unreplayable += 1
            else:
                report.selected.append(dl)
        if dry_run:
            for dl in report.selected:
                if emit:
                    emit(dl.describe())
            return report

        producer = KafkaProducer(**kafka_client_options(settings), acks="all", linger_ms=5, max_request_size=16 * 1024 * 1024)
        try:
            sent = [(dl, producer.send(dl.header("clinstream.source.topic"), key=dl.key, value=dl.value, headers=dl.replay_headers()))
                    for dl in report.selected]
            producer.flush()
            landed = [(dl, future.get(timeout=timeout_s)) for dl, future in sent]  # raises on a failed send: nothing goes on the ledger
            now = datetime.now(UTC).isoformat(timespec="milliseconds")
            ledger_name = topic_name(DEADLETTER_REPLAYED, settings)
            acks = []
            for dl, meta in landed:
                to = f"{meta.topic}/{meta.partition}/{meta.offset}"
                entry = {"dead_letter": dl.address, "to": to, "replayed_at": now, "reason_kind": dl.reason_kind,
                         "message_id": dl.header("clinstream.message_id")}
                acks.append(producer.send(ledger_name, key=f"{dl.partition}/{dl.offset}".encode(), value=json.dumps(entry).encode()))
                if emit:
                    emit({**dl.describe(), "replayed_to": to})
            producer.flush()
            for ack in acks:
                ack.get(timeout=timeout_s)
        finally:
            producer.close()
        handled |= {(dl.partition, dl.offset) for dl in report.selected}

        # the group's offset moves up to the first dead letter not replayed (left out by a filter, or unreplayable)
        by_partition: dict[int, list[int]] = {}
        for r in records:
            by_partition.setdefault(r.partition, []).append(r.offset)
        commits = {}
        for tp in tps:
            upto = end[tp]
            for offset in sorted(by_partition.get(tp.partition, [])):
                if (tp.partition, offset) not in handled:
                    upto = offset
                    break
            if upto > start[tp]:
                commits[tp] = OffsetAndMetadata(upto, "", -1)
            report.committed[tp.partition] = max(upto, start[tp])
        if commits:
            consumer.commit(commits)
        return report
    finally:
        consumer.close()
