"""Turn model output into envelope content: entities with assertion, then risk, per message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clinstream.envelope import Alert, Entity, Envelope, ModelRef, Narrative, NoteLabel, SourceRecord
from processors.assertion import assertions
from processors.risk import PatientState, RiskConfig, assess, publishable, risk_resources

if TYPE_CHECKING:  # torch is imported by the worker that runs the model, never by the normalizer
    from processors import ner


def texts_of(envelopes: list[Envelope]) -> list[str]:
    """All narrative texts of a batch, in order; `with_entities` hands the predictions back."""
    return [n.text for env in envelopes for n in env.narratives]


def text_envelopes(texts: list[str]) -> list[Envelope]:
    """Bare texts as envelopes of one narrative each, so `clinstream annotate` runs the worker's functions."""
    out = []
    for i, text in enumerate(texts):
        narrative = Narrative(id=f"text/{i}#text", resource=f"text/{i}", element="text", text=text)
        out.append(Envelope(
            message_id=f"text-{i}", source_format="fhir", message_type="text", patient_key=None, patient_ref=None,
            encounter_ref=None, observed_at="", received_at="", normalized_at="",
            source=SourceRecord(topic="", partition=0, offset=i), bundle={"resourceType": "Bundle", "type": "collection", "entry": []},
            narratives=[narrative],
        ))
    return out


def with_entities(envelopes: list[Envelope], predictions: list[list[ner.Entity]], model: ModelRef) -> list[Envelope]:
    found = iter(predictions)
    out = []
    for env in envelopes:
        entities = []
        for narrative in env.narratives:
            predicted = next(found)
            statuses = assertions(narrative.text, [(e.start, e.end) for e in predicted])
            for e, assertion in zip(predicted, statuses):
                entities.append(Entity(
                    narrative_id=narrative.id, label=e.label, source_label=e.source_label, start=e.start, end=e.end,
                    text=e.text, score=e.score, assertion=assertion, expands=e.expands,
                ))
        models = [model] if env.narratives else []
        out.append(env.model_copy(update={"entities": entities, "models": models}))
    return out


def with_risk(env: Envelope, state: PatientState, config: RiskConfig, *, now: str) -> tuple[Envelope, list[Alert], PatientState]:
    """The enriched envelope (risk, and its FHIR resources in the Bundle), the alert events to publish
    (shadow flags' events stay in `risk.alerts` only) and the patient's new state."""
    risk, new_state = assess(env, state, config, now=now)
    bundle = dict(env.bundle)
    bundle["entry"] = list(env.bundle.get("entry", [])) + risk_resources(env, risk)
    enriched = env.model_copy(update={"risk": risk, "bundle": bundle, "enriched_at": now})
    return enriched, publishable(risk.alerts), new_state


def with_note_labels(envelopes: list[Envelope], predictions: list[list[tuple[str, float]]], model: ModelRef) -> list[Envelope]:
    """The site note classifier's (label, score) per narrative, in `texts_of` order, as `note_labels`; the
    classifier joins `models` of envelopes that have narratives."""
    found = iter(predictions)
    out = []
    for env in envelopes:
        labels = [NoteLabel(narrative_id=n.id, label=label, score=score) for n in env.narratives for label, score in next(found)]
        models = [*env.models, model] if env.narratives else env.models
        out.append(env.model_copy(update={"note_labels": labels, "models": models}))
    return out
