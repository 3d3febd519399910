"""The uses of an entity string in one text vote: all of them tagged, or none."""

from processors.abbreviations import Span
from processors.consistency import consistent


def at(text, phrase, label="Disease", nth=0, score=0.9):
    start = -1
    for _ in range(nth + 1):
        start = text.index(phrase, start + 1)
    return Span(start, start + len(phrase), label, score)


def texts(text, spans):
    return [(text[s.start : s.end], s.start, s.label) for s in spans]


def test_a_use_the_tagger_missed_is_tagged_when_most_uses_are():
    text = "Nephrotoxicity was seen. Nephrotoxicity resolved. Late nephrotoxicity was rare."
    found = [at(text, "Nephrotoxicity", nth=0, score=0.8), at(text, "Nephrotoxicity", nth=1, score=0.9)]
    out = consistent(text, found)
    assert [t for t, _, _ in texts(text, out)] == ["Nephrotoxicity", "Nephrotoxicity", "nephrotoxicity"]
    assert out[2].label == "Disease" and out[2].score == 0.85, "the label and mean score of the tagged uses"


def test_a_use_tagged_alone_is_dropped_when_most_uses_are_untagged():
    text = "NAG was measured. NAG rose. Urinary NAG fell."
    assert consistent(text, [at(text, "NAG", "Chemical", nth=1)]) == []


def test_a_tie_changes_nothing():
    text = "Seizures occurred once; no seizures later."
    found = [at(text, "Seizures")]
    assert consistent(text, found) == found


def test_words_inside_other_words_are_no_uses():
    text = "NAG rose; NAGase did not; NAG fell; serum NAG was normal."
    found = [at(text, "NAG", "Chemical"), at(text, "NAG", "Chemical", nth=2)]
    out = consistent(text, found)
    assert [start for _, start, _ in texts(text, out)] == [0, text.index("NAG fell"), text.index("NAG was")]


def test_a_use_inside_a_longer_entity_neither_votes_nor_changes():
    text = "Renal failure developed. Acute renal failure followed. Renal failure persisted."
    found = [at(text, "Renal failure"), at(text, "Acute renal failure"), at(text, "Renal failure", nth=1)]
    assert consistent(text, found) == sorted(found)
    alone = [at(text, "Acute renal failure")]
    assert consistent(text, alone) == alone, "the two bare uses do not vote against the longer string"


def test_shorter_entities_inside_a_use_give_way_to_the_whole_string_when_it_wins():
    text = ("Sphincter of Oddi dyskinesia was suspected. Sphincter of Oddi dyskinesia was confirmed. "
            "Treatment of sphincter of Oddi dyskinesia followed.")
    found = [at(text, "Sphincter of Oddi dyskinesia"), at(text, "Sphincter of Oddi dyskinesia", nth=1),
             at(text, "Oddi dyskinesia", nth=2)]
    out = consistent(text, found)
    assert [t.lower() for t, _, _ in texts(text, out)] == ["sphincter of oddi dyskinesia"] * 3


def test_the_label_most_tagged_uses_carry_is_given_and_case_is_ignored():
    text = "Lithium given. LITHIUM levels. lithium toxicity. Lithium stopped."
    found = [at(text, "Lithium", "Chemical"), at(text, "LITHIUM", "Chemical"), at(text, "Lithium", "Disease", nth=1)]
    out = consistent(text, found)
    assert [(t, label) for t, _, label in texts(text, out)] == [
        ("Lithium", "Chemical"), ("LITHIUM", "Chemical"), ("lithium", "Chemical"), ("Lithium", "Chemical")]


def test_a_split_vote_on_the_label_keeps_each_use_its_own():
    text = "Lithium given. LITHIUM levels. Lithium stopped."
    found = [at(text, "Lithium", "Chemical"), at(text, "LITHIUM", "Disease")]
    out = consistent(text, found)
    assert [label for _, _, label in texts(text, out)] == ["Chemical", "Disease", "Chemical"]


def test_no_spans_no_change():
    assert consistent("Nothing tagged here.", []) == []
