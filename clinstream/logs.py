"""structlog set-up: JSON lines on stderr. Log message ids, types, stages and timings, never bodies."""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import urlsplit, urlunsplit

import structlog

_SECRET_QUERY = re.compile(r"((?:^|&)[^=&]*(?:password|passwd|secret|token)[^=&]*=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """A service URL fit to print or log: the password (`redis://user:PASSWORD@host`) and secret-looking
    query parameters (`?password=...`) become `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if colon else f"***@{host}"  # a lone user part may be a token: hidden too
    query = _SECRET_QUERY.sub(r"\1***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    # urlunsplit writes unix:///path as unix:/path
    return redacted.replace(":", "://", 1) if not netloc and url.startswith(f"{parts.scheme}://") else redacted


def configure(level: str = "info") -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(stream=sys.stderr, level=numeric if isinstance(numeric, int) else logging.INFO, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric if isinstance(numeric, int) else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
