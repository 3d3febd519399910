"""Scoring the ICD-10-CM coder on mention -> code pairs: top-1 / top-5 at the full code and at the
3-character category, per split (dev, heldout), for the tuned ranking and the plain-cosine baseline."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from processors.icd10cm import BARE, DESCRIPTION, INCLUSION, PARENT, PLAIN, Coder, Ranking

EVAL_FILE = Path(__file__).resolve().parent.parent / "tests" / "processors" / "data" / "icd10cm_mentions.tsv"


@dataclass(frozen=True)
class Pair:
    mention: str
    code: str
    split: str  # dev | heldout


def read_pairs(path: Path = EVAL_FILE) -> list[Pair]:
    pairs = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("mention\t"):
            continue
        mention, code, split = line.split("\t")
        pairs.append(Pair(mention, code, split))
    return pairs


def score(predicted: list[list[str]], expected: list[str]) -> dict[str, float | int]:
    n = len(expected)
    if not n:
        return {"n": 0}

    def share(hit: int) -> float:
        return round(hit / n, 3)

    return {
        "n": n,
        "top1_code": share(sum(bool(p) and p[0] == e for p, e in zip(predicted, expected))),
        "top5_code": share(sum(e in p[:5] for p, e in zip(predicted, expected))),
        "top1_category": share(sum(bool(p) and p[0][:3] == e[:3] for p, e in zip(predicted, expected))),
        "top5_category": share(sum(e[:3] in {c[:3] for c in p[:5]} for p, e in zip(predicted, expected))),
    }


def run(coder: Coder, pairs: list[Pair], ranking: Ranking) -> tuple[dict[str, Any], list[list[str]], float]:
    coder.clear_cache()  # time the search, not the cache
    started = time.perf_counter()
    matches = coder.code([p.mention for p in pairs], k=5, ranking=ranking)
    elapsed = time.perf_counter() - started
    predicted = [[m.code for m in ms] for ms in matches]
    report = {split: score([p for p, q in zip(predicted, pairs) if q.split == split],
                           [q.code for q in pairs if q.split == split]) for split in ("dev", "heldout")}
    return report, predicted, elapsed


# What the report compares: the baseline of the issue, then each part added in turn, then the tuned whole.
def variants(tuned: Ranking) -> dict[str, Ranking]:
    from dataclasses import replace

    return {
        "plain_cosine": PLAIN,
        "descriptions_only": replace(tuned, kinds=(DESCRIPTION,)),
        "no_parent_rows": replace(tuned, kinds=(DESCRIPTION, INCLUSION, BARE)),
        "no_inclusion_terms": replace(tuned, kinds=(DESCRIPTION, PARENT, BARE)),
        "no_shorthand": replace(tuned, shorthand=False),
        "no_spelling": replace(tuned, spelling=False),
        "no_category_vote": replace(tuned, category_weight=0.0),
        "no_general_bonus": replace(tuned, general_bonus=0.0),
        "no_context_penalty": replace(tuned, context_penalty=0.0),
        "no_rerank": replace(tuned, category_weight=0.0, general_bonus=0.0, context_penalty=0.0),
        "tuned": tuned,
    }


def evaluate(coder: Coder, pairs: list[Pair], *, ablations: bool = True) -> dict[str, Any]:
    tuned = coder.ranking
    report: dict[str, Any] = {
        "pairs": {s: sum(p.split == s for p in pairs) for s in ("dev", "heldout")},
        "index": {"package": coder.index.package, "encoder": coder.index.encoder[:12], "rows": len(coder.index.texts),
                  "codes": len(coder.index.codes)},
        "ranking": tuned.__dict__,
    }
    chosen = variants(tuned) if ablations else {"plain_cosine": PLAIN, "tuned": tuned}
    results = {}
    for name, ranking in chosen.items():
        scores, _, elapsed = run(coder, pairs, ranking)
        scores["ms_per_mention"] = round(1000 * elapsed / max(len(pairs), 1), 2)
        results[name] = scores
    report["results"] = results
    report["timing"] = timing(coder, [p.mention for p in pairs])
    return report


def timing(coder: Coder, mentions: list[str], single: int = 40) -> dict[str, float]:
    """Milliseconds per mention: the whole list in batches of 32 (as the worker sends a batch's mentions)
    and the first `single` mentions one call each."""
    coder.clear_cache()  # time the search, not the cache
    started = time.perf_counter()
    for i in range(0, len(mentions), 32):
        coder.code(mentions[i : i + 32])
    batched = (time.perf_counter() - started) / max(len(mentions), 1)
    coder.clear_cache()
    started = time.perf_counter()
    for mention in mentions[:single]:
        coder.code([mention])
    alone = (time.perf_counter() - started) / max(min(single, len(mentions)), 1)
    return {"batch32_ms_per_mention": round(batched * 1000, 2), "single_ms_per_mention": round(alone * 1000, 2)}


def dev_misses(coder: Coder, pairs: list[Pair], ranking: Ranking | None = None) -> list[dict[str, Any]]:
    """The dev pairs the coder gets wrong at the top, for tuning (never the held-out ones)."""
    dev = [p for p in pairs if p.split == "dev"]
    matches = coder.code([p.mention for p in dev], k=5, ranking=ranking or coder.ranking)
    out = []
    for pair, ms in zip(dev, matches):
        if not ms or ms[0].code != pair.code:
            out.append({"mention": pair.mention, "expected": pair.code,
                        "category_ok": bool(ms) and ms[0].code[:3] == pair.code[:3],
                        "text": coder.prepare(pair.mention, ranking or coder.ranking).text,
                        "got": [f"{m.code} {m.score:.3f} {m.display[:60]}" for m in ms[:3]]})
    return out
