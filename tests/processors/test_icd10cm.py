"""ICD-10-CM coding: the shorthand layer, spelling, index rows and re-ranking (fast, no index), then the
coder on its evaluation set (needs the index that `make setup` builds; skipped with the reason without it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from processors.icd10cm import (
    DESCRIPTION,
    Ranking,
    Shorthand,
    Speller,
    bare,
    default_shorthand,
    encounter_variant,
    generality,
    is_later_encounter,
    rerank,
    squash,
)


@pytest.fixture(scope="module")
def shorthand() -> Shorthand:
    return default_shorthand()


@pytest.mark.parametrize(("mention", "text"), [
    ("DM2 w/ neuropathy", "type 2 diabetes mellitus with neuropathy"),
    ("h/o MI", "old myocardial infarction"),
    ("LLE DVT", "deep vein thrombosis of left lower limb"),
    ("acute on chronic HFrEF", "acute on chronic systolic heart failure"),
    ("kidney stones", "calculus of kidney"),
    ("Heart Attack", "myocardial infarction"),
    ("non-ST elevation MI", "non-st elevation myocardial infarction"),
    ("COVID-19 pneumonia", "covid-19 pneumonia"),
    ("R/O PE", "pulmonary embolism"),
    ("possible CHF exacerbation", "congestive heart failure exacerbation"),
    ("L sided weakness", "weakness"),  # was coded M25.342, instability of the left hand
    ("suspected C. diff colitis", "clostridioides difficile colitis"),
])
def test_shorthand_expands_to_icd_wording(shorthand, mention, text):
    """Abbreviations, lay terms and connectives become the words ICD-10-CM uses; uncertainty words go."""
    assert shorthand.expand(mention).text == text


def test_capitalised_terms_match_only_as_written(shorthand):
    """'AS' is aortic stenosis but 'as' is English; 'PE' is an embolism, 'pe' is left alone."""
    assert shorthand.expand("severe AS").text == "severe aortic stenosis"
    assert shorthand.expand("as").text == "as"
    assert shorthand.expand("pe").text == "pe"


def test_every_problem_abbreviation_has_an_expansion():
    """NER tags the lexicon's problems and the coder expands them: a problem the coder cannot expand is refused."""
    with pytest.raises(ValueError, match="XYZ"):
        Shorthand(abbreviations={"HTN": "hypertension"}, drop=[], patterns=[], problems=["HTN", "XYZ"])
    assert set(default_shorthand().problems) <= set(default_shorthand().abbreviations)


@pytest.mark.parametrize(("mention", "text"), [
    ("breast cancer", "malignant neoplasm of breast"),
    ("lung ca", "malignant neoplasm of lung"),
    ("carcinoma of the colon", "malignant neoplasm of colon"),
    ("brain mets", "secondary malignant neoplasm of brain"),
    ("uncontrolled DM2", "type 2 diabetes mellitus with hyperglycemia"),
    ("uncontrolled diabetes", "type 2 diabetes mellitus with hyperglycemia"),  # was embedded as is: E13.9
    ("poorly controlled type 1 diabetes", "type 1 diabetes with hyperglycemia"),
])
def test_patterns_reword_the_mention(shorthand, mention, text):
    """'<site> cancer' -> 'malignant neoplasm of <site>'; 'uncontrolled diabetes' -> 'with hyperglycemia'."""
    assert shorthand.expand(mention).text == text


def test_whole_mention_phrases_code_directly(shorthand):
    """A whole mention that is a listed phrase carries its code; a longer mention does not."""
    assert shorthand.expand("HTN").code == "I10"
    assert shorthand.expand("T2DM").code == "E11.9"
    assert shorthand.expand("HTN with CKD stage 3").code is None


def test_two_direct_code_phrases_may_not_read_alike():
    """A dropped word ("persistent") would make "persistent atrial fibrillation" read "atrial fibrillation", and its code
    replace that phrase's: loading refuses it (it happened, and every atrial fibrillation was coded persistent)."""
    with pytest.raises(ValueError, match="both read 'atrial fibrillation'"):
        Shorthand(abbreviations={}, drop=["persistent"], patterns=[],
                  codes={"atrial fibrillation": "I48.91", "persistent atrial fibrillation": "I48.19"})


