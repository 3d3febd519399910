"""Every topic clinstream reads or writes, declared once."""

from __future__ import annotations

from dataclasses import dataclass

from clinstream.settings import Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the configurable prefix
    purpose: str
    keyed_by: str = "patient key ('<authority>|<id>')"


INBOUND_HL7V2 = TopicSpec("clinical.inbound.hl7v2", "HL7 v2 ER7 text as sent by the integration engine (MLLP framing tolerated)")
INBOUND_FHIR = TopicSpec("clinical.inbound.fhir", "FHIR R4 JSON: a Bundle or a single resource")
NORMALIZED = TopicSpec("clinical.normalized", "Envelope JSON: FHIR R4 Bundle plus narratives")
ENRICHED = TopicSpec("clinical.enriched", "Envelope JSON with entities, NEWS2, RiskAssessment and Flags")
ALERTS = TopicSpec("clinical.alerts", "Alert JSON, one per message that raised a flag")
DEADLETTER = TopicSpec(
    "clinical.deadletter", "the original bytes; headers say stage, reason, source topic/partition/offset",
    keyed_by="the original record's key",
)
DEADLETTER_REPLAYED = TopicSpec(
    "clinical.deadletter.replayed", "the ledger of `clinstream deadletter replay`: one small JSON record per dead letter "
    "replayed (where it went, when), so no dead letter is replayed twice; never patient data",
    keyed_by="'<partition>/<offset>' of the dead letter",
)
ALL = (INBOUND_HL7V2, INBOUND_FHIR, NORMALIZED, ENRICHED, ALERTS, DEADLETTER, DEADLETTER_REPLAYED)


def topic_name(spec: TopicSpec, settings: Settings) -> str:
    return settings.topic_prefix + spec.name


def ensure_topics(settings: Settings) -> list[str]:
    """Create the topics with the configured partition count; returns the names created now."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from clinstream.security import kafka_client_options

    admin = KafkaAdminClient(**kafka_client_options(settings), client_id="clinstream-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [topic_name(t, settings) for t in ALL]
        new = [NewTopic(n, num_partitions=settings.partitions, replication_factor=1) for n in wanted if n not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:  # a concurrent creator won the race
                pass
        return [t.name for t in new]
    finally:
        admin.close()
