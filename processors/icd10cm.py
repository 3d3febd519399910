"""ICD-10-CM coding of problem mentions: a layer of clinical shorthand and lay terms, then the MiniLM
sentence encoder searched against an index of the ICD-10-CM tabular list (package `simple-icd-10-cm`).

The index is derived from the package and the encoder: built once (`clinstream index icd10cm`, which
`make setup` runs) and cached in the state folder under a name keyed by both, so a new package
version or encoder builds a new one. Everything here is pure except `build_index` / `load_index`.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
import sys
import time
import unicodedata
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from clinstream.envelope import CodeMatch
from fhir_mappers.yaml_files import read_yaml
from processors.phrases import Lexicon, spaced

PACKAGE = "simple-icd-10-cm"
SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
SYNONYMS_FILE = Path(__file__).with_name("icd10cm_synonyms.yaml")
# Bump when the rows of the index change meaning; part of the cache key with package and encoder.
INDEX_FORMAT = 2

# Row kinds: where an index row's text comes from. Every row points to one billable code.
DESCRIPTION, INCLUSION, PARENT, BARE = 0, 1, 2, 3
KIND_NAMES = {DESCRIPTION: "description", INCLUSION: "inclusion term", PARENT: "parent description", BARE: "bare variant"}


# --- the shorthand layer ---------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def squash(text: str) -> str:
    """Lower case, NFKC, punctuation other than the hyphen of 'COVID-19' or 'non-ST' turned to spaces."""
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    text = re.sub(r"[^\w\s'\-]", " ", text)
    text = re.sub(r"(?<!\w)-|-(?!\w)|'(?!\w)|(?<!\w)'", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Expansion:
    text: str  # what is embedded
    code: str | None  # a direct code when the whole mention is a known phrase


@dataclass
class Shorthand:
    """Abbreviations and lay terms -> the words ICD-10-CM uses; whole-mention phrases -> a code."""

    abbreviations: dict[str, str]
    drop: list[str]
    patterns: list[tuple[str, str]]
    codes: dict[str, str] = field(default_factory=dict)  # squashed phrase -> code
    # read by NER (processors/ner.py shorthand_uses): terms that name a problem on their own in a note, and regular
    # expressions of their uses that mean something else
    problems: list[str] = field(default_factory=list)
    problem_exceptions: list[str] = field(default_factory=list)
    problem_modifiers: dict[str, list[str]] = field(default_factory=dict)  # "before"/"after" -> words (regexes)
    # problem term -> its meanings in notes -> the words of a sentence that pick each one (see `sense`)
    senses: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [t for t in self.problems if t not in self.abbreviations]
        if unknown:  # the coder must be able to expand every problem NER tags from here
            raise ValueError(f"problems without an abbreviations entry: {unknown}")
        for term, meanings in self.senses.items():
            if term not in self.problems or self.abbreviations[term] not in meanings:
                raise ValueError(f"senses of {term!r}: not a problem term, or its abbreviations entry is none of them")
        # the abbreviations entry first: a sentence that picks no other meaning keeps it
        self._senses = {term: {m: _any_word(meanings[m]) for m in sorted(meanings, key=lambda m: m != self.abbreviations[term])}
                        for term, meanings in self.senses.items()}
        terms = {**self.abbreviations, **{t: "" for t in self.drop}}
        self._terms = Lexicon(terms)
        self._expansions = {spaced(t): v for t, v in terms.items()}  # keyed as Lexicon.find names a term
        self._patterns = [(re.compile(p), r) for p, r in self.patterns]
        self._codes: dict[str, str] = {}
        for phrase, code in self.codes.items():
            key = self._rewrite(phrase)
            if self._codes.setdefault(key, code) != code:  # e.g. a dropped word ("persistent") made two phrases one
                raise ValueError(f"direct code phrases {phrase!r} ({code}) and another ({self._codes[key]}) both read {key!r}")

    @classmethod
    def load(cls, path: Path = SYNONYMS_FILE) -> Shorthand:
        data = read_yaml(path)
        codes = {phrase: code for code, phrases in (data.get("codes") or {}).items() for phrase in phrases}
        return cls(
            abbreviations={str(k): str(v) for k, v in (data.get("abbreviations") or {}).items()},
            drop=[str(d) for d in data.get("drop") or []],
            patterns=[(str(p), str(r)) for p, r in data.get("patterns") or []],
            codes=codes,
            problems=[str(t) for t in data.get("problems") or []],
            problem_exceptions=[str(p) for p in data.get("problem_exceptions") or []],
            problem_modifiers={k: [str(w) for w in v] for k, v in (data.get("problem_modifiers") or {}).items()},
            senses={str(t): {str(m): [str(w) for w in ws] for m, ws in ms.items()} for t, ms in (data.get("senses") or {}).items()},
        )

    def sense(self, term: str, sentence: str) -> str | None:
        """What a problem term with two meanings in notes ("ARF": acute renal or respiratory failure) means in this
        sentence, where that is not its abbreviations entry: the meaning with the most of its words there, the entry's
        on a tie. None for a term of one meaning."""
        meanings = self._senses.get(term)
        if meanings is None:
            return None
        counts = {meaning: len(words.findall(sentence)) for meaning, words in meanings.items()}
        best = max(counts, key=counts.__getitem__)  # the first on a tie: the entry's
        return best if best != self.abbreviations[term] else None

    def words(self, mention: str) -> str:
        """The mention with its abbreviations and lay terms written out and its qualifiers dropped, squashed: what
        it says, before the patterns add what ICD-10-CM's guidelines assume (the type 2 of an untyped diabetes)."""
        text = unicodedata.normalize("NFKC", mention).strip()
        parts, last = [], 0
        for start, end, term in self._terms.find(text):
            parts += [text[last:start], f" {self._expansions[term]} "]
            last = end
        return squash("".join(parts) + text[last:])

    def _rewrite(self, mention: str) -> str:
        text = self.words(mention)
        for pattern, replacement in self._patterns:
            text = pattern.sub(replacement, text)
        return " ".join(text.split())

    def expand(self, mention: str) -> Expansion:
        text = self._rewrite(mention)
        if not text:  # the mention was only qualifiers: embed it as written
            text = squash(mention)
        return Expansion(text, self._codes.get(text))


