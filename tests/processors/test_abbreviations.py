"""Short forms a text defines take the long form's tag wherever the text uses them."""

from processors.abbreviations import Span, definitions, resolve


def spans_of(text, *phrases, label="Disease"):
    out = []
    for phrase in phrases:
        start = text.index(phrase)
        out.append(Span(start, start + len(phrase), label, 0.9))
    return out


def texts(text, spans):
    return [(text[s.start : s.end], s.label) for s in spans]


def test_a_defined_short_form_is_tagged_wherever_it_is_used():
    text = "Cisplatin caused acute renal failure (ARF) in 3 patients. ARF resolved; no ARF-related deaths."
    found = spans_of(text, "acute renal failure") + spans_of(text, "Cisplatin", label="Chemical")
    assert texts(text, resolve(text, found)) == [
        ("Cisplatin", "Chemical"), ("acute renal failure", "Disease"), ("ARF", "Disease"), ("ARF", "Disease"), ("ARF", "Disease")]
    added = [s for s in resolve(text, found) if text[s.start : s.end] == "ARF"]
    assert all(s.score == 0.9 for s in added), "a use takes the long form's score"
    assert {s.long_form for s in added} == {"acute renal failure"}, "and names the long form, which the coder codes"


def test_a_short_form_of_something_that_is_no_entity_is_untagged():
    """The tagger took PAN (Patient Advocacy Network) for a chemical: the long form says otherwise."""
    text = "The Patient Advocacy Network (PAN) met. PAN reviewed the cases."
    tagged = [Span(text.index("(PAN") + 1, text.index("(PAN") + 4, "Chemical", 0.6), Span(text.rindex("PAN"), text.rindex("PAN") + 3, "Chemical", 0.6)]
    assert resolve(text, tagged) == []


def test_what_is_not_a_short_form_changes_nothing():
    """Lower-case or one-capital parentheses are not short forms; a word containing the short form is not a use;
    a use already inside another entity is left to the tagger."""
    text = "Hypertension (mild) and ARFX; acute renal failure (ARF) and ARF nephropathy; dose (Mg) given."
    found = spans_of(text, "Hypertension", "acute renal failure", "ARF nephropathy")
    assert definitions(text, found) == {"ARF": found[1]}
    assert texts(text, resolve(text, found)) == [
        ("Hypertension", "Disease"), ("acute renal failure", "Disease"), ("ARF", "Disease"), ("ARF nephropathy", "Disease")]
    assert resolve("No abbreviations here.", []) == []


def test_short_forms_with_digits_and_hyphens():
    text = "5-fluorouracil (5-FU) was given; 5-FU toxicity was rare."
    found = spans_of(text, "5-fluorouracil", label="Chemical")
    assert texts(text, resolve(text, found)) == [("5-fluorouracil", "Chemical"), ("5-FU", "Chemical"), ("5-FU", "Chemical")]


def test_a_definition_may_go_on_with_a_dose_or_comment():
    text = "Rats received phenobarbital (PB: 15 mg per rat) or aspirin (ASA, 81 mg). PB and ASA were stopped."
    found = spans_of(text, "phenobarbital", "aspirin", label="Chemical")
    assert texts(text, resolve(text, found)) == [
        ("phenobarbital", "Chemical"), ("PB", "Chemical"), ("aspirin", "Chemical"), ("ASA", "Chemical"),
        ("PB", "Chemical"), ("ASA", "Chemical")]


def test_sentences_of_an_iob_file_share_the_definitions_of_the_sentences_before():
    from processors.ner_training import with_text_rules

    sentences = [["Acute", "renal", "failure", "(", "ARF", ")", "occurred", "."], ["ARF", "resolved", "."], ["No", "ARF", "."]]
    tags = [["B-Disease", "I-Disease", "I-Disease", "O", "O", "O", "O", "O"], ["O", "O", "O"], ["O", "O", "O"]]
    out = with_text_rules(sentences, tags, before=1, after=0)
    assert out[0][4] == "B-Disease" and out[1][0] == "B-Disease"
    assert out[2] == ["O", "O", "O"], "the definition is two sentences back, outside a window of one"
    assert with_text_rules(sentences, tags)[2][1] == "B-Disease"
