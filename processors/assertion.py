"""Assertion status of a mention (present, negated, possible, historical, family, hypothetical) by ConText
(Harkema et al. 2009): trigger phrases with a direction, scopes cut by sentence ends, terminators and other
triggers, pseudo-triggers, section headers.
Hand-written, not medspacy: medspacy 1.3.1 pulls spaCy, PyRuSH and QuickUMLS for what is ~200 lines of regex here.

Rules (the tables below are plain data a site can read and extend):
- A forward trigger covers what follows it, a backward one what precedes it, a bidirectional one both; a forward
  trigger that closes its clause (only punctuation, a terminator or the sentence end follows) looks backward
  instead: "suspected sepsis" / "sepsis suspected.", "?PE" / "PE?"; a backward trigger that opens its sentence looks
  forward, over a list as a label ("Negative: fever, hemoptysis"), else over its own item ("Ruled out PE and MI").
  A modifier trigger covers only the mention right before it, with only spaces between: "stroke prophylaxis",
  "seizure precautions" (reaching further back, "sepsis, started on vancomycin and GI prophylaxis" would hide the
  sepsis), and a premodifier the one right after it ("code stroke").
- A scope stops at the sentence end, at a terminator (of every category or of the trigger's), at a trigger of
  another category (unless the two are adjacent, as in "denies any family history of"), after MAX_SCOPE_TOKENS
  words, and short of a list item that goes on with a trigger of another category after its mention ("EKG without
  ischemic changes, chest pain likely MSK": the pain is seen). Pseudo-triggers match first and mean nothing ("gram negative", "no change").
- Sentences end at a blank line, ". ", "!", "?" or ";" and at a section header; a single newline (an HL7 line wrap)
  does not end one. A PMH / family history header makes every mention up to the next header (or blank line)
  historical / family.
- A problem named with the treatment it is on ("ESRD on HD", ONGOING_TREATMENT) is no history.
- Several categories: PRECEDENCE picks; negated first ("no family history of X" is negated), then family,
  hypothetical, historical (a past "possible MI" is history; "MI, now resolved" is historical), possible.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import NamedTuple

from clinstream.envelope import Assertion
from processors.phrases import lower_keeping_offsets, trie_regex

MAX_SCOPE_TOKENS = 15  # long enough for a review-of-systems list, short enough to stop a runaway scope
PRECEDENCE: list[Assertion] = ["negated", "family", "hypothetical", "historical", "possible"]

_MEMBERS = ["mother", "father", "sister", "brother", "sibling", "siblings", "aunt", "uncle", "grandmother",
            "grandfather", "grandparent", "grandparents", "cousin", "son", "daughter", "parent", "parents", "mom",
            "dad", "maternal", "paternal", "family member", "family members", "relative", "relatives",
            # not kin, but ConText's other experiencer all the same: "wife had a stroke last year" is not the patient's
            "wife", "husband", "spouse"]
# a relative who brings the patient or speaks for them names no relative's problem: "brought in by daughter for confusion"
_ESCORTS = [f"{verb} {det}{m}" for verb in ("brought in by", "brought by", "accompanied by", "found by", "per")
            for det in ("", "his ", "her ", "their ", "the ", "patient's ", "pt's ") for m in _MEMBERS]

# category -> direction -> phrases (case-insensitive; a space also matches a line wrap)
TRIGGERS: dict[Assertion, dict[str, list[str]]] = {
    "negated": {
        "forward": ["no", "not", "denies", "denied", "deny", "denying", "without", "w/o", "negative for", "neg for",
                    "no evidence of", "no evidence for", "no signs of", "no sign of", "no symptoms of", "free of",
                    "absence of", "never had", "never", "no history of", "no family history of", "no known", "no hx of",
                    "no h/o", "lack of", "lacks", "fails to reveal", "failed to reveal", "ruled out for", "rules out",
                    "clear of", "unremarkable for", "nor", "neither", "none", "doesn't", "didn't", "don't", "isn't",
                    "wasn't", "hasn't", "unlikely to be", "unlikely to have", "less likely", "not likely", "doubt", "doubt of",
                    # "was ruled out for MI": the whole phrase, before "was ruled out" claims it and looks back at nothing
                    "was ruled out for", "were ruled out for", "is ruled out for", "has been ruled out for",
                    # a low suspicion is a clinician's no ("low suspicion for PE given Wells 0"), as "unlikely" is
                    "low suspicion for", "low suspicion of", "low clinical suspicion for", "low index of suspicion for",
                    "low concern for", "low likelihood of", "low probability of", "low probability for",
                    "low pretest probability for", "low pretest probability of",
                    # a review of systems' signs: "(-) CP, (+) SOB"
                    "(-)", "(neg)"],
        "backward": ["ruled out", "ruled-out", "was ruled out", "was ruled-out", "were ruled out", "is ruled out", "has been ruled out",
                     "have been ruled out", "excluded", "was excluded", "has been excluded", "unlikely", "negative",
                     "was negative", "were negative", "came back negative", "doubtful", "absent", "not seen", "not present",
                     "no longer present", "not identified", "not demonstrated", "not suspected", "is not suspected",
                     "was not suspected"],
    },
    "possible": {
        "forward": ["rule out", "rule-out", "to rule out", "to rule-out", "r/o", "rule the patient out for", "possible", "possibly", "probable",
                    "probably", "likely", "most likely", "suspected", "suspect", "suspects", "suspicious for", "suspicion of",
                    "suspicion for", "concern for", "c/f", "concerning for", "concerned about", "concerned for",
                    "worrisome for", "worried about", "question of", "questionable", "query", "?", "may be",
                    "may have", "might be", "might have", "could be", "could have", "cannot exclude",
                    "cannot rule out", "not rule out", "differential includes", "differential diagnosis includes",
                    "ddx", "suggestive of", "evaluate for", "evaluation for", "evaluated for", "being evaluated for",
                    "eval for", "workup for", "work up for",
                    "assess for", "to exclude", "presumed", "presumptive", "equivocal for", "not certain",
                    "uncertain", "unclear if", "unclear whether", "not clear if", "not clear whether", "not sure if"],
        # "not ruled out" also shadows the negation "ruled out": the pseudo-trigger of the issue, with a meaning
        "backward": ["not ruled out", "not been ruled out", "cannot be ruled out", "not be ruled out",
                     "to be ruled out", "cannot be excluded", "not be excluded", "not excluded", "may be present",
                     "might be present", "could be present", "is possible", "is suspected", "is questionable",
                     "is a possibility", "remains possible", "was considered", "were considered", "is being considered",
                     "also considered"],
        "bidirectional": ["vs", "versus"],
        # an activation called for a suspected emergency: "code stroke", "STEMI alert", "sepsis protocol initiated",
        # "stroke team at bedside"; the search for one: "sepsis workup", "ACS pathway" (the stroke is not yet seen; the
        # names of these raised the sepsis, stroke and ACS flags before)
        "premodifier": ["code"],
        "modifier": ["alert", "protocol", "bundle", "order set", "team", "workup", "work-up", "w/u", "pathway"],
    },
    "historical": {
        "forward": ["history of", "hx of", "hx", "h/o", "pmh", "pmhx", "psh", "pmh of", "past history of",
                    "past medical history of", "past medical history", "past surgical history", "s/p",
                    "status post", "prior", "previous", "previously", "remote", "old", "resolution of",
                    "recovered from", "was treated for", "history significant for", "history notable for",
                    "history remarkable for", "hx significant for", "hx notable for", "pmh significant for", "pmh notable for",
                    "pmh remarkable for",
                    # an allergy named inline, as in an allergy list (LINE_SECTIONS): the drug and its reaction are past
                    "allergic to", "allergy to", "allergies to"],
        # "ago" only with an interval of two weeks or more (_LONG_AGO)
        "backward": ["in the past", "last year", "last month", "last admission", "prior admission", "previous admission",
                     "last hospitalization", "prior hospitalization", "previous hospitalization", "resolved", "now resolved", "has resolved",
                     "since resolved", "in remission", "in early remission", "in sustained remission",
                     # a cured or treated disease is a history: "Hep C treated, cured"; "breast cancer s/p mastectomy, no
                     # evidence of recurrence" (the whole phrase, before "no evidence of" negates the recurrence only)
                     "cured", "now cured", "successfully treated", "no evidence of recurrence", "no evidence of recurrent disease",
                     "no evidence of disease", "without recurrence",
                     # a hepatitis C cured by antivirals: "Hep C s/p treatment, SVR achieved" (sustained virologic response)
                     "s/p treatment", "status post treatment", "s/p antiviral treatment", "s/p antiviral therapy",
                     "svr achieved", "achieved svr", "with svr"],
    },
    "family": {
        "forward": ["family history of", "family history", "family hx of", "fhx", "fhx of", "fh of", *_MEMBERS],
        "backward": ["in the family", "runs in the family",
                     *(f"in {det}{m}" for det in ("", "his ", "her ", "a ", "the ", "patient's ") for m in _MEMBERS)],
    },
    "hypothetical": {
        "forward": ["if", "in case of", "in case", "in the event of", "should he", "should she", "should the patient",
                    "should there be", "should they", "should symptoms", "return for", "come back for", "call for",
                    "call 911 for", "call 911 if", "call your doctor for", "call your doctor if",
                    "as needed for", "prn", "at risk for", "at risk of", "at high risk for", "at high risk of",
                    "at increased risk for", "at increased risk of", "high risk for", "high risk of", "risk of", "risks of", "to prevent",
                    "prevention of", "monitor for", "monitoring for", "monitored for", "monitor closely for", "observe for",
                    "observing for", "observation for", "watch for", "warning signs of", "unless",
                    # "neuro checks q4h for stroke": the checks look for a stroke, they do not find one
                    "neuro checks", "neuro check", "neurochecks",
                    "prophylaxis for", "prophylaxis against", "screening for", "screen for", "precautions for",
                    # discharge teaching: "return precautions given for chest pain or signs of stroke"
                    "precautions given for", "precautions reviewed for", "precautions discussed for", "precautions provided for",
                    "return to the ed for", "return to ed for", "return to the er for", "return to er for",
                    # teaching about a problem: "counseled on signs of stroke"
                    "counseled on", "counseled about", "counselled on", "counseling on", "counseling about",
                    "educated on", "educated about", "education on", "education about", "educated regarding"],
        "modifier": ["prophylaxis", "ppx", "prophylactic", "prevention", "screening", "screen", "precautions", "risk",
                     "education", "teaching",
                     "risk factors", "risk assessment", "risk reduction"],
    },
}
PSEUDO_TRIGGERS = [
    "not only", "no increase", "no change", "no significant change", "no interval change", "not necessarily",
    "no further", "gram negative", "gram-negative", "without difficulty", "not cause", "not drain", "not extend",
    "history and physical", "history of present illness", "history taken", "social history", "family practice",
    "family medicine", "family physician", "family meeting", "prior to", "year old", "years old", "month old",
    "week old", "day old", "if needed", "if necessary", "if any", "no doubt", "without doubt", "without a doubt",
    # a choice against nothing: "discussed risk of stroke with anticoagulation vs none" (the "none" closing its clause
    # negated the stroke)
    "vs none", "versus none", "or none",
    # a fluid balance ("diuresed with IV furosemide, net negative 6 L" negated the furosemide)
    "net negative", "net neg", "net positive", "net even",
    # an order to go on: "do not stop ticagrelor without talking to cardiology"
    "do not stop", "don't stop", "do not discontinue",
    # an injury's mechanism, hours old: "s/p MVC with traumatic SAH" (the SAH is today's, not a history)
    *(f"{sp} {event}" for sp in ("s/p", "status post") for event in (
        "mvc", "mva", "fall", "mechanical fall", "ground level fall", "glf", "assault", "gsw", "trauma", "motorcycle crash",
        "motorcycle accident", "bicycle accident", "pedestrian struck", "ped struck")),
    *_ESCORTS,
]
# dosing conditionals: they qualify one item of a medication list ("NTG SL prn, KCl 20 mEq", "Zofran prn N/V, Lasix"),
# so a comma or semicolon ends their scope either way (a negation closing a list covers all of it: "cough, fever: denies");
# "status post", which dates the one procedure or event it names ("POD#2 s/p lap chole, mild incisional pain": the
# pain is today's; "h/o HTN, DM, CKD" is a history of all three); and "vs", which weighs the two things beside it
# ("Hypotensive, started NE, concern for septic vs cardiogenic shock": the hypotension is seen)
ITEM_SCOPED = {"prn", "as needed for", "s/p", "status post", "vs", "versus"}
CAUSAL = {"secondary to", "due to"}  # terminators that open a cause (see _opens_its_cause)
# None: ends every scope; a category: ends only that category's scopes
TERMINATORS: dict[Assertion | None, list[str]] = {
    None: ["but", "however", "although", "though", "except", "except for", "apart from", "aside from",
           "other than", "with the exception of", "which", "secondary to", "due to", "presents with",
           "presenting with", "presented with", "p/w", "presents w/", "presenting w/", "presented w/", "presents for",
           "presenting for", "presented for", "presents to", "presented to", "cause of", "cause for", "source of", "source for", "etiology of",
           "yet", "still"],
    "negated": ["reports", "reported", "endorses", "complains of", "c/o", "positive for", "admits", "notes", "who", "(+)", "(pos)",
                # a new verb of having ends a denial: "denies chest pain and has pneumonia" (a bare "and" does not:
                # "denies chest pain and dyspnea")
                "and has", "and is having", "and does have", "and now has"],
    # a past event's deficits are today's: "h/o stroke 3 months ago with residual left weakness"
    "historical": ["now", "currently", "today", "this admission", "admitted with", "admitted for", "new", "new onset",
                   "comes in with", "came in with", "started on", "residual", "with residual"],
    "family": ["patient", "pt", "reports", "reported", "states", "stated", "says", "notes", "noted", "per"],
    "possible": ["given"],
    "hypothetical": ["because", "since", "given"],
}
# A chronic problem named with the treatment it is on is current, whatever history lists it: "h/o ESRD on HD", "hx of
# DM2 on insulin", "PMH: COPD on home O2". Treatments only, no drug names: "h/o MI on aspirin" is a past MI.
ONGOING_TREATMENT = re.compile(
    r"[ \t]+on[ \t]+(?:\d+(?:\.\d+)?[ \t]*(?:L|LPM|L/min|liters?)[ \t]+)?"  # "COPD on 2L home O2"
    r"(?:(?:chronic|home|nightly|intermittent|maintenance|long-term|lifelong)[ \t]+)?"
    r"(?:HD|hemodialysis|dialysis|PD|peritoneal[ \t]+dialysis|O2|oxygen|NC|nasal[ \t]+cannula|CPAP|BiPAP|insulin|anticoagulation|AC|"
    r"chemo|chemotherapy|immunotherapy|ART|HAART|antiretrovirals?|TPN|tube[ \t]+feeds?)(?!\w)", re.IGNORECASE)
# an allergy list names drugs once given and the reactions they caused then ("Allergies: penicillin (rash)": no rash
# today, no penicillin either); the list is one line, and the next line is today's note again
LINE_SECTIONS = frozenset({"allergies", "allergy", "drug allergies", "adverse reactions"})
# header (before its colon) -> the category of every mention in its section, None for a plain section
SECTION_HEADERS: dict[str, Assertion | None] = {
    "pmh": "historical", "pmhx": "historical", "past medical history": "historical", "past history": "historical",
    "medical history": "historical", "psh": "historical", "past surgical history": "historical",
    "surgical history": "historical", "family history": "family", "fhx": "family", "fh": "family",
    "family hx": "family", **dict.fromkeys([
        "assessment", "assessment and plan", "a/p", "plan", "impression", "diagnosis", "diagnoses", "hpi",
        "history of present illness", "chief complaint", "cc", "ros", "review of systems", "exam", "physical exam",
        "examination", "labs", "imaging", "medications", "meds", "social history", "hospital course",
        "subjective", "objective", "findings", "conclusion", "results", "interval history",
        # the headers that follow a history in an H&P end it ("FHx: father with MI\nSHx: former smoker" made the
        # smoking a relative's; "ECG: ST elevations" would have been one too)
        "shx", "sh", "social hx", "soc hx", "pe", "vitals", "vs", "home meds", "home medications", "code status",
        "disposition", "dispo", "ecg", "ekg", "cxr", "ct", "cta", "mri", "echo", "tte", "ua"]),
    **dict.fromkeys(LINE_SECTIONS, "historical"),
}
ABBREVIATIONS = ["vs", "dr", "mr", "mrs", "ms", "st", "e.g", "i.e", "approx", "c"]  # a period after these ends nothing ("C. diff")


class _Rule(NamedTuple):
    kind: str  # "trigger" | "terminator" | "pseudo"
    category: Assertion | None  # a trigger's
    direction: str  # a trigger's
    ends: frozenset[Assertion | None] = frozenset()  # a terminator's: the categories whose scopes it ends, None: all
    item: bool = False  # a trigger's scope is its own list item (ITEM_SCOPED)
    causal: bool = False  # a terminator that opens a cause (CAUSAL)


# phrase -> rule; the longest phrase at a position wins, as in ConText's lexicon matching
_RULES: dict[str, _Rule] = {p: _Rule("pseudo", None, "") for p in PSEUDO_TRIGGERS}
_RULES.update({p: _Rule("terminator", None, "", frozenset(c for c, ps in TERMINATORS.items() if p in ps), causal=p in CAUSAL)
               for ps in TERMINATORS.values() for p in ps})
_RULES.update({p: _Rule("trigger", c, d, item=p in ITEM_SCOPED) for c, ds in TRIGGERS.items() for d, ps in ds.items() for p in ps})
_PHRASES = trie_regex(list(_RULES))
# "MI in 2015", "in 2019 she had a stroke": a year names the past (notes do not date today's problems by its year). It
# looks back, and forward only from the start of its sentence ("MI in 2015 and has hypertension": the hypertension is now)
_YEAR = re.compile(r"\b(?:in|during)\s+(?:19|20)\d\d\b")
# ConText's temporality rule: a problem more than two weeks old is historical. "Fever began 3 days ago" is today's
# fever; "stroke 5 years ago", "MI two months ago" are history. Like a year, it looks back, and forward from the start
# of its sentence ("Two years ago she had a GI bleed").
_NUMBER = r"(?:\d+(?:\.\d+)?|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|many|few|a few|couple|a couple of)"
# an onset dates a problem that goes on: "cough that started 3 weeks ago" is today's cough
_ONSET = re.compile(r"\b(?:started|starting|began|begun|beginning|onset|since)\b[^.;,]{0,25}$")
_LONG_AGO = re.compile(
    rf"\b(?:(?:{_NUMBER}\s*-?\s*)?(?:years?|yrs?|months?|mos?|decades?)|"
    r"(?:[2-9]|\d\d+|two|three|four|five|six|seven|eight|nine|ten|several|many|a few|few)\s*-?\s*(?:weeks?|wks?))\s+ago\b"
)
# a date's direction by the words before it in its sentence: none, it looks forward; one or two ("Admitted 1 month ago
# for NSTEMI", where the NSTEMI was present and raised the MI flag; "Rash 3 weeks ago"), both ways; more, back
_DATED = [_Rule("trigger", "historical", "forward"), *[_Rule("trigger", "historical", "bidirectional")] * 2,
          _Rule("trigger", "historical", "backward")]
# a review of systems' signs on a list's items: "+orthopnea, -PND", "fever/-chills". A minus negates its own item, a plus
# ends a negation; not a dash after a space or at a line's start, where notes put bullets ("- continue abx"). A
# template's boxes likewise: "[x] chest pain [ ] fever" (an empty box negates up to the next box)
_SIGN = re.compile(r"[,;:(/][ \t]?(?:(?P<minus>-)|(?P<plus>\+))(?=[a-z])|(?P<unchecked>\[[ \t]?\]|☐)|(?P<checked>\[[x✓✔][ \t]?\]|☑|☒)")
_SIGNS = {"minus": _Rule("trigger", "negated", "forward", item=True), "unchecked": _Rule("trigger", "negated", "forward"),
          **dict.fromkeys(("plus", "checked"), _Rule("terminator", None, "", frozenset({"negated"})))}
_WORD = re.compile(r"\w+")
_HEADERS = sorted(SECTION_HEADERS, key=len, reverse=True)
_SPLIT = re.compile(r"[\n;:.!?](?:(?<=\n)[ \t\r]*\n|(?<=[.!?])(?=\s|$)|(?<=[;:]))")
_ABBREVIATION = re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(a) for a in ABBREVIATIONS) + r")\.$", re.IGNORECASE)
_CLOSING = re.compile(r"\s*(?:[.,;:!?)\]]|$)")
_ADJACENT = re.compile(r"\s*(?:\w+\s+){0,2}")  # "denies [any] family history of": one trigger, not two scopes
_OPENING = re.compile(r"[\s\-*•]*")  # what may stand before a trigger that opens its sentence
_LABEL = re.compile(r"[ \t]*[:,]")  # a trigger written as a label or fronted: "Negative: fever", "Last year, she had an MI"


class _Match(NamedTuple):
    start: int
    end: int
    rule: _Rule


class _Sentence(NamedTuple):
    start: int
    end: int
    section: Assertion | None


def _header(text: str, colon: int) -> str | None:
    """The section header that ends at this colon, if any."""
    before = text[max(0, colon - 30):colon].rstrip(" \t").lower()
    return next((h for h in _HEADERS if before.endswith(h) and not before[:-len(h)][-1:].isalnum()), None)


def sentences(text: str) -> list[_Sentence]:
    """Sentences with the category of their section; header text belongs to no sentence."""
    out, start, section, line_end = [], 0, None, len(text)
    for m in _SPLIT.finditer(text):
        if m.group() == "." and _ABBREVIATION.search(text, max(0, m.start() - 8), m.end()):
            continue
        if line_end < m.start():  # a one-line section ended before this sentence did
            out.append(_Sentence(start, line_end, section))
            start, section, line_end = line_end, None, len(text)
        if m.group() == ":":
            header = _header(text, m.start())
            if header is None:
                continue
            out.append(_Sentence(start, len(text[start:m.start()].rstrip(" \t")) + start - len(header), section))
            section = SECTION_HEADERS[header]
            newline = text.find("\n", m.end())
            line_end = newline if header in LINE_SECTIONS and newline != -1 else len(text)
        else:
            out.append(_Sentence(start, m.end(), section))
            if m.group().startswith("\n"):
                section, line_end = None, len(text)  # a blank line ends a section too: a present mention is never hidden for long
        start = m.end()
    if line_end < len(text):
        out.append(_Sentence(start, line_end, section))
        start, section = line_end, None
    out.append(_Sentence(start, len(text), section))
    return out


def _analyse(text: str, sentence: _Sentence) -> list[_Match]:
    """The sentence's triggers and terminators, pseudo-triggers dropped."""
    lower = lower_keeping_offsets(text[sentence.start:sentence.end])
    matches = [_Match(sentence.start + m.start(), sentence.start + m.end(), _RULES[" ".join(m.group().split())])
               for m in _PHRASES.finditer(lower)]
    dated = [*_YEAR.finditer(lower),
             *(m for m in _LONG_AGO.finditer(lower) if not _ONSET.search(lower, max(0, m.start() - 40), m.start()))]
    years = [_Match(sentence.start + m.start(), sentence.start + m.end(), _DATED[min(len(_WORD.findall(lower, 0, m.start())), 3)])
             for m in dated]
    signs = [_Match(sentence.start + m.start(m.lastgroup), sentence.start + m.end(m.lastgroup), _SIGNS[m.lastgroup])
             for m in _SIGN.finditer(lower)]
    return sorted((m for m in matches + years + signs if m.rule.kind != "pseudo"), key=lambda m: m.start)


