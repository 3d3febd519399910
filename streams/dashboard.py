"""The live risk dashboard: a small aiohttp app that reads only Redis (never Kafka).

Redis keys it reads (prefix P = settings.redis_key_prefix), written by the inference worker:
  P:board                    sorted set, member = patient key, score = rank (NEWS2 total, 0 when none,
                             + min(active non-NEWS2 flags, 9) / 10); higher = more at risk
  P:risk:<patient key>       hash; the dashboard reads `summary` (JSON: score, band, flags, evidence,
                             missing, stale, qsofa, sirs, time), else the plain score, band, flags, time
  P:history:<patient key>    sorted set by observation epoch, members JSON {at, band, message_id, score}
  P:alerts                   stream, one field `alert` = the alert JSON

Routes:
  GET /                      the page (dashboard.html beside this module: inline CSS and JS, no external fetch)
  GET /api/board?limit=N     {"patients": [...], "generated_at"}: ZREVRANGE, then one pipeline for them all
  GET /api/events            Server-Sent Events: each new alert (event: alert), a keep-alive comment when idle
  GET /health                {"status": "ok"} after a Redis PING (503 otherwise)

Patient keys are shown on the page (clinicians need them) but never logged: logs carry counts and timings.
The app binds to loopback by default and has no authentication of its own: put it behind the site's
authenticating proxy before exposing it.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
import structlog
from aiohttp import web

from clinstream.security import async_redis_client
from clinstream.settings import Settings

log = structlog.get_logger()

PAGE = Path(__file__).with_name("dashboard.html")
HISTORY_POINTS = 48
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
KEEPALIVE_S = 15.0

REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis", aioredis.Redis)
PREFIX: web.AppKey[str] = web.AppKey("prefix", str)
KEEPALIVE: web.AppKey[float] = web.AppKey("keepalive_s", float)
STREAMS: web.AppKey[set[asyncio.Task[Any]]] = web.AppKey("event_streams", set)

# the page and the API carry patient data: no caching anywhere, no referrer, nothing loaded from elsewhere
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}


def keys(prefix: str) -> dict[str, str]:
    return {"board": f"{prefix}:board", "alerts": f"{prefix}:alerts", "risk": f"{prefix}:risk:", "history": f"{prefix}:history:"}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _json_or(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def patient_row(patient_key: str, rank: float, fields: list[str | None], history: list[str]) -> dict[str, Any] | None:
    """One board row from the risk hash fields (summary, score, band, flags, time) and the history members;
    None when the risk hash is gone (expired) while the board still lists the patient."""
    raw_summary, raw_score, raw_band, raw_flags, raw_time = fields
    if raw_summary is None and raw_score is None and raw_flags is None:
        return None
    summary = _json_or(raw_summary, {})
    if not isinstance(summary, dict):
        summary = {}
    points = []
    for member in history:
        point = _json_or(member, None)
        if isinstance(point, dict):
            points.append({"at": point.get("at"), "score": _int_or_none(point.get("score")), "band": point.get("band") or None})
    return {
        "patient_key": patient_key,
        "rank": rank,
        # the summary is the full picture; the plain fields stand in for a writer that has not stored one
        "score": _int_or_none(summary.get("score", raw_score)),
        "band": summary.get("band", raw_band) or None,
        "flags": list(summary.get("flags", _json_or(raw_flags, []))),
        "evidence": summary.get("evidence") if isinstance(summary.get("evidence"), dict) else {},
        "missing": list(summary.get("missing") or []),
        "stale": list(summary.get("stale") or []),
        "qsofa": _int_or_none(summary.get("qsofa")),
        "sirs": _int_or_none(summary.get("sirs")),
        "time": summary.get("time") or raw_time or None,
        "history": points,
    }


async def read_board(redis: aioredis.Redis, prefix: str, limit: int) -> dict[str, Any]:
    k = keys(prefix)
    ranked = await redis.zrevrange(k["board"], 0, limit - 1, withscores=True)
    async with redis.pipeline(transaction=False) as pipe:
        for patient_key, _ in ranked:
            pipe.hmget(k["risk"] + patient_key, ["summary", "score", "band", "flags", "time"])
            pipe.zrange(k["history"] + patient_key, -HISTORY_POINTS, -1)
        replies = await pipe.execute() if ranked else []
    patients, expired = [], 0
    for i, (patient_key, rank) in enumerate(ranked):
        row = patient_row(patient_key, rank, replies[2 * i], replies[2 * i + 1])
        if row is None:
            expired += 1
        else:
            patients.append(row)
    return {"patients": patients, "expired": expired, "generated_at": _now()}


# --- handlers ------------------------------------------------------------------------------------

async def page(request: web.Request) -> web.StreamResponse:
    return web.Response(body=PAGE.read_bytes(), content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)


async def board(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise web.HTTPBadRequest(text="limit must be an integer") from None
    limit = max(1, min(limit, MAX_LIMIT))
    started = time.perf_counter()
    result = await read_board(request.app[REDIS], request.app[PREFIX], limit)
    log.debug("dashboard board", patients=len(result["patients"]), expired=result["expired"],
              ms=round((time.perf_counter() - started) * 1000, 1))
    return web.json_response(result, headers=NO_STORE)


async def health(request: web.Request) -> web.Response:
    try:
        await request.app[REDIS].ping()
    except Exception as exc:  # noqa: BLE001 - any Redis failure means "not healthy"
        log.warning("dashboard health: redis unavailable", error=type(exc).__name__)
        return web.json_response({"status": "unavailable", "error": type(exc).__name__}, status=503, headers=NO_STORE)
    return web.json_response({"status": "ok"}, headers=NO_STORE)


async def _start_id(redis: aioredis.Redis, stream: str, last_event_id: str | None) -> str:
    """Where to read from: after the browser's Last-Event-ID when it reconnects, else after the newest
    entry now (XREAD's "$", pinned to an id so nothing added between two XREADs is missed)."""
    if last_event_id and all(part.isdigit() for part in last_event_id.split("-", 1)):
        return last_event_id
    newest = await redis.xrevrange(stream, count=1)
    return newest[0][0] if newest else "0-0"


async def events(request: web.Request) -> web.StreamResponse:
    redis, stream = request.app[REDIS], keys(request.app[PREFIX])["alerts"]
    keepalive_ms = int(request.app[KEEPALIVE] * 1000)
    last_id = await _start_id(redis, stream, request.headers.get("Last-Event-ID"))
    response = web.StreamResponse(headers={**NO_STORE, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    await response.prepare(request)  # the browser's "open" means the starting point is fixed
    task = asyncio.current_task()
    assert task is not None
    streams = request.app[STREAMS]
    streams.add(task)
    sent, started = 0, time.monotonic()
    log.info("dashboard events: client connected", clients=len(streams))
    try:
        await response.write(b"retry: 3000\n: connected\n\n")
        while True:
            reply = await redis.xread({stream: last_id}, count=100, block=keepalive_ms)
            if not reply:
                await response.write(b": keep-alive\n\n")
                continue
            chunks = []
            for entry_id, fields in reply[0][1]:
                last_id = entry_id
                data = fields.get("alert")
                if data is None:
                    continue
                # SSE data lines cannot hold a newline; the alert is JSON, so re-encode it on one line
                if "\n" in data or "\r" in data:
                    data = json.dumps(_json_or(data, None))
                chunks.append(f"id: {entry_id}\nevent: alert\ndata: {data}\n\n")
            if chunks:
                await response.write("".join(chunks).encode())
                sent += len(chunks)
    except ConnectionResetError:
        pass  # the browser went away (a shutdown cancels the task instead, and that propagates)
    finally:
        streams.discard(task)
        log.info("dashboard events: client gone", alerts_sent=sent, seconds=round(time.monotonic() - started, 1),
                 clients=len(streams))
    return response


# --- the app -------------------------------------------------------------------------------------

def create_app(settings: Settings, *, keepalive_s: float = KEEPALIVE_S) -> web.Application:
    app = web.Application()
    app[PREFIX] = settings.redis_key_prefix
    app[KEEPALIVE] = keepalive_s
    app[STREAMS] = set()

    async def connect(app: web.Application) -> None:
        # no socket timeout: XREAD blocks up to keepalive_s; each open event stream holds one pooled connection
        app[REDIS] = async_redis_client(settings, decode_responses=True, health_check_interval=30)

    async def end_streams(app: web.Application) -> None:
        # event streams never end by themselves: cancel them so a shutdown does not wait them out
        for task in list(app[STREAMS]):
            task.cancel()

    async def close(app: web.Application) -> None:
        await app[REDIS].aclose()

    app.on_startup.append(connect)
    app.on_shutdown.append(end_streams)
    app.on_cleanup.append(close)
    app.router.add_get("/", page)
    app.router.add_get("/api/board", board)
    app.router.add_get("/api/events", events)
    app.router.add_get("/health", health)
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    """Run the dashboard until interrupted (`clinstream dashboard`)."""
    log.info("dashboard listening", host=host, port=port, url=f"http://{host}:{port}/")
    web.run_app(create_app(settings), host=host, port=port, access_log=None, print=None, shutdown_timeout=5)
