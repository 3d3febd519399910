"""One HL7 v2 message -> one FHIR R4 Bundle (type message). Message types differ only in which
segments they carry: each segment family has its mapper, and this module walks the segments in order."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field as dc_field
from typing import Any

from fhir_mappers.accidents import accident
from fhir_mappers.admin import ADMIN_SEGMENTS, admin_resources
from fhir_mappers.authorizations import authorization
from fhir_mappers.charges import charge_item
from fhir_mappers.conditions import allergy, allergy_reaction, allergy_update, condition, diagnosis_role, problem
from fhir_mappers.consents import consent
from fhir_mappers.death import death
from fhir_mappers.datatypes import cache_zone, comps, dtm, field, instant, registered, sender_context, unescape, unused
from fhir_mappers.devices import application_device, equipment_device, software_device
from fhir_mappers.documents import document_reference
from fhir_mappers.encounter import encounter as map_encounter, practitioner, visit_details, visit_status
from fhir_mappers.episodes import episode_of_care
from fhir_mappers.errors import HL7MappingError, MapperBug
from fhir_mappers.header import message_header, unread_extension, unread_fields
from fhir_mappers.ids import Clean, CleanList, bundle_entries, fhir_safe, frozen, ref, resource_id
from fhir_mappers.orders import ORDER_SEGMENTS, order_resources
from fhir_mappers.scheduling import SCHEDULE_SEGMENTS
from fhir_mappers.organizations import message_parties
from fhir_mappers.parse import decode, parse_er7
from fhir_mappers.participants import annotation, attach, note_text, participation, role
from fhir_mappers.pharmacy import refill_task
from fhir_mappers.patient import patient as map_patient, patient_key
from fhir_mappers.provenance import event_provenance, message_provenance
from fhir_mappers.providers import join_referral, provider
from fhir_mappers.referrals import referral
from fhir_mappers.security import access_restriction, restrict
from fhir_mappers.results import ATTACHMENT_TYPES, attachment_report, diagnostic_report, observation, performers, results_interpreter
from fhir_mappers.senders import Profile, SenderOverrides
from fhir_mappers.zsegments import z_extensions

NEEDS_PATIENT = {"ADT", "ORU", "MDM"}
# segments about the patient (and the visit) that may come before the PID: mapped once the whole message is read
LATER = {"FT1", "RF1", "CON", "PDA", "ACC", "AUT"}
# segments that add to the one before them rather than start something: a PRT or ROL belongs to the last
# segment before it that is none of these (a PV1, an OBX, a PR1...)
FOLLOWERS = {"PRT", "ROL", "NTE", "ARV", "IAR"}
# a PRT or ROL after one of these joins the resource made from the segment named: PD1 extends the PID, TQ1 the order
STANDS_FOR = {"PD1": ("PID",), "TQ1": ("ORC", "OBR")}
# shared resources that are not what a message is about: left out of MessageHeader.focus
# the segments an ARV may follow in the patient's group and in the visit's (ADT, OMG/OML/ORM patient and visit groups)
PATIENT_GROUP = {"PID", "PD1", "NK1"}
VISIT_GROUP = {"PV1", "PV2"}
NOT_FOCUS = {"Patient", "Practitioner", "PractitionerRole", "Location", "Organization", "Device"}


def _thaw(value: Any) -> Any:
    """A copy of a mapper's output that later steps may change (PRT, Z-segments and the last pass edit resources in
    place): dicts, lists and tuples copied, anything else (strings, numbers, final Clean values) shared. (C-level
    copies, then a loop that replaces only the containers: half the time of comprehensions over every value.)"""
    kind = type(value)
    if kind is dict:
        thawed = value.copy()
        for k, v in value.items():
            if type(v) in _THAWED:
                thawed[k] = _thaw(v)
        return thawed
    if kind is list:
        thawed = value.copy()
        for i, v in enumerate(value):
            if type(v) in _THAWED:
                thawed[i] = _thaw(v)
        return thawed
    if kind is tuple:
        return tuple([_thaw(v) if type(v) in _THAWED else v for v in value])
    return value


_THAWED = {dict, list, tuple}


class SegmentCache:
    """What a segment mapper made from a segment's text, and which of its fields it read. A feed repeats its patients
    and visits message after message (the standard mix: 950 PIDs, 125 different; 950 PV1s, 136), and the PID and PV1
    mappers were a sixth of the conversion. A mapper is a pure function of the segment's text and of the values in the
    key, so a hit gives what mapping again would, and sets the read marks of the fields, which the unmapped report is
    made from. Used only while no sender code-system override is in force (whose table the key would have to hold), for
    a segment no mapper has read yet, with the sender's zone in the key.

    A mapper's `build` returns (what it made, the shared resources it names). What it made (the Patient, the Encounter)
    later steps change (PRT, Z-segments, the last pass): each call gets its own copy (_thaw). The shared resources (the
    visit's Locations, its Practitioners) only join the Bundle (_share copies one before adding to it): they are kept
    cleaned and final (ids.frozen), and every Bundle that names them holds the same ones, as it holds cached codes.

    An entry is a few KB (the mix: 782 entries and the datatype caches held 5 MB), so each cache keeps 2,048 segments
    and drops the one cached longest ago beyond that: about 10 MB each at most, room for a ward's patients and visits."""

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._entries: dict[tuple, tuple[Any, list[Clean], bytes, int]] = {}

    def cache_clear(self) -> None:
        self._entries.clear()

    def map(self, segment: Any, key: tuple, build: Callable[[], tuple[Any, list[dict]]],
            keep: Callable[[Any], bool]) -> tuple[Any, list[dict]]:
        """build() as of segment (its marks set as build leaves them); kept for the next time if keep(what it made)."""
        zone = cache_zone()
        if zone is None or any(segment.read):
            return build()
        key = (segment.text, zone, *key)
        hit = self._entries.get(key)
        if hit is not None:
            made, shared, read, read_chars = hit
            segment.read[:] = read
            segment.read_chars = read_chars
            return _thaw(made), shared
        made, found = build()
        shared = [frozen(fhir_safe(resource)) for resource in found]
        if keep(made):
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries), None), None)
            self._entries[key] = (_thaw(made), shared, bytes(segment.read), segment.read_chars)
        return made, shared