def _words(text: str, a: int, b: int) -> int:
    return len(_WORD.findall(text, a, b))


def _blocks(text: str, trigger: _Match, other: _Match, gap: tuple[int, int]) -> bool:
    """Does `other`, lying between the trigger and the mention, end the trigger's scope?"""
    if other.rule.kind == "terminator":
        return None in other.rule.ends or trigger.rule.category in other.rule.ends
    if other.rule.category == trigger.rule.category:
        return False
    return _ADJACENT.fullmatch(text, *gap) is None


def _opens_its_cause(text: str, trigger: _Match, other: _Match) -> bool:
    """Is `other` a causal terminator right after the trigger ("likely due to GERD": the doubt is about the cause)?"""
    return other.rule.causal and not text[trigger.end:other.start].strip()


def _closes(text: str, trigger: _Match, matches: list[_Match], end: int) -> bool:
    """Does the trigger end its clause (only punctuation, a terminator of its scope or the sentence end after it)? A
    terminator of another category's scopes does not end it ("No new stroke": "new" ends a history's scope). Not before a
    cause: in "sepsis likely secondary to pneumonia" the doubt is about the cause, and the sepsis is asserted."""
    return bool(_CLOSING.match(text, trigger.end, end)) or any(
        o.rule.kind == "terminator" and o.start >= trigger.end and not text[trigger.end:o.start].strip()
        and _blocks(text, trigger, o, (trigger.end, o.start)) and not _opens_its_cause(text, trigger, o) for o in matches)


