"""Phrase lists as one fast regex: the assertion lexicon (processors/assertion.py), the coder's shorthand layer and
the note lexicons NER reads (processors/icd10cm.py, processors/ner.py) match hundreds of phrases over every note."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator


def trie_regex(phrases: list[str]) -> re.Pattern[str]:
    """One regex for all phrases, lower-cased (match it against lower-cased text), factored as a character trie: Python's
    re tries a plain alternation of hundreds of phrases branch by branch at every position (milliseconds a sentence); a
    trie tries one. Longer phrases win (children before the end of a phrase); a space matches any run of whitespace."""
    trie: dict[str, dict] = {}
    for p in phrases:
        node = trie
        for ch in " ".join(p.lower().split()):
            node = node.setdefault(ch, {})
        node[""] = {}

    def body(node: dict[str, dict], last: str) -> str:
        alts = [(r"\s+" if ch == " " else re.escape(ch)) + body(child, ch) for ch, child in node.items() if ch]
        if "" in node:
            alts.append(r"(?!\w)" if last.isalnum() else "")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    words = [re.escape(ch) + body(child, ch) for ch, child in trie.items() if ch.isalnum()]
    others = [re.escape(ch) + body(child, ch) for ch, child in trie.items() if not ch.isalnum()]
    return re.compile("|".join([r"(?<!\w)(?:" + "|".join(words) + ")", *others]))  # one look-behind, not one a branch


def lower_keeping_offsets(text: str) -> str:
    """text.lower(), except the odd character whose lower case is longer ("İ"), kept as it is so offsets still agree."""
    lower = text.lower()
    return lower if len(lower) == len(text) else "".join(c if len(c.lower()) > 1 else c.lower() for c in text)


class Lexicon:
    """Terms found in text under the clinical lexicons' case rule: a term written with capitals matches only as written
    ("PE", "AS" and "MS" collide with English words), a lower-case one in any case; a space matches any run of
    whitespace. One trie regex over the lower-cased text, the case rule checked after: a plain alternation of 450
    terms took 0.7 ms a coder mention, of 150 terms 2 ms a note."""

    def __init__(self, terms: Iterable[str]) -> None:
        terms = list(terms)
        self._exact = {spaced(t) for t in terms if t != t.lower()}
        self._folded = {spaced(t) for t in terms if t == t.lower()}
        self._regex = trie_regex(terms) if terms else None

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """(start, end, term) of each use, left to right, the longest term first at a place; `term` as the lexicon has
        it (whitespace single), lower-cased for a lower-case term."""
        if self._regex is None:
            return
        lower = lower_keeping_offsets(text)
        pos = 0
        while (m := self._regex.search(lower, pos)) is not None:
            start, end = m.span()
            written, any_case = spaced(text[start:end]), spaced(m.group())
            if written in self._exact or any_case in self._folded:
                yield start, end, written if written in self._exact else any_case
                pos = end
            else:  # capitals not as written: a term may still start inside it
                pos = start + 1


def spaced(term: str) -> str:
    return " ".join(term.split())
