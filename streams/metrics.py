"""The stages' Prometheus metrics, in one registry that each stage process serves on /metrics (streams/ops.py).

Labels are bounded sets only: stage, topic, partition, direction, dead-letter kind, Redis operation, model step,
alert flag and kind, model task/name/version, dependency, HL7 segment id. Never a patient key, a message id or any text from a
message: a label value is a time series for as long as Prometheus keeps it.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics

# the *_created series (one timestamp per label set) only double the series count; nothing here reads them
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds...

MESSAGES = Counter("clinstream_messages", "Records a stage read from (direction=in) or delivered to (direction=out) a topic",
                   ["stage", "direction", "topic"], registry=REGISTRY)
DEAD_LETTERS = Counter("clinstream_dead_letters", "Records sent to the dead-letter topic, by the kind of failure (the "
                       "clinstream.error header)", ["stage", "kind"], registry=REGISTRY)
BATCH_SIZE = Histogram("clinstream_batch_size", "Records per micro-batch taken from the stream", ["stage"], registry=REGISTRY,
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
BATCH_SECONDS = Histogram("clinstream_batch_seconds", "Time to handle one micro-batch, outputs acknowledged included",
                          ["stage"], registry=REGISTRY,
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
INFERENCE_SECONDS = Histogram("clinstream_inference_seconds", "Time of one model pass over a batch, by step (ner, "
                              "note_classifier, icd10cm)", ["step"], registry=REGISTRY,
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
END_TO_END_SECONDS = Histogram("clinstream_end_to_end_seconds", "Inbound record time (received_at) to enrichment "
                               "(enriched_at), per enriched message", registry=REGISTRY,
                               buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
CONSUMER_LAG = Gauge("clinstream_consumer_lag", "Records on an assigned partition not yet committed by the stage's group: "
                     "end offset minus committed offset (the fetch position before the group's first commit)",
                     ["stage", "topic", "partition"], registry=REGISTRY)
REDIS_ERRORS = Counter("clinstream_redis_errors", "Failed Redis operations of the inference worker (each retried until it "
                       "succeeds)", ["operation"], registry=REGISTRY)
UNMAPPED = Counter("clinstream_unmapped", "What HL7 v2 messages carried that no mapper took, kept in the Bundle as "
                   "MessageHeader extensions: segments kept verbatim (kind=segment) and fields of mapped segments no mapper "
                   "read (kind=field), by segment id", ["kind", "segment"], registry=REGISTRY)
ALERTS = Counter("clinstream_alerts", "Alert events by flag: raised and resolved (published on the alerts topic), "
                 "suppressed (raised but not alerted: a repeat inside the period, or a NEWS2 band not above one "
                 "already alerted)", ["flag", "kind"], registry=REGISTRY)
MODEL_INFO = Gauge("clinstream_model_info", "1 for each model the inference worker has loaded", ["task", "name", "version"],
                   registry=REGISTRY)
DEPENDENCY_UP = Gauge("clinstream_dependency_up", "1 while the stage's last probe of a dependency (kafka, redis) answered",
                      ["stage", "dependency"], registry=REGISTRY)
READY = Gauge("clinstream_ready", "1 while the stage consumes and its dependencies answer (what /ready says)", ["stage"],
              registry=REGISTRY)

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "summary": ("_sum", "_count", ""),
            "info": ("_info",)}


def exported_names(registry: CollectorRegistry = REGISTRY) -> set[str]:
    """Every series name the registry can export, whether or not a label set has been observed yet."""
    names = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def count_in(stage: str, topic: str, n: int = 1) -> None:
    MESSAGES.labels(stage, "in", topic).inc(n)


def count_unmapped(segments: list[str], fields: list[str]) -> None:
    """The envelope's unmapped_segments and unmapped_fields ("PV1-52"), counted by segment id: the parser admits only
    ids of three letters and digits, so the label is bounded, and it names structure, never content."""
    for segment in segments:
        UNMAPPED.labels("segment", segment).inc()
    for name in fields:
        UNMAPPED.labels("field", name.partition("-")[0]).inc()


def count_out(stage: str, topics: list[str]) -> None:
    """After delivery: one count per record, by the topic it went to."""
    for topic in topics:
        MESSAGES.labels(stage, "out", topic).inc()


def observe_end_to_end(received_at: str | None, enriched_at: str | None) -> None:
    if not received_at or not enriched_at:
        return
    try:
        seconds = (datetime.fromisoformat(enriched_at) - datetime.fromisoformat(received_at)).total_seconds()
    except ValueError:
        return
    END_TO_END_SECONDS.observe(max(seconds, 0.0))


def lag(end_offsets: dict[tuple[str, int], int], committed: dict[tuple[str, int], int | None],
        positions: dict[tuple[str, int], int | None]) -> dict[tuple[str, int], int]:
    """Per (topic, partition): end offset minus the group's committed offset (the next offset a restarted consumer
    would read); before the group's first commit on a partition, minus the fetch position; unknown: left out."""
    out = {}
    for tp, end in end_offsets.items():
        at = committed.get(tp)
        if at is None:
            at = positions.get(tp)
        if at is not None and end is not None:
            out[tp] = max(end - at, 0)
    return out


def set_lag(stage: str, lags: dict[tuple[str, int], int]) -> None:
    """Replace the stage's lag series: a partition revoked by a rebalance stops being reported by this process."""
    CONSUMER_LAG.clear()
    for (topic, partition), value in lags.items():
        CONSUMER_LAG.labels(stage, topic, str(partition)).set(value)
