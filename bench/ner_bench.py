"""Benchmark: NER inference end to end (tokenize, forward, Viterbi decode) by precision and batch size,
side by side in one run, on CPU and, where one is present, on CUDA. Prints one JSON object.

    python bench/ner_bench.py [--notes 256] [--seconds 20] [--devel-sentences 500]

Notes are the generator's clinical notes cut into pieces of about 75 tokens. For each precision and batch
size 1, 8, 32, 128: notes/s and p50/p99 latency of one batch; the speedup of the best batch size over one
note at a time; and, per precision, entity-level F1 on the first devel sentences of BC5CDR (when
../shared/corpora is there), the share of note entities that differ from fp32, and the share that differ
between batches of 32 and one note at a time (a note's result should not depend on its batch-mates).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from clinstream.settings import REPO_ROOT, Settings
from clinstream.synthetic import note_texts
from processors.ner import NerModel

BATCH_SIZES = (1, 8, 32, 128)
DEVEL = REPO_ROOT.parent / "shared" / "corpora" / "bc5cdr" / "devel.tsv"


def short_notes(model: NerModel, n: int, tokens: int = 75) -> list[str]:
    """Generator notes cut at word boundaries into pieces of about `tokens` word pieces."""
    pieces: list[str] = []
    for text in note_texts(max(16, n // 4)):
        words = text.split()
        current: list[str] = []
        for word in words:
            current.append(word)
            if len(model.tokenizer(" ".join(current))["input_ids"]) >= tokens:
                pieces.append(" ".join(current))
                current = []
        if len(pieces) >= n:
            break
    while len(pieces) < n:  # a short feed: repeat it
        pieces += pieces[: n - len(pieces)]
    return pieces[:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(model: NerModel, notes: list[str], batch: int, seconds: float) -> dict:
    model.predict(notes[:batch], max_batch=batch, token_budget=10**9)  # warm-up: allocator, kernels
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    latencies: list[float] = []
    done = 0
    started = time.perf_counter()
    while done < len(notes) and (time.perf_counter() - started < seconds or not latencies):
        chunk = notes[done : done + batch]
        t0 = time.perf_counter()
        model.predict(chunk, max_batch=batch, token_budget=10**9)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        latencies.append(time.perf_counter() - t0)
        done += len(chunk)
    total = time.perf_counter() - started
    return {
        "batch": batch,
        "notes": done,
        "notes_per_s": round(done / total, 1),
        "p50_batch_ms": round(1000 * statistics.median(latencies), 1),
        "p99_batch_ms": round(1000 * percentile(latencies, 0.99), 1),
    }


def entity_set(model: NerModel, notes: list[str]) -> list[set]:
    return [{(e.start, e.end, e.label) for e in ents} for ents in model.predict(notes, max_batch=32)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notes", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=20.0, help="time cap per cell (at least one batch runs)")
    parser.add_argument("--devel-sentences", type=int, default=500)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = Settings()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    precisions = {"cpu": ["fp32", "bf16", "int8"], "cuda": ["fp32", "bf16", "fp16"]}

    devel = None
    if DEVEL.exists() and args.devel_sentences > 0:  # 0: speed only
        from processors.ner_training import read_iob

        devel = read_iob(DEVEL)[: args.devel_sentences]

    result: dict = {
        "machine": {"cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
        "runs": [],
    }
    notes: list[str] = []
    for device in devices:
        reference: list[set] | None = None
        reference_f1: float | None = None
        for precision in precisions[device]:
            model = NerModel(settings.ner_model, device=device, precision=precision, int8_cache=settings.int8_cache_dir)
            if not notes:
                notes = short_notes(model, args.notes)
                lengths = [len(ids) for ids in model.tokenizer(notes)["input_ids"]]
                result["notes"] = {"count": len(notes), "mean_tokens": round(sum(lengths) / len(lengths), 1)}
            cells = [measure(model, notes, b, args.seconds) for b in BATCH_SIZES]
            single = cells[0]["notes_per_s"]
            best = max(cells, key=lambda c: c["notes_per_s"])
            run = {"device": device, "precision": precision, "batches": cells,
                   "best": {"batch": best["batch"], "notes_per_s": best["notes_per_s"]},
                   "batched_vs_single": round(best["notes_per_s"] / single, 2)}
            found = entity_set(model, notes)
            if reference is None:
                reference = found
            changed = sum(len(a ^ b) for a, b in zip(found, reference))
            run["entities_changed_vs_fp32"] = round(changed / max(1, sum(len(r) for r in reference)), 4)
            # the same precision, each note alone: what a note's batch-mates change (fp32 should change nothing)
            alone = [{(e.start, e.end, e.label) for e in model.predict([note])[0]} for note in notes]
            moved = sum(len(a ^ b) for a, b in zip(found, alone))
            run["entities_moved_by_batching"] = round(moved / max(1, sum(len(f) for f in found)), 4)
            if devel is not None:
                from processors.ner_training import evaluate

                f1 = evaluate(model, devel)["micro"]["f1"]
                reference_f1 = f1 if reference_f1 is None else reference_f1
                run["devel_f1"] = round(f1, 4)
                run["devel_f1_change_points"] = round(100 * (f1 - reference_f1), 2)
            result["runs"].append(run)
            print(json.dumps(run), flush=True, file=sys.stderr)
    cpu_fp32 = next(r for r in result["runs"] if r["device"] == "cpu" and r["precision"] == "fp32")
    result["ratios"] = {
        f"{r['device']}_{r['precision']}_vs_cpu_fp32": round(r["best"]["notes_per_s"] / cpu_fp32["best"]["notes_per_s"], 2)
        for r in result["runs"]
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
