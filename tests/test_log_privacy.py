"""No patient data and no secret in the stages' logs, at the most talkative level.

Both stages run as worker processes with CLINSTREAM_LOG_LEVEL=debug (their own topics and consumer groups,
beside the session's pipeline, which runs at the default level) and with a Redis URL carrying a password.
A seeded synthetic feed with malformed messages goes through them; the patients' names, MRNs and other
identifiers, birth dates, addresses, phone numbers and note sentences are read back out of the generated
message bytes (PID, PV1-19 and OBX TX fields; FHIR Patient resources), and every line of both log files
is searched for them. A failure names the kind of value, the file and the line, never the value.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict

import pytest

from clinstream.logs import redact_url
from clinstream.run import Collector, publish, start_stage, stop_stages, wait_ready
from clinstream.synthetic import generate
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration

ESCAPES = {"\\F\\": "|", "\\S\\": "^", "\\T\\": "&", "\\R\\": "~", "\\E\\": "\\"}


def _unescape(text: str) -> str:
    return re.sub(r"\\[FSTRE]\\", lambda m: ESCAPES[m.group(0)], text)


def _comps(field: str) -> list[str]:
    return [_unescape(c) for c in field.split("~")[0].split("^")]


def _hl7_values(text: str, found: dict[str, set[str]]) -> None:
    for segment in re.split(r"\r\n|\r|\n", text):
        fields = segment.split("|")
        get = lambda n: fields[n] if n < len(fields) else ""  # noqa: E731
        if fields[0] == "PID":
            found["MRN"].add(_comps(get(3))[0])
            name = _comps(get(5))
            found["patient name"].update(name[:3])
            dob = get(7)[:8]
            if len(dob) == 8:
                found["birth date"].update({dob, f"{dob[:4]}-{dob[4:6]}-{dob[6:]}"})
            address = _comps(get(11))
            found["address"].update([address[0]] + address[2:3] + address[4:5])  # street, city, postal code
            phone = _comps(get(13))
            found["phone number"].update(phone[6:7] + ([phone[5] + phone[6], f"{phone[5]}-{phone[6]}"] if len(phone) > 6 else []))
            found["account or visit number"].add(_comps(get(18))[0])
        elif fields[0] == "PV1":
            found["account or visit number"].add(_comps(get(19))[0])
        elif fields[0] == "OBX" and get(2) == "TX":
            found["note text"].add(_unescape(get(5)))


def _fhir_values(data: object, found: dict[str, set[str]]) -> None:
    if isinstance(data, dict):
        if data.get("resourceType") == "Patient":
            found["MRN"].update(i.get("value", "") for i in data.get("identifier", []))
            for name in data.get("name", []):
                found["patient name"].update([name.get("family", ""), *name.get("given", [])])
            found["birth date"].add(data.get("birthDate", ""))
            found["note text"].update(n.get("text", "") for n in data.get("note", []))
        for value in data.values():
            _fhir_values(value, found)
    elif isinstance(data, list):
        for value in data:
            _fhir_values(value, found)


def patient_values(messages) -> dict[str, set[str]]:
    """kind -> the values of that kind found in the messages' bytes (valid and malformed alike)."""
    found: dict[str, set[str]] = defaultdict(set)
    for m in messages:
        try:
            text = m.value.decode("utf-8")
        except UnicodeDecodeError:
            text = m.value.decode("latin-1")
        if m.topic == "fhir":
            try:
                _fhir_values(json.loads(text), found)
            except ValueError:
                pass  # cut-off JSON: its patient's values come from the patient's other messages
        else:
            _hl7_values(text, found)
    # a value too short to mean anything (a middle initial) would match any log line
    return {kind: {v.strip() for v in values if len(v.strip()) >= 3} for kind, values in found.items()}


def matchers(values: dict[str, set[str]]) -> dict[str, re.Pattern[str]]:
    """One pattern per kind; each value also in its JSON-escaped spelling (the logs are JSON lines), and note
    sentences also by their first 24 characters (a log cutting a note short still leaks it)."""
    out = {}
    for kind, vals in values.items():
        spellings = set()
        for v in vals:
            forms = {v, v[:24]} if kind == "note text" and len(v) > 24 else {v}
            spellings |= forms | {json.dumps(f)[1:-1] for f in forms}
        alternation = "|".join(re.escape(s) for s in sorted(spellings, key=len, reverse=True))
        end = "" if kind == "note text" else "(?![A-Za-z0-9])"  # a prefix may end inside a word
        out[kind] = re.compile(rf"(?<![A-Za-z0-9])(?:{alternation}){end}")
    return out