_PATIENTS = registered(SegmentCache())
_ENCOUNTERS = registered(SegmentCache())


def _patient(pid: Any, msg_key: str, mrn_type: str) -> tuple[str | None, dict]:
    """(patient_key, Patient) of a PID. A PID without an MRN is keyed by its message: not kept."""
    (key, made), _ = _PATIENTS.map(pid, (mrn_type,), lambda: ((patient_key(pid, mrn_type), map_patient(pid, msg_key, mrn_type)), []),
                                   keep=lambda made: made[0] is not None)
    return key, made


def _encounter(pv1: Any, event: str, facility: str, msg_key: str, patient: dict) -> tuple[str | None, dict, list[dict]]:
    """(encounter key, Encounter, the resources it names) of a PV1. A PV1 without a visit number (PV1-19) is keyed by its
    message: not kept. The status, which depends on the event too (A03 finishes the visit), is set on every call, so
    that one cached PV1 serves all the events a visit sees."""
    def build() -> tuple[tuple[str | None, dict], list[dict]]:
        made, extra = map_encounter(pv1, event, facility, msg_key, patient)
        visit = comps(field(pv1, 19))
        return ((f"{unescape(visit[3].split('&')[0]) or facility}|{unescape(visit[0])}" if visit[0] else None), made), extra
    (key, made), extra = _ENCOUNTERS.map(pv1, (facility, patient["id"]), build, keep=lambda made: made[0] is not None)
    made["status"] = visit_status(pv1, event)
    return key, made, extra


@dataclass(frozen=True)
class MappedMessage:
    message_id: str
    message_type: str
    hl7_version: str
    sent_at: str | None
    patient_key: str | None
    encounter_key: str | None
    bundle: dict
    unmapped_segments: list[str]
    unmapped_fields: list[str]  # "PV1-52": the fields of mapped segments that no mapper read, each named once


@dataclass
class _Group:
    """An OBR and the OBX/NTE that follow it."""

    obr: Any | None
    index: int
    observations: list[dict] = dc_field(default_factory=list)
    notes: list[str] = dc_field(default_factory=list)
    reports: list[dict] = dc_field(default_factory=list)  # DiagnosticReports of its OBX holding a document or image
    orc: Any | None = None  # the ORC just before the OBR, whose numbers stand in for OBR-2/3 when those are empty


