"""Risk over a patient's messages: NEWS2, qSOFA and SIRS over the latest inputs inside the window, critical
laboratory values, NLP flags from present mentions coded in high-risk ICD-10-CM categories; which of
the flags this message raised become alerts (processors/alerting.py); FHIR resources for the Bundle.

`assess` is pure: (envelope, the patient's previous state, config) -> (risk, new state). The state merges
by observation time (a newer value is never overwritten by an older one) and the alert decisions are
keyed by message id, so replaying a message gives the same state and the same events: that is what makes
the Redis write and the alerts idempotent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from clinstream.envelope import Alert, Entity, Envelope, News2, Risk, RiskFlag, Score
from processors import alerting
from processors.critical_labs import DEFAULT_TABLE, CriticalFinding, CriticalTable, load_table
from processors.fhir_time import parse_time
from processors.news2 import INPUTS as NEWS2_INPUTS
from processors.news2 import news2
from processors.qsofa import INPUTS as QSOFA_INPUTS
from processors.qsofa import qsofa
from processors.sirs import INPUTS as SIRS_INPUTS
from processors.sirs import sirs
from processors.vitals import loinc_code, observations, scale2_condition, score_readings

NAMESPACE = alerting.NAMESPACE
SCORE_SOURCES = ("news2", "qsofa", "sirs", "nlp")  # flags the patient's return to the NEWS2 low band resolves


@dataclass(frozen=True)
class RiskConfig:
    """The settings `assess` reads, as plain values (`from_settings` builds it once per worker)."""

    high_risk_icd10: Mapping[str, Sequence[str]] = field(default_factory=dict)
    window_hours: float = 24.0
    repeat_hours: float = 6.0
    shadow_flags: Sequence[str] = ()
    risk_on_possible: bool = False
    scale2_icd10: Sequence[str] = ()
    critical_table: CriticalTable = DEFAULT_TABLE

    @classmethod
    def from_settings(cls, s: Any) -> RiskConfig:
        return cls(high_risk_icd10=s.high_risk_icd10, window_hours=s.vitals_window_hours, repeat_hours=s.alert_repeat_hours,
                   shadow_flags=tuple(s.shadow_flags), risk_on_possible=s.risk_on_possible, scale2_icd10=tuple(s.news2_scale2_icd10),
                   critical_table=load_table(Path(s.critical_labs_file)) if s.critical_labs_file else DEFAULT_TABLE)


@dataclass
class PatientState:
    """What the worker remembers per patient (kept in Redis)."""

    vitals: dict[str, dict[str, Any]] = field(default_factory=dict)  # score input -> {value, at, message_id}
    nlp_flags: dict[str, dict[str, Any]] = field(default_factory=dict)  # flag -> {at, message_id} of its latest mention
    latest_at: str | None = None
    latest_message_id: str | None = None
    spo2_scale2: dict[str, Any] | None = None  # {code, at, message_id} of the diagnosis that chose NEWS2 SpO2 scale 2
    labs: dict[str, dict[str, Any]] = field(default_factory=dict)  # critical-table analyte -> {critical, evidence, at, message_id}
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)  # flag -> alert state (processors/alerting.py)
    low_band: dict[str, Any] | None = None  # {at, message_id, evidence} of the latest NEWS2 back in the low band

    def to_json(self) -> dict[str, Any]:
        return {"vitals": self.vitals, "nlp_flags": self.nlp_flags, "latest_at": self.latest_at, "latest_message_id": self.latest_message_id,
                "spo2_scale2": self.spo2_scale2, "labs": self.labs, "alerts": self.alerts,
                "low_band": self.low_band}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PatientState:
        return cls(**data) if data else cls()


def _newer(at: str, message_id: str, than: dict[str, Any] | None) -> bool:
    """Ordering by (time, message id): the tie-break keeps replays and reorders deterministic."""
    if than is None:
        return True
    return (parse_time(at), message_id) >= (parse_time(than["at"]), than["message_id"])


def _fresh(at: str, reference: str, window_hours: float) -> bool:
    return parse_time(at) >= parse_time(reference) - timedelta(hours=window_hours)


def _icd(code: str) -> str:
    return code.replace(".", "").upper()


def high_risk_flags(entity: Entity, categories: Mapping[str, Sequence[str]]) -> list[str]:
    """The flags whose ICD-10-CM prefixes hold the mention's best code."""
    if not entity.icd10cm:
        return []
    code = _icd(entity.icd10cm[0].code)
    return [flag for flag, prefixes in categories.items() if any(code.startswith(_icd(p)) for p in prefixes)]


