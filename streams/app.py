"""The faust app of one stage, and the delivery and dead-letter helpers its agents share."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import structlog

from clinstream.deadletter import DEAD_LETTER_HEADERS
from clinstream.security import faust_broker_credentials
from clinstream.settings import Settings
from streams import metrics
from streams.topics import TopicSpec, topic_name

log = structlog.get_logger()


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def iso_from_epoch(seconds: float | None) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds") if seconds else now_iso()


def make_app(settings: Settings, stage: str) -> faust.App:
    """One consumer group per stage, so each stage scales by starting more processes of it."""
    datadir = settings.state_dir / "faust" / stage
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.app_id}-{stage}",
        broker=f"kafka://{settings.bootstrap}",
        # TLS / SASL from the settings (clinstream.security); None for PLAINTEXT
        broker_credentials=faust_broker_credentials(settings),
        # raw bytes in and out: a record that fails to deserialize would stop a take() agent silently
        # (FIELD-NOTES 4), so agents decode themselves and dead-letter what they cannot read.
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # envelopes are 5-20 KB: at the default 16 KB a batch holds one record, and each send waits for
        # the previous batch of its partition to reach the broker (measured: 2.5-3 ms per record)
        producer_max_batch_size=512 * 1024,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka_session_timeout_s,  # heartbeats every 3 s (faust's default)
        stream_wait_empty=True,
    )

    @app.on_partitions_assigned.connect
    async def log_assignment(sender: Any, assigned: Any, **kwargs: Any) -> None:
        # the runner waits for this line: records published before it would wait out the join
        log.info("partitions assigned", stage=stage, partitions=len(assigned))

    return app


def raw_topic(app: faust.App, settings: Settings, *specs: TopicSpec) -> Any:
    return app.topic(*(topic_name(s, settings) for s in specs), key_serializer="raw", value_serializer="raw")


@dataclass
class Outgoing:
    topic: Any
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def original_headers(message: Any) -> list[tuple[str, bytes]]:
    """The record's own headers (faust hands over a list of pairs or a mapping), without dead-letter ones."""
    headers = message.headers or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    return [(k, v if isinstance(v, bytes) else b"" if v is None else str(v).encode()) for k, v in pairs if k not in DEAD_LETTER_HEADERS]


def dead_letter(topic: Any, message: Any, *, stage: str, reason: str, kind: str, message_id: str | None = None) -> Outgoing:
    """The original bytes, key and headers, with headers saying what failed where: enough to replay it
    later (`clinstream deadletter replay`). A replayed record that fails again keeps its
    `clinstream.replayed_from` header among the original ones."""
    metrics.DEAD_LETTERS.labels(stage, kind).inc()
    headers = [
        *original_headers(message),
        ("clinstream.stage", stage.encode()),
        ("clinstream.reason", reason.encode()),
        ("clinstream.error", kind.encode()),
        ("clinstream.source.topic", message.topic.encode()),
        ("clinstream.source.partition", str(message.partition).encode()),
        ("clinstream.source.offset", str(message.offset).encode()),
        ("clinstream.failed_at", now_iso().encode()),
    ]
    if message_id:
        headers.append(("clinstream.message_id", message_id.encode()))
    return Outgoing(topic, message.key, message.value or b"", headers)


async def deliver(outgoing: list[Outgoing]) -> None:
    """Send everything and wait until the broker has it. Failures are retried with backoff, never
    dropped: the caller acks its input only after this returns (at-least-once)."""
    pending, delay = outgoing, 0.2
    while pending:
        sent: list[tuple[Outgoing, Any]] = []
        failed: list[Outgoing] = []
        for item in pending:
            try:
                # straight to the app's producer: faust's Topic.send adds several ms of bookkeeping per record
                producer = item.topic.app.producer
                sent.append((item, await producer.send(item.topic.get_topic_name(), item.key, item.value, None, None, item.headers or None)))
            except Exception:  # noqa: BLE001 - retried below
                failed.append(item)
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        failed += [item for (item, _), result in zip(sent, results) if isinstance(result, BaseException)]
        if failed:
            log.warning("delivery failed, retrying", count=len(failed), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        pending = failed