def _any_word(words: list[str]) -> re.Pattern[str]:
    """A regex of any of the words, whole, in any case; of none, it matches nothing."""
    return re.compile(r"(?i)(?<![\w-])(?:" + "|".join(map(re.escape, words)) + r")(?![\w-])" if words else r"(?!)")


@lru_cache(maxsize=1)
def default_shorthand() -> Shorthand:
    return Shorthand.load()


# --- spelling ------------------------------------------------------------------------------------


class Speller:
    """Corrects a word of five letters or more that no index text or shorthand uses to the closest one
    that they use (difflib ratio >= cutoff, same first letter): 'pnuemonia' -> 'pneumonia'."""

    def __init__(self, vocabulary: Iterable[str], cutoff: float = 0.84) -> None:
        self.vocabulary = set(vocabulary)
        self.cutoff = cutoff
        self._by_start: dict[str, list[str]] = defaultdict(list)
        for word in self.vocabulary:
            if len(word) >= 4 and word.isalpha():
                self._by_start[word[0]].append(word)

    @lru_cache(maxsize=4096)  # noqa: B019 - one speller per loaded index
    def word(self, word: str) -> str:
        if len(word) < 5 or not word.isalpha() or word in self.vocabulary:
            return word
        pool = [w for w in self._by_start.get(word[0], []) if abs(len(w) - len(word)) <= 2]
        close = difflib.get_close_matches(word, pool, n=1, cutoff=self.cutoff)
        return close[0] if close else word

    def text(self, text: str) -> str:
        return " ".join(self.word(w) for w in text.split())


def vocabulary_of(texts: Iterable[str]) -> set[str]:
    words: set[str] = set()
    for text in texts:
        words.update(_WORD.findall(text.lower()))
    return words


# --- index rows from the tabular list -------------------------------------------------------------

_PAREN = re.compile(r"\s*\([^()]*\)")
_NOS = re.compile(r"\bNOS\b")


def bare(text: str) -> str:
    """The text without its nonessential modifiers in parentheses and without 'NOS'."""
    out = _NOS.sub("", _PAREN.sub("", text))
    return " ".join(out.replace(" ,", ",").split()).strip(" ,")


