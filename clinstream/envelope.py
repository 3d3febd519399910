"""The one typed envelope that travels between stages (normalized and enriched topics).

Version it with `SCHEMA_VERSION`; `clinstream schema` exports the JSON Schema to docs/envelope.schema.json.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 4  # 2: assertion statuses beyond negated, ICD-10-CM codes on entities; 3: qSOFA, SIRS, critical labs, one alert per flag with episodes; 4: narratives say when they were truncated (truncated_from)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRecord(Model):
    """Where the message was read from: enough to find the original record again."""

    topic: str
    partition: int
    offset: int


class Narrative(Model):
    """A piece of free text found in the Bundle, with the resource it came from."""

    id: str = Field(description="stable id: '<ResourceType>/<id>#<element>'")
    resource: str = Field(description="'<ResourceType>/<id>' of the Bundle entry holding the text")
    element: str = Field(description="FHIR path of the text inside that resource")
    text: str
    truncated_from: int | None = Field(default=None, description="the text's full length in characters when it was longer than "
                                       "CLINSTREAM_MAX_TEXT_CHARS: `text` is then its first that many characters, the only part the "
                                       "models read; the Bundle keeps the whole text")


Assertion = Literal["present", "negated", "possible", "historical", "family", "hypothetical"]


class CodeMatch(Model):
    """One ICD-10-CM candidate for a mention, best first in a list."""

    code: str = Field(description="ICD-10-CM code with its dot, e.g. 'I21.9'")
    display: str
    score: float = Field(description="cosine similarity of mention and code description (synonym hits score 1.0)")


class Entity(Model):
    """A named entity found by the NER model in one narrative."""

    narrative_id: str
    label: str = Field(description="clinical label: PROBLEM or MEDICATION")
    source_label: str = Field(description="the model's own label, Disease or Chemical; or shorthand: a clinical abbreviation "
                                          "the lexicon names as a problem (processors/icd10cm_synonyms.yaml), which the model missed")
    start: int = Field(description="character offset into the narrative's text")
    end: int
    text: str
    score: float = Field(description="the model's probability that this entity, its words and label, is right (calibrated on "
                                     "BC5CDR devel: see the model card); 1.0 for a term of the note lexicons")
    assertion: Assertion = Field(
        description="present | negated | possible | historical | family (someone else has it) | hypothetical"
    )
    icd10cm: list[CodeMatch] = Field(default=[], description="PROBLEM mentions that are present or possible")
    expands: str | None = Field(default=None, description="what is coded in place of the text: the long form of a short form "
                                                          "the text defines ('acute renal failure (ARF)'), a modifier's elided "
                                                          "head ('septic' of 'septic vs cardiogenic shock'), or the meaning its "
                                                          "sentence gives a term of two ('ARF requiring intubation')")


class NoteLabel(Model):
    """A label the site's note classifier gave a whole narrative (CLINSTREAM_NOTE_CLASSIFIER)."""

    narrative_id: str
    label: str = Field(description="the site's label, often an ICD-10-CM code")
    score: float = Field(description="the classifier's probability, at or above its threshold")


class ModelRef(Model):
    task: str
    name: str
    version: str


class News2(Model):
    """NEWS2 (RCP 2017) over the patient's latest vital signs."""

    total: int
    band: Literal["low", "low-medium", "medium", "high"]
    components: dict[str, int] = Field(description="points per input that was present")
    inputs: dict[str, float | str | bool] = Field(description="value used per input")
    observed_at: dict[str, str] = Field(description="observation time per input")
    missing: list[str] = Field(description="inputs never received for this patient")
    stale: list[str] = Field(default=[], description="inputs received, but older than the window: not scored")
    red_score: bool = Field(description="some single parameter scored 3")
    scale: Literal[1, 2] = Field(default=1, description="SpO2 scale: 2 for a coded hypercapnic respiratory failure")


class Score(Model):
    """qSOFA or SIRS over the patient's latest inputs inside the window."""

    name: Literal["qsofa", "sirs"]
    total: int
    positive: bool = Field(description="total >= 2")
    components: dict[str, int] = Field(description="points per input that was present")
    inputs: dict[str, float | str | bool]
    observed_at: dict[str, str]
    missing: list[str] = Field(description="inputs never received for this patient")
    stale: list[str] = Field(default=[], description="inputs older than the window: not scored")


Source = Literal["news2", "qsofa", "sirs", "critical_lab", "nlp"]


