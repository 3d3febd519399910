"""Redis: each patient's latest risk state, with a TTL.

Key schema (prefix from settings, default "clinstream"):
  <prefix>:risk:<patient key>   hash  score, band, flags (JSON list), time, message_id,
                                      state (JSON: latest vitals and NLP flags the worker merges into)
The state merges by observation time, so writing it again for a replayed message changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from clinstream.envelope import Risk
from processors.risk import PatientState


class RiskStore:
    def __init__(self, url: str, prefix: str, ttl_s: int) -> None:
        self.redis = aioredis.from_url(url)
        self.prefix = prefix
        self.ttl_s = ttl_s

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

    async def save(self, updates: dict[str, tuple[PatientState, Risk]]) -> None:
        if not updates:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for patient_key, (state, risk) in updates.items():
                fields: dict[str, Any] = {
                    "score": "" if risk.news2 is None else risk.news2.total,
                    "band": "" if risk.news2 is None else risk.news2.band,
                    "flags": json.dumps(risk.active),
                    "time": state.latest_at or "",
                    "message_id": state.latest_message_id or "",
                    "state": json.dumps(state.to_json(), sort_keys=True),
                }
                pipe.hset(self.key(patient_key), mapping=fields)
                pipe.expire(self.key(patient_key), self.ttl_s)
            await pipe.execute()

    async def close(self) -> None:
        await self.redis.aclose()
