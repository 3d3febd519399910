"""The one settings object. Every knob is an environment variable `CLINSTREAM_<NAME>`, except the two
service addresses, which also answer to the conventional `KAFKA_BOOTSTRAP` and `REDIS_URL`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# NLP flag name -> ICD-10-CM code prefixes (dots optional): a present PROBLEM mention whose best ICD-10-CM code
# (processors/icd10cm.py) starts with one of them raises the flag
DEFAULT_HIGH_RISK_ICD10: dict[str, list[str]] = {
    "sepsis": ["A40", "A41", "R65.2"],  # streptococcal, other sepsis; severe sepsis and septic shock
    "myocardial_infarction": ["I21", "I22"],  # acute and subsequent MI
    "stroke": ["I60", "I61", "I62", "I63"],  # haemorrhages and cerebral infarction
    "pulmonary_embolism": ["I26"],
    "respiratory_failure": ["J96.0", "J96.2", "J96.9", "J80"],  # acute, acute on chronic, unspecified; ARDS (not chronic J96.1)
    "acute_kidney_injury": ["N17"],
    "diabetic_ketoacidosis": ["E08.1", "E09.1", "E10.1", "E11.1", "E13.1"],
}

# ICD-10-CM respiratory failure with hypercapnia (acute, chronic, acute on chronic, unspecified): a Condition
# coded under one of these puts the patient on NEWS2's SpO2 scale 2
DEFAULT_NEWS2_SCALE2_ICD10 = ["J96.02", "J96.12", "J96.22", "J96.92"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLINSTREAM_", extra="ignore")

    # --- services: when these are set the pipeline uses them and starts nothing
    kafka_bootstrap: str | None = Field(
        default=None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "CLINSTREAM_KAFKA_BOOTSTRAP")
    )
    # a secret: it may carry the password (`rediss://:PASSWORD@host:6380/0`), so repr() and logs show ********
    redis_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CLINSTREAM_REDIS_URL")
    )
    # --- secured transports (README "Security"; clinstream/security.py builds every client's options from these).
    # Secrets are SecretStr (never printed) and each can come from a file instead (`..._file`, e.g. a mounted secret).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None  # unset: the system's trusted CAs
    kafka_ssl_certfile: Path | None = None  # client certificate and key for mutual TLS
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    redis_password: SecretStr | None = None  # when REDIS_URL carries no password
    redis_password_file: Path | None = None
    redis_ssl_ca_certs: Path | None = None  # CA of a rediss:// server; unset: the system's trusted CAs
    # --- local services started by `clinstream services up`
    state_dir: Path = REPO_ROOT / ".cache"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    redis_port: int = 16379

    # --- topics
    topic_prefix: str = ""
    partitions: int = 4
    app_id: str = "clinstream"
    # a stage process that stops heartbeating (killed, host gone) keeps its partitions this long before the
    # group hands them to the others; faust's default (60 s) stalled the whole group a minute per SIGKILL
    kafka_session_timeout_s: float = 10.0

    # --- inference
    ner_model: Path = REPO_ROOT / "models" / "ner-minilm-bc5cdr"
    device: str = "auto"  # auto | cpu | cuda
    # auto: bf16 on CUDA, int8 (OpenVINO) on CPU, fp32 where openvino is missing | fp32 | bf16 | fp16 | int8.
    # bf16 on CPU runs faster on some CPUs, but a note's entities then depend on the notes batched with it: see
    # processors/ner.resolve_precision
    ner_precision: str = "auto"
    # the int8 OpenVINO twin of the NER model, exported, calibrated and quantized on first use (about a minute;
    # `clinstream index ner-int8` ahead of time) and reused after; a build product like the ICD-10-CM index
    int8_cache_dir: Path = REPO_ROOT / ".cache" / "int8"
    batch_max_size: int = 32
    batch_max_wait_s: float = 0.05
    batch_token_budget: int = 2048  # padded tokens per forward pass; on CPU larger passes fall out of cache and run slower (bench)
    ner_window_tokens: int = 256
    ner_window_stride: int = 32
    torch_threads: int = 0  # 0: torch's default
    # ICD-10-CM coding of problem mentions (processors/icd10cm.py): candidates per mention, and the folder
    # of the index that `clinstream index icd10cm` builds at set-up (a build product like the venv, so not
    # under a run's state_dir); without the index the worker logs a warning and leaves mentions uncoded
    icd10cm_top_k: int = 5
    icd10cm_index_dir: Path = REPO_ROOT / ".cache" / "icd10cm"
    # a site's note classifier (`clinstream train diagnosis` writes the folder); unset: none runs
    note_classifier: Path | None = None

    # --- risk
    high_risk_icd10: dict[str, list[str]] = DEFAULT_HIGH_RISK_ICD10
    vitals_window_hours: float = 24.0  # score inputs older than this (before the patient's latest) are stale
    # a flag alerts once per episode; a repeat inside this many hours (observation time) is suppressed, a later
    # one alerts again as the next episode (a reminder)
    alert_repeat_hours: float = 6.0
    # flags computed and published on the enriched topic but never alerted, while a site validates them;
    # names or shell patterns ("critical_*"). SIRS is on by default only in shadow: it fires on most febrile patients
    shadow_flags: list[str] = ["sirs"]
    alerts_stream_maxlen: int = 10_000  # the Redis Stream of alerts keeps about this many
    risk_on_possible: bool = False  # "possible" mentions ("rule out sepsis", "concern for PE") raise flags too
    risk_ttl_s: int = 7 * 24 * 3600
    # ICD-10 code prefixes (dots optional) of a coded diagnosis that puts a patient on NEWS2's SpO2 scale 2;
    # a site on another ICD-10 edition sets its own (ICD-10-GM: J96.01, J96.11, J96.91); [] keeps everyone on scale 1
    news2_scale2_icd10: list[str] = DEFAULT_NEWS2_SCALE2_ICD10
    # a YAML file over the default critical laboratory limits and flags (processors/critical_labs.py); unset: the defaults
    critical_labs_file: Path | None = None
    redis_key_prefix: str = "clinstream"

    # --- the live risk dashboard (`clinstream dashboard`, streams/dashboard.py): reads Redis only
    dashboard_port: int = 8088

    # --- operations (streams/ops.py): each stage process serves /metrics (Prometheus), /health and /ready on its
    # own port; 0 turns a stage's server off. A second process of a stage on the same host needs its own port
    # (else it logs "metrics server not started" and runs unobserved). Nothing served carries patient data.
    metrics_host: str = "0.0.0.0"
    metrics_port_normalizer: int = 9401
    metrics_port_inference: int = 9402

    # --- HL7 v2 mapping: per-sender overrides (zone, code systems, MRN type, Z-segments), a YAML file
    # checked by `clinstream senders check FILE`; docker/senders.example.yaml shows the format
    sender_overrides: Path | None = None

    # --- input limits and logging: a message over max_message_bytes or (HL7 v2) max_segments is dead-lettered
    # (too_large, too_many_segments); a narrative over max_text_chars is cut to that many characters for the
    # models and goes on with `truncated_from` set (the Bundle keeps the whole text)
    max_message_bytes: int = 1_000_000
    max_segments: int = 5_000
    max_text_chars: int = 100_000
    log_level: str = "info"

    @field_validator("sender_overrides", "note_classifier", "critical_labs_file", "kafka_sasl_password_file",
                     "kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "redis_password_file",
                     "redis_ssl_ca_certs", "kafka_sasl_username", "kafka_sasl_password", "redis_password", "redis_url",
                     mode="before")
    @classmethod
    def _no_file(cls, value: object) -> object:
        # compose files and shells set an unused variable to "", which means "none", not the current folder
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Settings:
        # a secret given inline wins over its file; a file's trailing newline is not part of the secret
        for secret, file in (("kafka_sasl_password", "kafka_sasl_password_file"), ("redis_password", "redis_password_file")):
            path = getattr(self, file)
            if getattr(self, secret) is None and path is not None:
                try:
                    value = Path(path).read_text().rstrip("\r\n")
                except OSError as exc:
                    raise ValueError(f"CLINSTREAM_{file.upper()}: cannot read {path}: {exc.strerror}") from None
                setattr(self, secret, SecretStr(value))
        return self

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis(self) -> str:
        url = self.redis_url.get_secret_value() if isinstance(self.redis_url, SecretStr) else self.redis_url
        return url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def uses_external_services(self) -> bool:
        return bool(self.kafka_bootstrap or self.redis_url)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
