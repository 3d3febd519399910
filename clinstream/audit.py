"""The delivery audit: what went in against what came out, after a fault (tests/faults/). Pure.

Inbound: the feed (valid and malformed messages, with the generator's expected alerts and final
states). Out: the enriched, dead-letter and alert records read back from Kafka, and the Redis board.
Delivery is at-least-once with stable ids, so a duplicate record is counted but only a *distinct*
event counted twice (two alert ids for one patient, flag, episode and kind) is a failure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any


def audit(feed: Any, enriched: Iterable[Mapping[str, Any]], deadletter: Iterable[tuple[bytes, Mapping[str, str]]],
          alerts: Iterable[Mapping[str, Any]], redis_state: Mapping[str, Mapping[str, Any]],
          poison: Iterable[str] = ()) -> dict[str, Any]:
    """One row of figures; `ok` is True when nothing valid is missing, nothing is dead-lettered that should not
    be, no alert event has two ids, the alerts are the expected ones, and Redis holds the expected states.
    `poison`: message ids the fault made fail on purpose (expected on the dead-letter topic, not enriched)."""
    poison = set(poison)
    valid = [m for m in feed.messages if m.valid]
    expected_ids = {m.message_id for m in valid} - poison
    seen = Counter(e["message_id"] for e in enriched)
    dead = list(deadletter)
    dead_values = Counter(value for value, _ in dead)
    malformed = Counter(m.value for m in feed.messages if not m.valid)
    dead_ids = {h.get("clinstream.message_id") for _, h in dead}
    valid_values = {m.value: m.message_id for m in valid}
    wrongly_dead = {valid_values[v] for v in dead_values if v in valid_values} - poison

    alert_list = list(alerts)
    ids_per_event: dict[tuple, set[str]] = {}
    for a in alert_list:
        ids_per_event.setdefault((a["patient_key"], a["flag"], a["episode"], a["kind"]), set()).add(a["alert_id"])
    fired = {(a["message_id"], a["kind"], a["flag"], a["episode"]) for a in alert_list}
    expected_alerts = {(m.message_id, *event) for m in valid if m.message_id not in poison for event in m.expected_alerts}
    poisoned_patients = {m.key for m in valid if m.message_id in poison}
    state_mismatch = []
    for key, want in feed.expected_state.items():
        if key in poisoned_patients:
            continue
        got = redis_state.get(key)
        if got is None or (got.get("band") or None, got.get("score"), got.get("flags")) != (want["band"], want["score"], want["flags"]):
            state_mismatch.append(key)

    row = {
        "valid_in": len(valid),
        "malformed_in": sum(malformed.values()),
        "enriched_distinct": len(set(seen) & expected_ids),
        "enriched_records": sum(seen.values()),
        "duplicates_deduped": sum(n - 1 for n in seen.values() if n > 1),
        "missing": len(expected_ids - set(seen)),
        "dead_lettered_malformed": sum(min(dead_values[v], n) for v, n in malformed.items()),
        "malformed_missing": sum(max(0, n - dead_values[v]) for v, n in malformed.items()),
        "valid_dead_lettered": len(wrongly_dead),
        "poison_dead_lettered": len(poison & (dead_ids | {valid_values.get(v) for v in dead_values})),
        "poison_enriched": len(poison & set(seen)),
        "alert_records": len(alert_list),
        "alerts_distinct": len(ids_per_event),
        "alert_events_with_two_ids": sum(1 for ids in ids_per_event.values() if len(ids) > 1),
        "alerts_expected": len(expected_alerts),
        "alerts_missing": len(expected_alerts - fired),
        "alerts_unexpected": len(fired - expected_alerts - {f for f in fired if f[0] in poison}),
        "redis_states_checked": len(feed.expected_state) - len(poisoned_patients & set(feed.expected_state)),
        "redis_state_mismatches": len(state_mismatch),
    }
    row["examples"] = {  # a few of each problem, by message id and patient key (synthetic data), for the failure message
        "missing": sorted(expected_ids - set(seen))[:5],
        "alerts_missing": sorted(expected_alerts - fired)[:5],
        "alerts_unexpected": sorted(fired - expected_alerts)[:5],
        "redis_state_mismatches": [(k, feed.expected_state[k], redis_state.get(k)) for k in state_mismatch[:5]],
    }
    row["ok"] = not (row["missing"] or row["malformed_missing"] or row["valid_dead_lettered"] or row["alert_events_with_two_ids"]
                     or row["alerts_missing"] or row["alerts_unexpected"] or row["redis_state_mismatches"]
                     or row["poison_enriched"] or row["poison_dead_lettered"] != len(poison))
    return row
