"""Writes the inference worker's dashboard keys by hand, per the documented schema (streams/dashboard.py),
for the dashboard tests: the board, each patient's risk hash with its summary, the score history and alerts."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import redis

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def rank(score: int | None, flags: list[str]) -> float:
    """NEWS2 total (0 when none) + min(active non-NEWS2 flags, 9) / 10."""
    others = sum(1 for f in flags if not f.startswith("news2_"))
    return (score or 0) + min(others, 9) / 10


def iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def put_patient(r: redis.Redis, prefix: str, patient_key: str, *, score: int | None, band: str | None,
                flags: list[str], history: list[int] = (), evidence: dict[str, list[str]] | None = None,
                missing: list[str] = (), stale: list[str] = (), qsofa: int | None = None, sirs: int | None = None,
                at: datetime = T0) -> float:
    """One patient as the worker leaves it: `history` is the earlier NEWS2 totals, oldest first, an hour apart
    and ending one hour before `at`; the current score is added to it. Returns the rank written to the board."""
    summary = {"score": score, "band": band, "flags": list(flags), "evidence": evidence or {}, "missing": list(missing),
               "stale": list(stale), "qsofa": qsofa, "sirs": sirs, "time": iso(at)}
    r.hset(f"{prefix}:risk:{patient_key}", mapping={
        "score": "" if score is None else score, "band": band or "", "flags": json.dumps(list(flags)), "time": iso(at),
        "message_id": uuid.uuid4().hex, "state": "{}", "summary": json.dumps(summary),
    })
    r.expire(f"{prefix}:risk:{patient_key}", 3600)
    points = [(at - timedelta(hours=len(history) - i), s) for i, s in enumerate(history)]
    if score is not None:
        points.append((at, score))
    for when, s in points:
        add_history(r, prefix, patient_key, when, s, band_of(s))
    value = rank(score, flags)
    r.zadd(f"{prefix}:board", {patient_key: value})
    return value


def band_of(score: int) -> str:
    # total only (a red score in one parameter makes low-medium; the tests pass that band explicitly)
    return "high" if score >= 7 else "medium" if score >= 5 else "low"


def add_history(r: redis.Redis, prefix: str, patient_key: str, at: datetime, score: int, band: str) -> None:
    member = json.dumps({"at": iso(at), "band": band, "message_id": uuid.uuid4().hex, "score": score}, sort_keys=True)
    r.zadd(f"{prefix}:history:{patient_key}", {member: at.timestamp()})
    r.zremrangebyrank(f"{prefix}:history:{patient_key}", 0, -49)


def alert(patient_key: str, flag: str, *, kind: str = "raised", source: str = "news2", score: int | None = None,
          band: str | None = None, at: datetime = T0) -> dict:
    return {"alert_id": uuid.uuid4().hex, "kind": kind, "patient_key": patient_key, "flag": flag, "source": source,
            "episode": 1, "message_id": uuid.uuid4().hex, "observed_at": iso(at), "raised_at": iso(datetime.now(UTC)),
            "score": score, "band": band, "components": {}, "evidence": [], "missing": [], "stale": [], "resources": [],
            "schema_version": 3}


def add_alert(r: redis.Redis, prefix: str, body: dict) -> str:
    entry_id = r.xadd(f"{prefix}:alerts", {"alert": json.dumps(body)}, maxlen=1000, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def clear(r: redis.Redis, prefix: str) -> None:
    keys = list(r.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        r.delete(*keys)