def scan(paths, patterns: dict[str, re.Pattern[str]], secret: str) -> tuple[dict[tuple[str, str], list[int]], int]:
    """((kind, file name) -> line numbers where a value of that kind appears, debug lines seen)."""
    leaks: dict[tuple[str, str], list[int]] = defaultdict(list)
    debug_lines = 0
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            debug_lines += '"level": "debug"' in line
            for kind, pattern in patterns.items():
                if pattern.search(line):
                    leaks[(kind, path.name)].append(number)
            if secret in line:
                leaks[("Redis password", path.name)].append(number)
    return leaks, debug_lines


def test_the_scan_finds_each_kind_of_value(tmp_path):
    """The scanner itself: a log line carrying any kind of value is caught, whatever the spelling."""
    feed = generate(60, seed=33, malformed_share=0.1)
    values = patient_values(feed.messages)
    note = sorted(values["note text"], key=len)[-1]
    planted = {kind: sorted(v)[0] for kind, v in values.items()}
    log = tmp_path / "stage.log"
    lines = ['{"event": "normalized batch", "records": 12, "level": "debug"}']
    lines += [json.dumps({"event": "oops", "value": value}) for value in planted.values()]
    lines += [json.dumps({"event": "note", "text": note[:30] + "..."}), '{"event": "url", "redis": "redis://default:pw-123@h/0"}']
    log.write_text("\n".join(lines) + "\n")
    leaks, debug_lines = scan([log], matchers(values), "pw-123")
    assert debug_lines == 1
    found = {kind for kind, _ in leaks}
    assert found == set(planted) | {"Redis password"}
    assert leaks[("note text", "stage.log")][-1] == len(lines) - 1  # a note cut short is still caught


def test_patient_values_are_extracted_from_the_feed():
    feed = generate(60, seed=33, malformed_share=0.1)
    values = patient_values(feed.messages)
    assert {"MRN", "patient name", "birth date", "address", "phone number", "account or visit number", "note text"} <= set(values)
    keys = {m.key.split("|", 1)[1] for m in feed.messages}
    assert keys <= values["MRN"]  # every patient's MRN, from PID-3 or the FHIR Patient
    line = '{"event": "dead-lettered", "key": "GENHOSP|' + sorted(keys)[0] + '"}'
    assert matchers(values)["MRN"].search(line)


def test_no_patient_data_or_secret_in_debug_logs(service_settings):
    run = uuid.uuid4().hex[:8]
    secret = f"pw-{uuid.uuid4().hex}"
    settings = service_settings.model_copy(update={
        "topic_prefix": f"{service_settings.topic_prefix}privacy-{run}.",
        "app_id": f"{service_settings.app_id}-privacy-{run}",
        "redis_key_prefix": f"{service_settings.redis_key_prefix}-privacy-{run}",
        "log_level": "debug",
        "max_text_chars": 400,  # longer notes are cut for the models: that path logs too
        # Redis' default user has no password and takes any: the stages authenticate with this one
        "redis_url": f"redis://default:{secret}@127.0.0.1:{service_settings.redis_port}/0",
    })
    ensure_topics(settings)
    logs = settings.state_dir / "logs" / settings.app_id
    paths = [logs / "normalizer.log", logs / "inference.log"]
    feed = generate(300, seed=33, malformed_share=0.04)
    valid = sum(m.valid for m in feed.messages)
    procs = [start_stage(stage, settings, path) for stage, path in zip(("normalizer", "inference"), paths)]
    try:
        wait_ready(paths, procs, timeout=300)
        collector = Collector(settings)
        try:
            publish(settings, feed.messages)
            assert collector.wait_for(valid, len(feed.messages) - valid, timeout=480), "not every message came out"
            assert any(n["truncated_from"] for e in collector.outputs.enriched for n in e["narratives"])
        finally:
            collector.close()
    finally:
        stop_stages(procs)  # shutdown lines are scanned too

    leaks, debug_lines = scan(paths, matchers(patient_values(feed.messages)), secret)
    assert debug_lines, "the stages did not log at debug level: the test would prove nothing"
    assert not leaks, "patient data or a secret in the logs: " + "; ".join(
        f"{kind} in {name} at line(s) {', '.join(map(str, lines[:10]))}" for (kind, name), lines in sorted(leaks.items()))


def test_service_status_never_shows_the_redis_password():
    """`clinstream services status` prints the addresses: REDIS_URL's password never."""
    from clinstream import services
    from clinstream.settings import Settings

    settings = Settings(kafka_bootstrap="127.0.0.1:1", redis_url="redis://default:s3cret-value@127.0.0.1:1/0")
    shown = {row.name: row.address for row in services.status(settings)}
    assert "s3cret-value" not in shown["redis"] and shown["redis"] == "redis://default:***@127.0.0.1:1/0"
    assert redact_url("redis://:pw@h:1/0?password=x") == "redis://:***@h:1/0?password=***"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
