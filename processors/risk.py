"""Risk over a patient's messages: NEWS2 from the latest vital signs in the window, NLP flags from
present mentions of high-risk conditions (and possible ones if asked), FHIR RiskAssessment and Flag resources, the alert.

`assess` is pure: (envelope, the patient's previous state) -> (risk, new state). The state merges by
observation time (a newer value is never overwritten by an older one), so replaying a message gives the
same state: that is what makes the Redis write idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from clinstream.envelope import Alert, Entity, Envelope, News2, Risk, RiskFlag
from processors.news2 import INPUTS, news2
from processors.vitals import scale2_condition, score_readings

NAMESPACE = uuid.UUID("6f1c3d52-8d1e-4f57-9a55-3c0e7b1f2a10")
RISK_CODE_SYSTEM = "urn:clinstream:risk-flag"


def parse_time(value: str) -> datetime:
    """FHIR dateTime (any precision) -> aware datetime; dates count as midnight UTC."""
    if len(value) == 4:
        value += "-01-01"
    if len(value) == 7:
        value += "-01"
    if len(value) == 10:
        value += "T00:00:00+00:00"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class PatientState:
    """What the worker remembers per patient (kept in Redis)."""

    vitals: dict[str, dict[str, Any]] = field(default_factory=dict)  # input -> {value, at, message_id}
    nlp_flags: dict[str, dict[str, Any]] = field(default_factory=dict)  # flag -> {at, message_id, evidence}
    latest_at: str | None = None
    latest_message_id: str | None = None
    spo2_scale2: dict[str, Any] | None = None  # {code, at, message_id} of the diagnosis that chose NEWS2 SpO2 scale 2

    def to_json(self) -> dict[str, Any]:
        return {"vitals": self.vitals, "nlp_flags": self.nlp_flags, "latest_at": self.latest_at, "latest_message_id": self.latest_message_id,
                "spo2_scale2": self.spo2_scale2}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PatientState:
        return cls(**data) if data else cls()


def _newer(at: str, message_id: str, than: dict[str, Any] | None) -> bool:
    """Ordering by (time, message id): the tie-break keeps replays and reorders deterministic."""
    if than is None:
        return True
    return (parse_time(at), message_id) >= (parse_time(than["at"]), than["message_id"])


def matching_flags(entity: Entity, conditions: dict[str, list[str]]) -> list[str]:
    text = entity.text.lower()
    return [flag for flag, phrases in conditions.items() if any(p in text for p in phrases)]


def news2_flag(band: str) -> str | None:
    return None if band == "low" else "news2_" + band.replace("-", "_")


def assess(
    envelope: Envelope, previous: PatientState, *, conditions: dict[str, list[str]], window_hours: float,
    risk_on_possible: bool = False, scale2_icd10: Sequence[str] = (),
) -> tuple[Risk, PatientState]:
    """Negated, historical, family and hypothetical mentions never flag; possible ones only with `risk_on_possible`.
    A Condition coded under `scale2_icd10` puts the patient on NEWS2's SpO2 scale 2 from then on."""
    state = PatientState.from_json(previous.to_json())  # never mutate the caller's copy
    at, mid = envelope.observed_at, envelope.message_id

    readings = score_readings(envelope.bundle)  # vital signs and the labs of qSOFA/SIRS
    for r in readings:
        r_at = r.observed_at or at
        if _newer(r_at, mid, state.vitals.get(r.name)):
            state.vitals[r.name] = {"value": r.value, "at": r_at, "message_id": mid}
    scale2_code = scale2_condition(envelope.bundle, scale2_icd10)
    if scale2_code and state.spo2_scale2 is None:
        state.spo2_scale2 = {"code": scale2_code, "at": at, "message_id": mid}

    raised: list[RiskFlag] = []
    texts = {n.id: n.text for n in envelope.narratives}
    flagging = ("present", "possible") if risk_on_possible else ("present",)
    for entity in envelope.entities:
        if entity.label != "PROBLEM" or entity.assertion not in flagging:
            continue
        for flag in matching_flags(entity, conditions):
            evidence = f'"{texts.get(entity.narrative_id, "")[entity.start:entity.end]}" in {entity.narrative_id} [{entity.start}:{entity.end}]'
            existing = next((f for f in raised if f.name == flag), None)
            if existing:
                existing.evidence.append(evidence)
            else:
                raised.append(RiskFlag(name=flag, source="nlp", evidence=[evidence]))
            if _newer(at, mid, state.nlp_flags.get(flag)):
                state.nlp_flags[flag] = {"at": at, "message_id": mid}

    if state.latest_at is None or _newer(at, mid, {"at": state.latest_at, "message_id": state.latest_message_id}):
        state.latest_at, state.latest_message_id = at, mid

    score = current_news2(state, window_hours)
    if any(r.name in INPUTS for r in readings) and score is not None:  # WBC, PaCO2... alone do not re-raise NEWS2
        flag = news2_flag(score.band)
        if flag:
            scale = f", SpO2 scale 2 ({state.spo2_scale2['code']})" if score.scale == 2 and state.spo2_scale2 else ""
            evidence = [f"NEWS2 {score.total} ({score.band}{scale})"] + [
                f"{name}={score.inputs[name]} at {score.observed_at[name]} (+{points})"
                for name, points in score.components.items() if points
            ]
            raised.insert(0, RiskFlag(name=flag, source="news2", evidence=evidence))
    return Risk(news2=score, raised=raised, active=active_flags(state, score, window_hours)), state


