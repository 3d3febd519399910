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


# --- operations: Prometheus scrapes the stages' metrics ports; Grafana's dashboard queries metrics the code exports

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers left once strings, label matchers, grouping clauses,
    range selectors, function calls and keywords are taken out."""
    import re

    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        rest = expr[match.end():].lstrip()
        if rest.startswith("(") or match.group() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def dashboard_exprs() -> list[str]:
    import json

    dashboards = sorted((REPO_ROOT / "docker" / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    exprs = []
    for path in dashboards:
        dash = json.loads(path.read_text())
        panels = [p for p in dash["panels"] if p["type"] != "row"]
        assert panels, path
        for panel in panels:
            assert panel["targets"], panel["title"]
            exprs += [t["expr"] for t in panel["targets"]]
    return exprs


def test_promql_metric_names():
    assert promql_metric_names('histogram_quantile(0.95, sum by (le, step) (rate(clinstream_inference_seconds_bucket[5m])))') == {
        "clinstream_inference_seconds_bucket"}
    assert promql_metric_names('sum(rate(a_total{job=~"x-.*"}[1m])) / on (job) b') == {"a_total", "b"}


def test_dashboard_queries_only_exported_metrics():
    """Every metric a Grafana panel queries is one the stages export, and every clinstream metric has a panel."""
    from streams.metrics import REGISTRY, exported_names

    exported = exported_names()
    used = set()
    for expr in dashboard_exprs():
        names = promql_metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{expr!r} queries {names - exported}, which no stage exports"
        used |= names
    families = {f.name for f in REGISTRY.collect() if f.name.startswith("clinstream_")}
    unshown = {f for f in families if not any(u == f or u.startswith(f + "_") for u in used)}
    assert not unshown, f"no dashboard panel shows {unshown}"


def test_prometheus_scrapes_the_stages_metrics_ports():
    """Prometheus (mounted config) scrapes each stage's service on the metrics port compose gives that stage; Grafana
    gets the Prometheus data source and the dashboards folder; the dashboards use that data source."""
    spec = load()
    services = spec["services"]
    prom = services["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prom["volumes"])
    config_path = COMPOSE.parent / next(src for src, dst in mounts.items() if dst == "/etc/prometheus/prometheus.yml")
    config = yaml.safe_load(config_path.read_text())
    targets = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets |= {(name, int(sd["port"])) for name in sd["names"]}
        for static in job.get("static_configs", []):
            targets |= {(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in static["targets"]}
    for stage in ("normalizer", "inference"):
        env = services[stage]["environment"]
        port = int(env[f"CLINSTREAM_METRICS_PORT_{stage.upper()}"])
        assert port and (stage, port) in targets, f"Prometheus does not scrape {stage}:{port}"
        assert env["CLINSTREAM_METRICS_HOST"] == "0.0.0.0"  # reachable from the Prometheus container
        assert f":{port}/health" in " ".join(services[stage]["healthcheck"]["test"])
        assert stage in prom["depends_on"]

    grafana = services["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    provisioning = COMPOSE.parent / next(src for src, dst in mounts.items() if dst == "/etc/grafana/provisioning")
    dashboards = COMPOSE.parent / next(src for src, dst in mounts.items() if dst == "/var/lib/grafana/dashboards")
    assert any(dashboards.glob("*.json"))
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())["datasources"]
    assert sources[0]["url"] == "http://prometheus:9090" and "9090:9090" in prom["ports"]
    provider = yaml.safe_load((provisioning / "dashboards" / "clinstream.yaml").read_text())["providers"][0]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    import json

    for path in dashboards.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == sources[0]["uid"], panel["title"]