def news2_flag(band: str) -> str | None:
    return None if band == "low" else "news2_" + band.replace("-", "_")


def critical_flag(name: str) -> str:
    return "critical_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _finding_evidence(f: CriticalFinding) -> str:
    crossed = f" ({f.limit})" if f.limit else ""
    sent_flag = f" flagged {f.flag}" if f.flag else ""
    return f"{f.name} {f.value}{' ' + f.unit if f.unit else ''}{crossed}{sent_flag} at {f.observed_at} [{f.resource}]"


def lab_checks(bundle: Mapping[str, Any], table: CriticalTable) -> list[tuple[str, bool, str, str | None]]:
    """(analyte, critical?, evidence, observed at) for each laboratory value of the Bundle the table knows
    or the laboratory flagged critical: a normal value is evidence too, it clears a critical one."""
    from processors.critical_labs import critical_findings

    findings = {f.resource: f for f in critical_findings(bundle, table)}
    rows = table.by_loinc()
    checks = []
    for obs in observations(bundle):
        resource = f"Observation/{obs.get('id')}"
        at = obs.get("effectiveDateTime") or obs.get("issued")
        if resource in findings:
            f = findings[resource]
            checks.append((f.name, True, _finding_evidence(f), at))
            continue
        code = loinc_code(obs, rows)
        quantity = obs.get("valueQuantity") or {}
        if code and isinstance(quantity.get("value"), (int, float)):
            unit = quantity.get("code") or quantity.get("unit") or ""
            checks.append((rows[code].name, False, f"{rows[code].name} {quantity['value']} {unit} at {at} [{resource}]".replace("  ", " "), at))
    return checks


def _score(name: str, fn: Any, names: Sequence[str], state: PatientState, reference: str, window_hours: float) -> tuple[Any, dict, list, list]:
    seen = {k: v for k, v in state.vitals.items() if k in names}
    fresh = {k: v for k, v in seen.items() if _fresh(v["at"], reference, window_hours)}
    stale = [n for n in names if n in seen and n not in fresh]
    missing = [n for n in names if n not in seen]
    return fn({k: v["value"] for k, v in fresh.items()}), fresh, missing, stale


def current_scores(state: PatientState, window_hours: float) -> tuple[News2 | None, Score | None, Score | None]:
    """NEWS2, qSOFA and SIRS over each input's latest value inside the window ending at the patient's latest time."""
    if not state.vitals or state.latest_at is None:
        return None, None, None
    reference = max([state.latest_at] + [v["at"] for v in state.vitals.values()], key=parse_time)
    scale = 2 if state.spo2_scale2 else 1
    n, fresh, missing, stale = _score("news2", lambda x: news2(x, scale=scale), NEWS2_INPUTS, state, reference, window_hours)
    n2 = None
    if n is not None:
        n2 = News2(total=n.total, band=n.band, components=n.components, inputs={k: v["value"] for k, v in fresh.items()},  # type: ignore[arg-type]
                   observed_at={k: v["at"] for k, v in fresh.items()}, missing=missing, stale=stale, red_score=n.red_score, scale=n.scale)  # type: ignore[arg-type]
    out: list[Score | None] = []
    for name, fn, names in (("qsofa", qsofa, QSOFA_INPUTS), ("sirs", sirs, SIRS_INPUTS)):
        s, fresh, missing, stale = _score(name, fn, names, state, reference, window_hours)
        out.append(None if s is None else Score(
            name=name, total=s.total, positive=s.positive, components=s.components, inputs={k: v["value"] for k, v in fresh.items()},  # type: ignore[arg-type]
            observed_at={k: v["at"] for k, v in fresh.items()}, missing=missing, stale=stale))
    return n2, out[0], out[1]


def _score_flag(name: str, source: str, score: News2 | Score, headline: str) -> RiskFlag:
    evidence = [headline] + [f"{k}={score.inputs[k]} at {score.observed_at[k]} (+{p})" for k, p in score.components.items() if p]
    return RiskFlag(name=name, source=source, evidence=evidence, score=score.total, components=score.components,  # type: ignore[arg-type]
                    missing=score.missing, stale=score.stale)