def _fresh(at: str, reference: str, window_hours: float) -> bool:
    return parse_time(at) >= parse_time(reference) - timedelta(hours=window_hours)


def current_news2(state: PatientState, window_hours: float) -> News2 | None:
    """NEWS2 over each input's latest value inside the window ending at the patient's latest time."""
    if not state.vitals or state.latest_at is None:
        return None
    reference = max([state.latest_at] + [v["at"] for v in state.vitals.values()], key=parse_time)
    fresh = {k: v for k, v in state.vitals.items() if k in INPUTS and _fresh(v["at"], reference, window_hours)}
    score = news2({k: v["value"] for k, v in fresh.items()}, scale=2 if state.spo2_scale2 else 1)
    if score is None:
        return None
    return News2(
        total=score.total, band=score.band, components=score.components,  # type: ignore[arg-type]
        inputs={k: v["value"] for k, v in fresh.items()}, observed_at={k: v["at"] for k, v in fresh.items()},
        missing=[n for n in INPUTS if n not in fresh], red_score=score.red_score, scale=score.scale,  # type: ignore[arg-type]
    )


def active_flags(state: PatientState, score: News2 | None, window_hours: float) -> list[str]:
    flags = set()
    if score is not None and news2_flag(score.band):
        flags.add(news2_flag(score.band))
    reference = state.latest_at
    for flag, seen in state.nlp_flags.items():
        if reference is None or _fresh(seen["at"], reference, window_hours):
            flags.add(flag)
    return sorted(f for f in flags if f)


def alert_for(envelope: Envelope, risk: Risk, raised_at: str) -> Alert | None:
    if not risk.raised:
        return None
    flags = [f.name for f in risk.raised]
    return Alert(
        alert_id=str(uuid.uuid5(NAMESPACE, f"alert|{envelope.message_id}|{'|'.join(sorted(flags))}")),
        patient_key=envelope.patient_key, message_id=envelope.message_id, flags=flags,
        score=risk.news2.total if risk.news2 else None, band=risk.news2.band if risk.news2 else None,
        evidence={f.name: f.evidence for f in risk.raised}, observed_at=envelope.observed_at, raised_at=raised_at,
    )


def risk_resources(envelope: Envelope, risk: Risk) -> list[dict[str, Any]]:
    """A RiskAssessment for the NEWS2 result and a Flag per raised flag, as Bundle entries."""
    subject = {"reference": envelope.patient_ref} if envelope.patient_ref else None
    entries = []
    if risk.news2 is not None:
        rid = str(uuid.uuid5(NAMESPACE, f"RiskAssessment|{envelope.message_id}"))
        ra: dict[str, Any] = {
            "resourceType": "RiskAssessment", "id": rid, "status": "final",
            "method": {"text": f"NEWS2 (Royal College of Physicians, 2017), SpO2 scale {risk.news2.scale}"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1104051000000101",
                                 "display": "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score"}]},
            "occurrenceDateTime": envelope.observed_at,
            "prediction": [{"outcome": {"text": f"NEWS2 {risk.news2.total}: {risk.news2.band} clinical risk"},
                            "qualitativeRisk": {"text": risk.news2.band},
                            "rationale": ", ".join(f"{k} {v}" for k, v in risk.news2.components.items())}],
        }
        if subject:
            ra["subject"] = subject
        else:
            ra["subject"] = {"display": "unknown patient"}
        if risk.news2.missing:
            ra["note"] = [{"text": "missing or stale inputs: " + ", ".join(risk.news2.missing)}]
        entries.append(ra)
    for flag in risk.raised:
        fid = str(uuid.uuid5(NAMESPACE, f"Flag|{envelope.message_id}|{flag.name}"))
        entries.append({
            "resourceType": "Flag", "id": fid, "status": "active",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "clinical", "display": "Clinical"}]}],
            "code": {"coding": [{"system": RISK_CODE_SYSTEM, "code": flag.name}], "text": "; ".join(flag.evidence)[:1000]},
            "subject": subject or {"display": "unknown patient"},
            "period": {"start": envelope.observed_at},
        })
    return [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in entries]
