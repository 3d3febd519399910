"""Critical laboratory values: every default limit's boundary with unit conversion, comparators, the
laboratory's own critical flags (HL7 OBX-8 through the mapper, FHIR interpretation), and site YAML files."""

import pytest

from fhir_mappers.message import hl7v2_to_fhir
from processors.critical_labs import DEFAULT_TABLE, CriticalLabsError, critical_findings, load_table

AT = "2024-05-01T10:00:00Z"


def obs(code, value=None, unit=None, *, oid="o1", comparator=None, interpretation=None, display=None):
    resource = {"resourceType": "Observation", "id": oid, "status": "final", "effectiveDateTime": AT,
                "code": {"coding": [{"system": "http://loinc.org", "code": code, **({"display": display} if display else {})}]}}
    if value is not None:
        quantity = {"value": value, **({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit} if unit else {})}
        resource["valueQuantity"] = {**quantity, **({"comparator": comparator} if comparator else {})}
    if interpretation:
        resource["interpretation"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                                   "code": interpretation}]}]
    return resource


def bundle(*resources):
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def limit_of(code, value, unit, table=DEFAULT_TABLE):
    found = critical_findings(bundle(obs(code, value, unit)), table)
    return found[0].limit if found else None


@pytest.mark.parametrize("code,value,unit,limit", [
    ("2823-3", 2.7, "mmol/L", "< 2.8 mmol/L"), ("2823-3", 2.8, "mmol/L", None), ("2823-3", 6.2, "mmol/L", None),
    ("2823-3", 6.3, "mmol/L", "> 6.2 mmol/L"), ("6298-4", 6.5, "mEq/L", "> 6.2 mmol/L"),
    ("2951-2", 119, "mmol/L", "< 120 mmol/L"), ("2951-2", 120, "mmol/L", None), ("2951-2", 160, "mmol/L", None),
    ("2951-2", 161, "mmol/L", "> 160 mmol/L"),
    ("14749-6", 2.7, "mmol/L", "< 2.8 mmol/L"), ("14749-6", 2.8, "mmol/L", None), ("14749-6", 25, "mmol/L", None),
    ("14749-6", 25.1, "mmol/L", "> 25 mmol/L"), ("2345-7", 45, "mg/dL", "< 2.8 mmol/L"), ("2345-7", 60, "mg/dL", None),
    ("2339-0", 440, "mg/dL", None), ("2339-0", 460, "mg/dL", "> 25 mmol/L"),
    ("2524-7", 4.0, "mmol/L", None), ("2524-7", 4.1, "mmol/L", "> 4 mmol/L"), ("32693-4", 40, "mg/dL", "> 4 mmol/L"),
    ("67151-1", 52, "ng/L", None), ("67151-1", 53, "ng/L", "> 52 ng/L"), ("67151-1", 0.06, "ng/mL", "> 52 ng/L"),
    ("89579-7", 64, "pg/mL", None), ("89579-7", 65, "pg/mL", "> 64 ng/L"),
    ("718-7", 7.0, "g/dL", None), ("718-7", 6.9, "g/dL", "< 70 g/L"), ("718-7", 69, "g/L", "< 70 g/L"),
    ("777-3", 20, "10*3/uL", None), ("777-3", 19, "10*3/uL", "< 20 10*9/L"), ("777-3", 19000, "/uL", "< 20 10*9/L"),
    ("6301-6", 5.0, None, None), ("6301-6", 5.1, None, "> 5 {INR}"), ("34714-6", 6, "{INR}", "> 5 {INR}"),
    ("2744-1", 7.19, "[pH]", "< 7.2 [pH]"), ("2744-1", 7.2, "[pH]", None), ("11558-4", 7.6, None, None),
    ("11558-4", 7.61, None, "> 7.6 [pH]"),
    ("2019-8", 19, "mm[Hg]", "< 20 mm[Hg]"), ("2019-8", 20, "mm[Hg]", None), ("2019-8", 70, "mmHg", None),
    ("2019-8", 71, "mmHg", "> 70 mm[Hg]"), ("2019-8", 9.5, "kPa", "> 70 mm[Hg]"), ("2019-8", 2.6, "kPa", "< 20 mm[Hg]"),
])
def test_default_limits_at_their_boundaries(code, value, unit, limit):
    """Each default analyte: critical strictly beyond its limit, in any unit the value is sent in."""
    assert limit_of(code, value, unit) == limit


def test_finding_carries_the_evidence():
    """A finding names the analyte, the value and unit as sent, the limit, the time and the Observation."""
    [f] = critical_findings(bundle(obs("2823-3", 6.9, "mmol/L", oid="k1")))
    assert (f.name, f.value, f.unit, f.limit, f.observed_at, f.source, f.resource, f.flag) == (
        "potassium", 6.9, "mmol/L", "> 6.2 mmol/L", AT, "limit", "Observation/k1", None)


