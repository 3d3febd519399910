"""Phrase lists as one fast regex: the assertion lexicon (processors/assertion.py) and the clinical problem
abbreviations (processors/icd10cm.py) match hundreds of phrases over every note."""

from __future__ import annotations

import re


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