class RiskFlag(Model):
    """A flag this message's evidence raised (before alert suppression)."""

    name: str = Field(description="news2_low_medium | news2_medium | news2_high | qsofa | sirs | critical_<analyte> | a high-risk condition")
    source: Source
    evidence: list[str] = Field(description="human-readable evidence: values with times, or quoted text spans")
    score: int | None = Field(default=None, description="the score's total, for news2, qsofa and sirs flags")
    components: dict[str, int] = {}
    missing: list[str] = Field(default=[], description="the score's inputs never received")
    stale: list[str] = Field(default=[], description="the score's inputs older than the window")


class Alert(Model):
    """One alert event on the alerts topic: a flag raised, or resolved, for one patient and episode.

    A flag's episode opens with its alert; repeats inside the suppression period are not alerted; after the
    period a repeat opens the next episode (a reminder). A resolve closes the episode and carries its number."""

    schema_version: int = SCHEMA_VERSION
    alert_id: str = Field(description="stable: uuid5 of (patient, flag, episode, kind); a replay gives the same id")
    kind: Literal["raised", "resolved"]
    patient_key: str | None
    flag: str
    source: Source
    episode: int = Field(description="1 for the flag's first alert for this patient, then counting")
    message_id: str = Field(description="the message whose evidence raised or resolved the flag")
    observed_at: str = Field(description="clinical time of that message")
    raised_at: str = Field(description="when the worker produced the event")
    score: int | None = Field(description="the flag's score (NEWS2, qSOFA, SIRS total); None for other flags")
    band: str | None = Field(description="the patient's NEWS2 band at the time, when known")
    components: dict[str, int] = Field(default={}, description="points per score input")
    evidence: list[str]
    missing: list[str] = Field(default=[], description="score inputs never received: a low score may be missing data")
    stale: list[str] = Field(default=[], description="score inputs older than the window, not scored")
    shadow: bool = Field(default=False, description="the flag is in shadow mode: on the enriched topic only, never alerted")
    resources: list[dict[str, Any]] = Field(default=[], description="the same alert as FHIR R4 Flag, DetectedIssue (and RiskAssessment for scores)")


class Risk(Model):
    news2: News2 | None
    qsofa: Score | None = None
    sirs: Score | None = None
    raised: list[RiskFlag] = Field(description="flags this message's evidence raised, before suppression")
    alerts: list[Alert] = Field(default=[], description="alert events this message produced, shadow ones included")
    suppressed: list[str] = Field(default=[], description="raised flags not alerted: a repeat inside the period, or a NEWS2 band not above one already alerted")
    active: list[str] = Field(description="the patient's open flags after this message")


class Envelope(Model):
    schema_version: int = SCHEMA_VERSION
    message_id: str = Field(description="MSH-10, Bundle.id, or sha256 of the payload")
    source_format: Literal["hl7v2", "fhir"]
    message_type: str = Field(description="'ADT^A01' for HL7 v2; 'Bundle/<type>' or the resourceType for FHIR")
    patient_key: str | None = Field(description="'<assigning authority>|<identifier>'; the Kafka key downstream")
    patient_ref: str | None = Field(description="fullUrl of the Patient entry in the Bundle")
    encounter_ref: str | None = Field(description="fullUrl of the Encounter entry in the Bundle")
    observed_at: str = Field(description="clinical time of the message (MSH-7 / Bundle.timestamp / latest effective time)")
    received_at: str = Field(description="when the inbound record was written to Kafka")
    normalized_at: str
    enriched_at: str | None = None
    source: SourceRecord
    bundle: dict[str, Any] = Field(description="FHIR R4 Bundle (validated with fhir.resources.R4B)")
    narratives: list[Narrative] = []
    unmapped_segments: list[str] = Field(default=[], description="HL7 segments kept as extensions, not mapped")
    unmapped_fields: list[str] = Field(default=[], description="fields of mapped HL7 segments that no mapper read ('PV1-52'), "
                                                                  "kept as MessageHeader extensions")
    entities: list[Entity] = []
    note_labels: list[NoteLabel] = Field(default=[], description="labels of the site's note classifier, when one is set")
    models: list[ModelRef] = []
    risk: Risk | None = None

    def to_json(self) -> bytes:
        """The envelope as JSON, what the stages publish: what model_dump_json writes, but the Bundle goes to orjson as it
        is. Bundles mapped from HL7 hold shared, final datatype values (fhir_mappers.ids.Clean, a dict subclass), which
        pydantic's serializer takes 4-5x slower than plain dicts, and orjson writes like any dict."""
        data = self.model_dump(mode="json", exclude={"bundle"})
        return orjson.dumps({name: self.bundle if name == "bundle" else data[name] for name in type(self).model_fields})


def export_schemas() -> dict[str, Any]:
    return {"envelope": Envelope.model_json_schema(), "alert": Alert.model_json_schema()}