def test_a_key_written_twice_in_the_synonym_file_is_refused(tmp_path):
    """PyYAML keeps the last of two equal keys without a word: a second "M32.9:" list hid the first one's phrases
    ("lupus flare" was coded L93.0, discoid lupus), so loading refuses the file."""
    path = tmp_path / "synonyms.yaml"
    path.write_text("codes:\n  M32.9: [systemic lupus erythematosus]\n  I10: [hypertension]\n  M32.9: [lupus]\n")
    with pytest.raises(yaml.YAMLError, match=r"(?s)'M32.9' is written twice.*line 4"):
        Shorthand.load(path)
    assert default_shorthand().expand("lupus flare").code == "M32.9"


def test_synonym_file_codes_are_billable():
    """Every direct code in the shorthand file is a billable ICD-10-CM code of the installed package."""
    import simple_icd_10_cm as icd

    codes = set(default_shorthand().codes.values())
    assert codes and all(icd.is_valid_item(c) and icd.is_leaf(c) for c in codes), sorted(
        c for c in codes if not (icd.is_valid_item(c) and icd.is_leaf(c)))


def test_squash_keeps_hyphenated_words():
    """Case, punctuation and spacing are normalised; 'non-ST' and apostrophes inside words stay."""
    assert squash("  Crohn’s   Disease, (active)!") == "crohn's disease active"
    assert squash("non-ST elevation - MI") == "non-st elevation mi"


def test_speller_fixes_long_unknown_words_only():
    """A misspelt word takes the closest known word with the same first letter; short and known words stay."""
    speller = Speller({"pneumonia", "diabetes", "mellitus", "hypertension"})
    assert speller.text("pnuemonia") == "pneumonia"
    assert speller.text("diabetis mellitus") == "diabetes mellitus"
    assert speller.text("flu") == "flu"
    assert speller.text("zebra") == "zebra"


def test_bare_drops_nonessential_modifiers():
    """Parenthesised modifiers and NOS go, which gives the plain phrase a second index row."""
    assert bare("Hypertension (arterial) (benign) (essential)") == "Hypertension"
    assert bare("Congestive heart failure NOS") == "Congestive heart failure"
    assert bare("Non-ST elevation (NSTEMI) myocardial infarction") == "Non-ST elevation myocardial infarction"


def test_later_encounters_are_recognised():
    """Subsequent-encounter and sequela variants are left out of the index; initial ones are kept."""
    assert is_later_encounter("Fracture of neck of right femur, subsequent encounter for closed fracture with routine healing")
    assert is_later_encounter("Unspecified fall, sequela")
    assert not is_later_encounter("Unspecified fall, initial encounter")


def test_encounter_variant_follows_the_mention():
    """An initial-encounter code becomes its sequela or subsequent-encounter sibling when the mention says so."""
    codes = {"W19.XXXA": 0, "W19.XXXD": 1, "W19.XXXS": 2}
    assert encounter_variant("W19.XXXA", "fall, sequela", codes) == "W19.XXXS"
    assert encounter_variant("W19.XXXA", "fall, subsequent encounter", codes) == "W19.XXXD"
    assert encounter_variant("W19.XXXA", "fall", codes) == "W19.XXXA"
    assert encounter_variant("I10", "sequela", codes) == "I10"


def test_generality_prefers_unspecified_codes():
    """'unspecified' and '.9' codes sort before specific siblings."""
    siblings = [("I50.23", "Acute on chronic systolic (congestive) heart failure"), ("I50.9", "Heart failure, unspecified"),
                ("I50.1", "Left ventricular failure, unspecified")]
    assert min(siblings, key=lambda s: generality(*s))[0] == "I50.9"


def test_rerank_votes_for_the_category_with_more_near_codes():
    """Three near codes of one category outweigh a lone code of another scoring a little higher."""
    scored = [("R07.9", 0.80), ("I21.9", 0.79), ("I21.4", 0.785), ("I21.3", 0.78)]
    plain = rerank(scored, set(), Ranking(category_weight=0.0), 5)
    voted = rerank(scored, set(), Ranking(category_weight=0.02, temperature=0.05), 5)
    assert plain[0][0] == "R07.9" and voted[0][0] == "I21.9"


