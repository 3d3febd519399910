"""Per-sender overrides (issue 3): golden files per override set, the YAML checks, sender selection, and
that a sender's zone or code systems never outlive the message they were set for.

Golden cases live in tests/fhir_mappers/golden/<case>/: message.hl7, senders.yaml, expected.json (the
mapping with the overrides) and difference.json (every value that differs from the mapping without them,
as path: [without, with]). The test compares; `UPDATE_GOLDEN=1 pytest tests/fhir_mappers/test_senders.py`
rewrites expected.json and difference.json, to be reviewed in the diff before committing.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from clinstream.cli import app
from clinstream.envelope import SourceRecord
from clinstream.settings import REPO_ROOT, Settings
from fhir_mappers import MapperBug, hl7v2_to_fhir, validate_r4_bundle
from fhir_mappers import message as message_module
from fhir_mappers.datatypes import dtm, sender_context, system_uri
from fhir_mappers.senders import SenderOverrides, SenderOverridesError, load_overrides, parse_overrides
from processors.normalize import normalize

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
EXAMPLE = REPO_ROOT / "docker" / "senders.example.yaml"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def output(mapped) -> dict:
    return {"patient_key": mapped.patient_key, "sent_at": mapped.sent_at, "unmapped_segments": mapped.unmapped_segments,
            "bundle": mapped.bundle}


def flatten(value, path: str = "") -> dict:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{path}.{key}" if path else key).items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{path}[{i}]").items()}
    return {path: value}


def difference(without: dict, with_: dict) -> dict:
    a, b = flatten(without), flatten(with_)
    return {path: [a.get(path), b.get(path)] for path in sorted(a.keys() | b.keys()) if a.get(path) != b.get(path)}


def check_golden(path: Path, produced: dict) -> None:
    text = json.dumps(produced, indent=2, ensure_ascii=False) + "\n"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run UPDATE_GOLDEN=1 pytest {Path(__file__).relative_to(REPO_ROOT)} and review it"
    assert json.loads(path.read_text(encoding="utf-8")) == produced, f"{path.relative_to(REPO_ROOT)} differs (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("case", CASES)
def test_golden(case):
    """Each override set maps its message to exactly the committed Bundle, which validates as R4; and
    the same message without overrides differs exactly as difference.json says (so this can fail)."""
    folder = GOLDEN / case
    raw = (folder / "message.hl7").read_bytes()
    overrides = load_overrides(folder / "senders.yaml")
    with_ = output(hl7v2_to_fhir(raw, overrides))
    without = output(hl7v2_to_fhir(raw))
    validate_r4_bundle(with_["bundle"])
    validate_r4_bundle(without["bundle"])
    assert with_ == output(hl7v2_to_fhir(raw, overrides)), "not deterministic"
    diff = difference(without, with_)
    assert diff, f"{case}: the overrides change nothing"
    check_golden(folder / "expected.json", with_)
    check_golden(folder / "difference.json", diff)


def test_golden_cases_cover_every_override():
    assert set(CASES) >= {"timezone", "code_systems", "mrn_identifier_type", "z_segments"}


# --- what the golden files show, stated as facts (a regenerated golden cannot quietly change these)

def resources(mapped, kind):
    return [e["resource"] for e in mapped.bundle["entry"] if e["resource"]["resourceType"] == kind]


def golden(case):
    folder = GOLDEN / case
    return hl7v2_to_fhir((folder / "message.hl7").read_bytes(), load_overrides(folder / "senders.yaml"))


def test_timezone_is_dst_correct():
    m = golden("timezone")
    assert m.sent_at == "2026-01-15T08:30:00-06:00" and m.bundle["timestamp"] == "2026-01-15T08:30:00-06:00"
    assert resources(m, "Encounter")[0]["period"]["start"] == "2026-01-15T07:15:00-06:00"
    k, na, glucose, creatinine = resources(m, "Observation")
    assert k["effectiveDateTime"] == "2026-07-10T14:15:00-05:00"  # summer: CDT
    assert na["effectiveDateTime"] == "2026-07-10T14:15:00+01:00"  # an offset sent is kept
    assert glucose["effectiveDateTime"] == "2026-11-01T01:30:00-05:00"  # repeated hour: the first one
    assert creatinine["effectiveDateTime"] == "2026-03-08T02:30:00-06:00"  # skipped hour: the earlier offset
    assert resources(m, "Patient")[0]["birthDate"] == "1980-02-29"  # dates have no zone


def test_code_systems():
    m = golden("code_systems")
    k, na, hemolysis = resources(m, "Observation")
    assert [c["system"] for c in k["code"]["coding"]] == ["http://st-mary.example/fhir/CodeSystem/lab-tests", "http://loinc.org"]
    assert na["code"]["coding"][0]["system"] == "http://loinc.org"
    assert hemolysis["code"]["coding"][0]["system"] == "http://st-mary.example/fhir/CodeSystem/lab-tests"
    assert hemolysis["valueCodeableConcept"]["coding"][0]["system"] == "urn:clinstream:codesystem:99HEM"


def test_mrn_identifier_type():
    m = golden("mrn_identifier_type")
    assert m.patient_key == "NORTHCLINIC|A-778" and hl7v2_to_fhir((GOLDEN / "mrn_identifier_type" / "message.hl7").read_bytes()).patient_key == "NORTHCLINIC|55501"
    first = resources(m, "Patient")[0]["identifier"][0]
    assert first["value"] == "A-778" and first["type"]["coding"][0]["code"] == "MR"
    from processors.fhir_input import _patient_key  # the FHIR-input reader finds the same MRN

    assert _patient_key(resources(m, "Patient")[0]) == "NORTHCLINIC|A-778"


def test_z_segments():
    m = golden("z_segments")
    patient, encounter = resources(m, "Patient")[0], resources(m, "Encounter")[0]
    assert patient["extension"] == [
        {"url": "http://st-mary.example/fhir/StructureDefinition/religion-detail", "valueString": "Roman Catholic"},
        {"url": "http://st-mary.example/fhir/StructureDefinition/vip-status", "valueCode": "VIP"}]
    assert encounter["extension"] == [
        {"url": "http://st-mary.example/fhir/StructureDefinition/bed-request-time", "valueDateTime": "2026-01-15T09:00:00+00:00"},
        {"url": "http://st-mary.example/fhir/StructureDefinition/bed-priority", "valueCode": "urgent"}]
    assert m.unmapped_segments == ["ZPI", "ZXT"]
    kept = [e["valueString"] for e in m.bundle["entry"][0]["resource"]["extension"]]
    assert kept == ["ZPI|1|CATH", "ZXT|site-specific|not mapped"]


# --- Z-segment edge cases

Z_MSH = "MSH|^~\\&|APP|FAC|CLINSTREAM|CLINSTREAM|20260101103000+0000||ADT^A01|M1|P|2.5.1"
Z_PID = "PID|1||12345^^^FAC^MR||Doe^Jane||19700412|F"


def z_overrides(**z):
    return parse_overrides({"version": 1, "default": {"z_segments": z}})


def test_z_value_that_cannot_be_mapped_stays_unmapped():
    """A dateTime that does not parse, or a target the message lacks, leaves the field in the verbatim copy."""
    o = z_overrides(**{"ZAB.1": {"url": "http://x.example/a", "target": "Patient", "type": "dateTime"},
                       "ZAB.2": {"url": "http://x.example/b", "target": "Encounter"},
                       "ZAB.3": {"url": "http://x.example/c", "target": "MessageHeader", "type": "string"}})
    m = hl7v2_to_fhir("\r".join([Z_MSH, Z_PID, "ZAB|not a date|no encounter|header value"]), o)
    validate_r4_bundle(m.bundle)
    assert "extension" not in resources(m, "Patient")[0]
    header = m.bundle["entry"][0]["resource"]
    assert header["extension"] == [{"url": "http://x.example/c", "valueString": "header value"},
                                   {"url": "urn:clinstream:unmapped-segment", "valueString": "ZAB|not a date|no encounter"}]
    assert m.unmapped_segments == ["ZAB"]


def test_z_repetitions_and_escapes():
    o = z_overrides(**{"ZAB.1": {"url": "http://x.example/a", "target": "Patient"}})
    m = hl7v2_to_fhir("\r".join([Z_MSH, Z_PID, "ZAB|one \\T\\ two~three"]), o)
    assert resources(m, "Patient")[0]["extension"] == [{"url": "http://x.example/a", "valueString": "one & two"},
                                                        {"url": "http://x.example/a", "valueString": "three"}]
    assert m.unmapped_segments == []


# --- the file format

def bad(data):
    with pytest.raises(SenderOverridesError) as info:
        parse_overrides(data)
    return str(info.value)


def test_rejects_unknown_keys_everywhere():
    assert "colour: unknown key" in bad({"version": 1, "colour": "red"})
    assert "senders.0.time_zone: unknown key" in bad({"version": 1, "senders": [{"name": "a", "match": {"facility": "F"}, "time_zone": "UTC"}]})
    assert "senders.0.match.site: unknown key" in bad({"version": 1, "senders": [{"name": "a", "match": {"site": "F"}}]})
    assert "default.z_segments.ZPI.2.kind: unknown key" in bad({"version": 1, "default": {"z_segments": {"ZPI.2": {"url": "http://x.example/a", "target": "Patient", "kind": "string"}}}})


def test_rejects_bad_values():
    assert "not an IANA time zone name" in bad({"version": 1, "default": {"timezone": "America/Chicgo"}})
    assert "not an IANA time zone name" in bad({"version": 1, "default": {"timezone": "CST"}})
    assert "version" in bad({"version": 2})
    assert "version" in bad({"senders": []})
    assert "not an absolute URI" in bad({"version": 1, "default": {"code_systems": {"LOCALLAB": "LOCALLAB"}}})
    assert "not a Z-segment field" in bad({"version": 1, "default": {"z_segments": {"PID.3": {"url": "http://x.example/a", "target": "Patient"}}}})
    assert "target" in bad({"version": 1, "default": {"z_segments": {"ZPI.3": {"url": "http://x.example/a", "target": "Observation"}}}})
    assert "type" in bad({"version": 1, "default": {"z_segments": {"ZPI.3": {"url": "http://x.example/a", "target": "Patient", "type": "integer"}}}})
    assert "not an identifier type code" in bad({"version": 1, "default": {"mrn_identifier_type": "M R"}})
    assert "application (MSH-3) and/or facility (MSH-4)" in bad({"version": 1, "senders": [{"name": "a", "match": {}}]})
    assert "same match" in bad({"version": 1, "senders": [{"name": "a", "match": {"facility": "F"}}, {"name": "b", "match": {"facility": "F"}}]})
    assert "quote it in the YAML" in bad({"version": 1, "senders": [{"name": "a", "match": {"facility": 1234}}]})
    assert "named 'a'" in bad({"version": 1, "senders": [{"name": "a", "match": {"facility": "F"}}, {"name": "a", "match": {"facility": "G"}}]})


def test_load_errors_name_the_file(tmp_path):
    broken = tmp_path / "s.yaml"
    broken.write_text("version: 1\nsenders: [\n")
    with pytest.raises(SenderOverridesError, match="not valid YAML"):
        load_overrides(broken)
    broken.write_text("- version: 1\n")
    with pytest.raises(SenderOverridesError, match="expected a mapping"):
        load_overrides(broken)
    with pytest.raises(SenderOverridesError, match="cannot read"):
        load_overrides(tmp_path / "absent.yaml")
    # a local code mapped twice: YAML would keep the second without a word
    broken.write_text("version: 1\nsenders:\n  - name: a\n    match: {facility: F}\n    code_systems: {LOCAL: 'http://a', LOCAL: 'http://b'}\n")
    with pytest.raises(SenderOverridesError, match="'LOCAL' is written twice"):
        load_overrides(broken)


def test_example_file_is_valid_and_shows_every_override():
    o = load_overrides(EXAMPLE)
    sender = o.senders[0]
    assert sender.timezone and sender.code_systems and sender.mrn_identifier_type and sender.z_segments


def test_selection_by_msh3_and_msh4():
    o: SenderOverrides = parse_overrides({"version": 1, "default": {"timezone": "UTC", "code_systems": {"X": "http://x.example/default"}},
                                          "senders": [{"name": "fac", "match": {"facility": "F"}, "timezone": "Europe/Paris"},
                                                      {"name": "app-fac", "match": {"application": "A", "facility": "F"}, "timezone": "Asia/Tokyo"},
                                                      {"name": "app", "match": {"application": "A"}, "timezone": "America/Denver",
                                                       "code_systems": {"Y": "http://x.example/y"}}]})
    assert o.select("A", "F").name == "app-fac"  # both beat one
    assert o.select("B", "F").name == "fac"
    assert o.select("A", "G").name == "app"
    assert o.select("A", "G").code_systems == {"X": "http://x.example/default", "Y": "http://x.example/y"}  # merged over the default
    assert o.select("B", "G").name == "default" and o.select("B", "G").zone == ZoneInfo("UTC")
    assert parse_overrides({"version": 1, "senders": [{"name": "a", "match": {"facility": "F"}}]}).select("B", "G") is None


# --- no state outlives a message

CHICAGO = parse_overrides({"version": 1, "default": {"timezone": "America/Chicago", "code_systems": {"LN": "http://x.example/not-loinc"}}})
PLAIN = "\r".join(["MSH|^~\\&|APP|FAC|CLINSTREAM|CLINSTREAM|20260115083000||ADT^A01|M1|P|2.5.1", Z_PID])


def test_context_is_restored_after_mapping_and_after_a_failure(monkeypatch):
    assert hl7v2_to_fhir(PLAIN, CHICAGO).sent_at == "2026-01-15T08:30:00-06:00"
    assert dtm("20260115083000") == "2026-01-15T08:30:00+00:00" and system_uri("LN") == "http://loinc.org"
    assert hl7v2_to_fhir(PLAIN).sent_at == "2026-01-15T08:30:00+00:00"

    def broken(*args, **kwargs):
        raise KeyError("bug")

    monkeypatch.setattr(message_module, "map_patient", broken)
    with pytest.raises(MapperBug):
        hl7v2_to_fhir(PLAIN, CHICAGO)
    assert dtm("20260115083000") == "2026-01-15T08:30:00+00:00" and system_uri("LN") == "http://loinc.org"


def test_sender_context_nests_and_threads_see_their_own():
    with sender_context(ZoneInfo("Asia/Tokyo"), None):
        assert dtm("20260115083000").endswith("+09:00")
        with sender_context(ZoneInfo("America/Chicago"), {"LN": "http://x.example/ln"}):
            assert dtm("20260115083000").endswith("-06:00") and system_uri("ln") == "http://x.example/ln"
        assert dtm("20260115083000").endswith("+09:00") and system_uri("LN") == "http://loinc.org"
    barrier = threading.Barrier(2)

    def run(overrides):
        barrier.wait()
        return {hl7v2_to_fhir(PLAIN, overrides).sent_at for _ in range(200)}

    with ThreadPoolExecutor(2) as pool:
        chicago, utc = pool.map(run, [CHICAGO, None])
    assert chicago == {"2026-01-15T08:30:00-06:00"} and utc == {"2026-01-15T08:30:00+00:00"}


# --- wiring: normalizer, settings, CLI

def test_normalize_passes_the_overrides():
    env = normalize(PLAIN.encode(), "hl7v2", source=SourceRecord(topic="t", partition=0, offset=0), received_at="2026-01-15T00:00:00Z",
                    normalized_at="2026-01-15T00:00:00Z", max_bytes=100_000, overrides=CHICAGO)
    assert env.bundle["timestamp"] == "2026-01-15T08:30:00-06:00"


def test_settings_field(monkeypatch):
    monkeypatch.setenv("CLINSTREAM_SENDER_OVERRIDES", str(EXAMPLE))
    assert Settings().sender_overrides == EXAMPLE
    monkeypatch.setenv("CLINSTREAM_SENDER_OVERRIDES", "")
    assert Settings().sender_overrides is None
    monkeypatch.delenv("CLINSTREAM_SENDER_OVERRIDES")
    assert Settings().sender_overrides is None


def test_cli_check(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["senders", "check", str(EXAMPLE)])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["senders"][0]["name"] == "st-mary-lab"
    broken = tmp_path / "s.yaml"
    broken.write_text("version: 1\ndefault: {timezone: Nowhere/Land}\n")
    failed = runner.invoke(app, ["senders", "check", str(broken)])
    assert failed.exit_code == 1 and "Nowhere/Land" in failed.output