def _opens(text: str, trigger: _Match, sentence_start: int) -> bool:
    """Does the trigger open its sentence (only spaces or a bullet before it)?"""
    return _OPENING.fullmatch(text, sentence_start, trigger.start) is not None


def _item_start(text: str, trigger: _Match, start: int) -> int:
    """Where the list item an item-scoped trigger closing its clause looks back over begins: its own item ("ASA daily,
    NTG SL prn," covers NTG, not the drugs listed before it), or the item before when it stands alone there."""
    cut = max(text.rfind(",", start, trigger.start), text.rfind(";", start, trigger.start))
    if cut == -1 or text[cut + 1 : trigger.start].strip():
        return cut + 1 if cut != -1 else start
    before = max(text.rfind(",", start, cut), text.rfind(";", start, cut))
    return before + 1 if before != -1 else start


def _crosses_item(text: str, start: int, end: int) -> bool:
    """Whether [start, end) crosses from one list item into another (a comma or semicolon)."""
    return "," in text[start:end] or ";" in text[start:end]


def _asserts_itself(text: str, trigger: _Match, matches: list[_Match], e: int, sentence_end: int) -> bool:
    """Does the list item of a mention ending at `e` go on, after it, with a trigger of another category? Then the item
    is a clause of its own that a scope from an earlier item does not reach: "EKG without ischemic changes, chest pain
    likely MSK" (the pain is seen; it was negated), "no fever, cough likely viral"."""
    ends = [i for i in (text.find(",", e, sentence_end), text.find(";", e, sentence_end)) if i != -1]
    item_end = min(ends, default=sentence_end)
    return any(o.rule.kind == "trigger" and o.rule.category != trigger.rule.category and e <= o.start < item_end
               for o in matches)