def test_rerank_prefers_the_general_code_within_a_category():
    """With no specifics the unspecified code wins over a slightly closer specific sibling."""
    scored = [("I50.23", 0.71), ("I50.9", 0.70), ("J81.0", 0.60)]
    ranked = rerank(scored, {"I50.9"}, Ranking(general_bonus=0.02), 3)
    assert [c for c, _ in ranked][:2] == ["I50.9", "I50.23"]
    assert ranked[0][1] == 0.70  # the reported score stays the cosine


def test_rerank_interleaves_categories():
    """Each category's best code comes before a category's runner-up that is further from its best."""
    scored = [("I21.9", 0.9), ("I21.4", 0.7), ("I25.2", 0.85)]
    assert [c for c, _ in rerank(scored, set(), Ranking(), 3)] == ["I21.9", "I25.2", "I21.4"]


# --- with the index -----------------------------------------------------------------------------

# Figures reached at the end of tuning (README, commit message); the test fails if the coder falls below
# them by more than the margin.
HELDOUT_TOP1_CATEGORY = 0.945  # 239 of 253 held-out mentions (plain cosine: 0.648)
MARGIN = 0.03


@pytest.fixture(scope="module")
def coder():
    from clinstream.settings import get_settings
    from processors.icd10cm import Coder, IndexMissing

    try:
        return Coder.load(get_settings().icd10cm_index_dir)
    except IndexMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: CI runs make setup, which builds it")
        pytest.skip(f"{exc} (make setup builds it; CI runs these tests)")


@pytest.mark.icd10cm_index
def test_heldout_accuracy_holds(coder):
    """Held-out top-1 at the 3-character category stays at the tuned figure (minus a margin) and beats the baseline."""
    from processors.icd10cm_eval import evaluate, read_pairs

    report = evaluate(coder, read_pairs(), ablations=False)["results"]
    assert report["tuned"]["heldout"]["n"] >= 150
    assert report["tuned"]["heldout"]["top1_category"] >= HELDOUT_TOP1_CATEGORY - MARGIN, report
    assert report["tuned"]["heldout"]["top1_category"] > report["plain_cosine"]["heldout"]["top1_category"], report


@pytest.mark.icd10cm_index
def test_batch_equals_one_by_one(coder):
    """Coding a batch gives each mention what coding it alone gives (padding moves scores by float noise only)."""
    # the last two embed as one text ("recurrent episodes of" is dropped) but only the second says the infarction
    # is a later one: ranked together by the words of both, "inferior STEMI" took I22.9 (subsequent) from I21.19
    mentions = ["pneumonia", "DM2 w/ neuropathy", "acute on chronic systolic CHF", "pnuemonia", "HTN",
                "inferior STEMI", "recurrent episodes of inferior STEMI"]
    coder.clear_cache()
    batch = coder.code(mentions)
    alone = []
    for m in mentions:
        coder.clear_cache()  # searched alone, not read from the batch's search
        alone.append(coder.code([m])[0])
    assert [[m.code for m in ms] for ms in alone] == [[m.code for m in ms] for ms in batch]
    assert [[m.score for m in ms] for ms in alone] == [pytest.approx([m.score for m in ms], abs=2e-4) for ms in batch]
    assert all(len(ms) == 5 and ms[0].score >= ms[-1].score - 0.2 for ms in batch)


@pytest.mark.icd10cm_index
def test_a_cached_search_gives_what_a_fresh_one_gives(coder, monkeypatch):
    """Texts searched before come from the cache, kept per ranking (the plain ranking's five description
    candidates are not the tuned ranking's 64), and the cache keeps at most SEARCH_CACHE_SIZE texts."""
    from processors import icd10cm

    mentions = ["acute kidney injury", "heart failure", "DM2 w/ neuropathy", "inferior STEMI"]  # two embed alike in both
    coder.clear_cache()
    plain = coder.code(mentions, ranking=icd10cm.PLAIN)
    coder.clear_cache()
    fresh = coder.code(mentions)
    assert coder.code(mentions, ranking=icd10cm.PLAIN) == plain  # the tuned ranking's searches are cached
    assert coder.code(mentions) == fresh  # both are
    monkeypatch.setattr(icd10cm, "SEARCH_CACHE_SIZE", 2)
    coder.clear_cache()
    assert coder.code(mentions) == fresh
    assert len(coder._searched) == 2
    coder.clear_cache()


