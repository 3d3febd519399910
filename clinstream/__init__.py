"""clinstream: clinical messages from Kafka, normalized to FHIR R4, enriched by NER and risk scores."""

__version__ = "0.1.0"