def _covers(text: str, trigger: _Match, matches: list[_Match], s: int, e: int, sentence: _Sentence) -> bool:
    """Is the mention [s, e) in the scope of this trigger?"""
    direction, end = trigger.rule.direction, sentence.end
    # a trigger written as a label, or fronted before a comma, looks forward whatever its direction: "Hx: HTN, DM",
    # "Negative: fever, hemoptysis", "In the past, he had a stroke", "Previously, diagnosed with DVT"
    opens = _opens(text, trigger, sentence.start)
    label = opens and _LABEL.match(text, trigger.end) is not None
    if direction == "forward" and _closes(text, trigger, matches, end) and not label:
        if trigger.rule.item and s < _item_start(text, trigger, sentence.start):
            return False
        direction = "backward"
    elif direction == "backward" and opens:
        # the twin of a forward trigger closing its clause: a backward one opening its sentence looks forward, over a
        # list as a label ("Negative: fever, hemoptysis"), else over its own item ("Ruled out PE and MI", "Last year had
        # an MI"; "Negative CT, started abx for pneumonia" asserts the pneumonia)
        if label:
            direction = "forward"
        elif not _closes(text, trigger, matches, end):
            if trigger.end <= s and _crosses_item(text, trigger.end, s):
                return False
            direction = "forward"
    if trigger.end <= s and direction in ("forward", "bidirectional"):
        if _crosses_item(text, trigger.end, s) and (trigger.rule.item or _asserts_itself(text, trigger, matches, e, end)):
            return False
        return (_words(text, trigger.end, s) <= MAX_SCOPE_TOKENS and not any(
            trigger.end <= o.start and o.end <= s and _blocks(text, trigger, o, (trigger.end, o.start))
            and not _opens_its_cause(text, trigger, o) for o in matches))
    if direction == "modifier":  # only spaces between: "sepsis, alert and oriented" is no sepsis alert
        return trigger.start >= e and not text[e:trigger.start].strip()
    if direction == "premodifier":
        return trigger.end <= s and not text[trigger.end:s].strip()
    if trigger.start >= e and direction in ("backward", "bidirectional"):
        if trigger.rule.item and direction == "bidirectional" and _crosses_item(text, e, trigger.start):
            return False
        return (_words(text, e, trigger.start) <= MAX_SCOPE_TOKENS and not any(
            e <= o.start and o.end <= trigger.start and _blocks(text, trigger, o, (o.end, trigger.start)) for o in matches))
    return False


def assertions(text: str, spans: list[tuple[int, int]]) -> list[Assertion]:
    """The assertion of each (start, end) mention of one text, splitting the text into sentences once."""
    sents = sentences(text)
    firsts = [x.start for x in sents]
    cache: dict[int, list[_Match]] = {}
    out: list[Assertion] = []
    for s, e in spans:
        i = max(bisect_right(firsts, s) - 1, 0)
        sent = sents[i]
        matches = cache[i] if i in cache else cache.setdefault(i, _analyse(text, sent))
        found = {sent.section} if sent.section else set()
        for m in matches:
            if m.rule.kind == "trigger" and (m.end <= s or m.start >= e) and m.rule.category not in found:
                if _covers(text, m, matches, s, e, sent):
                    found.add(m.rule.category)
        if "historical" in found and ONGOING_TREATMENT.match(text, e):
            found.discard("historical")
        out.append(next((c for c in PRECEDENCE if c in found), "present"))
    return out


def assertion_of(text: str, start: int, end: int) -> Assertion:
    """The assertion of the mention text[start:end]."""
    return assertions(text, [(start, end)])[0]
