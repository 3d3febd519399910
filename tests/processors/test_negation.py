"""Negation triggers, pseudo-triggers and scope terminators."""

import pytest

from processors.negation import is_negated


def negated(sentence: str, mention: str) -> bool:
    start = sentence.lower().index(mention.lower())
    return is_negated(sentence, start, start + len(mention))


@pytest.mark.parametrize("sentence,mention", [
    ("Patient denies chest pain.", "chest pain"),
    ("No evidence of sepsis.", "sepsis"),
    ("Negative for pulmonary embolism on CTA.", "pulmonary embolism"),
    ("No signs of stroke on exam.", "stroke"),
    ("He was seen without fever or chills.", "fever"),
    ("Pulmonary embolism was ruled out.", "Pulmonary embolism"),
    ("Free of seizures since March.", "seizures"),
])
def test_negated(sentence, mention):
    """Pre- and post-negation triggers negate the mention in their sentence."""
    assert negated(sentence, mention)


@pytest.mark.parametrize("sentence,mention", [
    ("Assessment: sepsis secondary to pneumonia.", "sepsis"),
    ("Findings consistent with acute myocardial infarction.", "myocardial infarction"),
    ("No fever. Now septic shock requiring pressors.", "septic shock"),
    ("Denies cough but reports chest pain.", "chest pain"),
    ("Not only hypotension but also sepsis.", "hypotension"),
    ("No increase in stroke symptoms overnight compared with admission.", "stroke"),
    ("Concern for pulmonary embolism.", "pulmonary embolism"),
])
def test_not_negated(sentence, mention):
    """Sentence ends, terminators and pseudo-triggers keep the mention un-negated."""
    assert not negated(sentence, mention)


def test_line_wrap_does_not_end_the_scope():
    """An HL7 line wrap (single newline) inside a sentence keeps the negation; a blank line ends it."""
    assert negated("No evidence of\nsepsis.", "sepsis")
    assert not negated("No fever\n\nSepsis suspected.", "Sepsis")
