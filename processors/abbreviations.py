"""Abbreviations a text defines for itself: "acute renal failure (ARF)", "5-fluorouracil (5-FU)".

Biomedical and clinical writers define a short form once, in parentheses after the long form, then use it.
The tagger reads "ARF" three sentences later with no clue that it stands for a disease (the encoder is
uncased: "PAN" is "pan"), and misses it or tags it inconsistently. Here the long form decides for every use
of its short form in the same text: if the tagger found the long form as an entity, each use of the short
form is that entity too; if the long form is not an entity, a use of the short form tagged on its own is
dropped. Published BC5CDR systems do the same with Ab3P; this is the simple form of it (the long form is the
entity that ends right before the parenthesis, so no letter matching is needed).

Pure: text and spans in, spans out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

# a short form: 2-10 letters, digits and hyphens with at least two capitals ("ARF", "5-FU", "NaCl", "PTH"),
# alone in its parentheses or first before a dose or comment: "phenobarbital (PB: 15 mg/kg)", "(ASA, 81 mg)"
_DEFINITION = re.compile(r"\(\s*([A-Za-z0-9][A-Za-z0-9-]{1,9})\s*[),;:]")
_TWO_CAPITALS = re.compile(r"[A-Z].*[A-Z]")


class Span(NamedTuple):
    start: int
    end: int
    label: str
    score: float
    long_form: str | None = None  # for a use of a defined short form: the text of its long form


def _definitions(text: str) -> Iterator[re.Match[str]]:
    """Each "(SF)" of the text whose SF is a short form."""
    return (m for m in _DEFINITION.finditer(text) if _TWO_CAPITALS.search(m.group(1)))


def short_forms(text: str) -> set[str]:
    """The short forms the text defines, whatever their long forms are."""
    return {m.group(1) for m in _definitions(text)}


def definitions(text: str, spans: Sequence[Span]) -> dict[str, Span | None]:
    """Short form -> the entity span just before its parenthesis (None when the long form is no entity).
    The first definition of a short form counts."""
    ends = {s.end: s for s in spans}
    found: dict[str, Span | None] = {}
    for m in _definitions(text):
        found.setdefault(m.group(1), ends.get(len(text[: m.start()].rstrip())))
    return found


def resolve(text: str, spans: Sequence[Span]) -> list[Span]:
    """The spans with every use of a defined short form made to agree with its long form (and carrying the
    long form's text), sorted by start."""
    defined = definitions(text, spans)
    if not defined:
        return sorted(spans)
    kept = list(spans)
    for short, long_form in defined.items():
        for m in re.finditer(rf"(?<![A-Za-z0-9]){re.escape(short)}(?![A-Za-z0-9])", text):
            start, end = m.span()
            exact = next((s for s in kept if (s.start, s.end) == (start, end)), None)
            overlapping = any(s.start < end and start < s.end for s in kept)
            if long_form is None:
                if exact is not None:
                    kept.remove(exact)
            elif exact is not None:
                kept[kept.index(exact)] = exact._replace(long_form=text[long_form.start : long_form.end])
            elif not overlapping:
                kept.append(Span(start, end, long_form.label, long_form.score, text[long_form.start : long_form.end]))
    return sorted(kept)
