"""`clinstream alerts tail`: the formatter and the bounded de-duplication without Kafka; then the command
against the real broker, reading alerts published by hand to the session's alerts topic."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from rich.console import Console

from clinstream.alerts_tail import RecentIds, format_alert, matches
from clinstream.envelope import Alert
from processors.alerting import alert_id

P1, P2 = "TAILHOSP|0000001", "TAILHOSP|0000002"


def alert(patient: str, flag: str, kind: str = "raised", **fields) -> dict:
    """An alert as the worker publishes it: the Alert model dumped to JSON."""
    base = dict(alert_id=alert_id(patient, flag, 1, kind), kind=kind, patient_key=patient, flag=flag, source="news2", episode=1,
                message_id=f"MSG-{flag}", observed_at="2025-03-01T08:30:00+00:00", raised_at="2025-03-01T08:30:02+00:00",
                score=None, band=None, evidence=[])
    return Alert(**{**base, **fields}).model_dump(mode="json")


def plain(renderable) -> str:
    console = Console(width=200, color_system=None, record=True)
    console.print(renderable, soft_wrap=True)
    return console.export_text()


def style_of(text, word: str) -> str:
    start = text.plain.index(word)
    return " ".join(str(s.style) for s in text.spans if s.start <= start < s.end)


def test_raised_alert_shows_header_evidence_and_missing_inputs():
    a = alert(P1, "news2_high", score=8, band="high", components={"respiratory_rate": 3, "spo2": 3, "heart_rate": 2},
              evidence=["respiratory rate 26 /min at 2025-03-01T08:30:00+00:00 [3 points]", "SpO2 88 % at 2025-03-01T08:30:00+00:00 [3 points]"],
              missing=["consciousness", "temperature_c"], stale=["systolic_bp"])
    text = format_alert(a)
    lines = plain(text).splitlines()
    header = lines[0]
    assert header.startswith("RAISED news2_high")
    for part in ("episode 1", f"patient {P1}", "NEWS2 8", "band high", "observed 2025-03-01T08:30:00+00:00"):
        assert part in header
    # evidence indented, brackets kept as written (Text parts, not markup)
    assert lines[1:3] == ["    respiratory rate 26 /min at 2025-03-01T08:30:00+00:00 [3 points]",
                          "    SpO2 88 % at 2025-03-01T08:30:00+00:00 [3 points]"]
    assert lines[3] == "    ! score computed without: consciousness, temperature_c (missing); systolic_bp (stale)"
    assert len(lines) == 4
    assert style_of(text, "RAISED") == "bold red"
    assert style_of(text, "score computed without") == "yellow"


def test_band_colours_follow_news2():
    medium = format_alert(alert(P1, "news2_medium", score=5, band="medium"))
    low_medium = format_alert(alert(P1, "news2_low_medium", score=3, band=None))  # band inferred from the NEWS2 flag
    nlp = format_alert(alert(P1, "sepsis", source="nlp", band="low", evidence=['"sepsis" in Note/1#text']))
    assert style_of(medium, "RAISED") == "bold dark_orange"
    assert style_of(low_medium, "RAISED") == "bold yellow"
    assert style_of(nlp, "RAISED") == "bold"
    assert "NEWS2" not in nlp.plain and "band low" in nlp.plain  # no score for an NLP flag


def test_resolved_alert_is_green_without_warning():
    text = format_alert(alert(P2, "news2_medium", kind="resolved", score=1, band="low", evidence=["NEWS2 1 (low)"]))
    lines = plain(text).splitlines()
    assert lines[0].startswith("RESOLVED news2_medium") and f"patient {P2}" in lines[0] and "NEWS2 1" in lines[0]
    assert lines[1:] == ["    NEWS2 1 (low)"]
    assert style_of(text, "RESOLVED") == "bold green"


def test_recent_ids_are_bounded_and_forget_the_oldest():
    recent = RecentIds(size=3)
    assert [recent.seen(i) for i in "abca"] == [False, False, False, True]
    assert recent.seen("d") is False and len(recent) == 3  # "b" (least recently seen) is forgotten
    assert recent.seen("b") is False and recent.seen("a") is True


def test_filters():
    a = alert(P1, "news2_high")
    assert matches(a) and matches(a, [P1]) and matches(a, flags=["news2_*"]) and matches(a, [P2, P1], ["sepsis", "news2_high"])
    assert not matches(a, [P2]) and not matches(a, flags=["sepsis"])


# --- against the broker ------------------------------------------------------------------------------


def run_tail(settings, *args: str) -> subprocess.CompletedProcess[str]:
    from clinstream.run import settings_env

    env = {**settings_env(settings), "CLINSTREAM_LOG_LEVEL": "debug"}  # the start/stop log lines too: none may name a patient
    return subprocess.run([sys.executable, "-m", "clinstream.cli", "alerts", "tail", "--from-beginning", "--no-follow", *args],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_tail_reads_the_topic_deduplicates_and_filters(service_settings):
    import uuid

    from kafka import KafkaProducer

    from streams import topics
    from streams.topics import ensure_topics

    # topics of its own: the session's alerts topic also holds the alerts of the pipeline tests run before this one
    service_settings = service_settings.model_copy(update={"topic_prefix": f"tail-{uuid.uuid4().hex[:8]}."})
    ensure_topics(service_settings)
    high = alert(P1, "news2_high", score=7, band="high", evidence=["respiratory rate 25 /min"], missing=["consciousness"])
    sepsis = alert(P2, "sepsis", source="nlp", band="low", evidence=['"sepsis" in DocumentReference/9#content'])
    producer = KafkaProducer(bootstrap_servers=service_settings.bootstrap, acks="all")
    name = topics.topic_name(topics.ALERTS, service_settings)
    for a in (high, sepsis, high):  # the third is a replay: same alert_id
        producer.send(name, key=a["patient_key"].encode(), value=json.dumps(a).encode())
    producer.flush()
    producer.close()

    everything = run_tail(service_settings)
    assert everything.returncode == 0, everything.stderr
    headers = [line for line in everything.stdout.splitlines() if line.startswith(("RAISED", "RESOLVED"))]
    assert len(headers) == 2, everything.stdout
    assert any("news2_high" in h and P1 in h for h in headers) and any("sepsis" in h and P2 in h for h in headers)
    assert "score computed without: consciousness (missing)" in everything.stdout

    by_patient = run_tail(service_settings, "--patient", P2)
    assert by_patient.returncode == 0, by_patient.stderr
    assert [line.split()[1] for line in by_patient.stdout.splitlines() if line.startswith("RAISED")] == ["sepsis"]
    assert "alerts tail started" in by_patient.stderr and P2 not in by_patient.stderr and P1 not in by_patient.stderr

    as_json = run_tail(service_settings, "--json", "--flag", "news2_*")
    assert as_json.returncode == 0, as_json.stderr
    parsed = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert parsed == [high]


@pytest.mark.integration
def test_tail_without_the_topic_says_so(service_settings):
    missing = service_settings.model_copy(update={"topic_prefix": service_settings.topic_prefix + "absent."})
    result = run_tail(missing)
    assert result.returncode == 1 and "does not exist" in result.stderr


@pytest.mark.integration
def test_follow_prints_as_alerts_arrive_and_ctrl_c_exits_cleanly(service_settings):
    """Each alert reaches a pipe as it arrives (no buffering until exit); SIGINT ends with status 0, no traceback."""
    import signal

    from kafka import KafkaProducer

    from clinstream.run import settings_env
    from streams import topics

    late = alert(P1, "critical_potassium", source="critical_lab", evidence=["potassium 7.1 mmol/L"])
    env = {**settings_env(service_settings), "CLINSTREAM_LOG_LEVEL": "debug"}
    proc = subprocess.Popen([sys.executable, "-m", "clinstream.cli", "alerts", "tail", "--json", "--flag", "critical_*"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while "alerts tail started" not in proc.stderr.readline():  # positioned at the end offsets: what comes next shows
            assert proc.poll() is None, proc.stderr.read()
        producer = KafkaProducer(bootstrap_servers=service_settings.bootstrap, acks="all")
        producer.send(topics.topic_name(topics.ALERTS, service_settings), key=P1.encode(), value=json.dumps(late).encode())
        producer.flush()
        producer.close()
        assert json.loads(proc.stdout.readline()) == late
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "Traceback" not in err and out == ""