def is_later_encounter(description: str) -> bool:
    """7th-character variants for a subsequent encounter or a sequela: not indexed (they would crowd the
    list with near-copies of the initial encounter); `encounter_variant` reaches them from the mention."""
    low = description.lower()
    return "subsequent encounter" in low or low.endswith("sequela")


_UNCOMPLICATED = re.compile(r"\buncomplicated\b|\bwithout complications?\b", re.IGNORECASE)
_UNSPECIFIED = re.compile(r"\bunspecified\b|\bNOS\b|\bnot specified\b", re.IGNORECASE)


def generality(code: str, description: str) -> tuple[int, bool, bool, str]:
    """Sort key among siblings, the most general first: 'uncomplicated' / 'without complications', then
    'unspecified' (NOS, 'not specified'), then a code ending in 9, then in 0, then code order."""
    tier = 0 if _UNCOMPLICATED.search(description) else 1 if _UNSPECIFIED.search(description) else 2
    return (tier, code[-1] != "9", code[-1] != "0", code)


@dataclass(frozen=True)
class Row:
    text: str
    code: str
    kind: int


def is_billable(icd: Any, code: str) -> bool:
    # "B20" is both a block and its only category: test for a category, not for "not a block"
    return bool(icd.is_leaf(code) and (icd.is_category_or_subcategory(code) or icd.is_extended_subcategory(code)))


def default_leaves(icd: Any, indexed: dict[str, str]) -> dict[str, str]:
    """Category or subcategory -> the billable code a coder gives it when nothing more is said: walk down
    taking the most general child at each level (I50 -> I50.9, I25.1 -> I25.10, S72 -> S72.90XA)."""
    memo: dict[str, str | None] = {}

    def walk(node: str) -> str | None:
        if node in indexed:
            return node
        if node in memo:
            return memo[node]
        memo[node] = None
        children = sorted(icd.get_children(node), key=lambda c: generality(c, icd.get_description(c)))
        for child in children:
            leaf = walk(child)
            if leaf:
                memo[node] = leaf
                break
        return memo[node]

    out = {}
    for node in dict.fromkeys(icd.get_all_codes(True)):
        if icd.is_leaf(node) or not icd.is_category_or_subcategory(node):
            continue
        leaf = walk(node)
        if leaf:
            out[node] = leaf
    return out


def tabular_rows() -> tuple[list[Row], dict[str, str], dict[str, str]]:
    """Index rows, the billable codes (code -> description) and the default billable code of every
    category and subcategory, from the installed simple-icd-10-cm.

    Rows: each billable code's description; its inclusion terms; the description, inclusion terms and
    'includes' notes of every category and subcategory above billable codes, pointing to its default
    code; and each of these without parenthesised modifiers where that differs.
    """
    import simple_icd_10_cm as icd

    codes: dict[str, str] = {}
    rows: list[Row] = []
    for code in icd.get_all_codes(True):
        if is_billable(icd, code):
            codes[code] = icd.get_description(code)
    indexed = {c: d for c, d in codes.items() if not is_later_encounter(d)}
    for code, description in indexed.items():
        rows.append(Row(description, code, DESCRIPTION))
        for term in icd.get_inclusion_term(code):
            rows.append(Row(term, code, INCLUSION))
    defaults = default_leaves(icd, indexed)
    for node, target in defaults.items():
        rows.append(Row(icd.get_description(node), target, PARENT))
        for term in list(icd.get_inclusion_term(node)) + list(icd.get_includes(node)):
            rows.append(Row(term, target, PARENT))
    for row in list(rows):
        stripped = bare(row.text)
        if stripped and stripped != row.text:
            rows.append(Row(stripped, row.code, BARE))
    # one row per (text, code): the first kind wins
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        key = (row.text.lower(), row.code)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique, codes, defaults


# --- the encoder ---------------------------------------------------------------------------------


def encoder_dir() -> Path:
    from processors.ner import base_model_dir

    return base_model_dir()


def encoder_hash(path: Path) -> str:
    """sha256 over the encoder's weights, config and vocabulary: part of the index's cache key."""
    digest = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "vocab.txt", "model.safetensors"):
        file = path / name
        if file.exists():
            digest.update(name.encode())
            with file.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