def test_comparators():
    """'<2.0' potassium is below the low limit; '>30' glucose above the high; '<100' troponin says nothing."""
    assert critical_findings(bundle(obs("2823-3", 2.0, "mmol/L", comparator="<")))[0].limit == "< 2.8 mmol/L"
    assert critical_findings(bundle(obs("14749-6", 30, "mmol/L", comparator=">")))[0].limit == "> 25 mmol/L"
    assert critical_findings(bundle(obs("67151-1", 100, "ng/L", comparator="<"))) == []
    assert critical_findings(bundle(obs("2951-2", 100, "mmol/L", comparator=">"))) == []


def test_a_unit_of_another_kind_is_not_compared():
    """Platelets in g/L are not a count: no comparison (and no finding without a flag)."""
    assert critical_findings(bundle(obs("777-3", 5, "g/L"))) == []


@pytest.mark.parametrize("flag", ["HH", "LL", "AA", "hh", "CRIT"])
def test_laboratory_critical_flags(flag):
    """HH, LL, AA (and site spellings) on any Observation are a finding even without a table entry."""
    [f] = critical_findings(bundle(obs("1841-2", 180, "umol/L", interpretation=flag, display="Ammonia")))
    assert (f.name, f.source, f.flag, f.limit) == ("Ammonia", "flag", flag.upper(), None)


@pytest.mark.parametrize("flag", ["H", "L", "A", "HU", "LU", "N"])
def test_non_critical_flags_are_not_findings(flag):
    """High, low, abnormal and significantly high/low are not critical."""
    assert critical_findings(bundle(obs("1841-2", 80, "umol/L", interpretation=flag))) == []


def test_interpretation_text_critical():
    """An interpretation sent as text 'Critical' counts."""
    o = obs("1841-2", 180, "umol/L")
    o["interpretation"] = [{"text": "critical"}]
    assert critical_findings(o)[0].flag == "CRITICAL"


def test_limit_and_flag_give_one_finding():
    """A value over the limit that the laboratory also flagged HH is one finding, from the limit, with the flag."""
    [f] = critical_findings(bundle(obs("2823-3", 7.1, "mmol/L", interpretation="HH")))
    assert (f.source, f.flag, f.limit) == ("limit", "HH", "> 6.2 mmol/L")


def test_hl7_obx8_flag_through_the_mapper():
    """An ORU whose OBX-8 says HH yields a finding from the mapped Bundle; the table limit finds it too."""
    message = "\r".join([
        "MSH|^~\\&|LAB|GENHOSP|CLIN|GENHOSP|20240501100000||ORU^R01|MSG-CRIT-1|P|2.5.1",
        "PID|1||123456^^^GENHOSP^MR||DOE^JANE",
        "OBR|1||F1|51990-0^Basic metabolic panel^LN|||20240501095000",
        "OBX|1|NM|2823-3^Potassium^LN||7.2|mmol/L^mmol/L^UCUM|3.5-5.1|HH|||F|||20240501095000",
        "OBX|2|NM|1841-2^Ammonia^LN||190|umol/L^umol/L^UCUM|11-32|HH|||F|||20240501095000",
        "OBX|3|NM|2951-2^Sodium^LN||140|mmol/L^mmol/L^UCUM|135-145|N|||F|||20240501095000",
    ])
    found = critical_findings(hl7v2_to_fhir(message).bundle)
    assert [(f.name, f.source, f.flag) for f in found] == [("potassium", "limit", "HH"), ("Ammonia", "flag", "HH")]


def test_cancelled_observations_are_skipped():
    """A cancelled result is no finding."""
    o = obs("2823-3", 7.5, "mmol/L")
    o["status"] = "cancelled"
    assert critical_findings(bundle(o)) == []


def test_site_file_overrides_adds_and_drops(tmp_path):
    """A YAML file changes one limit, adds an analyte, drops one and replaces the flags."""
    path = tmp_path / "critical.yaml"
    path.write_text("limits:\n  potassium: {low: 3.0}\n  ammonia: {loinc: [1841-2], unit: umol/L, high: 100}\n"
                    "  pco2: null\nflags: [HH, LL]\n")
    table = load_table(path)
    assert limit_of("2823-3", 2.9, "mmol/L", table) == "< 3 mmol/L" and limit_of("2823-3", 6.3, "mmol/L", table) == "> 6.2 mmol/L"
    assert limit_of("1841-2", 120, "umol/L", table) == "> 100 umol/L"
    assert limit_of("2019-8", 90, "mmHg", table) is None
    assert table.flags == frozenset({"HH", "LL"})
    assert load_table(None) is DEFAULT_TABLE


@pytest.mark.parametrize("text,reason", [
    ("limits:\n  potassium: {lo: 3}\n", "unknown keys"),
    ("limits:\n  potassium: {unit: furlongs}\n", "unknown unit"),
    ("limits:\n  ammonia: {high: 100}\n", "needs loinc"),
    ("limits:\n  potassium: {low: three}\n", "a number"),
    ("limits:\n  potassium: {low: null, high: null}\n", "needs low or high"),
    ("flags: HH\n", "flags"),
    ("other: 1\n", "a mapping with"),
])
def test_bad_site_files_say_what_is_wrong(tmp_path, text, reason):
    """An unusable file raises CriticalLabsError naming the entry and key."""
    path = tmp_path / "critical.yaml"
    path.write_text(text)
    with pytest.raises(CriticalLabsError, match=reason):
        load_table(path)
