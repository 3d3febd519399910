"""The local services: a real Kafka broker in KRaft mode and a real Redis, started idempotently."""

import time

import pytest
import redis
from kafka import KafkaAdminClient

from clinstream import services
from streams.topics import ALL, topic_name

pytestmark = pytest.mark.integration


def test_up_is_idempotent_and_status_reports_both(service_settings):
    """A second `up` on running services starts nothing new and returns at once."""
    started = time.monotonic()
    rows = services.up(service_settings)
    assert time.monotonic() - started < 10
    assert {r.name: r.up for r in rows} == {"kafka": True, "redis": True}
    assert redis.Redis.from_url(service_settings.redis).ping()


def test_topics_exist_with_their_partition_count(service_settings):
    """Every pipeline topic is created with the configured number of partitions."""
    admin = KafkaAdminClient(bootstrap_servers=service_settings.bootstrap)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([topic_name(s, service_settings) for s in ALL])}
    finally:
        admin.close()
    assert described == {topic_name(s, service_settings): service_settings.partitions for s in ALL}


def test_cluster_ids_never_look_like_an_option():
    """The storage tool reads a leading "-" as an option: no cluster id may start with one."""
    from clinstream.services import new_cluster_id

    ids = [new_cluster_id() for _ in range(5000)]
    assert not [i for i in ids if i.startswith("-")] and all(len(i) == 22 for i in ids)


def _state(pid: int) -> str:
    stat = open(f"/proc/{pid}/stat").read()
    return stat[stat.rindex(")") + 2]


def test_a_service_that_exited_under_this_process_is_not_alive(tmp_path):
    """A service this process started and that has exited is a zombie until reaped: it still answers
    kill(pid, 0), and `_stop` used to wait out its whole timeout for it (20 s per service)."""
    import os
    import signal
    import subprocess

    child = subprocess.Popen(["sleep", "60"])
    pidfile = tmp_path / "service.pid"
    pidfile.write_text(str(child.pid))
    assert services._pid_alive(pidfile) == child.pid
    os.kill(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _state(child.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(child.pid) == "Z"
    assert services._pid_alive(pidfile) is None
    services._stop(pidfile)
    assert not pidfile.exists()