def hl7v2_to_fhir(raw: bytes | str, overrides: SenderOverrides | Profile | None = None) -> MappedMessage:
    """`overrides`: a sender overrides file (the profile is picked by MSH-3/MSH-4) or one sender's profile."""
    segments = parse_er7(decode(raw))
    msh = segments[0]
    kind = comps(field(msh, 9))
    if not kind[0]:
        raise HL7MappingError("MSH-9 (message type) is empty")
    message_id = unescape(field(msh, 10)).strip()
    if not message_id:
        raise HL7MappingError("MSH-10 (message control id) is empty")
    ids = [str(seg[0]) for seg in segments]
    if kind[0] in NEEDS_PATIENT and "PID" not in ids:
        raise HL7MappingError(f"{kind[0]} message has no PID segment")
    facility = unescape(field(msh, 4).split("^")[0]) or "unknown"
    msg_key = f"{facility}|{message_id}"
    profile = (overrides.select(unescape(field(msh, 3).split("^")[0]).strip(), unescape(field(msh, 4).split("^")[0]).strip())
               if isinstance(overrides, SenderOverrides) else overrides)
    with sender_context(profile.zone, profile.code_systems) if profile else nullcontext():
        sent_at = dtm(field(msh, 7))
        evn = segments[ids.index("EVN")] if "EVN" in ids else None
        evn_event = field(evn, 1).strip() if evn is not None else ""  # EVN-1, the event again (withdrawn since v2.5)
        event = kind[1] or evn_event
        if evn is not None and kind[1] and evn_event and evn_event != kind[1]:
            unused(evn, 1)  # it names another event than MSH-9: left for the unmapped report, not silently ignored
        try:
            return _map(segments, ids, msh, kind, event, message_id, msg_key, facility, sent_at, profile)
        except HL7MappingError:
            raise
        except Exception as exc:  # a mapper bug must surface as a reason, never as a crash of the stage
            raise MapperBug(f"could not map the message: {type(exc).__name__} while mapping its segments") from None


def _share(related: dict[str, dict], found: list[dict]) -> None:
    """Add resources several segments may name (Practitioners, Locations, Devices...) once each; when two
    segments describe the same one, what the later adds is kept beside what the earlier said (in a copy: the earlier
    may be a cached, final one that other Bundles hold)."""
    for resource in found:
        known = related.setdefault(resource["id"], resource)
        if known is not resource:
            more = {k: v for k, v in resource.items() if k not in known}
            if more:
                related[resource["id"]] = {**known, **more}


def _booked(ids: list[str], anchor_index: int) -> bool:
    """Whether a segment after the one at `anchor_index` belongs to an SCH or a resource it books (AIS, AIG, AIL,
    AIP), a TQ1 standing for the segment before it."""
    while anchor_index > 0 and ids[anchor_index] == "TQ1":
        anchor_index -= 1
    return ids[anchor_index] in SCHEDULE_SEGMENTS


def _of_type(resource: dict | None, kind: str) -> bool:
    return resource is not None and resource["resourceType"] == kind


def _anchor_resource(anchor_id: str, anchor_index: int, ids: list[str], made_from: dict[int, dict], links: dict[int, dict],
                     by_id: dict[str, dict], msg_key: str) -> dict | None:
    """The resource made from the segment a PRT or ROL follows (None when that segment made none)."""
    if anchor_id in STANDS_FOR:  # walk back to the segment it extends
        before = [i for i in range(anchor_index - 1, -1, -1) if ids[i] in STANDS_FOR[anchor_id]]
        if not before:
            return None
        anchor_id, anchor_index = ids[before[0]], before[0]
    if anchor_index in made_from:
        return made_from[anchor_index]
    if anchor_id == "OBR" and anchor_index in links:  # the order's ServiceRequest, which the report is based on
        return by_id.get(links[anchor_index]["basedOn"][0]["reference"].removeprefix("urn:uuid:"))
    # orders.py and procedures.py key an ORC's ServiceRequest and a PR1's Procedure by message and segment index
    kind = {"ORC": "ServiceRequest", "PR1": "Procedure"}.get(anchor_id)
    return by_id.get(resource_id(kind, msg_key, str(anchor_index))) if kind else None


