"""A seeded, reproducible synthetic feed of realistic clinical messages, with the ground truth the
pipeline must reproduce: the flags each message must raise, and each patient's final risk state.

Standard mix of the valid messages (by count): 30% ADT (A01 admit or A04 register first, A08 updates,
an A03 discharge last), 45% vital-sign ORU^R01, 15% lab ORU^R01, 10% MDM^T02 notes of 50-300 words.
`fhir_share` of the patients send their vitals as FHIR R4 Bundles instead of ORU. Malformed messages
(`malformed_share` of `n_messages`) are added on top. About 15% of patients deteriorate: their NEWS2
band climbs low -> medium -> high and their notes may assert a high-risk condition.

Pure: no I/O, no global random state (one `random.Random(seed)`), plain string building: the same
arguments give a byte-identical Feed.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from typing import NamedTuple

__all__ = ["Feed", "FeedMessage", "Vitals", "news2_score", "generate", "scenarios", "SCENARIOS", "AUTHORITY", "START", "MIX", "VITAL_PROFILES"]

AUTHORITY = "GENHOSP"
START = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
MIX = {"adt": 0.30, "vitals": 0.45, "lab": 0.15, "note": 0.10}
DETERIORATING_SHARE = 0.15
PATIENT_SPAN = timedelta(hours=11)  # a patient's messages; admission falls in the first hour -> all within 12 h


@dataclass(frozen=True)
class FeedMessage:
    topic: str  # "hl7v2" | "fhir": the logical inbound topic (the caller adds prefixes)
    key: str  # patient key "<authority>|<mrn>", as PID-3 / Patient.identifier give it
    value: bytes  # raw HL7 v2 ER7 ("\r" between segments) or FHIR R4 JSON
    message_id: str  # MSH-10, or Bundle.id
    kind: str  # adt | vitals | lab | note | fhir_vitals | malformed
    valid: bool
    expected_flags: tuple[str, ...]  # flags the message raises, before suppression (SIRS left out: shadow by default); sorted
    observed_at: str  # ISO 8601 with offset
    expected_alerts: tuple[tuple[str, str, int], ...] = ()  # (kind, flag, episode) the message alerts; sorted
    scenario: str = ""  # the scenario patient's story (`scenarios()`); "" in the random feed


@dataclass(frozen=True)
class Feed:
    messages: list[FeedMessage]  # publish order
    expected_state: dict[str, dict]  # patient key -> {"band": str|None, "score": int|None, "flags": [str]}

    def expected_alert_count(self) -> int:
        return sum(len(m.expected_alerts) for m in self.messages)


# ------------------------------------------------------------------------------------------------
# Alert semantics, written again here from the README's rules (not imported from processors/alerting.py),
# so the ground truth checks the worker rather than repeating it.
# ------------------------------------------------------------------------------------------------

ALERT_REPEAT = timedelta(hours=6)  # Settings.alert_repeat_hours' default (a test keeps the two equal)
_LADDER = {"news2_low_medium": 1, "news2_medium": 2, "news2_high": 3}
LACTATE_CRITICAL = 4.0  # mmol/L, the default critical table's limit (strictly above)


def qsofa_points(v: Vitals) -> int:
    return int(v.rr >= 22) + int(v.sbp <= 100) + int(v.acvpu != "A")


class AlertTruth:
    """One patient's alert episodes: a flag alerts when not open or when its last alert is older than
    ALERT_REPEAT; NEWS2 bands alert only above every band alerted inside that period; clears resolve."""

    def __init__(self) -> None:
        self.open: dict[str, tuple[int, datetime]] = {}  # flag -> (episode, alerted at)
        self.episodes: dict[str, int] = {}

    def message(self, at: datetime, raised: list[str], clears: list[str]) -> list[tuple[str, str, int]]:
        events = []
        for flag in raised:
            if flag in _LADDER:
                blocked = any(g in self.open and rank >= _LADDER[flag] and at - self.open[g][1] < ALERT_REPEAT for g, rank in _LADDER.items())
            else:
                blocked = flag in self.open and at - self.open[flag][1] < ALERT_REPEAT
            if not blocked:
                self.episodes[flag] = self.episodes.get(flag, 0) + 1
                self.open[flag] = (self.episodes[flag], at)
                events.append(("raised", flag, self.episodes[flag]))
        for flag in clears:
            if flag in self.open and flag not in raised:
                events.append(("resolved", flag, self.open.pop(flag)[0]))
        return sorted(events)


# ------------------------------------------------------------------------------------------------
# NEWS2 (Royal College of Physicians 2017), SpO2 scale 1: our own small table, independent of
# processors.news2, so the ground truth is not the pipeline grading itself.
# ------------------------------------------------------------------------------------------------

class Vitals(NamedTuple):
    rr: int  # respiratory rate, /min
    spo2: int  # %, pulse oximetry
    o2_flow: int  # inhaled oxygen flow, L/min; 0 = on air
    sbp: int  # systolic blood pressure, mm[Hg]
    hr: int  # heart rate, /min
    acvpu: str  # A, C (new confusion), V, P, U
    temp: float  # body temperature, Cel, one decimal


_INF = float("inf")
# parameter -> [(upper bound, inclusive; points)]: the first row whose bound is >= the value gives the points
NEWS2_CHART = {
    "rr": [(8, 3), (11, 1), (20, 0), (24, 2), (_INF, 3)],  # <=8:3  9-11:1  12-20:0  21-24:2  >=25:3
    "spo2": [(91, 3), (93, 2), (95, 1), (_INF, 0)],  # <=91:3  92-93:2  94-95:1  >=96:0
    "sbp": [(90, 3), (100, 2), (110, 1), (219, 0), (_INF, 3)],  # <=90:3  91-100:2  101-110:1  111-219:0  >=220:3
    "hr": [(40, 3), (50, 1), (90, 0), (110, 1), (130, 2), (_INF, 3)],  # <=40:3  41-50:1  51-90:0  91-110:1  111-130:2  >=131:3
    "temp": [(35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (_INF, 2)],  # <=35.0:3  35.1-36.0:1  36.1-38.0:0  38.1-39.0:1  >=39.1:2
}
O2_POINTS = 2  # any supplemental oxygen (flow > 0); air scores 0
ACVPU_POINTS = {"A": 0, "C": 3, "V": 3, "P": 3, "U": 3}


def _chart(parameter: str, value: float) -> int:
    for bound, points in NEWS2_CHART[parameter]:
        if value <= bound:
            return points
    raise ValueError(value)  # unreachable: every row list ends at infinity


def news2_score(v: Vitals) -> tuple[int, str, dict[str, int]]:
    """(total, band, points per parameter). Bands: >=7 high; 5-6 medium; 0-4 low, or low-medium when
    any single parameter scores 3."""
    points = {
        "rr": _chart("rr", v.rr), "spo2": _chart("spo2", v.spo2), "o2_flow": O2_POINTS if v.o2_flow > 0 else 0,
        "sbp": _chart("sbp", v.sbp), "hr": _chart("hr", v.hr), "acvpu": ACVPU_POINTS[v.acvpu],
        "temp": _chart("temp", round(v.temp, 1)),
    }
    total = sum(points.values())
    band = "high" if total >= 7 else "medium" if total >= 5 else "low-medium" if 3 in points.values() else "low"
    return total, band, points


BAND_FLAG = {"low": None, "low-medium": "news2_low_medium", "medium": "news2_medium", "high": "news2_high"}

# Hand-written profiles. Every range lies inside one chart row, so a profile's band is fixed; the score
# of each sampled set is still computed with the table above. Temperatures are in tenths of a degree.
_WELL = {"rr": (12, 18), "spo2": (96, 99), "o2_flow": (0, 0), "sbp": (112, 150), "hr": (56, 88), "acvpu": "A", "temp": (362, 378)}
VITAL_PROFILES: dict[str, list[tuple[str, dict]]] = {
    "low": [
        ("well", {}),  # 0
        ("borderline saturation", {"spo2": (94, 95)}),  # 1
        ("mild tachycardia", {"hr": (91, 108)}),  # 1
        ("soft blood pressure", {"sbp": (101, 110)}),  # 1
        ("low-grade fever", {"temp": (381, 388)}),  # 1
        ("mild tachypnoea", {"rr": (21, 23)}),  # 2
    ],
    "low-medium": [  # one red (3-point) parameter, total <= 4
        ("new confusion", {"acvpu": "C"}),  # 3
        ("isolated tachypnoea", {"rr": (25, 28)}),  # 3
        ("isolated hypotension", {"sbp": (84, 90)}),  # 3
    ],
    "medium": [
        ("early sepsis picture", {"rr": (21, 24), "spo2": (94, 95), "sbp": (101, 110), "hr": (91, 110), "temp": (381, 390)}),  # 2+1+1+1+1 = 6
        ("hypoxic and tachypnoeic", {"rr": (21, 24), "spo2": (92, 93), "hr": (91, 110)}),  # 2+2+1 = 5
        ("new oxygen requirement", {"rr": (21, 24), "spo2": (94, 95), "o2_flow": (1, 3), "hr": (91, 110)}),  # 2+1+2+1 = 6
    ],
    "high": [
        ("shocked", {"rr": (25, 32), "spo2": (85, 91), "o2_flow": (2, 6), "sbp": (72, 90), "hr": (131, 148),
                     "acvpu": "VP", "temp": (391, 402)}),  # 3+3+2+3+3+3+2 = 19
        ("respiratory deterioration", {"rr": (21, 24), "spo2": (92, 93), "o2_flow": (2, 6), "sbp": (91, 100),
                                       "hr": (111, 130), "temp": (381, 390)}),  # 2+2+2+2+2+0+1 = 11
        ("tachypnoeic on oxygen", {"rr": (25, 30), "spo2": (94, 95), "o2_flow": (2, 4), "sbp": (101, 110), "hr": (91, 110)}),  # 3+1+2+1+1 = 8
    ],
}


def _ri(rng: random.Random, low: int, high: int) -> int:
    """rng.randint(low, high) at a fraction of the cost: one random() call."""
    return low + int(rng.random() * (high - low + 1))


def _pick(rng: random.Random, seq):
    """rng.choice(seq), likewise."""
    return seq[int(rng.random() * len(seq))]


def _sample_vitals(rng: random.Random, overrides: dict) -> Vitals:
    p = {**_WELL, **overrides}
    return Vitals(_ri(rng, *p["rr"]), _ri(rng, *p["spo2"]), _ri(rng, *p["o2_flow"]), _ri(rng, *p["sbp"]),
                  _ri(rng, *p["hr"]), _pick(rng, p["acvpu"]), _ri(rng, *p["temp"]) / 10)


def _stage(deteriorating: bool, index: int, count: int, rng: random.Random) -> tuple[str, dict]:
    """The profile of a patient's index-th vitals of count: stable patients stay low (mostly 'well');
    deteriorating ones climb low -> (low-medium) -> medium -> high, the last set always high."""
    if not deteriorating:
        profiles = VITAL_PROFILES["low"]
        return profiles[0] if rng.random() < 0.7 else _pick(rng, profiles[1:])
    frac = index / (count - 1) if count > 1 else 1.0
    band = "low" if frac < 0.3 else "low-medium" if frac < 0.45 else "medium" if frac < 0.75 else "high"
    profiles = VITAL_PROFILES[band]
    return profiles[0] if band == "low" else _pick(rng, profiles)


# ------------------------------------------------------------------------------------------------
# Codes
# ------------------------------------------------------------------------------------------------

VITAL_CODES = [  # (Vitals field, LOINC, display, UCUM unit)
    ("rr", "9279-1", "Respiratory rate", "/min"),
    ("spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%"),
    ("sbp", "8480-6", "Systolic blood pressure", "mm[Hg]"),
    ("hr", "8867-4", "Heart rate", "/min"),
    ("temp", "8310-5", "Body temperature", "Cel"),
    ("o2_flow", "3151-8", "Inhaled oxygen flow rate", "L/min"),
    ("acvpu", "67775-7", "Level of responsiveness", None),
]
ACVPU_SYSTEM = "urn:clinstream:acvpu"
ACVPU_DISPLAY = {"A": "Alert", "C": "New confusion", "V": "Voice", "P": "Pain", "U": "Unresponsive"}

# lab panels: (OBR-4, [(LOINC, display, UCUM unit, low, high, decimals)])
LAB_PANELS = {
    "bmp": ("51990-0^Basic metabolic panel - Blood^LN", [
        ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 135, 145, 0),
        ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, 1),
        ("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 98, 107, 0),
        ("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 22, 29, 0),
        ("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 7, 20, 0),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.2, 2),
        ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 99, 0),
    ]),
    "cbc": ("58410-2^CBC panel - Blood by Automated count^LN", [
        ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 11.0, 1),
        ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5, 1),
        ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, 0),
    ]),
    "lactate": ("2524-7^Lactate [Moles/volume] in Serum or Plasma^LN", [
        ("2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L", 0.5, 2.0, 1),
    ]),
}
# analytes that go the wrong way when a patient deteriorates: LOINC -> direction
_SICK_LABS = {"2160-0": 1, "6690-2": 1, "2524-7": 1, "3094-0": 1, "2028-9": -1, "777-3": -1}

NOTE_TYPES = [("PN", "Progress note", "11506-3"), ("HP", "History and physical note", "34117-2"),
              ("CN", "Consult note", "11488-4")]

# ------------------------------------------------------------------------------------------------
# People and places
# ------------------------------------------------------------------------------------------------

FIRST_F = ["Maria", "Aisha", "Wei", "Olga", "Fatima", "Priya", "Sofia", "Amara", "Hana", "Grace", "Elena", "Yuki",
           "Leila", "Margaret", "Chloe", "Ngozi", "Anna", "Rosa", "Ingrid", "Mei", "Zainab", "Claire", "Lucia", "Deborah"]
FIRST_M = ["James", "Carlos", "John", "Liam", "Noah", "Lucas", "Mateo", "Omar", "David", "Samuel", "Ivan", "Kwame",
           "Arjun", "Thomas", "Henrik", "Diego", "Hiroshi", "Patrick", "Yusuf", "Robert", "Andrei", "Luis", "Michael", "Tariq"]
LAST = ["Garcia", "Smith", "Khan", "Chen", "Ivanova", "Lopez", "Hassan", "Brown", "Patel", "Murphy", "Rossi", "Nguyen",
        "Okafor", "Silva", "Tanaka", "Mueller", "Johnson", "Ahmed", "Kowalski", "Cohen", "Dubois", "Park", "O'Brien",
        "Andersen", "Mensah", "Novak", "Fischer", "Reyes", "Walsh", "Haddad", "Lindqvist", "Moreau", "Singh", "Yamamoto"]
MIDDLE = ["A", "B", "C", "D", "E", "J", "K", "L", "M", "R", "S", "T", ""]
STREETS = ["Oak St", "Maple Ave", "Harbor Rd", "Cedar Ln", "Hillside Dr", "Elm St", "Park Blvd", "River Rd",
           "Church St", "Mill Ln", "Station Rd", "Lakeview Ter"]
CITIES = [("Springfield", "IL", "62701"), ("Riverton", "WY", "82501"), ("Fairview", "OR", "97024"),
          ("Madison", "WI", "53703"), ("Greenville", "SC", "29601"), ("Salem", "MA", "01970")]
DOCTORS = ["1001^Adams^Helen^^^Dr", "1002^Baker^Rahul^^^Dr", "1003^Costa^Ines^^^Dr", "1004^Diaz^Tom^^^Dr",
           "1005^Eze^Chidi^^^Dr", "1006^Fournier^Anne^^^Dr"]
WARDS = ["4W^401^A", "4W^402^B", "4W^407^A", "5E^510^A", "5E^514^B", "ICU^03^A", "CCU^02^A", "ED^12^A", "AMU^21^C"]

# ------------------------------------------------------------------------------------------------
# Note sentences. None of the filler sentences contains a flag phrase (nor septicemia, urosepsis,
# stemi, heart attack, cerebrovascular, renal failure, ketoacidosis, embolus...): tests check that.
# ------------------------------------------------------------------------------------------------

HISTORY = [
    "Past medical history includes hypertension and type 2 diabetes mellitus.",
    "Past medical history is notable for osteoarthritis and hypothyroidism.",
    "Past medical history includes COPD with two exacerbations last year.",
    "Past medical history includes atrial fibrillation on apixaban.",
    "Home medications include metformin, lisinopril and atorvastatin.",
    "Home medications include levothyroxine and amlodipine.",
    "Lives at home with family and is independent at baseline.",
    "Former smoker with a {packs} pack year history.",
    "Reports fatigue and decreased appetite over the past {days} days.",
    "Reports productive cough and fever since yesterday.",
    "Reports dysuria and increased urinary frequency.",
    "Reports shortness of breath on exertion that has worsened this week.",
    "Reports a fall at home this morning while getting out of bed.",
    "Tolerating a soft diet and ambulating with a walker.",
]
EXAM = [
    "On examination the patient is resting in bed and conversing appropriately.",
    "Lungs with scattered crackles at the right base.",
    "Heart sounds regular with no murmur appreciated.",
    "Abdomen is soft and non tender with normal bowel sounds.",
    "Extremities are warm with trace bilateral ankle edema.",
    "Skin is intact and mucous membranes are dry.",
    "Capillary refill under three seconds.",
    "Oriented to person, place and time.",
    "Surgical wound is clean and dry with staples in place.",
    "Mild tenderness in the right lower quadrant without guarding.",
]
DATA = [
    "Laboratory results reviewed with the team this morning.",
    "Chest radiograph shows a right lower lobe opacity.",
    "Blood cultures were drawn before antibiotics were started.",
    "Urinalysis was sent and is pending.",
    "Electrocardiogram shows sinus rhythm at {hr} beats per minute.",
    "Temperature peaked at {temp} overnight.",
    "Creatinine this morning is {creat} mg/dL.",
    "Hemoglobin stable at {hgb} g/dL.",
    "Urine output about {uo} mL over the last eight hours.",
    "Potassium {k} after replacement.",
]
PLAN = [
    "Plan to continue intravenous fluids and monitor urine output.",
    "Continue ceftriaxone and azithromycin and reassess tomorrow.",
    "Started on vancomycin and piperacillin tazobactam.",
    "Hold metformin while inpatient and use insulin sliding scale.",
    "Physical therapy consulted for mobility assessment.",
    "Discussed the plan of care with the patient & family at bedside.",
    "Will repeat basic metabolic panel in the morning.",
    "Continue home levothyroxine and monitor blood pressure.",
    "Encourage incentive spirometry and early mobilisation.",
    "Venous thromboembolism prophylaxis with enoxaparin.",
    "Dietitian to review oral intake.",
    "Anticipate discharge in {days} days if progress continues.",
]
# flag -> sentences asserting it as present (no negation, uncertainty, history or family word in the sentence)
POSITIVE = {
    "sepsis": ["Assessment: sepsis secondary to pneumonia.", "Now in septic shock requiring vasopressors.",
               "Clinical picture consistent with sepsis from a urinary source."],
    "myocardial_infarction": ["Findings consistent with acute myocardial infarction.",
                              "Troponin rise consistent with myocardial infarction."],
    "stroke": ["New stroke on CT.", "Assessment: acute ischemic stroke with left sided weakness."],
    "pulmonary_embolism": ["Saddle pulmonary embolism with right heart strain.", "CT angiogram confirms pulmonary embolism."],
    "acute_kidney_injury": ["Creatinine rising, consistent with acute kidney injury.", "Assessment: acute kidney injury."],
    "respiratory_failure": ["Worsening hypoxia, consistent with acute respiratory failure.",
                            "Assessment: acute respiratory failure requiring high flow oxygen."],
}
# (sentence, the flag it mentions only negated): each sentence starts with its negation
NEGATED = [
    ("Denies chest pain.", None), ("No evidence of sepsis.", "sepsis"), ("No signs of stroke.", "stroke"),
    ("Negative for pulmonary embolism.", "pulmonary_embolism"), ("No evidence of acute kidney injury.", "acute_kidney_injury"),
    ("No history of myocardial infarction.", "myocardial_infarction"), ("Not in respiratory failure at present.", "respiratory_failure"),
]
POSITIVE_NOTE_CHANCE = 0.6  # a deteriorating patient's note asserts a high-risk condition
NEGATED_NOTE_CHANCE = 0.35  # any note mentions one negated


@dataclass
class _Patient:
    mrn: str
    first: str
    middle: str
    last: str
    dob: str
    sex: str
    address: str
    phone: str
    visit: str
    ward: str
    doctor: str
    fhir: bool
    plan: list[str] = field(default_factory=list)
    deteriorating: bool = False
    segments: dict = field(default_factory=dict)  # PID / PV1 text, built once

    @property
    def key(self) -> str:
        return f"{AUTHORITY}|{self.mrn}"


# ------------------------------------------------------------------------------------------------
# HL7 v2 building blocks
# ------------------------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _offset(tz) -> str:
    return datetime(2026, 1, 1, tzinfo=tz).strftime("%z")


@lru_cache(maxsize=1024)
def _ts(at: datetime) -> str:
    """HL7 DTM with the offset of `start` (+0000 by default); formatted by hand, strftime is slow."""
    return f"{at.year:04d}{at.month:02d}{at.day:02d}{at.hour:02d}{at.minute:02d}{at.second:02d}{_offset(at.tzinfo)}"


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


@lru_cache(maxsize=4096)
def _escape(text: str) -> str:
    """HL7 escape sequences for the delimiters (escape character first), so free text cannot break a segment."""
    return text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\").replace("~", "\\R\\")


def _seg(sid: str, fields: dict[int, str]) -> str:
    """A segment from {field number: value}; trailing empty fields are left off."""
    values = [sid] + [""] * max(fields)
    for i, value in fields.items():
        values[i] = value
    return "|".join(values)


def _msh(message_type: str, mid: str, at: datetime, app: str) -> str:
    return f"MSH|^~\\&|{app}|{AUTHORITY}|CLINSTREAM|CLINSTREAM|{_ts(at)}||{message_type}|{mid}|P|2.5.1"


def _pid(p: _Patient) -> str:
    if "pid" not in p.segments:
        p.segments["pid"] = _pid_segment(p)
    return p.segments["pid"]


def _pid_segment(p: _Patient) -> str:
    name = f"{p.last}^{p.first}" + (f"^{p.middle}" if p.middle else "")
    return _seg("PID", {1: "1", 3: f"{p.mrn}^^^{AUTHORITY}^MR", 5: name, 7: p.dob, 8: p.sex, 11: p.address, 13: p.phone,
                        18: f"A{p.visit[1:]}^^^{AUTHORITY}^AN"})


def _pv1(p: _Patient, admitted: datetime, patient_class: str, discharged: datetime | None = None) -> str:
    """PV1, built once per patient (and once more for the discharge)."""
    if discharged is not None:
        return _pv1_segment(p, admitted, patient_class, discharged)
    if ("pv1", admitted, patient_class) not in p.segments:
        p.segments[("pv1", admitted, patient_class)] = _pv1_segment(p, admitted, patient_class)
    return p.segments[("pv1", admitted, patient_class)]


def _pv1_segment(p: _Patient, admitted: datetime, patient_class: str, discharged: datetime | None = None) -> str:
    fields = {1: "1", 2: patient_class, 3: f"{p.ward}^{AUTHORITY}", 4: "E" if patient_class == "I" else "R", 7: p.doctor,
              10: "MED", 19: f"{p.visit}^^^{AUTHORITY}^VN", 44: _ts(admitted)}
    if discharged is not None:
        fields[36], fields[45] = "01", _ts(discharged)  # discharged to home
    return _seg("PV1", fields)


def _adt(p: _Patient, mid: str, at: datetime, event: str, admitted: datetime, patient_class: str) -> bytes:
    structure = "ADT_A03" if event == "A03" else "ADT_A01"
    return "\r".join([
        _msh(f"ADT^{event}^{structure}", mid, at, "PAS"), f"EVN|{event}|{_ts(at)}", _pid(p),
        _pv1(p, admitted, patient_class, at if event == "A03" else None),
    ]).encode()


def _vitals_hl7(p: _Patient, mid: str, at: datetime, v: Vitals, admitted: datetime, patient_class: str) -> bytes:
    ts = _ts(at)
    segments = [_msh("ORU^R01^ORU_R01", mid, at, "VITALS"), _pid(p), _pv1(p, admitted, patient_class),
                f"OBR|1|{mid}^VITALS|{mid}^VITALS|85353-1^Vital signs panel^LN|||{ts}|||||||||{p.doctor}|||||||||F"]
    for i, (name, code, display, unit) in enumerate(VITAL_CODES, 1):
        value = getattr(v, name)
        if unit is None:  # ACVPU
            segments.append(f"OBX|{i}|CWE|{code}^{display}^LN||{value}^{ACVPU_DISPLAY[value]}^{ACVPU_SYSTEM}||||||F|||{ts}")
        else:
            shown = f"{value:.1f}" if name == "temp" else str(value)
            segments.append(f"OBX|{i}|NM|{code}^{display}^LN||{shown}|{unit}^{unit}^UCUM|||||F|||{ts}")
    return "\r".join(segments).encode()


def _lab_hl7(p: _Patient, mid: str, at: datetime, rng: random.Random, admitted: datetime, patient_class: str,
             sick: bool) -> tuple[bytes, datetime, float | None]:
    """The message, the collection time and the lactate value (None when no lactate was sent)."""
    collected_at = at - timedelta(minutes=_ri(rng, 20, 90))
    ts, collected = _ts(at), _ts(collected_at)
    lactate = None
    panels = _pick(rng, [["bmp"], ["cbc"], ["bmp", "cbc"], ["bmp", "cbc", "lactate"] if sick else ["bmp", "cbc"]])
    segments = [_msh("ORU^R01^ORU_R01", mid, at, "LAB"), _pid(p), _pv1(p, admitted, patient_class)]
    n_obx = 0
    for j, panel in enumerate(panels, 1):
        service, analytes = LAB_PANELS[panel]
        segments.append(f"OBR|{j}|{mid}-{j}^LAB|{mid}-{j}^LAB|{service}|||{collected}|||||||{collected}||{p.doctor}"
                        f"||||||{ts}|||F")
        for code, display, unit, low, high, decimals in analytes:
            width = high - low
            if sick and code in _SICK_LABS and rng.random() < 0.7:  # out of range in the sick direction
                value = high + width * rng.uniform(0.1, 1.5) if _SICK_LABS[code] > 0 else low - width * rng.uniform(0.05, 0.3)
            else:  # mostly normal, the odd value just outside
                value = rng.uniform(low - width * 0.12, high + width * 0.12)
            value = round(value, decimals)
            shown = f"{value:.{decimals}f}"
            flag = "H" if value > high else "L" if value < low else "N"
            if code == "2524-7":
                lactate = value
            n_obx += 1
            segments.append(f"OBX|{n_obx}|NM|{code}^{display}^LN||{shown}|{unit}^{unit}^UCUM|{low}-{high}|{flag}|||F|||{collected}")
    return "\r".join(segments).encode(), collected_at, lactate


_FILLER = [(section, template, len(template.split()), "{" in template)
           for section, pool in enumerate((HISTORY, EXAM, DATA, PLAN)) for template in pool]
_FILLER_INDEX = range(len(_FILLER))


def _note_text(p: _Patient, rng: random.Random, at: datetime, positive: list[str], negated: list[str]) -> list[str]:
    """The note as lines, one sentence each, 50-300 words, in section order: history, examination, data,
    the assessment (the positive mentions), plan. A negated mention lands in history, exam or data."""
    values = {"packs": _ri(rng, 5, 60), "days": _ri(rng, 2, 6), "hr": _ri(rng, 62, 104),
              "temp": f"{_ri(rng, 368, 392) / 10:.1f}", "creat": f"{_ri(rng, 60, 240) / 100:.2f}",
              "hgb": f"{_ri(rng, 85, 150) / 10:.1f}", "uo": _ri(rng, 15, 90) * 10, "k": f"{_ri(rng, 34, 52) / 10:.1f}"}
    opening = (f"{_pick(rng, ['Patient is a', 'Seen today:'])} {at.year - int(p.dob[:4])} year old "
               f"{'woman' if p.sex == 'F' else 'man'} admitted under medicine.")
    target = _ri(rng, 50, 300)
    words = len(opening.split()) + sum(len(s.split()) for s in positive + negated)
    chosen: list[tuple[int, int]] = []  # (section, position in _FILLER)
    for i in sorted(_FILLER_INDEX, key=lambda _: rng.random()):  # the filler sentences in random order, each at most once
        if words >= target:
            break
        n = _FILLER[i][2]
        if words + n <= 300:  # templates fill in single tokens: the word count is the template's
            chosen.append((_FILLER[i][0], i))
            words += n
    chosen.sort(key=lambda c: c[0])  # stable: random order within a section
    lines = [_FILLER[i][1].format(**values) if _FILLER[i][3] else _FILLER[i][1] for _, i in chosen]
    if negated:
        last_section = rng.randrange(3)  # at the end of history, exam or data
        after = sum(1 for section, _ in chosen if section <= last_section)
        lines[after:after] = negated
    split = sum(1 for section, _ in chosen if section < 3) + len(negated)
    return [opening, *lines[:split], *positive, *lines[split:]]


def _note_hl7(p: _Patient, mid: str, at: datetime, lines: list[str], admitted: datetime, patient_class: str,
              rng: random.Random) -> bytes:
    ts = _ts(at)
    doc_code, doc_name, loinc = _pick(rng, NOTE_TYPES)
    segments = [_msh("MDM^T02^MDM_T02", mid, at, "EHR"), f"EVN|T02|{ts}", _pid(p), _pv1(p, admitted, patient_class),
                _seg("TXA", {1: "1", 2: f"{doc_code}^{doc_name}", 3: "TX", 4: ts, 5: p.doctor, 6: ts, 9: p.doctor,
                             12: f"DOC-{mid}^EHR", 17: "AU"})]
    for i, line in enumerate(lines, 1):
        segments.append(f"OBX|{i}|TX|{loinc}^{doc_name}^LN|1|{_escape(line)}||||||F|||{ts}")
    return "\r".join(segments).encode()


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _fhir_patient(p: _Patient, url: str) -> dict:
    return {"fullUrl": url, "resource": {
        "resourceType": "Patient", "id": url.removeprefix("urn:uuid:"),
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "system": f"urn:clinstream:id:{AUTHORITY}", "value": p.mrn}],
        "name": [{"family": p.last, "given": [p.first] + ([p.middle] if p.middle else [])}],
        "gender": "female" if p.sex == "F" else "male", "birthDate": f"{p.dob[:4]}-{p.dob[4:6]}-{p.dob[6:]}"}}


_VITAL_CATEGORY = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                "code": "vital-signs", "display": "Vital Signs"}]}]


def _vitals_fhir(p: _Patient, mid: str, at: datetime, v: Vitals, rng: random.Random, patient_url: str) -> bytes:
    when = _iso(at)
    entries = [_fhir_patient(p, patient_url)]
    for name, code, display, unit in VITAL_CODES:
        oid = _uuid(rng)
        obs = {"resourceType": "Observation", "id": oid, "status": "final", "category": _VITAL_CATEGORY,
               "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
               "subject": {"reference": patient_url}, "effectiveDateTime": when}
        value = getattr(v, name)
        if unit is None:
            obs["valueCodeableConcept"] = {"coding": [{"system": ACVPU_SYSTEM, "code": value, "display": ACVPU_DISPLAY[value]}]}
        else:
            obs["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        entries.append({"fullUrl": f"urn:uuid:{oid}", "resource": obs})
    return json.dumps({"resourceType": "Bundle", "id": mid, "type": "collection", "timestamp": when, "entry": entries}).encode()


def _malformed(rng: random.Random, p: _Patient, mid: str, at: datetime, admitted: datetime) -> tuple[str, bytes]:
    """One deliberately broken message, in one of the ways hospital feeds break."""
    variant = rng.randrange(8)
    if variant == 0:  # truncated mid-segment inside MSH: MSH-9 cut short, no MSH-10
        return "hl7v2", f"MSH|^~\\&|VITALS|{AUTHORITY}|CLINSTREAM|CLINSTREAM|{_ts(at)}||ORU^R0".encode()
    if variant == 1:  # the MSH segment was lost: the message starts at PID
        return "hl7v2", "\r".join([_pid(p), _pv1(p, admitted, "I"), f"OBX|1|NM|8867-4^Heart rate^LN||{_ri(rng, 60, 100)}|/min^/min^UCUM|||||F"]).encode()
    if variant == 2:  # a batch header where MSH should be
        return "hl7v2", "\r".join([f"BHS|^~\\&|PAS|{AUTHORITY}|CLINSTREAM|CLINSTREAM|{_ts(at)}", f"EVN|A08|{_ts(at)}", _pid(p)]).encode()
    if variant == 3:  # an empty payload
        return "hl7v2", b""
    if variant == 4:  # Latin-1 / Windows-1252 bytes, not UTF-8, and no MSH-18 to say so
        return "hl7v2", (_msh("ADT^A08^ADT_A01", mid, at, "PAS") + f"\rEVN|A08|{_ts(at)}\rPID|1||{p.mrn}^^^{AUTHORITY}^MR||"
                         "Müller^Jörg||19610203|M|||Königstraße 5^^Köln^^50667").encode("latin-1")
    if variant == 5:  # FHIR JSON cut off mid-document
        return "fhir", f'{{"resourceType": "Bundle", "id": "{mid}", "type": "collection", "entry": [{{"fullUrl": "urn:uuid:'.encode()
    if variant == 6:  # "JSON" with single quotes and a trailing comma
        return "fhir", f"{{'resourceType': 'Observation', 'id': '{mid}', 'status': 'final',}}".encode()
    # a FHIR Bundle whose Observation lacks the required status and code
    patient_url = f"urn:uuid:{_uuid(rng)}"
    oid = _uuid(rng)
    obs = {"resourceType": "Observation", "id": oid, "category": _VITAL_CATEGORY, "subject": {"reference": patient_url},
           "effectiveDateTime": _iso(at), "valueQuantity": {"value": _ri(rng, 60, 100), "unit": "/min",
                                                             "system": "http://unitsofmeasure.org", "code": "/min"}}
    return "fhir", json.dumps({"resourceType": "Bundle", "id": mid, "type": "collection", "timestamp": _iso(at),
                               "entry": [_fhir_patient(p, patient_url), {"fullUrl": f"urn:uuid:{oid}", "resource": obs}]}).encode()


# ------------------------------------------------------------------------------------------------
# The feed
# ------------------------------------------------------------------------------------------------

def _patient(rng: random.Random, mrn: int, fhir_share: float) -> _Patient:
    city, state, zipcode = _pick(rng, CITIES)
    sex = _pick(rng, "FM")
    return _Patient(
        mrn=str(mrn), first=_pick(rng, FIRST_F if sex == "F" else FIRST_M), middle=_pick(rng, MIDDLE), last=_pick(rng, LAST),
        dob=f"{_ri(rng, 1932, 2004)}{_ri(rng, 1, 12):02d}{_ri(rng, 1, 28):02d}", sex=sex,
        address=f"{_ri(rng, 1, 999)} {_pick(rng, STREETS)}^^{city}^{state}^{zipcode}^USA^H",
        phone=f"^PRN^PH^^1^555^{_ri(rng, 1000000, 9999999)}", visit=f"V{_ri(rng, 10**7, 10**8 - 1)}",
        ward=_pick(rng, WARDS), doctor=_pick(rng, DOCTORS), fhir=rng.random() < fhir_share,
    )


def _counts(n: int, note_share: float | None = None) -> dict[str, int]:
    mix = MIX if note_share is None else {**{k: v * (1 - note_share) / (1 - MIX["note"]) for k, v in MIX.items()}, "note": note_share}
    counts = {kind: round(n * share) for kind, share in mix.items() if kind != "note"}
    counts["note"] = max(0, n - sum(counts.values()))
    if n > 0 and counts["adt"] == 0:  # a patient's first message is an admission
        biggest = max(counts, key=counts.__getitem__)
        counts[biggest] -= 1
        counts["adt"] = 1
    return counts


def _times(rng: random.Random, admitted: datetime, n: int) -> list[datetime]:
    """A few minutes between messages, squeezed when needed so that all lie within PATIENT_SPAN."""
    gaps = [_ri(rng, 120, 720) for _ in range(n - 1)]
    total = sum(gaps)
    limit = int(PATIENT_SPAN.total_seconds())
    if total > limit:
        gaps = [g * limit // total for g in gaps]
    times, t = [admitted], 0
    for g in gaps:
        t += g
        times.append(admitted + timedelta(seconds=t))
    return times


def generate(n_messages: int, *, seed: int = 7, patients: int | None = None, malformed_share: float = 0.0,
             fhir_share: float = 0.1, start: datetime | None = None, note_share: float | None = None) -> Feed:
    """`n_messages` valid messages in the standard mix, plus round(n_messages * malformed_share) malformed
    ones, for `patients` patients (default n_messages // 8; at most one per ADT message, since every
    patient's first message is an A01 or A04). `note_share` replaces the mix's 10 % of notes, the other kinds scaled)."""
    rng = random.Random(seed)
    start = START if start is None else start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    start = start.astimezone(timezone(start.utcoffset()))  # a fixed offset: no DST jumps inside the feed
    counts = _counts(n_messages, note_share)
    n_patients = max(1, min(patients if patients is not None else n_messages // 8, counts["adt"] or 1))
    mrns = rng.sample(range(1_000_000, 10_000_000), n_patients)
    people = [_patient(rng, mrn, fhir_share) for mrn in mrns]

    # deal the messages: one A01/A04 each first, the rest at random
    for p in people[: counts["adt"]]:
        p.plan.append("adt")
    pool = (["adt"] * max(0, counts["adt"] - len(people)) + ["vitals"] * counts["vitals"] + ["lab"] * counts["lab"]
            + ["note"] * counts["note"])
    for kind in pool:
        _pick(rng, people).plan.append(kind)
    for p in people:
        rest = p.plan[1:]
        rng.shuffle(rest)
        p.plan[1:] = rest
        p.deteriorating = rng.random() < DETERIORATING_SHARE
    if len(people) > 1 and not any(p.deteriorating for p in people):
        max(people, key=lambda p: p.plan.count("vitals")).deteriorating = True

    timeline: list[tuple[datetime, int, FeedMessage]] = []
    expected_state: dict[str, dict] = {}
    windows: list[tuple[_Patient, datetime, datetime]] = []  # (patient, first, last message time)
    seq = 0
    for p in people:
        if not p.plan:
            continue
        key = p.key
        admitted = start + timedelta(seconds=_ri(rng, 0, 3600))
        times = _times(rng, admitted, len(p.plan))
        n_adt, n_vitals = p.plan.count("adt"), p.plan.count("vitals")
        # ADT: A01 admit (inpatient) or A04 register (outpatient / ED) first; A08 updates; maybe one A03 last
        patient_class = _pick(rng, "IIIE")
        first_event = "A01" if patient_class == "I" else "A04"
        discharge = n_adt > 1 and p.plan[-1] == "adt" and rng.random() < 0.5
        patient_url = f"urn:uuid:{_uuid(rng)}"
        adt_seen = vitals_seen = 0
        last_vitals: tuple[int, str] | None = None
        last_qsofa = 0
        lactate: tuple[datetime, str, float] | None = None  # the latest by collection time, as the worker keeps it
        truth = AlertTruth()
        has_note = False
        for i, (kind, at) in enumerate(zip(p.plan, times)):
            seq += 1
            mid = f"CS{seed}-{seq:08d}"
            topic, flags, clears = "hl7v2", (), []
            if kind == "adt":
                adt_seen += 1
                event = first_event if adt_seen == 1 else "A03" if discharge and i == len(p.plan) - 1 else "A08"
                value = _adt(p, mid, at, event, admitted, patient_class)
            elif kind == "vitals":
                _, profile = _stage(p.deteriorating, vitals_seen, n_vitals, rng)
                vitals_seen += 1
                vitals = _sample_vitals(rng, profile)
                total, band, _ = news2_score(vitals)
                last_vitals, last_qsofa = (total, band), qsofa_points(vitals)
                flags = ((BAND_FLAG[band],) if BAND_FLAG[band] else ()) + (("qsofa",) if last_qsofa >= 2 else ())
                if band == "low":  # back in the low band: every open flag but a critical lab value resolves
                    clears = sorted(f for f in truth.open if not f.startswith("critical_"))
                elif last_qsofa < 2:
                    clears = ["qsofa"]
                if p.fhir:
                    topic, kind = "fhir", "fhir_vitals"
                    value = _vitals_fhir(p, mid, at, vitals, rng, patient_url)
                else:
                    value = _vitals_hl7(p, mid, at, vitals, admitted, patient_class)
            elif kind == "lab":
                sick = p.deteriorating and vitals_seen * 2 >= n_vitals
                value, collected_at, lactate_value = _lab_hl7(p, mid, at, rng, admitted, patient_class, sick)
                if lactate_value is not None:
                    if lactate_value > LACTATE_CRITICAL:
                        flags = ("critical_lactate",)
                    if lactate is None or (collected_at, mid) >= lactate[:2]:
                        lactate = (collected_at, mid, lactate_value)
                        if lactate_value <= LACTATE_CRITICAL:
                            clears = ["critical_lactate"]
            else:
                has_note = True
                positive_flags: list[str] = []
                if p.deteriorating and vitals_seen * 3 >= n_vitals and rng.random() < POSITIVE_NOTE_CHANCE:  # once the decline shows
                    positive_flags = sorted(rng.sample(sorted(POSITIVE), 2 if rng.random() < 0.2 else 1))
                positive = [_pick(rng, POSITIVE[f]) for f in positive_flags]
                negated = []
                if rng.random() < NEGATED_NOTE_CHANCE:
                    negated = [_pick(rng, [s for s, f in NEGATED if f not in truth.episodes and f not in positive_flags])]
                value = _note_hl7(p, mid, at, _note_text(p, rng, at, positive, negated), admitted, patient_class, rng)
                flags = tuple(positive_flags)
            alerts = tuple(truth.message(at, sorted(flags), clears))
            timeline.append((at, seq, FeedMessage(topic, key, value, mid, kind, True, tuple(sorted(flags)), _iso(at), alerts)))
        if last_vitals is not None or has_note or lactate is not None:
            active = {f for f in truth.open if f in POSITIVE}  # NLP flags alerted and not resolved
            active |= {BAND_FLAG[last_vitals[1]]} if last_vitals and BAND_FLAG[last_vitals[1]] else set()
            active |= {"qsofa"} if last_qsofa >= 2 else set()
            active |= {"critical_lactate"} if lactate and lactate[2] > LACTATE_CRITICAL else set()
            expected_state[key] = {
                "band": last_vitals[1] if last_vitals else None, "score": last_vitals[0] if last_vitals else None,
                "flags": sorted(active),
            }
        windows.append((p, admitted, times[-1]))

    # malformed messages: a random patient's, at a random moment inside that patient's window
    for _ in range(round(n_messages * malformed_share) if windows else 0):
        p, first, last = _pick(rng, windows)
        at = first + timedelta(seconds=_ri(rng, 0, int((last - first).total_seconds())))
        seq += 1
        mid = f"CS{seed}-{seq:08d}"
        topic, value = _malformed(rng, p, mid, at, first)
        timeline.append((at, seq, FeedMessage(topic, p.key, value, mid, "malformed", False, (), _iso(at))))

    timeline.sort(key=lambda item: (item[0], item[1]))
    return Feed([m for _, _, m in timeline], expected_state)


# ------------------------------------------------------------------------------------------------
# Deterioration scenarios: five scripted patients whose flags and alerts are written out by hand below
# (not computed), the ground truth of the alert semantics on the real pipeline.
# ------------------------------------------------------------------------------------------------

_K = ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", "3.5-5.1")
_NA = ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", "135-145")
_LACTATE = ("2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L", "0.5-2.0")
_WBC = ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", "4.0-11.0")


def _lab_values_hl7(p: _Patient, mid: str, at: datetime, values: list[tuple[tuple[str, str, str, str], float, str]],
                    admitted: datetime) -> bytes:
    collected = _ts(at - timedelta(minutes=30))
    segments = [_msh("ORU^R01^ORU_R01", mid, at, "LAB"), _pid(p), _pv1(p, admitted, "I"),
                f"OBR|1|{mid}^LAB|{mid}^LAB|24323-8^Comprehensive metabolic panel^LN|||{collected}||||||||{p.doctor}||||||{_ts(at)}|||F"]
    for i, ((code, display, unit, ref), value, flag) in enumerate(values, 1):
        segments.append(f"OBX|{i}|NM|{code}^{display}^LN||{value}|{unit}^{unit}^UCUM|{ref}|{flag}|||F|||{collected}")
    return "\r".join(segments).encode()


# name -> [(minutes after admission, kind, payload, flags raised, alerts (kind, flag, episode))]; kinds: adt,
# vitals (Vitals), fhir_vitals (Vitals), lab ([(analyte, value, HL7 abnormal flag)]), note (sentences)
SCENARIOS: dict[str, list[tuple[int, str, object, tuple[str, ...], tuple[tuple[str, str, int], ...]]]] = {
    "sepsis": [
        (0, "adt", None, (), ()),
        (30, "vitals", Vitals(16, 97, 0, 128, 80, "A", 37.0), (), ()),  # NEWS2 0
        (120, "vitals", Vitals(23, 95, 0, 105, 105, "A", 38.6), ("news2_medium",), (("raised", "news2_medium", 1),)),  # 2+1+1+1+1 = 6; qSOFA 1
        (150, "lab", [(_LACTATE, 4.6, "H"), (_WBC, 16.2, "H")], ("critical_lactate",), (("raised", "critical_lactate", 1),)),
        (180, "note", ["Patient is a 67 year old man admitted under medicine.", "Reports productive cough and fever since yesterday.",
                       "Chest radiograph shows a right lower lobe opacity.", "Blood cultures were drawn before antibiotics were started.",
                       "Assessment: sepsis secondary to pneumonia.", "Started on vancomycin and piperacillin tazobactam."],
         ("sepsis",), (("raised", "sepsis", 1),)),
        (240, "vitals", Vitals(26, 92, 2, 88, 128, "V", 39.2), ("news2_high", "qsofa"),  # 3+2+2+3+2+3+2 = 17; qSOFA 3
         (("raised", "news2_high", 1), ("raised", "qsofa", 1))),
        (270, "vitals", Vitals(27, 91, 4, 86, 132, "V", 39.4), ("news2_high", "qsofa"), ()),  # 19: repeats, suppressed
    ],
    "respiratory_failure": [
        (0, "adt", None, (), ()),
        (20, "fhir_vitals", Vitals(18, 96, 0, 130, 84, "A", 36.9), (), ()),  # 0
        (60, "fhir_vitals", Vitals(25, 94, 0, 128, 88, "A", 37.2), ("news2_low_medium",), (("raised", "news2_low_medium", 1),)),  # 3+1, red
        (120, "fhir_vitals", Vitals(28, 91, 4, 122, 104, "A", 37.4), ("news2_high",), (("raised", "news2_high", 1),)),  # 3+3+2+1 = 9; qSOFA 1
        (150, "note", ["Seen today: 72 year old woman admitted under medicine.", "Past medical history includes COPD with two exacerbations last year.",
                       "Lungs with scattered crackles at the right base.", "Assessment: acute respiratory failure requiring high flow oxygen.",
                       "Encourage incentive spirometry and early mobilisation."],
         ("respiratory_failure",), (("raised", "respiratory_failure", 1),)),
        (360, "fhir_vitals", Vitals(18, 95, 0, 126, 82, "A", 37.0), (),  # 1: back in the low band, the episode resolves
         (("resolved", "news2_high", 1), ("resolved", "news2_low_medium", 1), ("resolved", "respiratory_failure", 1))),
    ],
    "hyperkalaemia": [
        (0, "adt", None, (), ()),
        (30, "vitals", Vitals(16, 97, 0, 134, 76, "A", 36.8), (), ()),  # 0
        (90, "lab", [(_K, 6.9, "HH"), (_NA, 138, "N")], ("critical_potassium",), (("raised", "critical_potassium", 1),)),
        (150, "vitals", Vitals(17, 95, 0, 132, 95, "A", 36.9), (), ()),  # 2, low: a critical value is not resolved by vital signs
        (300, "lab", [(_K, 6.4, "HH")], ("critical_potassium",), ()),  # still critical: a repeat inside the period
    ],
    "denies_chest_pain": [
        (0, "adt", None, (), ()),
        (30, "vitals", Vitals(15, 98, 0, 138, 72, "A", 36.7), (), ()),
        (60, "note", ["Patient is a 54 year old man admitted under medicine.", "Denies chest pain.", "No evidence of myocardial infarction.",
                      "Electrocardiogram shows sinus rhythm at 72 beats per minute.", "Heart sounds regular with no murmur appreciated.",
                      "Anticipate discharge in 2 days if progress continues."], (), ()),
        (120, "vitals", Vitals(14, 97, 0, 136, 70, "A", 36.6), (), ()),
    ],
    "stable": [
        (0, "adt", None, (), ()),
        (30, "fhir_vitals", Vitals(14, 98, 0, 124, 68, "A", 36.6), (), ()),
        (90, "note", ["Patient is a 45 year old woman admitted under medicine.", "Tolerating a soft diet and ambulating with a walker.",
                      "Abdomen is soft and non tender with normal bowel sounds.", "Physical therapy consulted for mobility assessment."], (), ()),
        (150, "fhir_vitals", Vitals(15, 97, 0, 126, 70, "A", 36.7), (), ()),
        (240, "fhir_vitals", Vitals(14, 98, 0, 122, 66, "A", 36.8), (), ()),
    ],
}


def note_texts(n: int, *, seed: int = 11) -> list[str]:
    """`n` clinical notes as the inference worker reads them: the narratives of the generator's note messages,
    normalized as the pipeline normalizes them (benchmarks, and calibrating the int8 NER model)."""
    from clinstream.envelope import SourceRecord
    from processors.narrative import narratives
    from processors.normalize import normalize

    texts: list[str] = []
    for m in generate(max(400, n * 12), seed=seed).messages:
        if m.kind == "note" and m.valid:
            envelope = normalize(m.value, "hl7v2", source=SourceRecord(topic="notes", partition=0, offset=0),
                                 received_at="2026-01-01T00:00:00+00:00", normalized_at="2026-01-01T00:00:00+00:00",
                                 max_bytes=10**7)
            texts.extend(narrative.text for narrative in narratives(envelope.bundle))
    return texts[:n]


def scenarios(*, start: datetime | None = None, seed: int = 5, first_mrn: int = 9_000_001) -> Feed:
    """The five scenario patients (MRNs first_mrn...), admitted ten minutes apart, in time order; each message
    carries its scenario's hand-written flags and alerts; `expected_state` holds the band at the end."""
    rng = random.Random(seed)
    start = START if start is None else start
    timeline: list[tuple[datetime, int, FeedMessage]] = []
    expected_state: dict[str, dict] = {}
    seq = 0
    for n, (name, steps) in enumerate(SCENARIOS.items()):
        p = _patient(rng, first_mrn + n, 0.0)
        admitted = start + timedelta(minutes=10 * n)
        patient_url = f"urn:uuid:{_uuid(rng)}"
        last_vitals = None
        for minutes, kind, payload, flags, alerts in steps:
            seq += 1
            at, mid = admitted + timedelta(minutes=minutes), f"SCN{seed}-{seq:06d}"
            topic = "hl7v2"
            if kind == "adt":
                value = _adt(p, mid, at, "A01", admitted, "I")
            elif kind == "vitals":
                value, last_vitals = _vitals_hl7(p, mid, at, payload, admitted, "I"), payload
            elif kind == "fhir_vitals":
                topic, last_vitals = "fhir", payload
                value = _vitals_fhir(p, mid, at, payload, rng, patient_url)
            elif kind == "lab":
                value = _lab_values_hl7(p, mid, at, payload, admitted)
            else:
                value = _note_hl7(p, mid, at, payload, admitted, "I", rng)
            message = FeedMessage(topic, p.key, value, mid, kind, True, tuple(sorted(flags)), _iso(at), tuple(sorted(alerts)), name)
            timeline.append((at, seq, message))
        total, band, _ = news2_score(last_vitals)
        expected_state[p.key] = {"band": band, "score": total, "scenario": name}
    timeline.sort(key=lambda item: (item[0], item[1]))
    return Feed([m for _, _, m in timeline], expected_state)
