"""The compose rig, checked without a Docker engine: it parses, every clinstream service runs a real
CLI command, and every environment variable it sets is one the settings read."""

from pathlib import Path

import typer.main
import yaml

from clinstream.cli import app
from clinstream.settings import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "docker" / "compose.yaml"


def load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def clinstream_services(spec: dict) -> dict:
    return {name: s for name, s in spec["services"].items() if s.get("image") == "clinstream:local"}


def settings_env_names() -> set[str]:
    names = {f"CLINSTREAM_{name.upper()}" for name in Settings.model_fields}
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(getattr(alias, "choices", []) or [])
    return names


def test_compose_parses_and_has_the_stages():
    """The file parses and runs the broker, Redis, both stages and the generator."""
    services = load()["services"]
    assert {"kafka", "redis", "normalizer", "inference", "generator", "topics"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft


def test_every_command_exists_in_the_cli():
    """Each clinstream service's command is a command (or sub-command) of the CLI."""
    root = typer.main.get_command(app)
    for name, service in clinstream_services(load()).items():
        command = service["command"]
        group = root
        assert command[0] in group.commands, f"{name}: clinstream {command[0]} does not exist"
        if command[0] == "worker":
            from streams.stages import STAGES

            assert command[1] in STAGES


def test_env_names_are_settings():
    """Every variable set on a clinstream service is read by Settings, and the addresses line up."""
    known = settings_env_names()
    spec = load()
    for name, service in clinstream_services(spec).items():
        env = service["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"
        assert env["KAFKA_BOOTSTRAP"].split(":")[0] in spec["services"]
        assert env["REDIS_URL"].split("//")[1].split(":")[0] in spec["services"]
    advertised = spec["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert clinstream_services(spec)["normalizer"]["environment"]["KAFKA_BOOTSTRAP"] in advertised


def test_dockerfile_copies_every_package():
    """The image holds every top-level package the CLI imports, and the model."""
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    for folder in ("clinstream", "streams", "processors", "fhir_mappers", "models"):
        assert f"COPY {folder} " in dockerfile
        assert (REPO_ROOT / folder).is_dir()