def assess(envelope: Envelope, previous: PatientState, config: RiskConfig, *, now: str) -> tuple[Risk, PatientState]:
    """Negated, historical, family and hypothetical mentions never flag; possible ones only with `risk_on_possible`.
    A Condition coded under `scale2_icd10` puts the patient on NEWS2's SpO2 scale 2 from then on."""
    state = PatientState.from_json(previous.to_json())  # never mutate the caller's copy
    at, mid = envelope.observed_at, envelope.message_id

    readings = score_readings(envelope.bundle)  # vital signs and the labs of qSOFA/SIRS
    for r in readings:
        r_at = r.observed_at or at
        if _newer(r_at, mid, state.vitals.get(r.name)):
            state.vitals[r.name] = {"value": r.value, "at": r_at, "message_id": mid}
    carried = {r.name for r in readings}
    scale2_code = scale2_condition(envelope.bundle, config.scale2_icd10)
    if scale2_code and state.spo2_scale2 is None:
        state.spo2_scale2 = {"code": scale2_code, "at": at, "message_id": mid}
    if state.latest_at is None or _newer(at, mid, {"at": state.latest_at, "message_id": state.latest_message_id}):
        state.latest_at, state.latest_message_id = at, mid

    raised: list[RiskFlag] = []
    cleared: list[RiskFlag] = []
    n2, q, s = current_scores(state, config.window_hours)
    if n2 is not None and carried & set(NEWS2_INPUTS):  # WBC, PaCO2... alone do not re-raise NEWS2
        scale = f", SpO2 scale 2 ({state.spo2_scale2['code']})" if n2.scale == 2 and state.spo2_scale2 else ""
        headline = f"NEWS2 {n2.total} ({n2.band}{scale})"
        flag = news2_flag(n2.band)
        if flag:
            raised.append(_score_flag(flag, "news2", n2, headline))
        else:  # back in the low band: the patient's episode is over
            cleared += [RiskFlag(name=f, source=state.alerts[f]["source"], evidence=[headline]) for f in alerting.open_flags(state.alerts, SCORE_SOURCES, resolved_by=mid)]
            if scored_news2(state, mid) and _newer(at, mid, state.low_band):
                state.low_band = {"at": at, "message_id": mid, "evidence": [headline]}
    for score, inputs in ((q, QSOFA_INPUTS), (s, SIRS_INPUTS)):
        if score is None or not carried & set(inputs):
            continue
        headline = f"{'qSOFA' if score.name == 'qsofa' else 'SIRS'} {score.total} of {3 if score.name == 'qsofa' else 4}"
        if score.positive:
            raised.append(_score_flag(score.name, score.name, score, headline))
        elif score.name not in {f.name for f in cleared}:
            cleared.append(RiskFlag(name=score.name, source=score.name, evidence=[headline]))

    for analyte, critical, evidence, lab_at in lab_checks(envelope.bundle, config.critical_table):
        flag = critical_flag(analyte)
        lab_at = lab_at or at
        if _newer(lab_at, mid, state.labs.get(analyte)):
            state.labs[analyte] = {"critical": critical, "evidence": evidence, "at": lab_at, "message_id": mid}
        existing = next((f for f in raised if f.name == flag), None)
        if critical and existing:
            raised[raised.index(existing)] = existing.model_copy(update={"evidence": [*existing.evidence, evidence]})
        elif critical:
            raised.append(RiskFlag(name=flag, source="critical_lab", evidence=[evidence]))
        elif state.labs[analyte]["message_id"] == mid and not state.labs[analyte]["critical"]:
            cleared.append(RiskFlag(name=flag, source="critical_lab", evidence=[evidence]))

    texts = {n.id: n.text for n in envelope.narratives}
    flagging = ("present", "possible") if config.risk_on_possible else ("present",)
    for entity in envelope.entities:
        if entity.label != "PROBLEM" or entity.assertion not in flagging:
            continue
        for flag in high_risk_flags(entity, config.high_risk_icd10):
            code = entity.icd10cm[0]
            evidence = (f'"{texts.get(entity.narrative_id, "")[entity.start:entity.end]}" ({entity.assertion}) in {entity.narrative_id} '
                        f"[{entity.start}:{entity.end}] coded {code.code} {code.display}")
            existing = next((f for f in raised if f.name == flag), None)
            if existing:
                raised[raised.index(existing)] = existing.model_copy(update={"evidence": [*existing.evidence, evidence]})
            else:
                raised.append(RiskFlag(name=flag, source="nlp", evidence=[evidence]))
            if _newer(at, mid, state.nlp_flags.get(flag)):
                state.nlp_flags[flag] = {"at": at, "message_id": mid}

    events, suppressed, state.alerts = alerting.decide(state.alerts, raised, cleared, at=at, message_id=mid, repeat_hours=config.repeat_hours,
                                                  settled=state.low_band, settles=SCORE_SOURCES)
    band = n2.band if n2 else None
    alerts = [alerting.build_alert(e, patient_key=envelope.patient_key, patient_ref=envelope.patient_ref, message_id=mid, observed_at=at,
                                   raised_at=now, band=band, shadow=alerting.is_shadow(e.flag.name, config.shadow_flags)) for e in events]
    risk = Risk(news2=n2, qsofa=q, sirs=s, raised=raised, alerts=alerts, suppressed=suppressed,
                active=active_flags(state, (n2, q, s), config))
    return risk, state


