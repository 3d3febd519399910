"""Secured transports, built from settings in one place each: every kafka-python client (admin, producer,
consumer) takes `kafka_client_options`, the faust app takes `faust_broker_credentials`, and every Redis
client comes from `redis_client` / `async_redis_client`. README "Security" lists the settings.

Secrets (the SASL password, a password in REDIS_URL) are pydantic SecretStr in Settings: read here and
handed to the client libraries, never logged or printed."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

from clinstream.exceptions import ServiceError
from clinstream.settings import Settings

SASL_PROTOCOLS = {"SASL_SSL", "SASL_PLAINTEXT"}
SSL_PROTOCOLS = {"SSL", "SASL_SSL"}


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else value


def _sasl_credentials(settings: Settings) -> tuple[str, str]:
    username, password = settings.kafka_sasl_username, _secret(settings.kafka_sasl_password)
    if not username or password is None:
        raise ServiceError(
            f"CLINSTREAM_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs CLINSTREAM_KAFKA_SASL_USERNAME "
            "and CLINSTREAM_KAFKA_SASL_PASSWORD (or CLINSTREAM_KAFKA_SASL_PASSWORD_FILE)")
    return username, password


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every kafka-python client gets: where the brokers are and how to reach them."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap, "security_protocol": protocol}
    if protocol in SASL_PROTOCOLS:
        username, password = _sasl_credentials(settings)
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism, sasl_plain_username=username, sasl_plain_password=password)
    if protocol in SSL_PROTOCOLS:
        options["ssl_check_hostname"] = settings.kafka_ssl_check_hostname
        for name in ("cafile", "certfile", "keyfile"):
            path = getattr(settings, f"kafka_ssl_{name}")
            if path is not None:
                options[f"ssl_{name}"] = str(path)
    return options


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """TLS towards the brokers: the configured CA (else the system's), the client certificate for mutual TLS."""
    context = ssl.create_default_context(
        purpose=ssl.Purpose.SERVER_AUTH, cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None)
    return context


def faust_broker_credentials(settings: Settings) -> Any:
    """faust's `broker_credentials` for the configured protocol; None for PLAINTEXT."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol in SASL_PROTOCOLS:
        username, password = _sasl_credentials(settings)
        return faust.SASLCredentials(username=username, password=password, mechanism=settings.kafka_sasl_mechanism,
                                     ssl_context=kafka_ssl_context(settings) if protocol == "SASL_SSL" else None)
    if protocol == "SSL":
        return faust.SSLCredentials(kafka_ssl_context(settings))
    return None


def redis_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for redis-py's `from_url` beside the URL: the CA of a rediss:// server, and a password
    kept out of the URL. A password in the URL wins over `redis_password` (redis-py reads the URL last)."""
    options: dict[str, Any] = {}
    password = _secret(settings.redis_password)
    if password is not None:
        options["password"] = password
    if settings.redis_ssl_ca_certs is not None and urlsplit(settings.redis).scheme == "rediss":
        options["ssl_ca_certs"] = str(settings.redis_ssl_ca_certs)
    return options


def redis_client(settings: Settings, **kwargs: Any) -> Any:
    """A synchronous redis.Redis for these settings."""
    import redis

    return redis.Redis.from_url(settings.redis, **redis_options(settings), **kwargs)


def async_redis_client(settings: Settings, **kwargs: Any) -> Any:
    """A redis.asyncio.Redis for these settings."""
    import redis.asyncio as aioredis

    return aioredis.from_url(settings.redis, **redis_options(settings), **kwargs)
