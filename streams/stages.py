"""The two stages as faust apps: the normalizer and the inference worker.

Both read with `take_events` (micro-batches), handle each record inside the batch in its own try/except
(an escaping exception would still ack the whole batch, FIELD-NOTES 1), and return to the stream for the
next batch only after every output of this one is acknowledged by the broker (and Redis, for the
worker): offsets move only past records whose outputs exist. Delivery is at-least-once; outputs carry
stable ids (message id, alert id) for consumers to de-duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
import structlog

from clinstream.envelope import Envelope, ModelRef, SourceRecord
from clinstream.exceptions import RejectedMessage
from clinstream.security import redis_options
from clinstream.settings import Settings
from fhir_mappers.senders import load_overrides
from processors.diagnoses import mentions_to_code, with_diagnoses
from processors.enrich import texts_of, with_entities, with_note_labels, with_risk
from processors.normalize import normalize, peek_message_id
from processors.risk import PatientState, RiskConfig, scored_news2
from streams import metrics, ops, topics
from streams.app import Outgoing, dead_letter, deliver, iso_from_epoch, make_app, now_iso, raw_topic

log = structlog.get_logger()


def _key(env: Envelope) -> bytes:
    return (env.patient_key or env.message_id).encode()


def _delivered(stage: str, out: list[Outgoing], started: float) -> None:
    """Metrics of a batch whose outputs the broker has: records out by topic, and the batch's time."""
    metrics.count_out(stage, [o.topic.get_topic_name() for o in out])
    metrics.BATCH_SECONDS.labels(stage).observe(time.perf_counter() - started)


def build_normalizer(settings: Settings) -> faust.App:
    app = make_app(settings, "normalizer")
    health = ops.install(app, settings, "normalizer")  # /metrics, /health, /ready on metrics_port_normalizer
    inbound = raw_topic(app, settings, topics.INBOUND_HL7V2, topics.INBOUND_FHIR)
    normalized = raw_topic(app, settings, topics.NORMALIZED)
    deadletter = raw_topic(app, settings, topics.DEADLETTER)
    hl7_topic = topics.topic_name(topics.INBOUND_HL7V2, settings)
    # read and checked once, before consuming: a broken file stops the stage at start with its error,
    # rather than every message being mapped without the sender's overrides
    overrides = load_overrides(settings.sender_overrides) if settings.sender_overrides else None
    if overrides is not None:
        log.info("sender overrides loaded", stage="normalizer", senders=len(overrides.senders), default=overrides.default is not None)

    @app.agent(inbound, concurrency=1)
    async def normalize_agent(stream: Any) -> None:
        log.info("stage ready", stage="normalizer")
        health.consuming = True
        async for events in stream.take_events(256, within=settings.batch_max_wait_s):
            started = time.perf_counter()
            metrics.BATCH_SIZE.labels("normalizer").observe(len(events))
            out: list[Outgoing] = []
            for event in events:
                msg = event.message
                metrics.count_in("normalizer", msg.topic)
                source_format = "hl7v2" if msg.topic == hl7_topic else "fhir"
                try:
                    env = normalize(
                        msg.value or b"", source_format,
                        source=SourceRecord(topic=msg.topic, partition=msg.partition, offset=msg.offset),
                        received_at=iso_from_epoch(msg.timestamp), normalized_at=now_iso(),
                        max_bytes=settings.max_message_bytes, max_segments=settings.max_segments,
                        max_text_chars=settings.max_text_chars, overrides=overrides,
                    )
                except RejectedMessage as exc:
                    mid = peek_message_id(msg.value or b"", source_format)
                    out.append(dead_letter(deadletter, msg, stage="normalizer", reason=exc.reason, kind=exc.kind, message_id=mid))
                    log.info("dead-lettered", stage="normalizer", error=exc.kind, message_id=mid, topic=msg.topic, partition=msg.partition, offset=msg.offset)
                    continue
                except Exception as exc:  # a mapper bug must not stop the stage; the message is kept
                    out.append(dead_letter(deadletter, msg, stage="normalizer", reason=f"internal error: {type(exc).__name__}", kind="internal",
                                           message_id=peek_message_id(msg.value or b"", source_format)))
                    log.error("normalizer failed on a record", error=type(exc).__name__, topic=msg.topic, partition=msg.partition, offset=msg.offset)
                    continue
                cut = [n.truncated_from for n in env.narratives if n.truncated_from]
                if cut:
                    log.info("narratives truncated for the models", stage="normalizer", message_id=env.message_id,
                             narratives=len(cut), longest_chars=max(cut), limit=settings.max_text_chars)
                metrics.count_unmapped(env.unmapped_segments, env.unmapped_fields)
                out.append(Outgoing(normalized, _key(env), env.to_json()))
            mapped = time.perf_counter()
            await deliver(out)
            _delivered("normalizer", out, started)
            log.debug("normalized batch", stage="normalizer", records=len(events), map_ms=round((mapped - started) * 1000, 1),
                      deliver_ms=round((time.perf_counter() - mapped) * 1000, 1))

    return app


