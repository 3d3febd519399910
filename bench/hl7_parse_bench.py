"""Benchmark: python-hl7's eager parse vs clinstream's splitter, and the whole HL7 -> FHIR mapping, on the
FHIR-Converter corpus and on the synthetic feed. Prints one JSON object.

    python bench/hl7_parse_bench.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hl7

from clinstream.settings import REPO_ROOT
from clinstream.synthetic import generate
from fhir_mappers import hl7v2_to_fhir, validate_r4_bundle
from fhir_mappers.parse import decode, parse_er7


def rate(fn, items: list, repeat: int = 3) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        for item in items:
            fn(item)
    return round(repeat * len(items) / (time.perf_counter() - started), 1)


def measure(name: str, raw: list[bytes]) -> dict:
    texts = [decode(r) for r in raw]
    mapped = [hl7v2_to_fhir(r).bundle for r in raw]
    python_hl7, splitter = rate(hl7.parse, texts), rate(parse_er7, texts)
    return {"messages": len(raw), "python_hl7_parse_msgs_per_s": python_hl7, "splitter_msgs_per_s": splitter,
            "splitter_vs_python_hl7": round(splitter / python_hl7, 1), "map_to_fhir_msgs_per_s": rate(hl7v2_to_fhir, raw),
            "r4b_validation_msgs_per_s": rate(validate_r4_bundle, mapped, repeat=1), "corpus": name}


def main() -> None:
    out = {}
    corpus = REPO_ROOT.parent / "shared" / "corpora" / "hl7v2" / "messages"
    if corpus.exists():
        out["fhir_converter_corpus"] = measure("FHIR-Converter samples", [p.read_bytes() for p in sorted(corpus.glob("*.hl7"))])
    feed = [m.value for m in generate(2000, seed=3).messages if m.topic == "hl7v2"]
    out["synthetic_feed"] = measure("clinstream generate, standard mix", feed)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
