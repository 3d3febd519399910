"""RXA/RXR -> Immunization; RXO/RXE (+RXR, RXC) -> MedicationRequest and Medication; RXD -> MedicationDispense.
One PharmacyOrder holds the pharmacy segments of one ORC group, as orders.order_resources walks them."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, date_only, dtm, field, in_system, positive_int, quantity, reps, unescape
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.orders import PRIORITY, V2_0443, order_identifiers, ordering_provider, tq1_timing

# ORC-5 (table 0038), else ORC-1 (table 0119) -> MedicationRequest.status
MED_ORDER_STATUS = {"A": "active", "IP": "active", "SC": "active", "CM": "completed", "CA": "cancelled", "DC": "stopped",
                    "RP": "cancelled", "ER": "entered-in-error", "HD": "on-hold"}
MED_ORDER_CONTROL = {"NW": "active", "OK": "active", "SN": "active", "XO": "active", "RF": "active", "RE": "active",
                     "CA": "cancelled", "OC": "cancelled", "CR": "cancelled", "DC": "stopped", "OD": "stopped",
                     "DR": "stopped", "HD": "on-hold", "OH": "on-hold"}
# v2 tables the guide resolves to terminology.hl7.org code systems (route, site)
V2_TABLES = {"HL70162": "http://terminology.hl7.org/CodeSystem/v2-0162", "HL70163": "http://terminology.hl7.org/CodeSystem/v2-0163"}


def _concept(text: str) -> dict[str, Any] | None:
    concept = codeable(text)
    system = comps(text)[2].upper()
    if concept and system in V2_TABLES:
        return in_system(concept, V2_TABLES[system])
    return concept


def immunization(rxa: Any, rxr: Any | None, orc: Any | None, key: str, patient: dict, encounter: dict | None) -> tuple[dict[str, Any], list[dict]]:
    """The Immunization and the Practitioners it names (RXA-10 administering, ORC-12 ordering)."""
    completion = field(rxa, 20).split("^")[0].strip().upper()
    status = "not-done" if completion in {"RE", "NA"} else "completed"
    if field(rxa, 21).strip().upper() == "D":  # action code: delete
        status = "entered-in-error"
    resource: dict[str, Any] = {"resourceType": "Immunization", "id": resource_id("Immunization", key), "status": status,
                                "vaccineCode": codeable(field(rxa, 5)) or {"text": "unknown vaccine"}, "patient": patient}
    identifiers = order_identifiers(orc, None)
    if identifiers:
        resource["identifier"] = identifiers
    if encounter:
        resource["encounter"] = encounter
    occurred = dtm(field(rxa, 3))
    if occurred:
        resource["occurrenceDateTime"] = occurred
    else:  # occurrence[x] is required
        resource["occurrenceString"] = "unknown"
    if field(rxa, 6).strip() not in {"", "999"}:  # 999: amount unknown
        dose = quantity(field(rxa, 6), field(rxa, 7))
        if dose:
            resource["doseQuantity"] = dose
    origin = comps(field(rxa, 9).split("~")[0])
    if origin[0]:
        resource["primarySource"] = origin[0] == "00"  # NIP001 00: new record, administered here
        if origin[0] != "00":
            resource["reportOrigin"] = codeable(field(rxa, 9).split("~")[0])
    lot = reps(field(rxa, 15))
    if lot:
        resource["lotNumber"] = unescape(lot[0])
    expiry = date_only(reps(field(rxa, 16))[0]) if reps(field(rxa, 16)) else None
    if expiry:
        resource["expirationDate"] = expiry
    if status == "not-done":
        reason = codeable(reps(field(rxa, 18))[0]) if reps(field(rxa, 18)) else None
        if reason:
            resource["statusReason"] = reason
    if rxr is not None:
        route, site = _concept(field(rxr, 1)), _concept(field(rxr, 2))
        if route:
            resource["route"] = route
        if site:
            resource["site"] = site
    people: list[dict] = []
    performers = []
    for xcn, code, display in ((field(orc, 12) if orc is not None else "", "OP", "Ordering Provider"),
                               (field(rxa, 10), "AP", "Administering Provider")):
        doctor = practitioner(xcn.split("~")[0], people) if xcn else None
        if doctor:
            people.append(doctor)
            performers.append({"function": {"coding": [{"system": V2_0443, "code": code, "display": display}]}, "actor": ref(doctor)})
    if performers:
        resource["performer"] = performers
    return resource, people


# RXO-9 allow substitutions (table 0161), as the guide's AllowSubstitution map codes them
SUBSTITUTION = {"N": "Substitutions are NOT authorized", "G": "Allow generic substitutions", "T": "Allow therapeutic substitutions"}


def timing(tq1: Any, dosage: dict[str, Any]) -> str | None:
    """TQ1 onto a MedicationRequest dosage (the guide's TQ1[MedicationRequest]): 3 repeat pattern -> timing.code
    (table 0335 unless the sender names another system), 7/8 start and end -> timing.repeat.boundsPeriod,
    10 condition text -> additionalInstruction, 11 text instruction -> text. Returns TQ1-9 as a request priority."""
    when = tq1_timing(tq1)
    if when:
        dosage["timing"] = when
    condition, text = unescape(field(tq1, 10)).strip(), unescape(field(tq1, 11)).strip()
    if condition:
        dosage["additionalInstruction"] = [{"text": condition}]
    if text:
        dosage["text"] = text
    return PRIORITY.get(comps(field(tq1, 9))[0].strip().upper())


def medication(code_text: str, form_text: str, key: str) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Medication", "id": resource_id("Medication", key)}
    code, form = codeable(code_text), codeable(form_text)
    if code:
        resource["code"] = code
    if form:
        resource["form"] = form
    return resource


def medication_status(orc: Any | None) -> str:
    if orc is None:
        return "unknown"
    status = field(orc, 5).split("^")[0].strip().upper()
    if status:
        return MED_ORDER_STATUS.get(status, "unknown")
    return MED_ORDER_CONTROL.get(field(orc, 1).split("^")[0].strip().upper(), "unknown")


class PharmacyOrder:
    """RXO/RXE orders with their RXR route and RXC components, RXA administrations and RXD dispenses."""

    # per order segment: (give code, give amount, give units, dosage form, dispense amount, dispense units, refills)
    FIELDS = {"RXO": (1, 2, 4, 5, 11, 12, 13), "RXE": (2, 3, 5, 6, 10, 11, 12)}

    def __init__(self, orc: Any | None, msg_key: str, subject: dict | None, encounter: dict | None, tq1: Any | None = None) -> None:
        self.orc, self.msg_key, self.subject, self.encounter = orc, msg_key, subject, encounter
        self.tq1 = tq1  # the order's timing (a TQ1 before its RXO/RXE), for the requests with none of their own
        self.items: list[tuple[str, Any, int, list[tuple[str, Any, int]]]] = []  # (id, segment, index, [RXR/RXC/TQ1])

    def add(self, seg_id: str, seg: Any, index: int) -> None:
        if seg_id in {"RXR", "RXC", "TQ1"}:
            if self.items:
                self.items[-1][3].append((seg_id, seg, index))
            elif seg_id == "TQ1" and self.tq1 is None:
                self.tq1 = seg
            return
        self.items.append((seg_id, seg, index, []))

    def resources(self) -> tuple[list[dict], list[dict], list[int]]:
        """(resources, shared Practitioners, indexes of segments left unmapped)."""
        if self.subject is None:  # every resource here requires a subject
            return [], [], [i for _, _, index, parts in self.items for i in [index] + [p[2] for p in parts]]
        made: list[dict] = []
        shared: list[dict] = []
        placer_request: dict | None = None
        last_request: dict | None = None
        ordered_by = ordering_provider(field(self.orc, 12)) if self.orc is not None else []
        for seg_id, seg, index, parts in self.items:
            key = f"{self.msg_key}|{index}"
            rxr = next((p[1] for p in parts if p[0] == "RXR"), None)
            if seg_id == "RXA":
                resource, doctors = immunization(seg, rxr, self.orc, key, self.subject, self.encounter)
                made.append(resource)
                shared.extend(doctors)
            elif seg_id in self.FIELDS:
                # ORC-12 ordering provider, else RXO-14 (the ordering provider's DEA number, an XCN: the guide's requester)
                people = ordered_by or (ordering_provider(field(seg, 14)) if seg_id == "RXO" else [])
                requester = ref(people[0]) if people else None
                request, extra = self._request(seg_id, seg, key, parts, requester)
                if seg_id == "RXE" and placer_request is not None:
                    request["basedOn"] = [ref(placer_request)]  # the pharmacy's encoding of the placer's RXO order
                if seg_id == "RXO":
                    placer_request = request
                last_request = request
                made.append(request)
                made.extend(extra)
                if people:
                    shared.extend(people)
            elif seg_id == "RXD":
                dispense, doctors = self._dispense(seg, key, rxr, last_request)
                made.append(dispense)
                shared.extend(doctors)
        return made, shared, []

    def _request(self, seg_id: str, seg: Any, key: str, parts: list[tuple[str, Any, int]], requester: dict | None) -> tuple[dict, list[dict]]:
        give, amount, units, form, disp, disp_units, refills = self.FIELDS[seg_id]
        drug = medication(field(seg, give), field(seg, form), key)
        extra = [drug]
        for part_id, part, part_index in parts:
            if part_id != "RXC" or not field(part, 2):
                continue
            component = {"resourceType": "Medication", "id": resource_id("Medication", f"{self.msg_key}|{part_index}")}
            code = codeable(field(part, 2))
            if code:
                component["code"] = code
            amount_q = quantity(field(part, 3), field(part, 4))
            if amount_q:
                component["amount"] = {"numerator": amount_q, "denominator": {"value": 1}}
            ingredient: dict[str, Any] = {"itemReference": ref(component)}
            strength = quantity(field(part, 5), field(part, 6))
            if strength:
                ingredient["strength"] = {"numerator": strength, "denominator": {"value": 1}}
            drug.setdefault("ingredient", []).append(ingredient)
            extra.append(component)
        resource: dict[str, Any] = {"resourceType": "MedicationRequest", "id": resource_id("MedicationRequest", key),
                                    "status": medication_status(self.orc),
                                    # RXE is the pharmacy's (filler's) encoding of the order
                                    "intent": "filler-order" if seg_id == "RXE" else "order",
                                    "medicationReference": ref(drug), "subject": self.subject}
        identifiers = order_identifiers(self.orc, None)
        if seg_id == "RXE" and field(seg, 15):
            identifiers.append({"value": unescape(field(seg, 15).split("^")[0]), "type": {"text": "Prescription Number"}})
        if identifiers:
            resource["identifier"] = identifiers
        if self.encounter:
            resource["encounter"] = self.encounter
        authored = dtm(field(self.orc, 9)) if self.orc is not None else None
        if authored:
            resource["authoredOn"] = authored
        if requester:
            resource["requester"] = requester
        dosage: dict[str, Any] = {}
        dose = quantity(field(seg, amount), field(seg, units))
        if dose:
            dosage["doseAndRate"] = [{"doseQuantity": dose}]
        rxr = next((p[1] for p in parts if p[0] == "RXR"), None)
        if rxr is not None:
            route, site = _concept(field(rxr, 1)), _concept(field(rxr, 2))
            if route:
                dosage["route"] = route
            if site:
                dosage["site"] = site
        tq1 = next((p[1] for p in parts if p[0] == "TQ1"), self.tq1)
        priority = timing(tq1, dosage) if tq1 is not None else None
        if priority:
            resource["priority"] = priority
        if dosage:
            resource["dosageInstruction"] = [dosage]
        allowed = unescape(field(seg, 9)).strip().upper() if seg_id == "RXO" else ""
        if allowed in SUBSTITUTION:
            resource["substitution"] = {"allowedCodeableConcept": {"coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v2-0161", "code": allowed, "display": SUBSTITUTION[allowed]}]}}
        dispense: dict[str, Any] = {}
        supply = quantity(field(seg, disp), field(seg, disp_units))
        if supply:
            dispense["quantity"] = supply
        repeats = field(seg, refills).strip()  # an unsignedInt: 0 is allowed
        if repeats == "0" or positive_int(repeats):
            dispense["numberOfRepeatsAllowed"] = int(repeats)
        if dispense:
            resource["dispenseRequest"] = dispense
        return resource, extra

    def _dispense(self, rxd: Any, key: str, rxr: Any | None, request: dict | None) -> tuple[dict, list[dict]]:
        # an RXD records a dispense that took place
        resource: dict[str, Any] = {"resourceType": "MedicationDispense", "id": resource_id("MedicationDispense", key),
                                    "status": "completed", "subject": self.subject}
        code = codeable(field(rxd, 2))
        resource["medicationCodeableConcept"] = code or {"text": "unknown medication"}
        if self.encounter:
            resource["context"] = self.encounter
        handed = dtm(field(rxd, 3))
        if handed:
            resource["whenHandedOver"] = handed
        dispensed = quantity(field(rxd, 4), field(rxd, 5))
        if dispensed:
            resource["quantity"] = dispensed
        prescriptions = []
        if request is not None:
            prescriptions.append(ref(request))
        elif field(rxd, 7):
            prescriptions.append({"type": "MedicationRequest", "identifier": {"value": unescape(field(rxd, 7).split("^")[0])}})
        if prescriptions:
            resource["authorizingPrescription"] = prescriptions
        notes = [unescape(n) for n in reps(field(rxd, 9)) if unescape(n)]
        if notes:
            resource["note"] = [{"text": n} for n in notes]
        people = []
        doctor = practitioner(field(rxd, 10).split("~")[0], people) if field(rxd, 10) else None
        if doctor:
            people.append(doctor)
            resource["performer"] = [{"actor": ref(doctor)}]
        if rxr is not None:
            route = _concept(field(rxr, 1))
            if route:
                resource["dosageInstruction"] = [{"route": route}]
        return resource, people


REFILL_REQUEST = {"coding": [{"system": "urn:clinstream:codesystem:additional-task-code", "code": "refill-authorization-request",
                              "display": "Pharmacy/Treatment Refill Authorization Request"}],
                  "text": "Pharmacy/treatment refill authorization request"}


def refill_task(request: dict[str, Any], authored: str | None) -> dict[str, Any]:
    """RDE^O25 asks the prescriber to authorize a refill of the order: MedicationRequest.intent has no value for
    that, so a requested Task carries it, focused on the MedicationRequest, for its patient and visit."""
    task: dict[str, Any] = {"resourceType": "Task", "id": resource_id("Task", request["id"], "refill"), "status": "requested",
                            "intent": "order", "code": REFILL_REQUEST, "focus": ref(request), "for": request["subject"]}
    if request.get("encounter"):
        task["encounter"] = request["encounter"]
    if authored:
        task["authoredOn"] = authored
    return task