def _provenances(msh: Any, evn: Any | None, software: list[Any], parties: list[dict], header: dict, resources: list[dict],
                 event: str, msg_key: str, facility: str) -> list[dict]:
    """The Provenance of the message (MSH) and of its event (EVN), each targeting what the message is about (the
    header and every resource mapped from its segments), and the agents they name besides: the sending
    application (MSH-3), the software that handled the message (SFT) and its vendor, the event's operator and
    facility. Agents are not targets: the activity did not make them."""
    targets = [header] + resources
    named: set[str] = {r["id"] for r in targets}
    made: list[dict] = []

    def add(found: list[dict]) -> None:
        for resource in found:
            if resource["id"] not in named:
                named.add(resource["id"])
                made.append(resource)

    sender = next((o for o in parties if header.get("sender") == ref(o)), None)
    application = application_device(msh, sender)
    add([application] if application else [])
    programs = []
    for sft in software:
        program, vendor = software_device(sft)
        if program and program["id"] not in named:
            programs.append(program)
            add([program] + vendor)
    provenances: list[dict] = []
    source = message_provenance(msh, event, msg_key, targets, sender, application, programs)
    if source:
        provenances.append(source)
    if evn is not None:
        happened, agents = event_provenance(evn, msh, event, msg_key, facility, targets, sender or application)
        if happened:
            provenances.append(happened)
            add(agents)
    return made + provenances


