"""Alert semantics: which raised flags become alerts, which are suppressed, when a flag resolves, and the
alert as JSON and as FHIR resources.

Per patient and flag the worker keeps an alert state {episode, open, alerted_at, alerted_by, resolved_at,
resolved_by, source}. A raised flag alerts when it is not open, or when its last alert is older than the
repeat period (a reminder): either way it opens the next episode. Otherwise it is suppressed. NEWS2's band
flags form a ladder: a band alerts only above every band alerted inside the period, so a patient who goes
medium -> high -> medium -> high inside the period gets two alerts, not four. A cleared flag (the patient
back in the low band, a normal value after a critical one) resolves its open episode.

Times are observation times, not wall-clock: replaying a feed gives the same decisions. A message that
already decided something (alerted_by / resolved_by is its id) gives the same event again on replay, with
the same id, so an event whose delivery was interrupted is not lost; evidence older than the flag's last
change is late and changes nothing.

Kafka orders a patient's messages within one topic, not across topics: a note (HL7 topic, through the NLP
worker) can be read after vital signs written later (FHIR topic). A raise older than the latest message that
settled the patient (the NEWS2 low band, which resolves every open flag of the scores and notes) opens its
episode and that message's resolve closes it at once, so the alerts are the ones time order would give.

Pure: plain values in, plain values out.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from clinstream.envelope import Alert, RiskFlag
from processors.fhir_time import parse_time

NAMESPACE = uuid.UUID("6f1c3d52-8d1e-4f57-9a55-3c0e7b1f2a10")
RISK_CODE_SYSTEM = "urn:clinstream:risk-flag"
NEWS2_LADDER = {"news2_low_medium": 1, "news2_medium": 2, "news2_high": 3}


@dataclass(frozen=True)
class Event:
    kind: Literal["raised", "resolved"]
    flag: RiskFlag  # for a resolve: the flag's name and source with the evidence that cleared it
    episode: int
    message_id: str | None = None  # the message behind the event when it is not the one being processed (a settled raise)
    at: str | None = None


def is_shadow(flag: str, shadow_flags: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(flag, pattern) for pattern in shadow_flags)


def _within(at: str, since: str, hours: float) -> bool:
    return parse_time(at) - parse_time(since) < timedelta(hours=hours)


def _late(at: str, s: Mapping[str, Any]) -> bool:
    last = max((t for t in (s.get("alerted_at"), s.get("resolved_at")) if t), key=parse_time)
    return parse_time(at) < parse_time(last)


def decide(
    state: Mapping[str, Mapping[str, Any]], raised: Sequence[RiskFlag], cleared: Sequence[RiskFlag], *,
    at: str, message_id: str, repeat_hours: float, settled: Mapping[str, Any] | None = None, settles: Sequence[str] = (),
) -> tuple[list[Event], list[str], dict[str, dict[str, Any]]]:
    """(alert state, flags raised and flags cleared by one message) -> (events, suppressed flag names, new state).

    `settled` ({at, message_id, evidence}) is the latest message that resolved every open flag whose source is in
    `settles`; a raise of such a flag observed before it comes out raised and resolved."""
    new = {flag: dict(s) for flag, s in state.items()}
    events: list[Event] = []
    suppressed: list[str] = []

    def settled_after(flag: RiskFlag) -> bool:
        return settled is not None and flag.source in settles and parse_time(at) < parse_time(settled["at"])

    def settle(flag: RiskFlag, episode: int) -> None:
        assert settled is not None
        events.append(Event("resolved", RiskFlag(name=flag.name, source=flag.source, evidence=list(settled["evidence"])), episode,
                            settled["message_id"], settled["at"]))

    for flag in raised:
        s = new.get(flag.name)
        if s is not None and s.get("alerted_by") == message_id:  # replay of the message that alerted
            events.append(Event("raised", flag, s["episode"]))
            if settled_after(flag) and s.get("resolved_by") == settled["message_id"]:  # type: ignore[index]
                settle(flag, s["episode"])
            continue
        if s is not None and _late(at, s):
            suppressed.append(flag.name)
            continue
        if flag.name in NEWS2_LADDER:
            above = [g for g, rank in NEWS2_LADDER.items() if rank >= NEWS2_LADDER[flag.name]]
            blocking = [new[g] for g in above if g in new and new[g]["open"] and _within(at, new[g]["alerted_at"], repeat_hours)]
        else:
            blocking = [s] if s is not None and s["open"] and _within(at, s["alerted_at"], repeat_hours) else []
        if blocking:
            suppressed.append(flag.name)
            continue
        episode = (s["episode"] if s else 0) + 1
        new[flag.name] = {"episode": episode, "open": True, "alerted_at": at, "alerted_by": message_id,
                          "resolved_at": None, "resolved_by": None, "source": flag.source}
        events.append(Event("raised", flag, episode))
        if settled_after(flag):
            new[flag.name].update(open=False, resolved_at=settled["at"], resolved_by=settled["message_id"])  # type: ignore[index]
            settle(flag, episode)
    raised_now = {f.name for f in raised}
    for flag in cleared:
        s = new.get(flag.name)
        if s is None or flag.name in raised_now:
            continue
        if s.get("resolved_by") == message_id:  # replay of the message that resolved
            events.append(Event("resolved", flag, s["episode"]))
        elif s["open"] and not _late(at, s):
            s.update(open=False, resolved_at=at, resolved_by=message_id)
            events.append(Event("resolved", flag, s["episode"]))
    return events, suppressed, new


def open_flags(state: Mapping[str, Mapping[str, Any]], sources: Sequence[str] | None = None, resolved_by: str | None = None) -> list[str]:
    """Flags with an open episode (or one that message `resolved_by` closed: its replay resolves them again)."""
    return sorted(f for f, s in state.items()
                  if (s["open"] or resolved_by is not None and s.get("resolved_by") == resolved_by) and (sources is None or s.get("source") in sources))


def alert_id(patient_key: str | None, flag: str, episode: int, kind: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"alert|{patient_key}|{flag}|{episode}|{kind}"))


def build_alert(
    event: Event, *, patient_key: str | None, patient_ref: str | None, message_id: str, observed_at: str, raised_at: str,
    band: str | None, shadow: bool,
) -> Alert:
    flag = event.flag
    aid = alert_id(patient_key, flag.name, event.episode, event.kind)
    alert = Alert(
        alert_id=aid, kind=event.kind, patient_key=patient_key, flag=flag.name, source=flag.source, episode=event.episode,
        message_id=event.message_id or message_id, observed_at=event.at or observed_at, raised_at=raised_at, score=flag.score, band=band,
        components=flag.components, evidence=flag.evidence, missing=flag.missing, stale=flag.stale, shadow=shadow,
    )
    return alert.model_copy(update={"resources": fhir_resources(alert, patient_ref)})


def _subject(patient_ref: str | None) -> dict[str, str]:
    return {"reference": patient_ref} if patient_ref else {"display": "unknown patient"}


SEVERITY = {"news2_high": "high", "news2_medium": "high", "qsofa": "high", "news2_low_medium": "moderate", "sirs": "moderate"}
SCORE_METHOD = {"news2": "NEWS2 (Royal College of Physicians, 2017)", "qsofa": "qSOFA (Sepsis-3, 2016)", "sirs": "SIRS criteria (ACCP/SCCM, 1992)"}


def fhir_resources(alert: Alert, patient_ref: str | None) -> list[dict[str, Any]]:
    """The alert as FHIR R4: a Flag (one per episode: the resolve updates the same Flag to inactive), a
    DetectedIssue with the evidence, and for a score's flag a RiskAssessment."""
    subject = _subject(patient_ref)
    flag_id = str(uuid.uuid5(NAMESPACE, f"Flag|{alert_id(alert.patient_key, alert.flag, alert.episode, 'raised')}"))
    code = {"coding": [{"system": RISK_CODE_SYSTEM, "code": alert.flag}], "text": alert.flag.replace("_", " ")}
    period = {"start": alert.observed_at} if alert.kind == "raised" else {"end": alert.observed_at}
    flag = {
        "resourceType": "Flag", "id": flag_id, "status": "active" if alert.kind == "raised" else "inactive",
        "identifier": [{"system": "urn:clinstream:alert-id", "value": alert.alert_id}],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "clinical", "display": "Clinical"}]}],
        "code": code, "subject": subject, "period": period,
    }
    if alert.kind == "resolved":
        return [flag]
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue", "id": str(uuid.uuid5(NAMESPACE, f"DetectedIssue|{alert.alert_id}")), "status": "final",
        "identifier": [{"system": "urn:clinstream:alert-id", "value": alert.alert_id}],
        "code": code, "severity": SEVERITY.get(alert.flag, "high"), "patient": subject,
        "identifiedDateTime": alert.observed_at,
        "detail": "; ".join(alert.evidence)[:2000] or alert.flag,
        "evidence": [{"detail": [{"reference": f"urn:uuid:{flag_id}"}]}],  # references by fullUrl, as inside the enriched Bundle
    }
    if alert.missing or alert.stale:
        gaps = [f"missing: {', '.join(alert.missing)}"] * bool(alert.missing) + [f"stale: {', '.join(alert.stale)}"] * bool(alert.stale)
        issue["mitigation"] = [{"action": {"text": "score computed without " + "; ".join(gaps)}}]
    out = [flag, issue]
    if alert.source in SCORE_METHOD and alert.score is not None:
        out.append({
            "resourceType": "RiskAssessment", "id": str(uuid.uuid5(NAMESPACE, f"RiskAssessment|{alert.alert_id}")), "status": "final",
            "subject": subject, "occurrenceDateTime": alert.observed_at, "method": {"text": SCORE_METHOD[alert.source]},
            "basis": [{"reference": f"urn:uuid:{issue['id']}"}],
            "prediction": [{"outcome": {"text": alert.flag.replace("_", " ")}, "qualitativeRisk": {"text": alert.band or str(alert.score)},
                            "rationale": ", ".join(f"{k} +{v}" for k, v in alert.components.items() if v) or f"total {alert.score}"}],
        })
    return out
