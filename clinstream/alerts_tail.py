"""`clinstream alerts tail`: follow the alerts topic and print each alert for a person at a terminal.

`format_alert` is pure (an alert dict in, a rich Text out) so it is tested without Kafka; `tail` is the
consumer loop. The consumer has no group: it commits nothing and starts at the end offsets (or the earliest
with `from_beginning`). Delivery is at-least-once, so a replayed alert arrives again with the same
`alert_id`; `RecentIds` drops those. Patient keys are printed (that is the command's point) but never logged.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from rich.text import Text

from clinstream.security import kafka_client_options
from clinstream.settings import Settings
from streams import topics

log = structlog.get_logger("clinstream.alerts_tail")

# NEWS2 convention (RCP 2017 chart): high red, medium orange, low-medium yellow. A raised alert whose band is
# low or unknown (an NLP flag for a patient without vital signs) is bold in the terminal's own colour.
BAND_COLOUR = {"high": "red", "medium": "dark_orange", "low-medium": "yellow"}
RESOLVED_STYLE = "bold green"
NEWS2_FLAG_BAND = {"news2_high": "high", "news2_medium": "medium", "news2_low_medium": "low-medium"}
SCORE_NAME = {"news2": "NEWS2", "qsofa": "qSOFA", "sirs": "SIRS"}


def header_style(alert: Mapping[str, Any]) -> str:
    if alert.get("kind") == "resolved":
        return RESOLVED_STYLE
    band = alert.get("band") or NEWS2_FLAG_BAND.get(str(alert.get("flag")))
    return f"bold {BAND_COLOUR[band]}" if band in BAND_COLOUR else "bold"


def format_alert(alert: Mapping[str, Any]) -> Text:
    """One alert as rich Text: a coloured header line (RAISED in the NEWS2 band's colour, RESOLVED green) with
    the flag, episode, patient key, score and band, and observation time; the evidence lines indented; and a
    warning naming the score inputs that were missing or stale. Built from Text parts, never markup, so
    brackets in evidence print as they are."""
    kind = str(alert.get("kind", "?"))
    text = Text()
    text.append(kind.upper(), style=header_style(alert))
    text.append(f" {alert.get('flag', '?')}", style="bold")
    if alert.get("episode") is not None:
        text.append(f"  episode {alert['episode']}")
    text.append("  patient ")
    text.append(str(alert.get("patient_key") or "unknown"), style="bold")
    score, band = alert.get("score"), alert.get("band")
    if score is not None:
        text.append(f"  {SCORE_NAME.get(str(alert.get('source')), str(alert.get('source', 'score')))} {score}")
    if band:
        text.append(f"  band {band}", style=BAND_COLOUR.get(str(band), ""))
    text.append(f"  observed {alert.get('observed_at', '?')}", style="dim")
    if alert.get("shadow"):
        text.append("  (shadow)", style="dim")
    for line in alert.get("evidence") or []:
        text.append(f"\n    {line}")
    missing, stale = list(alert.get("missing") or []), list(alert.get("stale") or [])
    if missing or stale:
        gaps = ([f"{', '.join(missing)} (missing)"] if missing else []) + ([f"{', '.join(stale)} (stale)"] if stale else [])
        text.append("\n    ! score computed without: " + "; ".join(gaps), style="yellow")
    return text


class RecentIds:
    """The last `size` alert ids seen, oldest forgotten first: `seen(id)` says whether id came before (and remembers it)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, alert_id: str) -> bool:
        if alert_id in self._ids:
            self._ids.move_to_end(alert_id)
            return True
        self._ids[alert_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._ids)


def matches(alert: Mapping[str, Any], patients: Sequence[str] = (), flags: Sequence[str] = ()) -> bool:
    """Patient keys match exactly; flags as names or shell patterns (`news2_*`). An empty filter matches all."""
    if patients and alert.get("patient_key") not in patients:
        return False
    return not flags or any(fnmatch.fnmatchcase(str(alert.get("flag", "")), f) for f in flags)


@dataclass
class TailCounts:
    shown: int = 0
    duplicates: int = 0
    filtered: int = 0
    unreadable: int = 0


class TopicMissing(Exception):
    pass


def tail(
    settings: Settings, show: Callable[[dict[str, Any], str], None], *, from_beginning: bool = False, follow: bool = True,
    patients: Sequence[str] = (), flags: Sequence[str] = (), dedup_size: int = 10_000, poll_ms: int = 500,
) -> TailCounts:
    """Read the alerts topic and call `show(alert, raw_json)` for each new alert that passes the filters.

    Without `follow`, returns once every partition has reached the end offset it had at the start. Ctrl-C
    or SIGTERM ends the loop after the current poll; the consumer is closed either way."""
    from kafka import KafkaConsumer, TopicPartition

    # kafka-python's own DEBUG lines dump fetched record bytes, patient keys included: keep it at WARNING
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLogger("kafka").getEffectiveLevel()))
    name = topics.topic_name(topics.ALERTS, settings)
    consumer = KafkaConsumer(**kafka_client_options(settings), group_id=None, enable_auto_commit=False,
                             allow_auto_create_topics=False, isolation_level="read_committed", client_id="clinstream-alerts-tail")
    counts, recent = TailCounts(), RecentIds(dedup_size)
    # Ctrl-C sets a flag the loop reads between polls: a KeyboardInterrupt raised wherever kafka-python happened
    # to be could leave its client mid-request, and close() then hung (seen once in CI: no exit 30 s after SIGINT)
    stopping = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, lambda signum, frame: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        partitions = consumer.partitions_for_topic(name)
        if not partitions:
            raise TopicMissing(f"topic {name} does not exist (run `clinstream topics`)")
        parts = [TopicPartition(name, p) for p in sorted(partitions)]
        consumer.assign(parts)
        if from_beginning:
            consumer.seek_to_beginning(*parts)
        else:
            consumer.seek_to_end(*parts)
        ends = consumer.end_offsets(parts)
        for tp in parts:
            consumer.position(tp)  # resolve the start now: an alert published after the log line below is read
        log.debug("alerts tail started", topic=name, partitions=len(parts), from_beginning=from_beginning, follow=follow,
                  patient_filter=bool(patients), flags=list(flags))
        while not stopping.is_set() and (follow or any(consumer.position(tp) < ends[tp] for tp in parts)):
            for records in consumer.poll(timeout_ms=poll_ms).values():
                for record in records:
                    raw = record.value.decode("utf-8", "replace") if record.value is not None else ""
                    try:
                        alert = json.loads(raw)
                        if not isinstance(alert, dict):
                            raise ValueError("not a JSON object")
                    except ValueError:
                        counts.unreadable += 1
                        log.warning("unreadable alert record", topic=record.topic, partition=record.partition, offset=record.offset)
                        continue
                    if not matches(alert, patients, flags):
                        counts.filtered += 1
                        continue
                    alert_id = alert.get("alert_id")
                    if isinstance(alert_id, str) and recent.seen(alert_id):
                        counts.duplicates += 1
                        continue
                    counts.shown += 1
                    show(alert, raw)
    except KeyboardInterrupt:  # no handler of ours outside the main thread
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        consumer.close()
    log.debug("alerts tail stopped", shown=counts.shown, duplicates=counts.duplicates, filtered=counts.filtered,
              unreadable=counts.unreadable)
    return counts
