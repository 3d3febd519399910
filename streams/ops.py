"""What operators see of a stage process: /metrics (Prometheus), /health and /ready, on the stage's own port.

A small aiohttp server runs on the stage's event loop as a child service of its faust app (faust's own web
server stays off: it would bring its routes and its table views along), started before the consumer so /health
answers while the stage joins its group or loads its models. Every PROBE_INTERVAL_S it probes the stage's
dependencies (Kafka: a metadata request through the app's producer; inference: Redis PING) and samples the
consumer lag; /ready probes again on the spot.

/health: 200 while the process runs; `status` is "starting" until the stage consumes, then "degraded" while a
dependency fails (a Redis outage: the worker retries and holds its batch meanwhile), else "ok". /ready: 200 once the stage consumes (joined its group; the
inference worker with its models loaded) and every dependency answers; 503 with `status` "starting" or
"degraded" and a `reason` otherwise. Bodies name dependencies and exception types, never message content.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiohttp import web
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clinstream.settings import Settings
from streams import metrics

log = structlog.get_logger()

PROBE_INTERVAL_S = 5.0
PROBE_TIMEOUT_S = 2.0


@dataclass
class Health:
    """One stage process's health: set by the stage (consuming), the app's signals (assigned), the probes and the
    worker's Redis retries (failing); read by /health, /ready and the clinstream_ready / dependency_up gauges."""

    stage: str
    consuming: bool = False  # the agent iterates its stream (inference: after its models loaded)
    assigned: bool = False  # the consumer joined its group (an empty assignment counts: more processes than partitions)
    checks: dict[str, Callable[[], Awaitable[Any]]] = field(default_factory=dict)  # dependency -> probe
    failing: dict[str, str] = field(default_factory=dict)  # dependency or operation -> exception type, while it fails
    started_at: float = field(default_factory=time.time)

    def failed(self, what: str, exc: BaseException) -> None:
        self.failing[what] = type(exc).__name__
        if what in self.checks:
            metrics.DEPENDENCY_UP.labels(self.stage, what).set(0)

    def ok(self, what: str) -> None:
        self.failing.pop(what, None)
        if what in self.checks:
            metrics.DEPENDENCY_UP.labels(self.stage, what).set(1)

    async def probe(self, timeout: float = PROBE_TIMEOUT_S) -> None:
        """Every dependency at once, each within `timeout`."""
        names = list(self.checks)
        results = await asyncio.gather(*(asyncio.wait_for(self.checks[n](), timeout) for n in names), return_exceptions=True)
        for name, result in zip(names, results):
            if isinstance(result, BaseException):
                self.failed(name, result)
            else:
                self.ok(name)
        metrics.READY.labels(self.stage).set(1 if self.is_ready() else 0)

    def is_ready(self) -> bool:
        return self.consuming and self.assigned and not self.failing

    def health(self) -> dict[str, Any]:
        status = "starting" if not (self.assigned and self.consuming) else "degraded" if self.failing else "ok"
        return {"status": status, "stage": self.stage, "consuming": self.consuming,
                "checks": sorted(self.checks), "failing": dict(self.failing), "uptime_s": round(time.time() - self.started_at, 1)}

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        await self.probe()
        body: dict[str, Any] = {"stage": self.stage, "checks": sorted(self.checks), "failing": dict(self.failing)}
        if not self.assigned:
            return 503, {**body, "status": "starting", "reason": "waiting for the consumer group to assign partitions"}
        if not self.consuming:
            reason = "loading models" if self.stage == "inference" else "starting the agent"
            return 503, {**body, "status": "starting", "reason": reason}
        if self.failing:
            return 503, {**body, "status": "degraded", "reason": ", ".join(f"{k}: {v}" for k, v in sorted(self.failing.items()))}
        return 200, {**body, "status": "ready"}


def routes(health: Health) -> web.Application:
    async def metrics_page(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health_page(request: web.Request) -> web.Response:
        return web.json_response(health.health())

    async def ready_page(request: web.Request) -> web.Response:
        status, body = await health.readiness()
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/health", health_page)
    app.router.add_get("/ready", ready_page)
    return app


async def sample_lag(app: Any, stage: str) -> None:
    """clinstream_consumer_lag for the partitions this process holds: end offsets asked of the broker, the
    committed offsets faust keeps (it commits every broker_commit_interval), the fetch position before any commit."""
    consumer = app.consumer
    assigned = consumer.assignment()
    if not assigned:
        metrics.set_lag(stage, {})
        return
    ends = await consumer.highwaters(*assigned)
    committed_by_tp = getattr(consumer, "_committed_offset", {})  # faust's own record of what it committed
    committed = {(tp.topic, tp.partition): committed_by_tp.get(tp) for tp in assigned}
    positions = {}
    for tp in assigned:
        if committed[(tp.topic, tp.partition)] is None:
            positions[(tp.topic, tp.partition)] = await consumer.position(tp)
    metrics.set_lag(stage, metrics.lag({(tp.topic, tp.partition): end for tp, end in ends.items()}, committed, positions))


class OpsServer(Service):
    """The HTTP server and the periodic probe, started and stopped with the faust app."""

    def __init__(self, app: Any, health: Health, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.faust_app, self.health, self.host, self.port = app, health, host, port
        self.runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        runner = web.AppRunner(routes(self.health), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:  # the stage goes on unobserved rather than not at all
            await runner.cleanup()
            log.error("metrics server not started", stage=self.health.stage, port=self.port, error=str(exc))
            return
        self.runner = runner
        log.info("metrics server listening", stage=self.health.stage, host=self.host, port=self.port)

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @Service.task
    async def _probe_loop(self) -> None:
        while not self.should_stop:
            await self.health.probe()
            try:
                await asyncio.wait_for(sample_lag(self.faust_app, self.health.stage), PROBE_TIMEOUT_S * 2)
            except Exception as exc:  # noqa: BLE001 - not started yet, rebalancing, broker away: next round
                log.debug("consumer lag not sampled", stage=self.health.stage, error=type(exc).__name__)
            await self.sleep(PROBE_INTERVAL_S)


async def kafka_ping(app: Any) -> None:
    """A metadata request to any broker, through the producer the stage delivers with."""
    client = app.producer._ensure_producer().client
    if not client.cluster.brokers():  # still bootstrapping: asking now would only log aiokafka's error
        raise ConnectionError("kafka client not bootstrapped yet")
    await client.fetch_all_metadata()


def metrics_port(settings: Settings, stage: str) -> int:
    return int(getattr(settings, f"metrics_port_{stage}", 0) or 0)


def install(app: Any, settings: Settings, stage: str) -> Health:
    """The stage's Health, fed by the app's assignment signal, with the Kafka probe; and, unless the stage's
    metrics port is 0, the ops server as a child service of the app."""
    health = Health(stage)
    health.checks["kafka"] = lambda: kafka_ping(app)

    @app.on_partitions_assigned.connect
    async def assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        health.assigned = True

    port = metrics_port(settings, stage)
    if port:
        app.add_dependency(OpsServer(app, health, settings.metrics_host, port))
    return health