def _map(segments: list[Any], ids: list[str], msh: Any, kind: list[str], event: str, message_id: str, msg_key: str,
         facility: str, sent_at: str | None, profile: Profile | None) -> MappedMessage:
    resources: list[dict] = []
    unmapped_ids: list[str] = []
    unmapped_text: list[str] = []
    verbatim: set[int] = set()  # id() of each segment kept verbatim: its fields are not reported one by one

    def keep(seg_id: str, seg: Any) -> None:
        """Nothing is dropped: a segment no mapper takes is kept verbatim on the MessageHeader and reported."""
        unmapped_ids.append(seg_id)
        unmapped_text.append(str(seg))
        verbatim.add(id(seg))

    patient = encounter = None
    patient_ref = encounter_ref = None
    pkey = ekey = None
    groups: list[_Group] = []
    note_obx: list[Any] = []
    txa = None
    # a document message (MDM): its OBX are the lines of the document. A TXA in a lab message (OUL, ORU) describes
    # a document beside results, and the OBX there are results still
    is_document = "TXA" in ids and kind[0] == "MDM"
    last_observation: dict | None = None
    related: dict[str, dict] = {}
    order_segments: list[tuple[int, str, Any]] = []  # mapped after the loop, once the patient is known (SIU puts SCH first)
    admin_segments: list[tuple[int, str, Any]] = []  # likewise: they point at the encounter, and IN2 at its IN1
    pid = pv1 = evn = None
    mrn_type = (profile.mrn_identifier_type if profile else None) or "MR"
    z_fields = profile.z_fields if profile else {}
    z_pending: list[tuple[int, Any]] = []  # (place in unmapped_text, segment): mapped once the targets are known
    software: list[Any] = []
    made_from: dict[int, dict] = {}  # segment index -> the resource made from it, for the PRT and ROL that follow
    anchor = ("MSH", 0)  # the last segment a PRT or ROL would belong to
    participants: list[tuple[str, Any, tuple[str, int]]] = []  # PRT/ROL and their anchor: joined once all is made
    later: list[tuple[int, str, Any]] = []  # FT1, RF1, CON, PDA, ACC, AUT: mapped after the loop, once the patient, visit and account are known
    diagnoses: list[tuple[Any, dict]] = []  # (DG1, its Condition)
    providers: list[Any] = []  # PRD: mapped once the referral (RF1) and the patient are known
    restrictions: list[tuple[Any, tuple[str, int]]] = []  # ARV and the segment it follows: labels its resource
    pid_index = -1  # the PID the Patient was made from

    for index, (seg_id, seg) in enumerate(zip(ids, segments)):
        follows = anchor
        if seg_id not in FOLLOWERS:
            anchor = (seg_id, index)
        if seg_id == "PID" and patient is None:
            pkey, patient = _patient(seg, msg_key, mrn_type)
            pid = seg
            pid_index = index
            patient_ref = ref(patient)
            resources.append(patient)
            made_from[index] = patient
        elif seg_id == "PV1" and encounter is None and patient is not None:
            ekey, encounter, extra = _encounter(seg, event, facility, msg_key, patient)
            encounter_ref = ref(encounter)
            resources.append(encounter)
            _share(related, extra)
            pv1 = seg
            made_from[index] = encounter
        elif seg_id == "PV2" and encounter is not None and made_from.get(follows[1]) is encounter:  # the PV2 of the mapped PV1
            _share(related, visit_details(seg, encounter, facility))
            made_from[index] = encounter
        elif seg_id in {"PRT", "ROL"}:
            participants.append((seg_id, seg, follows))
        elif seg_id in LATER:
            later.append((index, seg_id, seg))
        elif seg_id == "PRD":
            providers.append(seg)
        elif seg_id == "ARV":
            restrictions.append((seg, follows))
        elif seg_id == "SFT":
            software.append(seg)
        elif seg_id == "EVN" and evn is None:
            evn = seg
        elif seg_id == "TXA":
            txa = seg
        elif seg_id == "OBR":
            before = next(((sid, s) for _, sid, s in reversed(order_segments) if sid in ("ORC", "OBR")), ("", None))
            groups.append(_Group(seg, index, orc=before[1] if before[0] == "ORC" else None))
            order_segments.append((index, seg_id, seg))
            last_observation = None
        elif seg_id == "OBX":
            if is_document:
                note_obx.append(seg)
                continue
            if not groups:
                groups.append(_Group(None, index))
            group = groups[-1]
            fallback = dtm(field(group.obr, 7)) if group.obr is not None else None
            if field(seg, 2).strip().upper() in ATTACHMENT_TYPES:  # a document or image: a report presenting it
                presented = attachment_report(seg, index, msg_key, patient_ref, encounter_ref, fallback or sent_at)
                performed_by, named = performers(seg)
                if performed_by:
                    presented["performer"] = performed_by
                    _share(related, named)
                group.reports.append(presented)
                made_from[index] = presented
                last_observation = None  # an NTE after it joins the group's notes: R4 reports have none of their own
                continue
            last_observation = observation(seg, index, msg_key, patient_ref, encounter_ref, fallback or sent_at, [])
            group.observations.append(last_observation)
            made_from[index] = last_observation
            equipment = equipment_device(field(seg, 18))  # the instrument that produced the result
            if equipment:
                last_observation["device"] = ref(equipment)
                _share(related, [equipment])
            performed_by, named = performers(seg)
            if performed_by:
                last_observation["performer"] = performed_by
                _share(related, named)
        elif seg_id == "IAM" and patient_ref:
            allergy_record, named = allergy_update(seg, index, msg_key, patient_ref)
            resources.append(allergy_record)
            _share(related, named)
            made_from[index] = allergy_record
        elif seg_id == "IAR" and _of_type(made_from.get(follows[1]), "AllergyIntolerance") and (reaction := allergy_reaction(seg)):
            made_from[follows[1]].setdefault("reaction", []).append(reaction)
        elif seg_id == "NTE":
            text = note_text(seg)
            if not text:
                continue
            if _booked(ids, follows[1]):  # a comment on the appointment or on a resource it books
                order_segments.append((index, seg_id, seg))
            elif _of_type(made_from.get(follows[1]), "AllergyIntolerance"):  # a note on the IAM before it
                note, named = annotation(seg)
                made_from[follows[1]].setdefault("note", []).append(note)
                _share(related, named)
            elif last_observation is not None:
                note, named = annotation(seg)  # with NTE-5/6, who wrote it and when
                last_observation.setdefault("note", []).append(note)
                _share(related, named)
            elif groups:
                groups[-1].notes.append(text)
            else:
                keep(seg_id, seg)
        elif seg_id == "DG1" and patient_ref:
            diagnosis, *parent = condition(seg, index, msg_key, patient_ref, encounter_ref)
            _share(related, parent)  # DG1-22: a parent diagnosis several DG1s may name
            authorities: list[dict] = []
            clinician = practitioner(field(seg, 16).split("~")[0], authorities)  # DG1-16 diagnosing clinician -> asserter
            if clinician:
                diagnosis["asserter"] = ref(clinician)
                _share(related, [clinician] + authorities)
            resources.append(diagnosis)
            diagnoses.append((seg, diagnosis))
            order_segments.append((index, seg_id, seg))  # a DG1 inside an order is the order's reason
        elif seg_id == "PRB" and patient_ref:
            resources.append(problem(seg, index, msg_key, patient_ref))
        elif seg_id == "PRB":  # a problem with no patient to belong to is kept verbatim
            keep(seg_id, seg)
        elif seg_id in ORDER_SEGMENTS:
            order_segments.append((index, seg_id, seg))
        elif seg_id in ADMIN_SEGMENTS:
            admin_segments.append((index, seg_id, seg))
        elif seg_id == "AL1" and patient_ref:
            resources.append(allergy(seg, index, msg_key, patient_ref))
        elif index > 0 and seg_id not in {"EVN", "SFT"}:
            # every segment no branch above took (no mapper yet, a repeated PID/PV1 in A17 swaps and merges,
            # a DG1/AL1 with no patient to belong to): kept verbatim, never dropped
            keep(seg_id, seg)
            if seg_id in z_fields:
                z_pending.append((len(unmapped_text) - 1, seg))

    ordered, shared, links, unused = order_resources(order_segments, msg_key, facility, event, patient_ref, encounter_ref)
    resources.extend(ordered)
    if (kind[0], event) == ("RDE", "O25"):  # a refill authorization request: a Task for each order it asks about
        resources.extend(refill_task(r, sent_at) for r in ordered if r["resourceType"] == "MedicationRequest")
    _share(related, shared)
    for i in unused:
        keep(ids[i], segments[i])
    own, shared, unused = admin_resources(admin_segments, ids, pid, patient, msg_key, encounter_ref, mrn_type, facility)
    resources.extend(own)
    _share(related, shared)
    for i in unused:
        keep(ids[i], segments[i])
    account = next((ref(r) for r in own if r["resourceType"] == "Account"), None)
    if encounter is not None and account:  # the PID-18 account the visit is billed to
        encounter["account"] = [account]
    referral_request: dict | None = None  # the first RF1's ServiceRequest, which the PRD providers join
    for index, seg_id, seg in later:
        besides: list[dict] = []  # a PDA makes several resources: the first stands for the segment
        if patient_ref is None:  # charges, referrals, consents, deaths, accidents, authorizations: all about a patient
            made, extra = None, []
        elif seg_id == "PDA":
            facts, extra, place = death(seg, index, msg_key, facility, patient_ref, encounter_ref)
            made, besides = (facts[0], facts[1:]) if facts else (None, [])
            if made is not None and place and encounter is not None:  # the visit ended where the patient died
                encounter.setdefault("location", []).append({"location": ref(place[-1]), "status": "completed"})
        elif seg_id == "ACC":
            made, extra = accident(seg, index, msg_key, patient_ref, encounter_ref)
        elif seg_id == "AUT":
            made, extra = authorization(seg, index, msg_key, patient_ref, sent_at)
        elif seg_id == "FT1":
            made, extra = charge_item(seg, index, msg_key, patient_ref, encounter_ref, account)
        elif seg_id == "RF1":
            made, extra = referral(seg, index, msg_key, patient_ref, encounter_ref)
            referral_request = referral_request or made
        else:
            made, extra = consent(seg, index, msg_key, patient_ref)
        if made is None:
            keep(seg_id, seg)
            continue
        resources.append(made)
        resources.extend(besides)
        _share(related, extra)
        made_from[index] = made
    for seg in providers:
        actor, named = provider(seg, facility)
        if actor is None:
            keep("PRD", seg)
            continue
        _share(related, named)
        join_referral(actor, referral_request, patient)
    for seg, (anchor_id, anchor_index) in restrictions:  # after PID/PD1/NK1 the Patient's, after PV1/PV2 the Encounter's
        found = access_restriction(seg)
        if anchor_id in VISIT_GROUP:
            target = made_from.get(anchor_index)
        elif anchor_id in PATIENT_GROUP and patient is not None:
            last_pid = max((i for i in range(anchor_index + 1) if ids[i] == "PID"), default=-1)
            target = patient if last_pid == pid_index else None  # another patient's (A17 swaps, BAR^P02 lists)
        else:
            target = None
        if found is None or target is None:
            keep("ARV", seg)
            continue
        restrict(target, *found)
    if encounter is not None:
        entries = []
        for dg1, diagnosis in diagnoses:
            use, rank = diagnosis_role(dg1)
            entries.append({"condition": ref(diagnosis)} | ({"use": use} if use else {}) | ({"rank": rank} if rank else {}))
        if entries:
            encounter["diagnosis"] = entries
        episode, extra = episode_of_care(pv1, patient_ref, entries)
        if episode:
            encounter["episodeOfCare"] = [ref(episode)]
            resources.append(episode)
            _share(related, extra)
    for group in groups:
        order = links.get(group.index, {})  # the OBR's ServiceRequest and specimens: what its results are based on and about
        for result in group.observations:
            result.update({k: v for k, v in (("basedOn", order.get("basedOn")), ("specimen", (order.get("specimen") or [None])[0])) if v})
        resources.extend(group.observations)
        for presented in group.reports:  # based on the order's ServiceRequest, about its specimens, like the OBR's report
            presented.update(links.get(group.index, {}))
            resources.append(presented)
        if group.obr is not None:
            report = diagnostic_report(group.obr, group.index, msg_key, patient_ref, encounter_ref, group.observations, group.notes,
                                       group.orc)
            interpreter, made = results_interpreter(group.obr)
            if interpreter:
                report["resultsInterpreter"] = [interpreter]
                _share(related, made)
            report.update(links.get(group.index, {}))  # basedOn the order's ServiceRequest, and its specimens
            resources.append(report)
    if txa is not None or (is_document and note_obx):
        document, authors = document_reference(txa, note_obx, msg_key, patient_ref, encounter_ref, sent_at)
        resources.append(document)
        _share(related, authors)
    by_id = {r["id"]: r for r in resources}
    for seg_id, seg, (anchor_id, anchor_index) in participants:
        found = participation(seg, facility) if seg_id == "PRT" else role(seg, facility)
        if not found.made:
            keep(seg_id, seg)
            continue
        _share(related, found.made)
        target = _anchor_resource(anchor_id, anchor_index, ids, made_from, links, by_id, msg_key)
        if target is not None:
            attach(found, target)
    resources.extend(related.values())

    header_extensions: list[dict] = []
    if z_pending:
        targets = {"Patient": patient, "Encounter": encounter}
        present = {name for name, r in targets.items() if r is not None} | {"MessageHeader"}
        consumed = set()
        for place, seg in z_pending:
            found, rest = z_extensions(seg, z_fields[seg.fields[0]], present)
            for target, extension in found:
                if target == "MessageHeader":
                    header_extensions.append(extension)
                else:
                    targets[target].setdefault("extension", []).append(extension)  # type: ignore[union-attr]
            if rest is None:
                consumed.add(place)
            else:
                unmapped_text[place] = rest
        unmapped_ids = [s for i, s in enumerate(unmapped_ids) if i not in consumed]
        unmapped_text = [t for i, t in enumerate(unmapped_text) if i not in consumed]

    focus = CleanList([ref(r) for r in resources if r["resourceType"] not in NOT_FOCUS][:20] or ([patient_ref] if patient_ref else []))
    header = message_header(msh, event, msg_key, focus, unmapped_text)
    if header_extensions:
        header["extension"] = header_extensions + header.get("extension", [])
    known = {r["id"] for r in resources}
    parties = message_parties(msh, header)  # sender, receiver, responsible
    resources.extend(o for o in parties if o["id"] not in known)
    resources.extend(_provenances(msh, evn, software, parties, header, resources, event, msg_key, facility))
    stamp = instant(field(msh, 7))
    version = unescape(field(msh, 12).split("^")[0])
    unread = unread_fields(ids, segments, verbatim)
    if unread:
        header.setdefault("extension", []).extend(e for e in (unread_extension(name, text) for name, text in unread) if e)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "id": resource_id("Bundle", msg_key), "type": "message",
                              "entry": bundle_entries([header, *resources])}
    if stamp:
        bundle["timestamp"] = stamp
    return MappedMessage(
        message_id=message_id, message_type=f"{kind[0]}^{kind[1]}" if kind[1] else kind[0],
        hl7_version=version, sent_at=sent_at, patient_key=pkey, encounter_key=ekey,
        bundle=bundle, unmapped_segments=unmapped_ids, unmapped_fields=list(dict.fromkeys(name for name, _ in unread)),
    )