# patients whose latest state the worker keeps in memory (those of its partitions, cleared on every rebalance):
# they go on being scored while Redis is down; about 5 KB each
STATE_CACHE_PATIENTS = 20_000
# input records held unacknowledged while their Redis writes wait: past this the worker waits for Redis
BACKLOG_MAX_RECORDS = 50_000


@dataclass
class PendingWrites:
    """Redis writes not yet made, and the input records whose acks wait for them: offsets move past a
    record only once its Redis writes land, so a crash meanwhile replays it (at-least-once, like Kafka)."""

    updates: dict[str, Any] = field(default_factory=dict)  # patient key -> (state, risk), the latest wins
    history: list[Any] = field(default_factory=list)
    stream: list[Any] = field(default_factory=list)
    held: list[Any] = field(default_factory=list)  # faust events, their message's refcount raised by one

    def add(self, updates: dict[str, Any], history: list[Any], stream: list[Any], events: list[Any]) -> None:
        self.updates.update(updates)
        self.history += history
        self.stream += stream
        for event in events:
            event.message.incref()  # faust acks the batch when the next one is asked for: this holds it back
            self.held.append(event)

    def absorb(self, later: PendingWrites) -> None:
        """Put writes taken out for a failed attempt back in front of those added since."""
        self.updates.update(later.updates)
        self.history += later.history
        self.stream += later.stream
        self.held += later.held


