"""The patient-administration segments (NK1, GT1, IN1/IN2, PR1, MRG, PD1, DB1) of one message -> their resources,
mapped once the whole message is read, since they point at the patient, the encounter and each other."""

from __future__ import annotations

from typing import Any

from fhir_mappers.accounts import account
from fhir_mappers.coverage import coverage
from fhir_mappers.ids import ref
from fhir_mappers.patient import authorities, disability, merged_patient, primary_care
from fhir_mappers.procedures import procedure
from fhir_mappers.related import guarantor, mother, next_of_kin, patient_contact

ADMIN_SEGMENTS = {"NK1", "GT1", "IN1", "IN2", "PR1", "MRG", "PD1", "DB1"}


def admin_resources(segments: list[tuple[int, str, Any]], ids: list[str], pid: Any | None, patient: dict | None, msg_key: str,
                    encounter: dict | None, mrn_type: str = "MR", facility: str = "") -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int]]:
    """(resources of their own, shared ones such as Organizations and Practitioners, indexes of segments left
    unused). `ids` are the message's segment ids; `patient` is the Patient resource of its first PID,
    completed in place (assigners, links, practitioners, NK1 contacts, DB1 disability)."""
    if patient is None or pid is None:  # every one of these segments is about a patient
        return [], [], [i for i, _, _ in segments]
    # only the segments between the first PID and the next belong to that patient (A40 merges several, A17 swaps two)
    first = ids.index("PID")
    end = ids.index("PID", first + 1) if "PID" in ids[first + 1:] else len(ids)
    unused = [i for i, _, _ in segments if not first < i < end]
    segments = [s for s in segments if first < s[0] < end]
    subject = ref(patient)
    own: list[dict[str, Any]] = []
    shared: list[dict[str, Any]] = authorities(pid, patient)
    guarantors: list[tuple[dict, Any]] = []
    coverages: list[dict] = []
    person, orgs = mother(pid, subject)
    if person:
        own.append(person)
    shared += orgs
    for pos, (index, seg_id, seg) in enumerate(segments):
        if seg_id == "NK1":
            person, orgs = next_of_kin(seg, index, msg_key, subject)
            own.append(person)
            shared += orgs
            contact = patient_contact(seg)  # the guide maps NK1 to both: a RelatedPerson and a Patient.contact
            if contact:
                patient.setdefault("contact", []).append(contact)
        elif seg_id == "GT1":
            party, found = guarantor(seg, index, msg_key, subject)
            if party is None:
                unused.append(index)
                continue
            guarantors.append((party, seg))
            own += [r for r in found if r["resourceType"] == "RelatedPerson"]
            shared += [r for r in found if r["resourceType"] != "RelatedPerson"]
        elif seg_id == "IN1":
            nxt = segments[pos + 1] if pos + 1 < len(segments) else None
            in2 = nxt[2] if nxt and nxt[1] == "IN2" and nxt[0] == index + 1 else None
            cover, found = coverage(seg, in2, index, msg_key, subject)
            own.append(cover)
            coverages.append(ref(cover))
            own += [r for r in found if r["resourceType"] == "RelatedPerson"]
            shared += [r for r in found if r["resourceType"] != "RelatedPerson"]
        elif seg_id == "IN2":
            before = segments[pos - 1] if pos else None
            if not (before and before[1] == "IN1" and before[0] == index - 1):  # IN2 only extends the IN1 before it
                unused.append(index)
        elif seg_id == "PR1":
            proc, found = procedure(seg, index, msg_key, subject, encounter, facility)
            own.append(proc)
            shared += found  # performers and parent procedures: two PR1 may share them
        elif seg_id == "MRG":
            old = merged_patient(seg, patient, mrn_type)
            if old:
                shared.append(old)
            else:
                unused.append(index)
        elif seg_id == "PD1":
            shared += primary_care(seg, patient)
        elif seg_id == "DB1":
            orgs = disability(seg, patient)
            if orgs is None:  # about the guarantor, an insured or an associated party, or empty
                unused.append(index)
            else:
                shared += orgs
    acct, orgs = account(pid, msg_key, subject, guarantors, coverages)
    if acct:
        own.append(acct)
        shared += orgs
    return own, shared, unused