class Encoder:
    """all-MiniLM-L6-v2 sentence embeddings: mean of the last hidden state over the attention mask,
    L2-normalised (what sentence-transformers does for this model)."""

    def __init__(self, path: Path | None = None, device: str = "cpu", max_length: int = 128) -> None:
        from transformers import AutoModel, AutoTokenizer

        from processors.ner import pick_device

        self.path = Path(path or encoder_dir())
        self.device = pick_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.path, local_files_only=True).to(self.device).eval()
        self.max_length = max_length

    def embed(self, texts: Sequence[str], batch_size: int = 256, progress: Callable[[int], None] | None = None) -> torch.Tensor:
        """(len(texts), 384) float32, unit rows, in the order given; batches of similar length."""
        out = torch.empty(len(texts), self.model.config.hidden_size)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = self.tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[chunk] = torch.nn.functional.normalize(pooled, dim=-1).float().cpu()
                if progress:
                    progress(min(start + batch_size, len(order)))
        return out


# --- the cached index ----------------------------------------------------------------------------


def package_version() -> str:
    return metadata.version(PACKAGE)


def index_path(folder: Path, encoder_digest: str) -> Path:
    """<folder>/<package version>-<encoder sha256 prefix>-f<format>.pt: a new package, encoder or row
    format gets a file of its own."""
    return Path(folder) / f"{package_version()}-{encoder_digest[:12]}-f{INDEX_FORMAT}.pt"


@dataclass
class Index:
    texts: list[str]
    row_code: torch.Tensor  # (rows,) int32 into codes
    kinds: torch.Tensor  # (rows,) uint8
    embeddings: torch.Tensor  # (rows, dim) float32, unit rows
    codes: list[str]
    displays: list[str]
    general: list[str]  # the default billable code of some category or subcategory
    package: str
    encoder: str

    def category_of(self) -> list[str]:
        return [c[:3] for c in self.codes]