class InferenceWorker:
    """NER on a single background thread (the event loop keeps fetching and heartbeating meanwhile),
    then risk per message in order, Redis state, outputs."""

    def __init__(self, settings: Settings, health: ops.Health | None = None) -> None:
        self.settings = settings
        self.health = health or ops.Health("inference")  # what /health and /ready say (streams/ops.py)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ner")
        self.model: Any = None
        self.model_ref: ModelRef | None = None
        self.coder: Any = None  # ICD-10-CM; None when its index is not built
        self.coder_ref: ModelRef | None = None
        self.classifier: Any = None  # the site's note classifier; None unless CLINSTREAM_NOTE_CLASSIFIER is set
        self.classifier_ref: ModelRef | None = None
        self.store: Any = None
        self.cache: OrderedDict[str, PatientState] = OrderedDict()  # patient key -> latest state, least recent first
        self.pending = PendingWrites()
        self.flush_lock = asyncio.Lock()
        self.flusher: asyncio.Task[None] | None = None
        self.risk_config = RiskConfig.from_settings(settings)  # a broken critical-labs file stops the stage at start

    async def start(self) -> None:
        from processors.ner import NerModel
        from streams.riskstore import RiskStore

        loop = asyncio.get_running_loop()
        s = self.settings
        self.model = await loop.run_in_executor(self.executor, lambda: NerModel(
            s.ner_model, device=s.device, threads=s.torch_threads, precision=s.ner_precision, int8_cache=s.int8_cache_dir))
        self.model_ref = ModelRef(task="ner", name=self.model.name, version=self.model.version)
        self.coder = await loop.run_in_executor(self.executor, self._load_coder)
        if s.note_classifier is not None:
            from processors.note_classifier import TASK, NoteClassifier

            path = s.note_classifier
            self.classifier = await loop.run_in_executor(self.executor, lambda: NoteClassifier(path, device=s.device))
            self.classifier_ref = ModelRef(task=TASK, name=self.classifier.name, version=self.classifier.version)
            log.info("note classifier loaded", name=self.classifier.name, version=self.classifier.version, labels=len(self.classifier.labels))
        self.store = RiskStore(s.redis, s.redis_key_prefix, s.risk_ttl_s, s.alerts_stream_maxlen, **redis_options(s))
        self.health.checks["redis"] = self.store.redis.ping
        for ref in (self.model_ref, self.coder_ref, self.classifier_ref):
            if ref is not None:
                metrics.MODEL_INFO.labels(ref.task, ref.name, ref.version).set(1)
        log.info("inference worker ready", model=self.model.name, version=self.model.version, device=str(self.model.device),
                 precision=self.model.precision)

    def _load_coder(self) -> Any:
        from processors.icd10cm import Coder, IndexMissing

        try:
            coder = Coder.load(self.settings.icd10cm_index_dir, device=self.settings.device)
        except IndexMissing as exc:
            log.warning("ICD-10-CM coding off", reason=str(exc))
            return None
        self.coder_ref = ModelRef(task="icd10cm", name=coder.name, version=coder.version)
        return coder

    def _code(self, mentions: list[str]) -> dict[str, Any]:
        """All the batch's problem mentions in one coder pass, on the model thread."""
        if not mentions:
            return {}
        with metrics.INFERENCE_SECONDS.labels("icd10cm").time():
            return dict(zip(mentions, self.coder.code(mentions, k=self.settings.icd10cm_top_k)))

    def _predict(self, texts: list[str]) -> list[Any]:
        s = self.settings
        with metrics.INFERENCE_SECONDS.labels("ner").time():
            return self.model.predict(texts, max_batch=s.batch_max_size, token_budget=s.batch_token_budget,
                                      window=s.ner_window_tokens, stride=s.ner_window_stride)

    def _classify(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        s = self.settings
        with metrics.INFERENCE_SECONDS.labels("note_classifier").time():
            return self.classifier.predict(texts, max_batch=s.batch_max_size, token_budget=s.batch_token_budget)

    async def entities(self, envelopes: list[Envelope]) -> tuple[list[Envelope], list[tuple[Envelope, str]]]:
        """Envelopes with entities; a batch that makes the model raise is split so only the record
        at fault fails (returned with the reason)."""
        loop = asyncio.get_running_loop()
        step = "NER model"  # named in the dead-letter reason: which model failed on the record
        try:
            predictions = await loop.run_in_executor(self.executor, self._predict, texts_of(envelopes))
            enriched = with_entities(envelopes, predictions, self.model_ref)
            if self.classifier is not None:  # the same narratives, on the same model thread
                step = "note classifier"
                labels = await loop.run_in_executor(self.executor, self._classify, texts_of(envelopes))
                enriched = with_note_labels(enriched, labels, self.classifier_ref)
            if self.coder is not None:
                step = "ICD-10-CM coder"
                codes = await loop.run_in_executor(self.executor, self._code, mentions_to_code(enriched))
                enriched = [with_diagnoses(env, codes, self.coder_ref) for env in enriched]
            return enriched, []
        except Exception as exc:
            if len(envelopes) == 1:
                return [], [(envelopes[0], f"{step} failed: {type(exc).__name__}")]
        middle = len(envelopes) // 2
        left_ok, left_bad = await self.entities(envelopes[:middle])
        right_ok, right_bad = await self.entities(envelopes[middle:])
        return left_ok + right_ok, left_bad + right_bad

    async def with_retry(self, what: str, operation: Any) -> Any:
        delay = 0.2
        while True:
            try:
                result = await operation()
            except Exception as exc:  # noqa: BLE001 - Redis down: wait, never drop
                metrics.REDIS_ERRORS.labels(what).inc()
                self.health.failed(f"redis {what}", exc)  # /health says degraded until the operation goes through
                log.warning("redis unavailable, retrying", operation=what, error=type(exc).__name__, retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                self.health.ok(f"redis {what}")
                return result

    def remember(self, states: dict[str, PatientState]) -> None:
        for key, state in states.items():
            self.cache[key] = state
            self.cache.move_to_end(key)
        while len(self.cache) > STATE_CACHE_PATIENTS:
            self.cache.popitem(last=False)

    def forget(self) -> None:
        """On a rebalance: another worker may own these patients now, and every record not yet acked is
        read again from the committed offsets (faust seeks there), so its pending writes are dropped too."""
        self.cache.clear()
        self.pending = PendingWrites()

    async def flush(self) -> None:
        """Write the pending Redis writes and ack the records they held. While Redis is down the worker goes
        on enriching (patients it holds in memory) and a background task retries; past BACKLOG_MAX_RECORDS
        held records it waits here instead."""
        if await self._flush_once():
            return
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush_until_done())
        if len(self.pending.held) > BACKLOG_MAX_RECORDS:
            log.warning("redis backlog full, waiting for redis", held=len(self.pending.held))
            await self.flusher

    async def _flush_until_done(self) -> None:
        delay = 0.2
        while not await self._flush_once():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _flush_once(self) -> bool:
        async with self.flush_lock:
            taken, self.pending = self.pending, PendingWrites()
            if not (taken.updates or taken.history or taken.stream or taken.held):
                return True
            try:
                await self.store.save(taken.updates, taken.history, taken.stream)
            except Exception as exc:  # noqa: BLE001 - Redis down: kept, retried, never dropped
                metrics.REDIS_ERRORS.labels("save").inc()
                self.health.failed("redis save", exc)
                log.warning("redis unavailable, enrichment goes on", error=type(exc).__name__, held=len(taken.held) + len(self.pending.held))
                taken.absorb(self.pending)
                self.pending = taken
                return False
            for event in taken.held:
                event.ack()
            self.health.ok("redis save")
            return True

    async def process(self, events: list[Any], enriched_topic: Any, alerts_topic: Any, deadletter: Any) -> None:
        s = self.settings
        started = time.perf_counter()
        metrics.BATCH_SIZE.labels("inference").observe(len(events))
        latencies: list[tuple[str | None, str | None]] = []  # (received_at, enriched_at) per enriched message
        out: list[Outgoing] = []
        envelopes: list[Envelope] = []
        source_of: dict[int, Any] = {}  # id(envelope) -> the Kafka message it came from
        for event in events:
            msg = event.message
            metrics.count_in("inference", msg.topic)
            try:
                env = Envelope.model_validate_json(msg.value or b"")
            except ValueError:
                out.append(dead_letter(deadletter, msg, stage="inference", reason="record is not a valid clinstream envelope", kind="envelope"))
                continue
            envelopes.append(env)
            source_of[id(env)] = msg
        ok, failed = await self.entities(envelopes)
        for env, reason in failed:
            out.append(dead_letter(deadletter, source_of[id(env)], stage="inference", reason=reason, kind="model", message_id=env.message_id))
            log.warning("dead-lettered", stage="inference", message_id=env.message_id, error="model")
        keys = [e.patient_key for e in ok if e.patient_key]
        unknown = [k for k in dict.fromkeys(keys) if k not in self.cache]
        if unknown:  # a patient never seen waits for Redis: scoring without their history would be wrong
            self.remember(await self.with_retry("load", lambda: self.store.load(unknown)))
        states = {k: self.cache[k] for k in keys}
        updates, history, stream = {}, [], []
        for env in ok:
            state = states.get(env.patient_key, PatientState()) if env.patient_key else PatientState()
            enriched, alerts, new_state = with_risk(env, state, self.risk_config, now=now_iso())
            risk = enriched.risk
            if env.patient_key:
                states[env.patient_key] = new_state
                updates[env.patient_key] = (new_state, risk)
                if risk.news2 is not None and scored_news2(new_state, env.message_id):  # a point of the score's history
                    history.append((env.patient_key, risk, env.observed_at, env.message_id))
            out.append(Outgoing(enriched_topic, _key(env), enriched.to_json()))
            latencies.append((enriched.received_at, enriched.enriched_at))
            for alert in alerts:
                out.append(Outgoing(alerts_topic, _key(env), alert.model_dump_json().encode()))
                metrics.ALERTS.labels(alert.flag, alert.kind).inc()
                log.info("alert", stage="inference", message_id=env.message_id, kind=alert.kind, flag=alert.flag, episode=alert.episode)
            stream += alerts
            for flag in risk.suppressed:
                metrics.ALERTS.labels(flag, "suppressed").inc()
            if risk.suppressed:
                log.info("alerts suppressed", stage="inference", message_id=env.message_id, flags=risk.suppressed)
        # Kafka first, then Redis: a replay after a crash between the two recomputes from the old state and
        # sends the same records and alert ids again (deduplicated downstream). Saving first would let the
        # replay read the batch's own later state and miss alerts whose records never reached the broker.
        # The board's stream entries follow the state, so a dashboard woken by one finds the state current.
        scored = time.perf_counter()
        await deliver(out)
        delivered = time.perf_counter()
        self.remember({key: state for key, (state, _) in updates.items()})
        self.pending.add(updates, history, stream, events)
        await self.flush()
        saved = time.perf_counter()
        _delivered("inference", out, started)
        for received_at, enriched_at in latencies:
            metrics.observe_end_to_end(received_at, enriched_at)
        log.debug("enriched batch", stage="inference", records=len(events), texts=sum(len(e.narratives) for e in ok),
                  work_ms=round((scored - started) * 1000, 1), deliver_ms=round((delivered - scored) * 1000, 1),
                  redis_ms=round((saved - delivered) * 1000, 1))


def build_inference(settings: Settings) -> faust.App:
    app = make_app(settings, "inference")
    normalized = raw_topic(app, settings, topics.NORMALIZED)
    enriched = raw_topic(app, settings, topics.ENRICHED)
    alerts = raw_topic(app, settings, topics.ALERTS)
    deadletter = raw_topic(app, settings, topics.DEADLETTER)
    worker = InferenceWorker(settings, ops.install(app, settings, "inference"))  # on metrics_port_inference

    @app.on_partitions_revoked.connect
    async def drop_patients(sender: Any, revoked: Any, **kwargs: Any) -> None:
        worker.forget()

    @app.on_partitions_assigned.connect
    async def start_afresh(sender: Any, assigned: Any, **kwargs: Any) -> None:
        worker.cache.clear()  # a batch that straddled the revocation may have remembered a patient it no longer owns

    # concurrency stays 1: with more, faust can commit past a record still in flight (FIELD-NOTES 3);
    # scale by running more worker processes in the consumer group instead.
    @app.agent(normalized, concurrency=1)
    async def inference_agent(stream: Any) -> None:
        if worker.model is None:
            await worker.start()
        log.info("stage ready", stage="inference")
        worker.health.consuming = True
        async for events in stream.take_events(settings.batch_max_size, within=settings.batch_max_wait_s):
            await worker.process(list(events), enriched, alerts, deadletter)

    return app


STAGES = {"normalizer": build_normalizer, "inference": build_inference}
