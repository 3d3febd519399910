"""`clinstream conformance DIR`: convert every `DIR/messages/*.hl7`, validate each Bundle against FHIR R4,
and compare it with `DIR/expected-fhir/NAME-expected.json` where that exists (FHIR-Converter's layout)."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from fhir_mappers import FHIRValidationError, HL7MappingError, MapperBug, hl7v2_to_fhir, validate_r4_bundle
from fhir_mappers.conformance import TypeScore, compare_bundles


def run(directory: Path) -> dict[str, Any]:
    messages = sorted((directory / "messages").glob("*.hl7"))
    if not messages:
        raise FileNotFoundError(f"no messages/*.hl7 under {directory}")
    report: dict[str, Any] = {"total": len(messages), "converted": 0, "dead_lettered": 0, "invalid": 0, "crashed": 0,
                              "compared": 0, "messages": {}}
    by_type: dict[str, TypeScore] = {}
    unmapped_fields: Counter[str] = Counter()  # messages in which each field was left unmapped
    map_s = validate_s = 0.0
    for path in messages:
        name = path.stem
        row: dict[str, Any] = {}
        raw = path.read_bytes()
        started = time.perf_counter()
        try:
            mapped = hl7v2_to_fhir(raw)
        except MapperBug as exc:
            report["crashed"] += 1
            row = {"outcome": "crashed", "reason": exc.reason}
        except HL7MappingError as exc:
            report["dead_lettered"] += 1
            row = {"outcome": "dead_lettered", "reason": exc.reason}
        except Exception as exc:  # noqa: BLE001 - the point is to count it
            report["crashed"] += 1
            row = {"outcome": "crashed", "reason": f"{type(exc).__name__} escaped the mapper"}
        map_s += time.perf_counter() - started
        if not row:
            started = time.perf_counter()
            try:
                validate_r4_bundle(mapped.bundle)
                report["converted"] += 1
                row = {"outcome": "converted", "unmapped_segments": mapped.unmapped_segments, "unmapped_fields": mapped.unmapped_fields}
                unmapped_fields.update(mapped.unmapped_fields)
            except FHIRValidationError as exc:
                report["invalid"] += 1
                row = {"outcome": "invalid", "reason": exc.reason}
            validate_s += time.perf_counter() - started
            expected_path = directory / "expected-fhir" / f"{name}-expected.json"
            if expected_path.exists():
                scores = compare_bundles(json.loads(expected_path.read_text(encoding="utf-8-sig")), mapped.bundle)
                total = TypeScore()
                for rtype, score in scores.items():
                    by_type.setdefault(rtype, TypeScore()).add(score)
                    total.add(score)
                report["compared"] += 1
                row["agreement"] = total.as_json()["agreement"]
        report["messages"][name] = row
    overall = TypeScore()
    for score in by_type.values():
        overall.add(score)
    type_scores = [s.agreed / s.fields for s in by_type.values() if s.fields]
    report["agreement"] = {
        # each resource type weighs the same: field-weighted, FHIR-Converter's many Locations would decide it
        "overall": round(sum(type_scores) / len(type_scores), 4) if type_scores else None,
        "field_weighted": overall.as_json()["agreement"],
        "found_share": overall.as_json()["found_share"],
        "by_field": overall.as_json()["by_field"],
        "by_type": {t: s.as_json() for t, s in sorted(by_type.items(), key=lambda kv: -kv[1].expected)},
    }
    # what the mappers leave for the MessageHeader's extensions, most common first: where mapping work would pay
    report["unmapped_fields"] = dict(unmapped_fields.most_common())
    report["seconds"] = {"map": round(map_s, 3), "validate": round(validate_s, 3)}
    report["messages_per_s"] = {"map": round(len(messages) / map_s, 1) if map_s else None,
                                "map_and_validate": round(len(messages) / (map_s + validate_s), 1) if map_s + validate_s else None}
    return report