def build_index(
    path: Path, encoder: Encoder, digest: str, *, batch_size: int = 256, log: Callable[[str], None] = lambda s: None
) -> Path:
    """Embed every row and save the index to `path`. Embeddings of texts that an older index in the same
    folder already holds for this encoder are reused, so a new package version embeds only what changed;
    the older file is removed once the new one is written."""
    rows, codes, defaults = tabular_rows()
    code_list = sorted(codes)
    position = {c: i for i, c in enumerate(code_list)}
    texts = sorted({r.text for r in rows})
    known: dict[str, torch.Tensor] = {}
    for old in sorted(path.parent.glob(f"*-{digest[:12]}-f*.pt")):
        if old == path:
            continue
        try:
            data = torch.load(old, weights_only=True)
        except Exception:  # noqa: BLE001 - a damaged cache file is only a lost shortcut
            continue
        for text, vector in zip(data["texts"], data["embeddings"]):
            known[text] = vector.float()
    todo = [t for t in texts if t not in known]
    log(f"icd10cm index: {len(rows)} rows for {len(codes)} billable codes, {len(texts)} distinct texts, "
        f"{len(texts) - len(todo)} embedded before, {len(todo)} to embed")
    started = time.perf_counter()
    last = [started]

    def progress(done: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 15 or done == len(todo):
            last[0] = now
            rate = done / max(now - started, 1e-9)
            log(f"  embedded {done}/{len(todo)} ({rate:.0f}/s, {(len(todo) - done) / max(rate, 1e-9):.0f}s left)")

    fresh = encoder.embed(todo, batch_size=batch_size, progress=progress) if todo else torch.empty(0, 384)
    vectors = dict(known)
    vectors.update(zip(todo, fresh))
    text_pos = {t: i for i, t in enumerate(texts)}
    emb = torch.stack([vectors[t] for t in texts]).half()
    row_text = torch.tensor([text_pos[r.text] for r in rows], dtype=torch.int32)
    payload = {
        "format": INDEX_FORMAT, "package": package_version(), "encoder": digest,
        "texts": texts, "embeddings": emb,
        "row_text": row_text,
        "row_code": torch.tensor([position[r.code] for r in rows], dtype=torch.int32),
        "kinds": torch.tensor([r.kind for r in rows], dtype=torch.uint8),
        "codes": code_list, "displays": [codes[c] for c in code_list],
        "general": sorted(set(defaults.values())),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    for old in path.parent.glob(f"*-{digest[:12]}-f*.pt"):
        if old != path:  # superseded: everything reusable from it is in the new file
            old.unlink(missing_ok=True)
    log(f"icd10cm index: wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f}s")
    return path


def load_index(path: Path) -> Index:
    data = torch.load(path, weights_only=True)
    row_text = data["row_text"].long()
    return Index(
        texts=[data["texts"][i] for i in row_text.tolist()],
        row_code=data["row_code"], kinds=data["kinds"],
        embeddings=data["embeddings"].float()[row_text],
        codes=data["codes"], displays=data["displays"], general=data["general"],
        package=data["package"], encoder=data["encoder"],
    )


class IndexMissing(RuntimeError):
    """The ICD-10-CM index has not been built for this package and encoder."""


# --- ranking -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """Knobs of the re-ranking; the defaults are the ones tuned on the dev half of the evaluation set."""

    candidates: int = 64  # codes taken from the embedding search before re-ranking
    kinds: tuple[int, ...] = (DESCRIPTION, INCLUSION, PARENT, BARE)
    category_weight: float = 0.02  # weight of the other codes of a category (soft vote)
    temperature: float = 0.05
    general_bonus: float = 0.02  # added to each category's and subcategory's default code
    context_penalty: float = 0.06  # taken from a code whose description needs a context the mention lacks
    spelling: bool = True
    shorthand: bool = True


PLAIN = Ranking(candidates=5, kinds=(DESCRIPTION,), category_weight=0.0, general_bonus=0.0, context_penalty=0.0,
                spelling=False, shorthand=False)


# Descriptions that presuppose a context (pregnancy, a newborn, a procedure, a poisoning, a history...)
# and the words by which a mention supplies it; a candidate needing a context its mention lacks is pushed
# down by Ranking.context_penalty ("gonorrhea" is not "gonorrhea complicating childbirth").
CONTEXTS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = tuple(
    (re.compile(need, re.IGNORECASE), re.compile(give, re.IGNORECASE)) for need, give in (
        (r"\b(?:pregnan|childbirth|puerperium|gestation|trimester|obstetric|maternal|postpartum|antepartum|delivery)",
         r"pregnan|gestation|obstet|partum|puerper|trimester|labou?r\b|deliver|childbirth|eclampsia|ectopic|miscarriage|abortion|hyperemesis|placent|fetal|fetus"),
        (r"\b(?:newborn|neonatal|perinatal|fetus|fetal)\b", r"newborn|neonat|perinat|fetal|fetus|infant|baby"),
        (r"\b(?:postprocedural|postoperative|intraoperative|following (?:a )?procedure)|\bcomplication of\b",
         r"post-?op|procedur|surg|operat|device|implant|graft|catheter|prosthe|stent|shunt|transplant"),
        (r"\bsubsequent\b", r"subsequent|recurren|re-?infarct"),
        (r"\b(?:underdosing|poisoning|adverse effect|toxic effect)\b",
         r"overdose|poison|toxic|adverse|underdos|ingest|intoxic|side effect|reaction|exposure"),
        (r"^(?:personal |family )?history\b|\bhistory of\b", r"histor|\bh/o\b|\bhx\b|s/p|status post|\bold\b|previous|prior"),
        (r"\bstatus\b(?! (?:asthmaticus|epilepticus|migrainosus|cataplecticus))",
         r"status|asymptomatic|carrier|s/p|histor"),
        (r"^encounter for|\bscreening\b", r"encounter|screen|visit|exam|vaccin|counsel|follow"),
        (r"\bsecondary\b", r"secondary|metasta|\bmets\b|spread|due to|induced|caused"),
        (r"(?<!non)traumatic\b", r"trauma|injur|\bfall|accident|fracture|wound|blow|hit\b"),
    )
)


def context_needs(description: str) -> int:
    """Bit i set: the description needs context i of CONTEXTS."""
    return sum(1 << i for i, (need, _) in enumerate(CONTEXTS) if need.search(description))


def context_gives(mention: str) -> int:
    return sum(1 << i for i, (_, give) in enumerate(CONTEXTS) if give.search(mention))


def rerank(
    scored: list[tuple[str, float]], general: set[str], ranking: Ranking, k: int,
    penalised: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[tuple[str, float]]:
    """Best-first (code, cosine) from the candidates of one mention.

    Each cosine is adjusted first: a category's or subcategory's default code ('unspecified', '.9') gains
    the general bonus, so a mention without specifics gets the unspecified code, and a `penalised` code
    (its description needs a context the mention lacks) loses the context penalty. A category scores its
    best adjusted cosine plus a soft vote of its other candidates (several near codes of one category are
    evidence for it even when a lone code of another scores a little higher). A code's final key is its
    category's score less its distance to the category's best, which puts each category's best code in
    category order and interleaves the runners-up. The scores returned are the plain cosines."""
    if not scored:
        return []
    by_cat: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for code, score in scored:
        adjusted = score + (ranking.general_bonus if code in general else 0.0)
        adjusted -= ranking.context_penalty if code in penalised else 0.0
        by_cat[code[:3]].append((code, score, adjusted))
    keyed: list[tuple[float, float, str]] = []
    for members in by_cat.values():
        best = max(a for _, _, a in members)
        vote = sum(math.exp((a - best) / ranking.temperature) for _, _, a in members) - 1.0
        cat_score = best + ranking.category_weight * math.log1p(vote)
        top_within = max(w for _, _, w in members)
        for code, score, within in members:
            keyed.append((cat_score - (top_within - within), score, code))
    keyed.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return [(code, score) for _, score, code in keyed[:k]]


# --- the coder -----------------------------------------------------------------------------------


_ENCOUNTER = (("sequela", "S"), ("subsequent encounter", "D"), ("follow-up", "D"), ("follow up", "D"))


def encounter_variant(code: str, mention: str, codes: dict[str, int]) -> str:
    """An initial-encounter code turned to its subsequent-encounter or sequela variant when the mention
    says so (those variants are not in the index)."""
    if len(code.replace(".", "")) != 7 or code[-1] not in "ABC":
        return code
    low = mention.lower()
    for word, letter in _ENCOUNTER:
        if word in low and code[:-1] + letter in codes:
            return code[:-1] + letter
    return code


# texts whose index search `Coder` keeps: an entry is a text's 64 candidate codes, about 5 KB
SEARCH_CACHE_SIZE = 4096


class Coder:
    """Encoder and index loaded once; `code` maps a batch of mentions in one forward pass."""

    def __init__(
        self, index: Index, encoder: Encoder, shorthand: Shorthand | None = None, ranking: Ranking = Ranking()
    ) -> None:
        self.index = index
        self.encoder = encoder
        self.shorthand = shorthand or default_shorthand()
        self.ranking = ranking
        self.code_pos = {c: i for i, c in enumerate(index.codes)}
        self.general = set(index.general)
        self.needs = {c: n for c, d in zip(index.codes, index.displays) if (n := context_needs(d))}
        self.speller = Speller(vocabulary_of(index.texts) | vocabulary_of(self.shorthand.abbreviations.values())
                               | vocabulary_of(self.shorthand.abbreviations))
        self._masks: dict[tuple[int, ...], torch.Tensor] = {}
        self._searched: OrderedDict[tuple[str, Ranking], dict[str, float]] = OrderedDict()  # read-only values
        self.name = "icd10cm-minilm"
        self.version = f"{index.package}+{index.encoder[:12]}"

    @classmethod
    def load(cls, folder: Path, device: str = "cpu", ranking: Ranking = Ranking()) -> Coder:
        """Encoder and the cached index in `folder` (Settings.icd10cm_index_dir); IndexMissing if not built."""
        path = index_path(folder, encoder_hash(encoder_dir()))
        if not path.exists():
            raise IndexMissing(f"no ICD-10-CM index at {path}: run `clinstream index icd10cm` (make setup does)")
        encoder = Encoder(device=device)
        return cls(load_index(path), encoder, ranking=ranking)

    def _mask(self, kinds: tuple[int, ...]) -> torch.Tensor:
        if kinds not in self._masks:
            mask = torch.zeros(len(self.index.kinds), dtype=torch.bool)
            for kind in kinds:
                mask |= self.index.kinds == kind
            self._masks[kinds] = mask
        return self._masks[kinds]

    def prepare(self, mention: str, ranking: Ranking) -> Expansion:
        expansion = self.shorthand.expand(mention) if ranking.shorthand else Expansion(squash(mention), None)
        if ranking.spelling and expansion.code is None:
            corrected = self.speller.text(expansion.text)
            if corrected != expansion.text:
                again = self.shorthand.expand(corrected) if ranking.shorthand else Expansion(corrected, None)
                expansion = Expansion(again.text, again.code)
        return expansion

    def code(self, mentions: Sequence[str], k: int = 5, ranking: Ranking | None = None) -> list[list[CodeMatch]]:
        ranking = ranking or self.ranking
        if not mentions:
            return []
        prepared = [self.prepare(m, ranking) for m in mentions]
        candidates = self._search(sorted({p.text for p in prepared}), ranking)
        # each mention ranked by the context its own words give (history, subsequent, pregnancy...): two mentions
        # that embed as one text ("recurrent episodes of inferior STEMI" and "inferior STEMI", the shorthand's
        # drop list taking "recurrent episodes of") rank alike only if their words do, so a mention's codes never
        # depend on the other mentions of its batch
        ranked_by: dict[tuple[str, int], list[tuple[str, float]]] = {}
        results = []
        for mention, prep in zip(mentions, prepared):
            key = (prep.text, context_gives(prep.text) | context_gives(mention))
            if key not in ranked_by:
                best = candidates[prep.text]
                penalised = {c for c in best if self.needs.get(c, 0) & ~key[1]}
                ranked_by[key] = rerank(list(best.items()), self.general, ranking, max(k, 1), penalised)
            ranked = ranked_by[key]
            matches: list[CodeMatch] = []
            if prep.code and prep.code in self.code_pos:
                matches.append(self._match(prep.code, 1.0))
            for code, score in ranked:
                code = encounter_variant(code, mention, self.code_pos)
                if all(m.code != code for m in matches):
                    matches.append(self._match(code, score))
            results.append(matches[:k])
        return results

    def _search(self, texts: list[str], ranking: Ranking) -> dict[str, dict[str, float]]:
        """Each text's best `ranking.candidates` codes with their cosines. A text searched before comes from the
        cache: a feed names the same problems again and again, and embedding a text and scanning the index for
        it (a pass over 130 MB) were three quarters of the coder's time."""
        found: dict[str, dict[str, float]] = {}
        missing = []
        for text in texts:
            hit = self._searched.get((text, ranking))
            if hit is None:
                missing.append(text)
            else:
                found[text] = hit
        if not missing:
            return found
        vectors = self.encoder.embed(missing)
        sims = vectors @ self.index.embeddings.T  # (texts, rows)
        mask = self._mask(ranking.kinds)
        sims[:, ~mask] = -2.0
        # enough rows to fill `candidates` distinct codes in all but odd cases
        top = torch.topk(sims, min(sims.shape[1], ranking.candidates * 8), dim=1)
        for row, text in enumerate(missing):
            best: dict[str, float] = {}
            for score, r in zip(top.values[row].tolist(), top.indices[row].tolist()):
                code = self.index.codes[int(self.index.row_code[r])]
                if code not in best:
                    best[code] = score
                    if len(best) >= ranking.candidates:
                        break
            found[text] = best
            self._searched[(text, ranking)] = best
            if len(self._searched) > SEARCH_CACHE_SIZE:
                self._searched.popitem(last=False)  # the oldest
        return found

    def clear_cache(self) -> None:
        """Forget the searched texts (timing a cold coder)."""
        self._searched.clear()

    def _match(self, code: str, score: float) -> CodeMatch:
        return CodeMatch(code=code, display=self.index.displays[self.code_pos[code]], score=round(float(score), 4))


def build(folder: Path, *, force: bool = False, batch_size: int = 256, log: Callable[[str], None] | None = None) -> Path:
    """Build the index for the installed package and encoder unless it is already cached."""
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    digest = encoder_hash(encoder_dir())
    path = index_path(folder, digest)
    if path.exists() and not force:
        say(f"icd10cm index: {path} is up to date")
        return path
    return build_index(path, Encoder(device="cpu"), digest, batch_size=batch_size, log=say)
