"""Redis: the risk board. Every write is idempotent, so a replayed batch changes nothing.

Key schema (P = settings.redis_key_prefix, default "clinstream"):
  P:risk:<patient key>     hash   score (NEWS2 total or ""), band, flags (JSON list of active flags), time (latest
                                  observation), message_id, summary (JSON for readers: score, band, flags, evidence
                                  per active flag, missing, stale, qsofa, sirs, time), state (JSON the worker merges
                                  into: latest inputs, labs, NLP mentions, alert episodes); TTL risk_ttl_s
  P:board                  zset   patient key -> rank = NEWS2 total + min(other active flags, 9) / 10: "top N at risk"
                                  is ZREVRANGE P:board 0 N-1 WITHSCORES
  P:board-written          zset   patient key -> epoch s of the worker's last write: a patient not written for
                                  risk_ttl_s (whose risk hash has expired) leaves both boards at the next write
  P:history:<patient key>  zset   JSON {at, band, message_id, score} scored by observation time (epoch s), last 48; TTL
  P:alerts                 stream one entry per alert event (field "alert": the alert JSON, docs/alert.schema.json),
                                  shadow flags excluded; capped near alerts_stream_maxlen; XREAD it to follow alerts
  P:alert-seen:<alert id>  string marks an event added to the stream, so a replay does not add it twice; TTL
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from clinstream.envelope import Alert, Risk
from processors.fhir_time import parse_time
from processors.risk import PatientState, critical_flag

HISTORY_KEPT = 48

# the stream entry is added only when the alert id has not been seen: one round trip, atomic
ADD_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[3])
end
return false
"""


def board_rank(risk: Risk) -> float:
    total = risk.news2.total if risk.news2 else 0
    others = [f for f in risk.active if not f.startswith("news2_")]
    return total + min(len(others), 9) / 10


def summary(state: PatientState, risk: Risk) -> dict[str, Any]:
    """What a reader of the board needs, without the worker's state: the active flags with their evidence."""
    evidence = {}
    for flag in risk.active:
        raised = next((f for f in risk.raised if f.name == flag), None)
        if raised is not None:
            evidence[flag] = raised.evidence
        elif flag.startswith("critical_"):
            evidence[flag] = [lab["evidence"] for name, lab in state.labs.items() if critical_flag(name) == flag]
        elif flag in state.nlp_flags:
            evidence[flag] = [f"mentioned in message {state.nlp_flags[flag]['message_id']} at {state.nlp_flags[flag]['at']}"]
    n2 = risk.news2
    if n2 is not None and n2.band != "low":
        evidence.setdefault("news2_" + n2.band.replace("-", "_"), [f"NEWS2 {n2.total} ({n2.band})"] + [
            f"{k}={n2.inputs[k]} at {n2.observed_at[k]} (+{p})" for k, p in n2.components.items() if p])
    return {
        "score": n2.total if n2 else None, "band": n2.band if n2 else None, "flags": risk.active, "evidence": evidence,
        "missing": n2.missing if n2 else [], "stale": n2.stale if n2 else [],
        "qsofa": risk.qsofa.total if risk.qsofa else None, "sirs": risk.sirs.total if risk.sirs else None, "time": state.latest_at,
    }


class RiskStore:
    def __init__(self, url: str, prefix: str, ttl_s: int, stream_maxlen: int = 10_000, **redis_options: Any) -> None:
        # redis_options: clinstream.security.redis_options (a rediss:// server's CA, a password kept out of the URL)
        self.redis = aioredis.from_url(url, **redis_options)
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.stream_maxlen = stream_maxlen
        self.add_once = self.redis.register_script(ADD_ONCE)

    def key(self, patient_key: str) -> str:
        return f"{self.prefix}:risk:{patient_key}"

    async def load(self, patient_keys: list[str]) -> dict[str, PatientState]:
        unique = sorted(set(patient_keys))
        if not unique:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in unique:
                pipe.hget(self.key(key), "state")
            raw = await pipe.execute()
        return {k: PatientState.from_json(json.loads(v) if v else None) for k, v in zip(unique, raw)}

    async def save(self, updates: dict[str, tuple[PatientState, Risk]], history: list[tuple[str, Risk, str, str]] = (), alerts: list[Alert] = ()) -> None:
        """Each patient's state and board entry; `history`: (patient key, risk, observed at, message id) for each
        message that scored NEWS2; `alerts`: the events for the stream, in order."""
        if not (updates or history or alerts):
            return
        p = self.prefix
        async with self.redis.pipeline(transaction=True) as pipe:
            for patient_key, (state, risk) in updates.items():
                fields: dict[str, Any] = {
                    "score": "" if risk.news2 is None else risk.news2.total,
                    "band": "" if risk.news2 is None else risk.news2.band,
                    "flags": json.dumps(risk.active),
                    "time": state.latest_at or "",
                    "message_id": state.latest_message_id or "",
                    "summary": json.dumps(summary(state, risk), sort_keys=True),
                    "state": json.dumps(state.to_json(), sort_keys=True),
                }
                pipe.hset(self.key(patient_key), mapping=fields)
                pipe.expire(self.key(patient_key), self.ttl_s)
                pipe.zadd(f"{p}:board", {patient_key: board_rank(risk)})
                pipe.zadd(f"{p}:board-written", {patient_key: time.time()})
            for patient_key, risk, at, message_id in history:
                key = f"{p}:history:{patient_key}"
                point = json.dumps({"at": at, "band": risk.news2.band, "message_id": message_id, "score": risk.news2.total}, sort_keys=True)
                pipe.zadd(key, {point: parse_time(at).timestamp()})
                pipe.zremrangebyrank(key, 0, -HISTORY_KEPT - 1)
                pipe.expire(key, self.ttl_s)
            await pipe.execute()
        expired = await self.redis.zrangebyscore(f"{p}:board-written", "-inf", time.time() - self.ttl_s)
        if expired:
            await self.redis.zrem(f"{p}:board", *expired)
            await self.redis.zrem(f"{p}:board-written", *expired)
        for alert in alerts:  # after the state: a reader woken by the stream finds the board current
            await self.add_once(keys=[f"{p}:alert-seen:{alert.alert_id}", f"{p}:alerts"],
                                args=[self.ttl_s, self.stream_maxlen, alert.model_dump_json()])

    async def close(self) -> None:
        await self.redis.aclose()
