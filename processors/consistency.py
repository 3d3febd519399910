"""One text names one thing one way: each entity string is tagged at all of its uses in a text, or at none.

The tagger reads each use of "nephrotoxicity" or "NAG" in its own sentence and now and then disagrees with
itself: it tags three uses and misses the fourth, tags once what it leaves alone everywhere else in the note,
or tags "Oddi dyskinesia" inside one use of "sphincter of Oddi dyskinesia" after tagging the whole name twice.
Here the uses of each entity string vote, longest strings first:
- a use tagged with exactly the string's span votes for it; a use with nothing tagged on it votes against;
- where the tagged uses win, the untagged uses are tagged too, and so is each use that only has shorter
  entities inside it (they give way to the whole string); all take the label most tagged uses carry (a
  tagged use with another label is relabelled when that label holds more than half of them);
- where the untagged uses win, the tagged ones are dropped; a tie changes nothing.
A use with an entity reaching beyond it ("renal failure" in "acute renal failure") neither votes nor changes.
Matching ignores case (the tagger is uncased) and needs word boundaries.

Pure: text and spans in, spans out. Runs after abbreviations.resolve, so a defined short form votes as the
entity its long form made it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from processors.abbreviations import Span


def consistent(text: str, spans: Sequence[Span]) -> list[Span]:
    """The spans after each entity string's uses in `text` have voted, sorted by start."""
    lowered = text.lower()
    strings = sorted({lowered[s.start : s.end] for s in spans}, key=len, reverse=True)
    current = list(spans)
    for string in strings:
        tagged = [s for s in current if lowered[s.start : s.end] == string]
        if not tagged:
            continue  # its uses were all taken by a longer string
        if lowered.count(string) == len(tagged) and len({s.label for s in tagged}) == 1:
            continue  # no use of it but the tagged ones, all agreeing (most strings of a note: no regex needed)
        free: list[tuple[int, int]] = []
        inner: list[tuple[int, int, list[Span]]] = []
        for m in re.finditer(rf"(?<![a-z0-9]){re.escape(string)}(?![a-z0-9])", lowered):
            start, end = m.span()
            overlapping = [s for s in current if s.start < end and start < s.end]
            if not overlapping:
                free.append((start, end))
            elif all(start <= s.start and s.end <= end for s in overlapping) and not any(
                (s.start, s.end) == (start, end) for s in overlapping
            ):
                inner.append((start, end, overlapping))
        if len(tagged) > len(free):
            label = Counter(s.label for s in tagged).most_common(1)[0][0]
            like = [s for s in tagged if s.label == label]
            score = round(sum(s.score for s in like) / len(like), 4)
            for start, end, overlapping in inner:
                current = [s for s in current if s not in overlapping]
            if len(like) * 2 > len(tagged):  # most tagged uses agree on the label: the others take it
                current = [s._replace(label=label) if s in tagged else s for s in current]
            current.extend(Span(start, end, label, score, like[0].long_form) for start, end in free)
            current.extend(Span(start, end, label, score, like[0].long_form) for start, end, _ in inner)
        elif len(free) > len(tagged):
            current = [s for s in current if s not in tagged]
    return sorted(current)