@pytest.mark.icd10cm_index
def test_direct_codes_come_first_with_score_one(coder):
    """A shorthand phrase's code leads with score 1.0, followed by distinct embedding candidates."""
    [matches] = coder.code(["HTN"])
    assert matches[0].code == "I10" and matches[0].score == 1.0
    assert len({m.code for m in matches}) == len(matches)


@pytest.mark.icd10cm_index
def test_code_command_prints_json_lines(coder):
    """`clinstream code` reads mentions from stdin and prints one JSON object per mention."""
    out = subprocess.run([sys.executable, "-m", "clinstream.cli", "code"], input="heart attack\nkidney stones\n",
                         capture_output=True, text=True, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["mention"] for line in lines] == ["heart attack", "kidney stones"]
    assert lines[0]["icd10cm"][0]["code"].startswith("I21") and lines[1]["icd10cm"][0]["code"] == "N20.0"
    assert set(lines[0]["icd10cm"][0]) == {"code", "display", "score"}


def test_default_kinds_include_descriptions():
    """The tuned ranking searches the code descriptions themselves."""
    assert DESCRIPTION in Ranking().kinds


# problems as NER hands them over from a note: a lexicon term widened over the modifiers its code depends on
# (processors/ner.py shorthand_uses, `problem_modifiers:`), and organ shorthand for a cancer
NOTE_PROBLEMS = [
    ("acute on chronic HFrEF exacerbation", "I50.23"),
    ("HFrEF", "I50.20"),
    ("paroxysmal afib", "I48.0"),
    ("afib", "I48.91"),
    ("atrial fibrillation", "I48.91"),
    ("CKD stage 3b", "N18.32"),
    ("uncontrolled DM2 with hyperglycemia", "E11.65"),
    ("uncontrolled diabetes", "E11.65"),  # came out E13.9, other specified diabetes
    ("chronic small vessel ischemic disease", "I67.82"),  # came out I70.229, a limb's atherosclerosis
    ("AH", "R44.0"),  # came out R31.21, hematuria
    # neighbours of another meaning before
    ("volume overload", "E87.70"),  # E86.9, volume depletion
    ("severe protein calorie malnutrition", "E43"),  # E44.0, moderate
    ("acute blood loss anemia", "D62"),  # D53.9, nutritional
    ("ABLA", "D62"),
    ("anemia of chronic disease", "D63.8"),  # D63.0, in a neoplasm
    ("anemia of CKD", "D63.1"),
    ("lactic acidosis", "E87.29"),
    ("hospital acquired pneumonia", "J18.9"),
    ("SDH", "I62.00"),  # S06.4X9A, an epidural hemorrhage
    ("subdural hematoma", "I62.00"),  # P10.0, a birth injury
    ("Alzheimer dementia", "G30.9"),  # F03.90
    ("acute on chronic anemia", "D64.9"),  # D53.9, nutritional
    ("hypophosphatemia", "E83.39"),  # E83.31, familial
    ("status epilepticus", "G40.901"),  # G40.911, intractable
    ("ascites", "R18.8"),  # R18.0, malignant
    ("diverticulitis", "K57.92"),  # K57.30, diverticulosis
    ("sigmoid diverticulitis", "K57.32"),  # K57.50, diverticulosis of both intestines
    ("NSVT", "I47.20"),  # I82.409, a DVT
    ("V tach", "I47.20"),  # N94.819, vulvodynia
    ("SIADH", "E22.2"),  # E72.81, a GABA disorder
    ("HHS", "E11.00"),  # E08.00, diabetes due to another condition
    ("hematochezia", "K92.1"),  # N85.7, hematometra
    ("abscess", "L02.91"),  # K61.0, anal
    ("opioid overdose", "T40.2X1A"),  # F11.10, abuse
    ("AFib with RVR", "I48.91"),  # I48.20, chronic
    ("croup", "J05.0"),  # Q75.1, craniofacial dysostosis
    ("rigors", "R68.89"),  # R31.21, hematuria
    ("bilateral segmental PEs", "I26.99"),  # I26.93, a single subsegmental embolism
    ("pressure injury stage 2", "L89.92"),  # L89.892, of another site
    ("unstageable pressure ulcer", "L89.95"),
    ("rhabdo", "M62.82"),
    # a limb's side
    ("DVT of the left lower extremity", "I82.402"),  # I82.592, chronic, of other veins
    ("Acute RLE DVT", "I82.401"),
    ("bilateral LE DVT", "I82.403"),
    ("RUE DVT", "I82.621"),  # I82.409, a leg's
    ("edema of the left lower extremity", "R60.0"),  # H02.845, an eyelid's
    ("RLE edema", "R60.0"),  # M79.604, pain in a leg
    ("Weakness of the left arm", "R53.1"),  # S40.022A, a contusion
    ("LLE cellulitis", "L03.116"),
    ("overdose", "T50.901A"),  # T40.1X1A, heroin
    ("Lateral STEMI", "I21.29"),  # I21.4, an NSTEMI
    ("septic arthritis", "M00.9"),  # M31.8, a vasculopathy
    ("PEA arrest", "I46.9"),  # Z65.3, legal circumstances
    ("asystole", "I46.9"),  # R53.1, weakness
    ("acetaminophen toxicity", "T39.1X1A"),  # T47.0X1A, H2 blockers
    ("acetaminophen overdose", "T39.1X1A"),  # T43.621A, amphetamines
    ("post-op ileus", "K91.89"),  # K56.699, an obstruction
    ("hyperbilirubinemia", "E80.6"),  # E71.19, an amino-acid disorder
    ("EtOH intoxication", "F10.920"),
    ("diaphoretic", "R61"),  # R31.29, hematuria
    ("benzo withdrawal", "F13.230"),  # F19.130, another substance
    ("benzodiazepine withdrawal", "F13.230"),  # T42.4X5A, an adverse effect
    ("AF", "I48.91"),
    ("TBI", "S06.9X9A"),  # A81.83, fatal familial insomnia
    ("compression fracture", "M48.50XA"),  # M84.30XA, a stress fracture
    ("ACL tear", "S83.519A"),
    ("PPH", "O72.1"),  # O72.0, third stage
    ("cervical ca", "C53.9"),  # D06.9, in situ
    ("blood clot in the leg", "I82.409"),  # I82.599, chronic
    ("kidney failure", "N19"),  # N18.9, chronic
    ("DTs", "F10.231"),
    ("heat stroke", "T67.01XA"),  # I63.9, and the stroke flag
    ("pancytopenia", "D61.818"),  # D61.810, after chemotherapy
    # a diabetes or diabetic complication given the type the note states (processors/diagnoses.py coded_text)
    ("uncontrolled type 1 diabetes", "E10.65"),
    ("type 1 diabetic ketoacidosis", "E10.10"),
    ("type 1 diabetic neuropathy", "E10.40"),
    ("type 1 diabetes mellitus", "E10.9"),
    ("DM type 1", "E10.9"),
    ("COPD with exacerbation", "J44.1"),
    ("COPD flare", "J44.1"),
    ("asthma flare", "J45.901"),
    ("gout flare", "M10.9"),
    ("uncontrolled HTN", "I10"),
    ("well controlled HTN", "I10"),
    ("saddle PE", "I26.92"),
    ("CKD 3a", "N18.31"),
    ("b/l LE swelling", "R60.0"),
    ("2+ LE edema", "R60.0"),  # the grade says nothing about the code (it came out T87.89, an amputation stump)
    ("swelling", "R22.9"),  # came out B83.1, gnathostomiasis
    ("acute hypoxic respiratory failure", "J96.01"),
    ("hypercapnic respiratory failure", "J96.92"),  # came out J96.12, chronic
    ("AVH", "R44.3"),  # auditory and visual hallucinations (the search gave R44.0, auditory only)
    ("GI bleed", "K92.2"),
    ("chest pressure", "R07.89"),
    ("former smoker", "Z87.891"),
    ("ETOH withdrawal", "F10.230"),
    ("urosepsis", "A41.9"),  # no code of its own: the sepsis it means (and its flag)
    ("acute L MCA infarct", "I63.9"),  # a bare "infarct" codes I21.9, and raised the MI flag for a stroke
    ("breast CA", "C50.919"),
    ("prostate ca", "C61"),
    ("productive cough", "R05.9"),  # came out R05.3, chronic cough
    ("hepatic encephalopathy", "K76.82"),  # the model tags "encephalopathy" alone, G93.40
    ("septic shock", "R65.21"),  # what "septic" of "septic vs cardiogenic shock" is coded as
    ("type 2 MI", "I21.A1"),
    ("demand ischemia", "I24.89"),  # the model's "ischemia" was I67.82, cerebral
    ("variceal bleed", "I85.01"),  # came out B01.89, varicella
    ("rash", "R21"),  # came out T80.69XA, a serum reaction
    ("seasonal allergies", "J30.2"),
    ("acute infarct in the R PCA territory", "I63.9"),  # "acute infarct" alone is I21.9, an MI
    ("Sacral pressure ulcer stage 3", "L89.153"),  # the site (it was L89.93, of no stated site)
    ("hemorrhagic shock", "R57.8"),  # came out R58, a hemorrhage
    ("septic pulmonary emboli", "I26.90"),  # came out I26.99, not septic
    ("ARF", "N17.9"),  # acute renal failure, unless its sentence says respiratory (processors/ner.py with_senses)
    ("Hep C", "B19.20"),
    ("Febrile", "R50.9"),  # came out R56.00, a febrile convulsion
    ("pelvic abscess", "K65.1"),  # came out N71.9, a uterus's inflammation
    ("adenocarcinoma", "C80.1"),  # came out N80.03, adenomyosis
    ("liver mets", "C78.7"),  # came out C22.9, a primary liver cancer
    ("asterixis", "R27.8"),  # came out S92.109A, a fracture of the talus
    ("blurry vision", "H53.8"),
    ("Preeclampsia with severe features", "O14.10"),
    ("persistent AF", "I48.19"),  # the drop list took "persistent": I48.91
    ("cellulitis of R foot", "L03.115"),  # came out L03.031, a toe's
    ("rib fractures", "S22.49XA"),  # came out S22.39XA, one rib
    ("Orthostatic", "I95.1"),  # came out G90.A, postural tachycardia syndrome
    ("incisional pain", "G89.18"),  # came out K43.2, an incisional hernia
    ("traumatic subdural hemorrhage", "S06.5XAA"),  # a trauma note's SDH (processors/ner.py with_senses): no stroke
    ("acute traumatic subdural hemorrhage", "S06.5XAA"),
    ("Submassive PE", "I26.99"),  # came out I26.93, a single subsegmental embolism
    ("R popliteal DVT", "I82.431"),  # came out I82.531, chronic
    ("pleuritic CP", "R07.81"),
    ("hypokinesis", "R93.1"),  # came out Q38.3, the tongue
    ("sepsis due to UTI", "A41.9"),  # came out R65.20, severe sepsis
    ("sepsis due to E. coli", "A41.51"),  # the organism is coded
    ("symptomatic anemia", "D64.9"),  # came out D53.9, nutritional
    ("DIC", "D65"),  # came out F95.9, a tic disorder
    ("heroin use disorder", "F11.20"),  # came out F14.20, cocaine's
    ("thyroid storm", "E05.91"),  # came out E05.11, of a toxic nodule
    ("spinal cord compression", "G95.20"),  # came out M47.10, spondylosis
    ("PND", "R06.00"),  # paroxysmal nocturnal dyspnea; came out N40.0, BPH
    ("presyncope", "R55"),  # came out I67.83, PRES
    ("vaginal bleeding", "N93.9"),  # came out R58
]


@pytest.mark.icd10cm_index
def test_modifiers_a_note_puts_around_a_problem_reach_its_code(coder):
    """'uncontrolled HTN' is I10 (the embedding search gave I1A.0, resistant hypertension), 'CKD 3a' N18.31."""
    codes = [matches[0].code for matches in coder.code([m for m, _ in NOTE_PROBLEMS])]
    assert dict(zip([m for m, _ in NOTE_PROBLEMS], codes)) == dict(NOTE_PROBLEMS)
