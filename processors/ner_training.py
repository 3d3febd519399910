"""Fine-tuning and scoring the NER model on an IOB corpus (BC5CDR by default).

What is saved is only what differs from the package's base encoder: the six transformer layers and the
classification head, in fp16 (about 21 MB). The embeddings stay frozen during training, so the package's
own embeddings are exactly the ones the saved layers were trained against.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

from processors import abbreviations, openvino_int8
from processors.model_delta import DELTA_FILE, base_info, save_delta, write_meta
from processors.ner import LABELS, NerModel, allowed_transitions, base_model_dir, entity_probabilities, viterbi

Sentence = tuple[list[str], list[str]]
POOL_BATCHES = 50
CONTEXT_SENTENCES = 10  # an IOB file has no document breaks: a sentence's "text" is it and the sentences around it (an abstract is about ten)


def read_iob(path: Path) -> list[Sentence]:
    """Sentences of (tokens, tags) from `token<TAB>tag` lines, blank line between sentences."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        token, _, tag = line.rpartition("\t")
        tokens.append(token)
        tags.append(tag.strip())
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def score(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """Entity-level precision/recall/F1, seqeval strict IOB2: `micro` and `per_label`."""
    report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    per_label = {
        k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"], "support": int(v["support"])}
        for k, v in report.items()
        if not k.endswith("avg")
    }
    micro = report["micro avg"]
    return {
        "micro": {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1-score"]},
        "per_label": per_label,
        "sentences": len(gold),
    }


def evaluate(model: NerModel, sentences: list[Sentence]) -> dict[str, Any]:
    predicted: list[list[str]] = []
    for i in range(0, len(sentences), 256):
        predicted.extend(model.predict_tags([tokens for tokens, _ in sentences[i : i + 256]]))
    predicted = with_text_rules([tokens for tokens, _ in sentences], predicted)
    return score([tags for _, tags in sentences], predicted)


TEMPERATURES = [round(1.0 + 0.25 * i, 2) for i in range(13)]  # 1.0 .. 4.0


def entity_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """(first word, end word, label) of each entity of an IOB2 row; an I- that does not continue one begins one."""
    spans: list[tuple[int, int, str]] = []
    for k, tag in enumerate(tags):
        if tag.startswith("B-") or (tag.startswith("I-") and (not spans or spans[-1][1] != k or spans[-1][2] != tag[2:])):
            spans.append((k, k + 1, tag[2:]))
        elif tag.startswith("I-"):
            spans[-1] = (spans[-1][0], k + 1, spans[-1][2])
    return spans


def expected_calibration_error(scores: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """The gap between score and accuracy, averaged over equal-width score bins weighted by their share."""
    which = np.minimum((scores * bins).astype(int), bins - 1)
    return float(sum(abs(scores[which == b].mean() - right[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def fit_score_temperature(model: NerModel, sentences: list[Sentence]) -> dict[str, Any]:
    """The temperature at which the model's entity scores (ner.entity_probabilities) best predict whether each entity
    it tags in `sentences` is right (exact words and label, before the text rules), by log loss over TEMPERATURES.
    Reported with the expected calibration error at it and at 1.0, and for each half of the sentences at the
    temperature the other half picks (how far a temperature fitted on devel carries)."""
    tokens = [t for t, _ in sentences]
    logprobs: list[np.ndarray] = []
    for i in range(0, len(tokens), 256):
        logprobs.extend(model.sentence_logprobs(tokens[i : i + 256]))
    paths = viterbi(logprobs, model._allowed, model._start_allowed)
    gold = [set(entity_spans(tags)) for _, tags in sentences]
    half = len(sentences) // 2

    def scored(temperature: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        probs = entity_probabilities(logprobs, paths, model.labels, model._allowed, model._start_allowed, temperature)
        rows = [(p[start], (start, end, label) in truth, i < half)
                for i, (path, p, truth) in enumerate(zip(paths, probs, gold))
                for start, end, label in entity_spans([model.labels[t] for t in path])]
        s, r, first = (np.array(col, dtype=float) for col in zip(*rows))
        return s, r, first.astype(bool)

    def log_loss(s: np.ndarray, r: np.ndarray) -> float:
        s = np.clip(s, 1e-6, 1 - 1e-6)
        return float(-(r * np.log(s) + (1 - r) * np.log(1 - s)).mean())

    if not any(model.labels[t] != "O" for path in paths for t in path):
        return {"temperature": 1.0, "entities": 0}  # nothing to calibrate on (a model trained on too little)
    results = {t: scored(t) for t in TEMPERATURES}
    best = min(TEMPERATURES, key=lambda t: log_loss(*results[t][:2]))
    best_first = min(TEMPERATURES, key=lambda t: log_loss(results[t][0][results[t][2]], results[t][1][results[t][2]]))
    best_second = min(TEMPERATURES, key=lambda t: log_loss(results[t][0][~results[t][2]], results[t][1][~results[t][2]]))
    s, r, _ = results[best]
    s1, r1, _ = results[1.0]
    sa, ra, fa = results[best_second]
    sb, rb, fb = results[best_first]
    return {
        "temperature": best, "entities": len(s), "right": round(float(r.mean()), 4), "mean_score": round(float(s.mean()), 4),
        "ece": round(expected_calibration_error(s, r), 4), "ece_at_1": round(expected_calibration_error(s1, r1), 4),
        "ece_halves_crossed": [round(expected_calibration_error(sa[fa], ra[fa]), 4),
                               round(expected_calibration_error(sb[~fb], rb[~fb]), 4)],
    }


def with_text_rules(sentences: list[list[str]], tags: list[list[str]], before: int = CONTEXT_SENTENCES,
                    after: int = CONTEXT_SENTENCES) -> list[list[str]]:
    """The worker applies its whole-text rules (`NerModel.text_rules`: abbreviations, consistency) to a whole
    note; an IOB file has no document breaks, so each sentence gets them inside the text of the sentences
    around it (`before` and `after`)."""
    out = []
    for i, tokens in enumerate(sentences):
        first, last = max(0, i - before), min(len(sentences), i + after + 1)
        starts, words = [], []
        offset = 0
        for j in range(first, last):
            for token in sentences[j]:
                starts.append(offset)
                words.append(token)
                offset += len(token) + 1
        text = " ".join(words)
        flat = [tag for j in range(first, last) for tag in tags[j]]
        spans = [abbreviations.Span(starts[a], starts[b - 1] + len(words[b - 1]), label, 1.0) for a, b, label in entity_spans(flat)]
        base = sum(len(sentences[j]) for j in range(first, i))
        index = {starts[base + k]: k for k in range(len(tokens))}
        ends = {starts[base + k] + len(tokens[k]): k for k in range(len(tokens))}
        row = ["O"] * len(tokens)
        for span in NerModel.text_rules(text, spans):
            a, b = index.get(span.start), ends.get(span.end)
            if a is None or b is None or b < a:
                continue  # another sentence's, or not on word boundaries
            row[a] = "B-" + span.label
            row[a + 1 : b + 1] = ["I-" + span.label] * (b - a)
        out.append(row)
    return out


def length_buckets(examples: list[Any], batch_size: int, pool_batches: int = POOL_BATCHES) -> list[list[Any]]:
    """Shuffled batches of similar-length examples: shuffle, sort pools of `pool_batches` batches by
    length, cut them into batches, shuffle the batches. Padding to the longest sentence of a random batch
    doubled the cost of an epoch; pools keep the batches random enough for SGD."""
    shuffled = random.sample(examples, len(examples))
    batches = []
    pool = batch_size * pool_batches
    for i in range(0, len(shuffled), pool):
        chunk = sorted(shuffled[i : i + pool], key=lambda ex: len(ex[0]))
        batches.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
    random.shuffle(batches)
    return batches


CRF_LR = 1e-2  # the transition scores are 35 numbers starting at zero: at the encoder's lr they hardly move
# Adversarial training (FGM, Miyato et al. 2017): each step adds the loss of the same batch with the embeddings' output
# pushed along the gradient of the loss, this far per token on average (the output's tokens have norms of about 7-12).
# The embeddings are frozen, so the push trains the layers to read a word's neighbourhood, not its exact vector: devel
# micro F1 0.869 -> 0.880 at seed 13 (Chemical 0.908 -> 0.921, Disease 0.820 -> 0.828), for twice the training time.
ADVERSARIAL_NORM = 0.5


def adversarial_perturbation(grad: torch.Tensor, mask: torch.Tensor, norm: float) -> torch.Tensor:
    """The push of each sentence's embedded tokens along `grad` (batch, tokens, hidden), zero on padding, scaled so that
    a sentence of n tokens moves by norm * sqrt(n) in all (norm per token on average)."""
    grad = grad * mask.unsqueeze(-1)
    size = grad.flatten(1).norm(dim=1).clamp(min=1e-12)
    return (norm * mask.sum(1).to(grad.dtype).sqrt() / size)[:, None, None] * grad


class BioCrf(torch.nn.Module):
    """A linear-chain CRF over the first sub-word of each word, its transitions constrained to valid IOB2 (an I- tag
    only after B-/I- of its type): the training loss. Per-token cross-entropy scores each word's tag alone; the CRF
    scores the sentence's whole tag sequence against every other, so the encoder learns where entities begin and end
    (devel micro F1 0.867 -> 0.869 and 0.872 in two runs with the same seed, Disease 0.812 -> 0.820; at seed 14, with
    abbreviations alone, 0.853 -> 0.863). The learned transitions are not kept:
    the worker's constrained Viterbi over the encoder's scores decodes as well without them (0.8716 vs 0.8708)."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__()
        n = len(labels)
        self.transitions = torch.nn.Parameter(torch.zeros(n, n))
        self.start = torch.nn.Parameter(torch.zeros(n))
        self.end = torch.nn.Parameter(torch.zeros(n))
        self.register_buffer("forbidden", (~allowed_transitions(labels)).float() * -1e4)
        self.register_buffer("start_forbidden", torch.tensor([-1e4 if lab.startswith("I-") else 0.0 for lab in labels]))

    def nll(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the gold tags; `labels` is -100 where a position is no word's first sub-word."""
        keep = labels != -100
        lengths = keep.sum(1)
        batch, width = len(labels), max(1, int(lengths.max()))
        emissions = logits.new_zeros(batch, width, logits.shape[-1])  # the words' scores, packed to the left
        tags = labels.new_zeros(batch, width)
        mask = torch.zeros(batch, width, dtype=torch.bool)
        for row in range(batch):
            at = keep[row].nonzero(as_tuple=True)[0]
            emissions[row, : len(at)], tags[row, : len(at)], mask[row, : len(at)] = logits[row, at], labels[row, at], True
        trans, start = self.transitions + self.forbidden, self.start + self.start_forbidden
        gold = start[tags[:, 0]] + emissions[:, 0].gather(1, tags[:, :1]).squeeze(1)
        alpha = start.unsqueeze(0) + emissions[:, 0]  # log-sum of the scores of every path to each tag
        for t in range(1, width):
            gold = gold + (trans[tags[:, t - 1], tags[:, t]] + emissions[:, t].gather(1, tags[:, t : t + 1]).squeeze(1)) * mask[:, t]
            alpha = torch.where(mask[:, t : t + 1], torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + emissions[:, t], alpha)
        gold = gold + self.end[tags.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)]
        return (torch.logsumexp(alpha + self.end, dim=1) - gold).mean()


def train_ner(
    train_path: Path,
    devel_path: Path,
    out_dir: Path,
    *,
    epochs: int = 10,
    lr: float = 4e-4,
    batch_size: int = 32,
    seed: int = 13,
    adversarial: float = ADVERSARIAL_NORM,
    log: Callable[[str], None] = print,
    int8_cache: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune, save the delta in `out_dir` and score it on `devel_path` in fp32 and in int8; the int8 twin
    is built into `int8_cache` (where the worker will look for it; default: a temp folder)."""
    random.seed(seed)
    torch.manual_seed(seed)
    base = base_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=True)
    config = AutoConfig.from_pretrained(
        base, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={lab: i for i, lab in enumerate(LABELS)}, local_files_only=True,
    )
    model = AutoModelForTokenClassification.from_pretrained(base, config=config, local_files_only=True)
    for name, param in model.named_parameters():
        param.requires_grad = not name.startswith("bert.embeddings.")

    train = read_iob(train_path)
    label_id = {lab: i for i, lab in enumerate(LABELS)}
    examples = []
    for tokens, tags in train:
        enc = tokenizer(tokens, is_split_into_words=True, truncation=True, max_length=256)
        labels, previous = [], None
        for word in enc.word_ids():
            # first sub-word of each word carries the word's tag; the rest are ignored by the loss
            labels.append(-100 if word is None or word == previous else label_id[tags[word]])
            previous = word
        examples.append((enc["input_ids"], labels))

    per_pool = batch_size * POOL_BATCHES
    steps = epochs * sum(-(-min(per_pool, len(examples) - i) // batch_size) for i in range(0, len(examples), per_pool))
    crf = BioCrf(LABELS)
    optimizer = torch.optim.AdamW([
        {"params": [p for p in model.parameters() if p.requires_grad], "lr": lr, "weight_decay": 0.01},
        {"params": list(crf.parameters()), "lr": CRF_LR, "weight_decay": 0.0},
    ])
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    embedded: dict[str, torch.Tensor | None] = {"output": None, "push": None}

    def push_embeddings(module: Any, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if embedded["push"] is not None:
            return output + embedded["push"]
        output.requires_grad_(True)  # frozen embeddings: ask for the gradient at their output
        output.retain_grad()
        embedded["output"] = output
        return output

    hook = model.bert.embeddings.register_forward_hook(push_embeddings) if adversarial else None
    model.train()
    started = time.monotonic()
    step = 0
    for epoch in range(epochs):
        for batch in length_buckets(examples, batch_size):
            width = max(len(ids) for ids, _ in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for row, (tok, lab) in enumerate(batch):
                ids[row, : len(tok)] = torch.tensor(tok)
                mask[row, : len(tok)] = 1
                labels[row, : len(lab)] = torch.tensor(lab)
            loss = crf.nll(model(input_ids=ids, attention_mask=mask).logits, labels)
            loss.backward()
            if hook is not None:
                embedded["push"] = adversarial_perturbation(embedded["output"].grad, mask, adversarial)
                crf.nll(model(input_ids=ids, attention_mask=mask).logits, labels).backward()
                embedded["push"] = None
            torch.nn.utils.clip_grad_norm_([*model.parameters(), *crf.parameters()], 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            if step % 50 == 0:
                log(f"epoch {epoch + 1}/{epochs} step {step}/{steps} loss {loss.item():.4f} {time.monotonic() - started:.0f}s")
    train_seconds = time.monotonic() - started
    if hook is not None:
        hook.remove()

    out_dir = Path(out_dir)
    delta = {
        k: v.to(torch.float16)
        for k, v in model.state_dict().items()
        if k.startswith("bert.encoder.") or k.startswith("classifier.")
    }
    meta: dict[str, Any] = {
        "name": "clinstream-ner-minilm-bc5cdr",
        "version": save_delta(out_dir, delta),
        "labels": LABELS,
        "base": base_info(),
        "training": {
            "data": str(Path(train_path).name), "sentences": len(train), "epochs": epochs, "lr": lr,
            "batch_size": batch_size, "seed": seed, "frozen": "embeddings", "labels_on": "first sub-word",
            "loss": f"linear-chain CRF over the first sub-words, BIO-constrained, transitions learned at lr {CRF_LR} (not kept)",
            "adversarial": (f"FGM: the loss again with the embeddings' output pushed along its gradient, {adversarial} per token"
                            if adversarial else "none"),
            "decoding": "BIO-constrained Viterbi; short forms defined in the text tagged as their long form; each entity string tagged at all its uses in the text or none",
            "seconds": round(train_seconds), "torch_threads": torch.get_num_threads(),
        },
    }
    write_meta(out_dir, meta)
    devel = read_iob(devel_path)
    fp32 = NerModel(out_dir, device="cpu", precision="fp32")
    report = evaluate(fp32, devel)
    report["data"] = str(Path(devel_path).name)
    meta["devel"] = report
    meta["score_calibration"] = fit_score_temperature(fp32, devel)
    meta["score_temperature"] = meta["score_calibration"]["temperature"]
    if openvino_int8.available():  # what the worker runs on CPU by default
        meta["devel_int8"] = evaluate(NerModel(out_dir, device="cpu", precision="int8", int8_cache=int8_cache), devel)["micro"]
    write_meta(out_dir, meta)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "MODEL_CARD.md").write_text(model_card(meta))
    return report


def model_card(meta: dict[str, Any]) -> str:
    dev = meta["devel"]
    rows = "\n".join(
        f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
        for label, v in sorted(dev["per_label"].items())
    )
    m = dev["micro"]
    t = meta["training"]
    int8 = meta.get("devel_int8")
    cal = meta["score_calibration"]
    score_line = (
        f"""- An entity's score is the probability that exactly that entity holds (its words, its label) under the BIO-constrained
  chain of the words' label probabilities, softened by a temperature fitted on devel ({cal['temperature']}, by log loss
  over the {cal['entities']} entities the model tags there alone). Of those, {cal['right']:.1%} are right and the
  scores average {cal['mean_score']:.3f}; expected calibration error {cal['ece']:.3f} (10 bins; {cal['ece_at_1']:.3f} at
  temperature 1; each half of devel at the temperature the other half picks: {cal['ece_halves_crossed'][0]:.3f} and
  {cal['ece_halves_crossed'][1]:.3f}). Abstracts are not notes: on notes the scores are likely less well calibrated.\n"""
        if cal["entities"] else "- Entity scores are uncalibrated: the model tagged no entity on devel to fit a temperature on.\n"
    )
    int8_line = (
        f"\nThe scores are the fp32 model's (torch). In int8 through OpenVINO, activation scales calibrated on generator\n"
        f"notes (what the worker runs on CPU by default, `processors/openvino_int8.py`): micro precision\n"
        f"{int8['precision']:.3f}, recall "
        f"{int8['recall']:.3f}, F1 {int8['f1']:.3f} on the same sentences.\n"
        if int8 else ""
    )
    return f"""# {meta['name']} ({meta['version']})

Token-classification model for chemicals and diseases in English biomedical and clinical text.
In clinstream's envelope `Chemical` is reported as MEDICATION and `Disease` as PROBLEM (source label kept).

- **Base**: the MiniLM-L6 (H384, uncased) encoder shipped in the PyPI package `{meta['base']['package']}`
  {meta['base']['package_version']}. This folder holds only what differs from it: the six fine-tuned transformer
  layers and the classification head (`{DELTA_FILE}`, fp16). The embeddings were frozen and come from the package.
- **Data**: BC5CDR (BioCreative V CDR, CC BY 4.0), `{t['data']}` ({t['sentences']} sentences), IOB2 tags.
- **Training**: full fine-tune of the layers, AdamW lr {t['lr']}, linear warm-up and decay, {t['epochs']} epochs,
  sentences of similar length batched together,
  batch {t['batch_size']}, seed {t['seed']}, labels on the {t['labels_on']}, loss: {t.get('loss', 'cross-entropy per word')};
  adversarial training: {t.get('adversarial', 'none')};
  {t['seconds']} s on {t['torch_threads']} CPU threads.
  Reproduce with `clinstream train ner`.
- **Decoding**: {t['decoding']} (an I- tag only after B-/I- of the same type; "acute renal failure (ARF)"
  makes every ARF of the text a Disease, `processors/abbreviations.py`; the uses of each entity string vote on
  whether all or none are tagged, `processors/consistency.py`). The scores below include both: an IOB file has no
  document breaks, so a sentence's text is it and the {CONTEXT_SENTENCES} sentences on each side.

## Scores on `{dev['data']}` (entity level, seqeval strict IOB2, {dev['sentences']} sentences)

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}
| **micro** | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | |
{int8_line}
## Limits
- Trained on PubMed abstracts, not clinical notes: abbreviations (MI, CHF), misspellings and note
  shorthand are recognised less well than in the table above.
- No assertion status: present, negated, possible, historical, family and hypothetical come from the
  ConText rules in `processors/assertion.py`, applied to the spans this model finds.
{score_line}- English only; uncased.
"""
