"""A seeded, reproducible synthetic feed of realistic clinical messages, with the ground truth the
pipeline must reproduce (flags per message, each patient's final risk state).

Standard mix of valid messages: 30% ADT (A01/A04 first, then A08, A03 last), 45% vital-sign ORU^R01,
15% lab ORU^R01, 10% MDM^T02 notes of 50-300 words; a share of patients sends vitals as FHIR R4 Bundles.
Malformed messages are added on top. Pure: no I/O, no global random state.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

AUTHORITY = "GENHOSP"
START = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
MIX = {"adt": 0.30, "vitals": 0.45, "lab": 0.15, "note": 0.10}
NAMESPACE = uuid.UUID("3e0f8d8e-0f7b-4a8c-9a0e-8a1f43f1c2d7")


@dataclass(frozen=True)
class FeedMessage:
    topic: str  # "hl7v2" | "fhir": the logical inbound topic
    key: str  # patient key "<authority>|<mrn>"
    value: bytes
    message_id: str
    kind: str  # adt | vitals | lab | note | fhir_vitals | malformed
    valid: bool
    expected_flags: tuple[str, ...]
    observed_at: str


@dataclass(frozen=True)
class Feed:
    messages: list[FeedMessage]
    expected_state: dict[str, dict]  # patient key -> {"band", "score", "flags"}


# --- vital-sign sets with their NEWS2 (RCP 2017, scale 1) worked out by hand, point by point -------
# (respiratory rate, SpO2, O2 flow L/min, systolic, pulse, ACVPU, temperature) -> (total, band)
VITAL_SETS = {
    "low": [
        ((16, 97, 0, 124, 74, "A", 36.8), 0, "low"),   # all 0
        ((18, 96, 0, 118, 88, "A", 37.4), 0, "low"),   # all 0
        ((19, 95, 0, 128, 92, "A", 37.9), 2, "low"),   # SpO2 95 +1, pulse 92 +1
        ((14, 98, 0, 108, 68, "A", 36.4), 1, "low"),   # systolic 108 +1
    ],
    "low-medium": [
        ((26, 97, 0, 122, 84, "A", 37.0), 3, "low-medium"),  # RR 26 +3 (single red score)
    ],
    "medium": [
        ((22, 95, 0, 104, 96, "A", 38.4), 6, "medium"),  # RR +2, SpO2 +1, sys +1, pulse +1, temp +1
        ((23, 94, 0, 109, 102, "A", 37.6), 5, "medium"),  # RR +2, SpO2 +1, sys +1, pulse +1
    ],
    "high": [
        ((26, 91, 2, 96, 118, "V", 39.2), 17, "high"),  # RR +3, SpO2 +3, O2 +2, sys +2, pulse +2, V +3, temp +2
        ((24, 93, 4, 99, 124, "A", 38.6), 11, "high"),  # RR +2, SpO2 +2, O2 +2, sys +2, pulse +2, temp +1
    ],
}
BAND_FLAG = {"low": None, "low-medium": "news2_low_medium", "medium": "news2_medium", "high": "news2_high"}
VITAL_CODES = [  # (LOINC, display, UCUM unit) in the order of a vital set
    ("9279-1", "Respiratory rate", "/min"), ("59408-5", "Oxygen saturation by pulse oximetry", "%"),
    ("3151-8", "Inhaled oxygen flow rate", "L/min"), ("8480-6", "Systolic blood pressure", "mm[Hg]"),
    ("8867-4", "Heart rate", "/min"), ("67775-7", "Level of consciousness (ACVPU)", ""),
    ("8310-5", "Body temperature", "Cel"),
]
LABS = [  # LOINC, display, unit, low, high, normal range text
    ("2823-3", "Potassium", "mmol/L", 3.5, 5.1), ("2951-2", "Sodium", "mmol/L", 135, 145),
    ("2160-0", "Creatinine", "mg/dL", 0.6, 1.2), ("6690-2", "Leukocytes", "10*3/uL", 4.0, 11.0),
    ("718-7", "Hemoglobin", "g/dL", 12.0, 17.5), ("2524-7", "Lactate", "mmol/L", 0.5, 2.0),
]

FIRST = ["Maria", "James", "Aisha", "Wei", "Olga", "Carlos", "Fatima", "John", "Priya", "Liam", "Sofia", "Noah",
         "Amara", "Lucas", "Hana", "Mateo", "Grace", "Omar", "Elena", "David", "Yuki", "Samuel", "Leila", "Ivan"]
LAST = ["Garcia", "Smith", "Khan", "Chen", "Ivanova", "Lopez", "Hassan", "Brown", "Patel", "Murphy", "Rossi",
        "Nguyen", "Okafor", "Silva", "Tanaka", "Muller", "Johnson", "Ahmed", "Kowalski", "Cohen", "Dubois", "Park"]
STREETS = ["Oak St", "Maple Ave", "Harbor Rd", "Cedar Ln", "Hillside Dr", "Elm St", "Park Blvd", "River Rd"]
CITIES = [("Springfield", "IL", "62701"), ("Riverton", "WY", "82501"), ("Fairview", "OR", "97024"), ("Madison", "WI", "53703")]
DOCTORS = ["1001^Adams^Helen^^^Dr", "1002^Baker^Rahul^^^Dr", "1003^Costa^Ines^^^Dr", "1004^Diaz^Tom^^^Dr"]
WARDS = ["4W^401^A", "4W^402^B", "5E^510^A", "ICU^03^A", "ED^12^A"]

# note sentences: none contains a high-risk phrase or a negation of one
HISTORY = [
    "Patient is a {age} year old {sex} admitted from the emergency department.",
    "Past medical history includes hypertension and type 2 diabetes mellitus.",
    "Past medical history is notable for osteoarthritis and hypothyroidism.",
    "Home medications include metformin, lisinopril and atorvastatin.",
    "Home medications include levothyroxine and amlodipine.",
    "Lives at home with family and is independent at baseline.",
    "Reports fatigue and decreased appetite over the past three days.",
    "Reports productive cough and fever since yesterday.",
    "Reports dysuria and increased urinary frequency.",
]
EXAM = [
    "On examination the patient is resting in bed and conversing appropriately.",
    "Lungs with scattered crackles at the right base.",
    "Heart sounds regular with no murmur appreciated.",
    "Abdomen is soft and non tender with normal bowel sounds.",
    "Extremities are warm with trace bilateral ankle edema.",
    "Skin is intact and mucous membranes are dry.",
]
DATA = [
    "Laboratory results reviewed with the team this morning.",
    "Chest radiograph shows a right lower lobe opacity.",
    "Blood cultures were drawn before antibiotics were started.",
    "Urinalysis was sent and is pending.",
    "Electrocardiogram shows sinus rhythm.",
]
PLAN = [
    "Plan to continue intravenous fluids and monitor urine output.",
    "Continue ceftriaxone and azithromycin and reassess tomorrow.",
    "Started on vancomycin and piperacillin tazobactam.",
    "Hold metformin while inpatient and use insulin sliding scale.",
    "Physical therapy consulted for mobility assessment.",
    "Discussed the plan of care with the patient and family at bedside.",
    "Will repeat basic metabolic panel in the morning.",
    "Continue home levothyroxine and monitor blood pressure.",
]
POSITIVE = {  # flag -> sentences that assert it
    "sepsis": ["Assessment: sepsis secondary to pneumonia.", "Now in septic shock requiring vasopressors."],
    "myocardial_infarction": ["Findings consistent with acute myocardial infarction.", "Troponin rise consistent with myocardial infarction."],
    "stroke": ["New stroke on CT of the head.", "Assessment: acute ischemic stroke with left sided weakness."],
    "pulmonary_embolism": ["CT angiogram confirms pulmonary embolism.", "Assessment: acute pulmonary embolism."],
    "acute_kidney_injury": ["Creatinine rising, consistent with acute kidney injury.", "Assessment: acute kidney injury."],
    "respiratory_failure": ["Worsening hypoxia, consistent with acute respiratory failure.", "Assessment: acute respiratory failure."],
}
NEGATED = ["Denies chest pain.", "No evidence of sepsis.", "No signs of stroke.", "Negative for pulmonary embolism.",
           "No evidence of acute kidney injury."]


@dataclass
class _Patient:
    mrn: str
    first: str
    last: str
    dob: str
    sex: str
    address: str
    phone: str
    visit: str
    ward: str
    doctor: str
    deteriorating: bool
    fhir: bool


def _ts(at: datetime) -> str:
    return at.strftime("%Y%m%d%H%M%S+0000")


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _escape(text: str) -> str:
    """HL7 escapes for the delimiters, so free text can never break a segment."""
    return (text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\").replace("~", "\\R\\"))


def _msh(kind: str, mid: str, at: datetime, app: str) -> str:
    return f"MSH|^~\\&|{app}|{AUTHORITY}|CLINSTREAM|CLINSTREAM|{_ts(at)}||{kind}|{mid}|P|2.5.1"


def _pid(p: _Patient) -> str:
    return (f"PID|1||{p.mrn}^^^{AUTHORITY}^MR||{p.last}^{p.first}||{p.dob}|{p.sex}|||{p.address}||{p.phone}")


def _pv1(p: _Patient, admitted: datetime, discharged: datetime | None = None) -> str:
    fields = [""] * 46
    fields[1], fields[2], fields[3], fields[7] = "1", "I", f"{p.ward}^{AUTHORITY}", p.doctor
    fields[19], fields[44] = f"{p.visit}^^^{AUTHORITY}^VN", _ts(admitted)
    if discharged:
        fields[45] = _ts(discharged)
    return "PV1|" + "|".join(fields[1:])


def _hl7(*segments: str) -> bytes:
    return "\r".join(segments).encode()


def _vitals_hl7(p: _Patient, mid: str, at: datetime, vitals: tuple, admitted: datetime) -> bytes:
    obx = []
    for i, ((code, name, unit), value) in enumerate(zip(VITAL_CODES, vitals)):
        if code == "67775-7":
            obx.append(f"OBX|{i + 1}|CWE|{code}^{name}^LN||{value}^{'Alert' if value == 'A' else 'Voice'}^urn:clinstream:acvpu||||||F|||{_ts(at)}")
        else:
            obx.append(f"OBX|{i + 1}|NM|{code}^{name}^LN||{value}|{unit}^{unit}^UCUM||||||F|||{_ts(at)}")
    return _hl7(_msh("ORU^R01^ORU_R01", mid, at, "MONITOR"), _pid(p), _pv1(p, admitted),
                f"OBR|1|{mid}^MONITOR||85353-1^Vital signs panel^LN|||{_ts(at)}||||||||||||||||||F", *obx)


def _vitals_fhir(p: _Patient, mid: str, at: datetime, vitals: tuple) -> bytes:
    patient_url = f"urn:uuid:{uuid.uuid5(NAMESPACE, 'patient|' + p.mrn)}"
    entries = [{"fullUrl": patient_url, "resource": {
        "resourceType": "Patient", "id": str(uuid.uuid5(NAMESPACE, "patient|" + p.mrn)),
        "identifier": [{"system": f"urn:clinstream:id:{AUTHORITY}", "value": p.mrn,
                        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
        "name": [{"family": p.last, "given": [p.first]}], "gender": "female" if p.sex == "F" else "male",
        "birthDate": f"{p.dob[:4]}-{p.dob[4:6]}-{p.dob[6:]}"}}]
    for (code, name, unit), value in zip(VITAL_CODES, vitals):
        oid = str(uuid.uuid5(NAMESPACE, f"obs|{mid}|{code}"))
        obs = {"resourceType": "Observation", "id": oid, "status": "final",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
               "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": name}]},
               "subject": {"reference": patient_url}, "effectiveDateTime": _iso(at)}
        if code == "67775-7":
            obs["valueCodeableConcept"] = {"coding": [{"system": "urn:clinstream:acvpu", "code": value}]}
        else:
            obs["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        entries.append({"fullUrl": f"urn:uuid:{oid}", "resource": obs})
    return json.dumps({"resourceType": "Bundle", "id": mid, "type": "collection", "timestamp": _iso(at), "entry": entries}).encode()


def _lab_hl7(p: _Patient, mid: str, at: datetime, rng: random.Random, admitted: datetime) -> bytes:
    obx = []
    for i, (code, name, unit, low, high) in enumerate(LABS):
        value = round(rng.uniform(low * 0.85, high * 1.2), 1)
        flag = "H" if value > high else "L" if value < low else "N"
        obx.append(f"OBX|{i + 1}|NM|{code}^{name}^LN||{value}|{unit}^{unit}^UCUM|{low}-{high}|{flag}|||F|||{_ts(at)}")
    return _hl7(_msh("ORU^R01^ORU_R01", mid, at, "LIS"), _pid(p), _pv1(p, admitted),
                f"OBR|1|{mid}^LIS||24323-8^Comprehensive metabolic panel^LN|||{_ts(at)}||||||||||||||||||F", *obx)


def _note_text(p: _Patient, rng: random.Random, positive: list[str], negated: list[str]) -> str:
    age = 2026 - int(p.dob[:4])
    sentences = [HISTORY[0].format(age=age, sex="woman" if p.sex == "F" else "man")]
    sentences += positive + negated
    target = rng.randint(50, 300)
    pools = [HISTORY[1:], EXAM, DATA, PLAN]
    while sum(len(s.split()) for s in sentences) < target:
        sentences.append(rng.choice(rng.choice(pools)))
    rng.shuffle(sentences)
    while sum(len(s.split()) for s in sentences) > 300:
        removable = [s for s in sentences if s not in positive and s not in negated]
        sentences.remove(removable[-1])
    return " ".join(sentences)


def _note_hl7(p: _Patient, mid: str, at: datetime, text: str, admitted: datetime) -> bytes:
    words = text.split()
    lines = [" ".join(words[i:i + 25]) for i in range(0, len(words), 25)]
    obx = [f"OBX|{i + 1}|TX|11506-3^Progress note^LN|{i + 1}|{_escape(line)}||||||F" for i, line in enumerate(lines)]
    txa = f"TXA|1|PN^Progress note|TX|{_ts(at)}|{p.doctor}||{_ts(at)}|||||DOC{mid}||||||AU"
    return _hl7(_msh("MDM^T02^MDM_T02", mid, at, "EHR"), f"EVN|T02|{_ts(at)}", _pid(p), _pv1(p, admitted), txa, *obx)


def _adt_hl7(p: _Patient, mid: str, at: datetime, event: str, admitted: datetime) -> bytes:
    discharged = at if event == "A03" else None
    return _hl7(_msh(f"ADT^{event}^ADT_A01", mid, at, "ADT"), f"EVN|{event}|{_ts(at)}", _pid(p), _pv1(p, admitted, discharged))


def _malformed(rng: random.Random, p: _Patient, mid: str, at: datetime) -> tuple[str, bytes]:
    kind = rng.randrange(6)
    if kind == 0:  # truncated inside MSH: no MSH-10 and nothing after it
        return "hl7v2", f"MSH|^~\\&|MONITOR|{AUTHORITY}|CLINSTREAM|CLINSTREAM|{_ts(at)}||ORU^R01".encode()
    if kind == 1:  # the MSH segment was lost
        return "hl7v2", _hl7(_pid(p), f"OBX|1|NM|8867-4^Heart rate^LN||88|/min||||||F")
    if kind == 2:  # an empty payload
        return "hl7v2", b""
    if kind == 3:  # Latin-1 bytes without MSH-18
        return "hl7v2", _msh("ADT^A08^ADT_A01", mid, at, "ADT").encode() + b"\rPID|1||" + p.mrn.encode() + b"^^^GENHOSP^MR||M\xfcller^J\xf6rg\xff"
    if kind == 4:  # FHIR cut off mid-document
        return "fhir", b'{"resourceType": "Bundle", "id": "' + mid.encode() + b'", "type": "collection", "entry": [{"resource": '
    return "fhir", json.dumps({"resourceType": "Observation", "id": mid, "valueQuantity": {"value": 88, "unit": "/min"}}).encode()


def _patient(rng: random.Random, index: int, fhir_share: float) -> _Patient:
    city, state, zipcode = rng.choice(CITIES)
    year = rng.randint(1935, 2000)
    return _Patient(
        mrn=f"{100000 + index * 7 + rng.randint(0, 6):06d}", first=rng.choice(FIRST), last=rng.choice(LAST),
        dob=f"{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}", sex=rng.choice("FM"),
        address=f"{rng.randint(1, 999)} {rng.choice(STREETS)}^^{city}^{state}^{zipcode}",
        phone=f"^PRN^PH^^1^555^{rng.randint(1000000, 9999999)}", visit=f"V{rng.randint(10**6, 10**7 - 1)}",
        ward=rng.choice(WARDS), doctor=rng.choice(DOCTORS), deteriorating=rng.random() < 0.15, fhir=rng.random() < fhir_share,
    )


def generate(n_messages: int, *, seed: int = 7, patients: int | None = None, malformed_share: float = 0.0,
             fhir_share: float = 0.1, start: datetime | None = None) -> Feed:
    rng = random.Random(seed)
    start = start or START
    n_patients = max(1, patients or n_messages // 8)
    people = [_patient(rng, i, fhir_share) for i in range(n_patients)]
    if not any(p.deteriorating for p in people):
        people[0].deteriorating = True

    counts = {kind: round(n_messages * share) for kind, share in MIX.items()}
    counts["note"] = n_messages - counts["adt"] - counts["vitals"] - counts["lab"]
    # every patient is admitted first; the remaining messages are dealt out at random
    plans: list[list[str]] = [["adt"] for _ in people][: counts["adt"]] + [[] for _ in people][counts["adt"]:]
    pool = ["adt"] * max(0, counts["adt"] - min(counts["adt"], len(people)))
    pool += ["vitals"] * counts["vitals"] + ["lab"] * counts["lab"] + ["note"] * counts["note"]
    rng.shuffle(pool)
    for kind in pool:
        plans[rng.randrange(len(people))].append(kind)

    timeline: list[tuple[datetime, int, FeedMessage]] = []
    expected_state: dict[str, dict] = {}
    seq = 0
    for p, plan in zip(people, plans):
        if not plan:
            continue
        head, rest = plan[:1], plan[1:]
        rng.shuffle(rest)
        plan = head + rest
        key = f"{AUTHORITY}|{p.mrn}"
        admitted = start + timedelta(minutes=rng.randint(0, 60))
        step = timedelta(minutes=min(15.0, 11 * 60 / max(1, len(plan))))
        n_vitals = plan.count("vitals")
        vitals_seen, adt_seen, n_adt = 0, 0, plan.count("adt")
        last_band: tuple[int, str] | None = None
        nlp_flags: set[str] = set()
        for i, kind in enumerate(plan):
            at = admitted + step * i
            seq += 1
            mid = f"CS{seed:04d}{seq:07d}"
            flags: tuple[str, ...] = ()
            topic = "hl7v2"
            if kind == "adt":
                adt_seen += 1
                event = rng.choice("A01 A04".split()) if adt_seen == 1 else "A03" if adt_seen == n_adt and n_adt > 2 else "A08"
                value = _adt_hl7(p, mid, at, event, admitted)
            elif kind == "vitals":
                stage = "low"
                if p.deteriorating:
                    ladder = ["low", "low-medium", "medium", "high"]
                    stage = "high" if vitals_seen == n_vitals - 1 else ladder[min(3, vitals_seen * 4 // max(1, n_vitals))]
                vitals_seen += 1
                vitals, total, band = rng.choice(VITAL_SETS[stage])
                flag = BAND_FLAG[band]
                flags = (flag,) if flag else ()
                last_band = (total, band)
                if p.fhir:
                    topic, kind = "fhir", "fhir_vitals"
                    value = _vitals_fhir(p, mid, at, vitals)
                else:
                    value = _vitals_hl7(p, mid, at, vitals, admitted)
            elif kind == "lab":
                value = _lab_hl7(p, mid, at, rng, admitted)
            else:
                positive_flags = sorted({rng.choice(sorted(POSITIVE))} if p.deteriorating and rng.random() < 0.6 else set())
                positive = [rng.choice(POSITIVE[f]) for f in positive_flags]
                negated = [rng.choice(NEGATED)] if rng.random() < 0.35 else []
                value = _note_hl7(p, mid, at, _note_text(p, rng, positive, negated), admitted)
                flags = tuple(positive_flags)
                nlp_flags.update(positive_flags)
            timeline.append((at, seq, FeedMessage(topic, key, value, mid, kind, True, flags, _iso(at))))
        if last_band or nlp_flags:
            news2_flag = BAND_FLAG[last_band[1]] if last_band else None
            expected_state[key] = {
                "band": last_band[1] if last_band else None, "score": last_band[0] if last_band else None,
                "flags": sorted(nlp_flags | ({news2_flag} if news2_flag else set())),
            }

    for _ in range(round(n_messages * malformed_share)):
        p = rng.choice(people)
        at = start + timedelta(minutes=rng.randint(0, 11 * 60))
        seq += 1
        mid = f"BAD{seed:04d}{seq:07d}"
        topic, value = _malformed(rng, p, mid, at)
        timeline.append((at, seq, FeedMessage(topic, f"{AUTHORITY}|{p.mrn}", value, mid, "malformed", False, (), _iso(at))))

    timeline.sort(key=lambda item: (item[0], item[1]))
    return Feed([m for _, _, m in timeline], expected_state)
