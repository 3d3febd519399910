"""Session fixtures: the real local Kafka broker and Redis (started once, on their own ports, with a
topic prefix unique to the session), and both pipeline stages running as real worker processes."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from clinstream.settings import REPO_ROOT, Settings

CORPORA = REPO_ROOT.parent / "shared" / "corpora"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus(name: str) -> Path:
    """A folder of ../shared/corpora; skipped with a reason outside CI when absent, an error in CI."""
    path = CORPORA / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared beside the checkout")
        pytest.skip(f"{path} is absent (it ships outside the repo, in ../shared); CI runs this test")
    return path


@pytest.fixture(scope="session")
def service_settings() -> Settings:
    from clinstream import services
    from streams.topics import ensure_topics

    run = uuid.uuid4().hex[:8]
    settings = Settings(
        state_dir=REPO_ROOT / ".cache" / "test-services",
        kafka_port=int(os.environ.get("CLINSTREAM_TEST_KAFKA_PORT", 29092)),
        kafka_controller_port=int(os.environ.get("CLINSTREAM_TEST_KAFKA_CONTROLLER_PORT", 29093)),
        redis_port=int(os.environ.get("CLINSTREAM_TEST_REDIS_PORT", 26379)),
        topic_prefix=f"test-{run}.",
        app_id=f"clinstream-test-{run}",
        redis_key_prefix=f"clinstream-test-{run}",
        partitions=4,
        batch_max_wait_s=0.02,
        # each stage's /metrics, /health, /ready on a port free now, so sessions beside this one never collide
        metrics_port_normalizer=free_port(),
        metrics_port_inference=free_port(),
    )
    # services another session already runs (a second pytest beside this one) are used and left running
    already_up = all(s.up for s in services.status(settings))
    services.up(settings)
    ensure_topics(settings)
    yield settings
    if not already_up and not os.environ.get("CLINSTREAM_TEST_KEEP_SERVICES"):
        services.down(settings)


@pytest.fixture(scope="session")
def pipeline(service_settings: Settings):
    """Both stages as worker processes in their consumer groups; yields the settings they run with."""
    from clinstream.run import start_stage, stop_stages, wait_ready

    logs = service_settings.state_dir / "logs" / service_settings.app_id
    paths = [logs / "normalizer.log", logs / "inference.log"]
    procs = [start_stage(stage, service_settings, path) for stage, path in zip(("normalizer", "inference"), paths)]
    try:
        wait_ready(paths, procs)
        yield service_settings
    finally:
        stop_stages(procs)


@pytest.fixture
def collector(service_settings: Settings):
    from clinstream.run import Collector

    c = Collector(service_settings)
    yield c
    c.close()