def scored_news2(state: PatientState, message_id: str) -> bool:
    """Whether the message brought a NEWS2 input that the state kept (a point of the patient's score history)."""
    return any(name in NEWS2_INPUTS and v["message_id"] == message_id for name, v in state.vitals.items())


def active_flags(state: PatientState, scores: tuple[News2 | None, Score | None, Score | None], config: RiskConfig) -> list[str]:
    """What is true of the patient now: the NEWS2 band's flag, positive qSOFA/SIRS, the critical analytes whose
    latest value is critical and inside the window, and the NLP flags alerted and not resolved. Shadow flags are left out."""
    n2, q, s = scores
    flags = {news2_flag(n2.band)} if n2 else set()
    flags |= {score.name for score in (q, s) if score is not None and score.positive}
    reference = state.latest_at
    flags |= {critical_flag(a) for a, lab in state.labs.items() if lab["critical"] and (reference is None or _fresh(lab["at"], reference, config.window_hours))}
    flags |= set(alerting.open_flags(state.alerts, ("nlp",)))
    return sorted(f for f in flags if f and not alerting.is_shadow(f, config.shadow_flags))


def risk_resources(envelope: Envelope, risk: Risk) -> list[dict[str, Any]]:
    """Bundle entries: a RiskAssessment per score computed for this message, and the Flag and DetectedIssue
    of each alert event (the alert's own RiskAssessment would repeat the first)."""
    subject = {"reference": envelope.patient_ref} if envelope.patient_ref else {"display": "unknown patient"}
    entries: list[dict[str, Any]] = []
    if risk.news2 is not None:
        n = risk.news2
        ra: dict[str, Any] = {
            "resourceType": "RiskAssessment", "id": str(uuid.uuid5(NAMESPACE, f"RiskAssessment|{envelope.message_id}")), "status": "final",
            "method": {"text": f"NEWS2 (Royal College of Physicians, 2017), SpO2 scale {n.scale}"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1104051000000101",
                                 "display": "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score"}]},
            "subject": subject, "occurrenceDateTime": envelope.observed_at,
            "prediction": [{"outcome": {"text": f"NEWS2 {n.total}: {n.band} clinical risk"}, "qualitativeRisk": {"text": n.band},
                            "rationale": ", ".join(f"{k} {v}" for k, v in n.components.items())}],
        }
        if n.missing or n.stale:
            ra["note"] = [{"text": "; ".join(t for t in (n.missing and "missing inputs: " + ", ".join(n.missing),
                                                        n.stale and "stale inputs: " + ", ".join(n.stale)) if t)}]
        entries.append(ra)
    for score in (risk.qsofa, risk.sirs):
        if score is None:
            continue
        entries.append({
            "resourceType": "RiskAssessment", "id": str(uuid.uuid5(NAMESPACE, f"RiskAssessment|{score.name}|{envelope.message_id}")),
            "status": "final", "method": {"text": alerting.SCORE_METHOD[score.name]}, "subject": subject,
            "occurrenceDateTime": envelope.observed_at,
            "prediction": [{"outcome": {"text": f"{score.name} {score.total}: {'positive' if score.positive else 'negative'}"},
                            "rationale": ", ".join(f"{k} {v}" for k, v in score.components.items())}],
        })
    seen: set[str] = set()
    for alert in risk.alerts:
        for resource in alert.resources:
            if resource["resourceType"] != "RiskAssessment" and resource["id"] not in seen:
                seen.add(resource["id"])
                entries.append(resource)
    return [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in entries]


def publishable(alerts: Sequence[Alert]) -> list[Alert]:
    """The events for the alerts topic and the Redis stream: shadow flags stay on the enriched topic."""
    return [a for a in alerts if not a.shadow]
