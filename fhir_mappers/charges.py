"""FT1 (financial transaction) -> ChargeItem, with the Practitioners, Organizations, Device, Procedure and
MedicationDispense it names."""

from __future__ import annotations

import re
from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, field, number, reps, system_uri, unescape
from fhir_mappers.devices import charged_item
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.organizations import xon_organization
from fhir_mappers.participants import V2_0443

# FT1-42 is the pharmacy's prescription number; v2-0203 has no code for one, FHIR-Converter names it PRN
PRESCRIPTION_NUMBER = {"coding": [{"system": "urn:clinstream:codesystem:identifier-type-code", "code": "PRN",
                                   "display": "Prescription Number"}]}
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _money(cp: str) -> dict[str, Any] | None:
    """CP (price: MO quantity&denomination) -> Money; a currency that is not an ISO 4217 code is left out."""
    price = comps(cp)[0].split("&")
    value = number(unescape(price[0]))
    if value is None:
        return None
    money: dict[str, Any] = {"value": value}
    currency = unescape(price[1]).strip().upper() if len(price) > 1 else ""
    if _CURRENCY.match(currency):
        money["currency"] = currency
    return money


def _department(cwe: str) -> dict[str, Any] | None:
    """FT1-13 department code (CWE) -> the Organization (a department) the charge is booked to."""
    c = comps(cwe)
    code, name = unescape(c[0]).strip(), unescape(c[1]).strip()
    if not code and not name:
        return None
    org: dict[str, Any] = {"resourceType": "Organization", "id": resource_id("Organization", "department", code, name)}
    if code:
        org["identifier"] = [{"value": code}]
    if name:
        org["name"] = name
    return org


def charge_item(ft1: Any, index: int, msg_key: str, patient: dict, encounter: dict | None,
                account: dict | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """FT1: 2 transaction id, 4 transaction date, 5 posting date, 7 transaction code, 10 quantity, 11 extended
    amount, 13 department (cost center), 19 diagnoses (reasons), 20 performed by, 21 ordered by, 24 entered by,
    25 procedure code (a Procedure the charge is for), 29 NDC code (the product, and a MedicationDispense the
    charge is for, with 42 prescription number and 43 NDC quantity), 32/33 performing/ordering facility,
    34/35 item and model number (the Device charged for). None without a code for the charge (FT1-7, else
    FT1-25): R4 requires one."""
    code = codeable(field(ft1, 7)) or codeable(field(ft1, 25))
    if code is None:
        return None, []
    # R4 ChargeItem.status has no value for "posted"; the segment does not say whether it was billed
    resource: dict[str, Any] = {"resourceType": "ChargeItem", "id": resource_id("ChargeItem", msg_key, str(index)), "status": "unknown",
                                "code": code, "subject": patient}
    related: list[dict[str, Any]] = []
    transaction = unescape(comps(field(ft1, 2))[0]).strip()
    if transaction:
        resource["identifier"] = [{"value": transaction}]
    if encounter:
        resource["context"] = encounter
    if account:
        resource["account"] = [account]
    span = comps(field(ft1, 4))
    start, end = dtm(span[0]), dtm(span[1])
    if start and end and end != start:
        resource["occurrencePeriod"] = {"start": start, "end": end}
    elif start:
        resource["occurrenceDateTime"] = start
    entered = dtm(field(ft1, 5))
    if entered:
        resource["enteredDate"] = entered
    quantity = number(unescape(comps(field(ft1, 10))[0]))
    if quantity is not None:
        resource["quantity"] = {"value": quantity}
    price = _money(field(ft1, 11))
    if price:
        resource["priceOverride"] = price
    def name(key: str, found: dict[str, Any] | None) -> None:
        """Point `key` at `found` and keep it among the resources the charge names."""
        if found:
            resource[key] = ref(found)
            related.append(found)

    name("costCenter", _department(field(ft1, 13).split("~")[0]))
    reasons = [c for c in (codeable(x) for x in reps(field(ft1, 19))) if c]
    if reasons:
        resource["reason"] = reasons
    performers = []
    for n, function in ((20, None), (21, {"coding": [{"system": V2_0443, "code": "OP", "display": "Ordering Provider"}]})):
        for xcn in reps(field(ft1, n)):
            doctor = practitioner(xcn, related)
            if doctor:
                related.append(doctor)
                performers.append({"actor": ref(doctor)} | ({"function": function} if function else {}))
    if performers:
        resource["performer"] = performers
    name("enterer", practitioner(field(ft1, 24).split("~")[0], related))
    name("performingOrganization", xon_organization(field(ft1, 32).split("~")[0], "facility"))
    name("requestingOrganization", xon_organization(field(ft1, 33).split("~")[0], "facility"))
    procedure_code = codeable(field(ft1, 25))
    if procedure_code:
        procedure: dict[str, Any] = {"resourceType": "Procedure", "id": resource_id("Procedure", msg_key, str(index), "charged"),
                                     "status": "unknown", "code": procedure_code, "subject": patient}
        if encounter:
            procedure["encounter"] = encounter
        if start:
            procedure["performedDateTime"] = start
        resource["service"] = [ref(procedure)]
        related.append(procedure)
    item = charged_item(ft1, patient)
    drug = codeable(field(ft1, 29).split("~")[0])
    if drug:  # a charge for a drug by its NDC: the drug was dispensed to the patient
        dispense = dispensed_drug(ft1, drug, f"{msg_key}|{index}", patient, encounter)
        resource.setdefault("service", []).append(ref(dispense))
        related.append(dispense)
    if item:  # R4 has one product: the item charged for, else the drug by its NDC
        resource["productReference"] = ref(item)
        related.append(item)
    elif drug:
        resource["productCodeableConcept"] = drug
    return resource, related


def _ndc_quantity(cq: str) -> dict[str, Any] | None:
    """FT1-43 (CQ: quantity^units, units a CWE in subcomponents) -> Quantity."""
    c = comps(cq)
    value = number(unescape(c[0]))
    if value is None:
        return None
    quantity: dict[str, Any] = {"value": value}
    unit = (c[1].split("&") + ["", ""])[:3]
    code, label, system = (unescape(u).strip() for u in unit)
    if label or code:
        quantity["unit"] = label or code
    if code and system:  # a unit code needs its system
        quantity["code"], quantity["system"] = code, system_uri(system)
    return quantity


def dispensed_drug(ft1: Any, drug: dict[str, Any], key: str, patient: dict, encounter: dict | None) -> dict[str, Any]:
    """FT1-29 NDC code -> a MedicationDispense of that drug, with 43 the amount and 42 the prescription (by its
    number: the MedicationRequest is not in the message). Whether it was handed over the charge does not say."""
    dispense: dict[str, Any] = {"resourceType": "MedicationDispense", "id": resource_id("MedicationDispense", key, "charged"),
                                "status": "unknown", "medicationCodeableConcept": drug, "subject": patient}
    if encounter:
        dispense["context"] = encounter
    amount = _ndc_quantity(field(ft1, 43))
    if amount:
        dispense["quantity"] = amount
    prescription = unescape(comps(field(ft1, 42))[0]).strip()
    if prescription:
        dispense["authorizingPrescription"] = [{"type": "MedicationRequest",
                                                "identifier": {"type": PRESCRIPTION_NUMBER, "value": prescription}}]
    return dispense
