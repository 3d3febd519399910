"""Is a mention negated? ConText-style triggers with a scope that ends at the sentence or a terminator.

Deliberately small: pre-negation triggers ("no", "denies", "negative for"...), post-negation triggers
("... was ruled out"), pseudo-triggers that look like negation but are not ("not only", "no increase"),
and scope terminators ("but", "however"). Issue 4 widens it to full assertion status.
"""

from __future__ import annotations

import re

PRE_TRIGGERS = [
    "no", "not", "denies", "denied", "denying", "without", "negative for", "no evidence of", "no signs of",
    "no sign of", "free of", "absence of", "ruled out", "rules out", "rule out for", "never had", "no history of",
    "resolved", "nor",
]
POST_TRIGGERS = ["was ruled out", "were ruled out", "is ruled out", "has been ruled out", "unlikely", "was negative", "is absent"]
PSEUDO_TRIGGERS = [
    "not only", "no increase", "no change", "not certain", "not necessarily", "no further", "gram negative",
    "no significant change", "not ruled out", "without difficulty",
]
TERMINATORS = ["but", "however", "although", "though", "except", "apart from", "aside from", "which", "secondary to", "due to", "presents with", "presenting with"]

# a single newline is usually an HL7 line wrap inside a sentence; a blank line ends one
_SENTENCE_END = re.compile(r"[.!?;:]|\n\s*\n")


def _phrases(words: list[str]) -> re.Pattern[str]:
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in ordered) + r")\b", re.IGNORECASE)


_PRE, _POST, _PSEUDO, _TERM = (_phrases(w) for w in (PRE_TRIGGERS, POST_TRIGGERS, PSEUDO_TRIGGERS, TERMINATORS))


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    right_match = _SENTENCE_END.search(text, end)
    return left, right_match.start() if right_match else len(text)


def _masked(segment: str) -> str:
    """Blank out pseudo-triggers so "not only" never reads as "not"."""
    return _PSEUDO.sub(lambda m: " " * len(m.group()), segment)


def is_negated(text: str, start: int, end: int) -> bool:
    left, right = _sentence_bounds(text, start, end)
    before = _masked(text[left:start])
    # scope of a pre-trigger runs from the trigger to the mention unless a terminator intervenes
    last_trigger = None
    for m in _PRE.finditer(before):
        last_trigger = m
    if last_trigger is not None and not _TERM.search(before, last_trigger.end()):
        return True
    after = _masked(text[end:right])
    post = _POST.search(after)
    return bool(post and not _TERM.search(after, 0, post.start()))
