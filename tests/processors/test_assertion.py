"""ConText assertion status: each category, pre- and post-triggers, pseudo-triggers, scopes, sections, HL7 wraps."""

import timeit

import pytest

from processors.assertion import PSEUDO_TRIGGERS, TRIGGERS, assertion_of, assertions, sentences


def status(sentence: str, mention: str) -> str:
    start = sentence.index(mention)
    return assertion_of(sentence, start, start + len(mention))


PRESENT = [
    ("Symptoms: [x] chest pain [ ] fever [x] SOB", "SOB"),
    ("Hx CHF, COPD, presents w/ SOB, +wheezing, -fever", "SOB"),  # "presents w/" ends the history, as "presents with"
    ("ROS: +fever, -chills, -CP, +SOB.", "SOB"),  # a plus ends the negation
    ("Plan:\n- continue abx for pneumonia\n-AKI improving", "AKI"),  # a dash at a line's start is a bullet
    ("Do not stop ticagrelor without talking to cardiology.", "ticagrelor"),
    ("Negative CT, started abx for pneumonia.", "pneumonia"),  # a backward trigger opening its sentence: its own item
    ("(-) CP, (+) SOB", "SOB"),
    ("PE ruled out: CTA negative, then started heparin for DVT.", "DVT"),
    ("s/p MVC with traumatic SAH and L femur fracture.", "traumatic SAH"),  # the mechanism of today's injuries
    ("Pt with hx HTN, new ICH in basal ganglia.", "ICH"),  # "new" ends a history's scope
    ("Diuresed with IV furosemide, net negative 6 L.", "furosemide"),  # a fluid balance negates nothing
    # a relative who brings or speaks for the patient names no relative's problem
    ("Brought in by daughter for confusion and fever.", "confusion"),
    ("Allergic to PCN; presents with rash and fever.", "rash"),
    ("Accompanied by her husband for chest pain.", "chest pain"),
    ("Dementia, alert and oriented x1.", "Dementia"),  # a modifier takes only the word right before it, no comma between
    ("Code status: full code, pneumonia on CXR.", "pneumonia"),  # nor a premodifier one it is not right before
    ("Assessment: sepsis secondary to pneumonia.", "sepsis"),
    ("Sepsis likely secondary to RLL pneumonia, started on vancomycin.", "Sepsis"),  # the doubt is about the cause
    ("Chest pain likely due to GERD.", "Chest pain"),
    ("Sepsis, started on vancomycin and GI prophylaxis.", "Sepsis"),  # a modifier reaches only the word before it
    ("Stroke on CT, aspiration precautions.", "Stroke"),
    ("Findings consistent with acute myocardial infarction.", "myocardial infarction"),
    ("Now in septic shock requiring vasopressors.", "septic shock"),
    # a chronic problem with the treatment it is on is current, under a history trigger or header
    ("h/o ESRD on HD MWF.", "ESRD"),
    ("Hx of DM2 on insulin.", "DM2"),
    ("PMH: COPD on home O2, HTN.", "COPD"),
    ("58F with h/o COPD on 2L home O2, presents with dyspnea.", "COPD"),
    ("Hx of ILD on 3 L NC at baseline.", "ILD"),
    ("CT angiogram confirms pulmonary embolism.", "pulmonary embolism"),
    ("Creatinine rising, consistent with acute kidney injury.", "acute kidney injury"),
    ("Patient is a 67 year old man with sepsis.", "sepsis"),
    ("Blood cultures grew gram negative rods; urosepsis.", "urosepsis"),
    ("Not only hypotension but also sepsis.", "hypotension"),
    ("No increase in stroke symptoms overnight.", "stroke"),
    ("No change in the pleural effusion.", "pleural effusion"),
    ("Swallowing without difficulty, aspiration pneumonia improving.", "aspiration pneumonia"),
    ("Pneumonia was not ruled out on imaging, sepsis confirmed.", "sepsis"),
    ("History and physical: acute stroke with aphasia.", "acute stroke"),
    ("Seen in family practice clinic for cellulitis.", "cellulitis"),
    ("Prior to admission she developed sepsis.", "sepsis"),
    ("Reports fatigue over the past three days with chest pain.", "chest pain"),
    ("Lives at home with family; acute kidney injury on admission.", "acute kidney injury"),
    ("Sepsis, suspected pneumonia as the source.", "Sepsis"),
    ("Pneumonia ruled out, sepsis confirmed.", "sepsis"),
    ("No fever in a patient who has pneumonia.", "pneumonia"),
    ("Sepsis without shock.", "Sepsis"),
    ("Hx of alcohol abuse, p/w hematemesis.", "hematemesis"),
    ("Myocardial infarction in 2019, now admitted with chest pain.", "chest pain"),
    ("She had a heart attack in 2015 and has high blood pressure.", "high blood pressure"),  # a year looks forward only from the start  # p/w: presents with, which ends the history's scope
    ("Patient denies chest pain and has pneumonia.", "pneumonia"),  # a known limitation until 2026-12-04: "and has" ends the denial
    ("Denies fever and now has a productive cough.", "productive cough"),
    ("POD#2 s/p lap chole, afebrile, mild incisional pain.", "incisional pain"),  # s/p dates its own item only
    ("Hx of alcohol use disorder, CIWA 15, tremulous, started on lorazepam for withdrawal.", "withdrawal"),
    ("Hypotensive to 80s, started NE, concern for septic vs cardiogenic shock.", "Hypotensive"),  # vs weighs its neighbours
    # a "prn" closing one drug of a list qualifies that drug only, not those listed before it
    ("Home meds: aspirin 81 mg daily, HCTZ 25 mg, NTG SL prn, KCl 20 mEq.", "aspirin"),
    ("Home meds: aspirin 81 mg daily, HCTZ 25 mg, NTG SL prn, KCl 20 mEq.", "HCTZ"),
    ("Home meds: aspirin 81 mg daily, HCTZ 25 mg, NTG SL prn, KCl 20 mEq.", "KCl"),
    # ConText's temporality: under two weeks old is today's problem
    ("Chest pain started 2 days ago.", "Chest pain"),
    ("Fever began 3 days ago and cough yesterday.", "Fever"),
    ("Rash 1 week ago, resolving.", "Rash"),
    ("Syncope an hour ago.", "Syncope"),
    ("Cough that started 3 weeks ago.", "Cough"),  # an onset dates a problem that goes on
    ("Back pain began 2 months ago, worsening.", "Back pain"),
    ("Hx of stroke 3 months ago with residual left weakness.", "left weakness"),  # a past event's deficits are today's
    ("No doubt pneumonia on this film.", "pneumonia"),
    ("Zofran 4 mg IV q6h prn nausea, Lasix 40 mg IV BID.", "Lasix"),  # nor the drugs after it
]
NEGATED = [
    ("Symptoms: [x] chest pain [ ] fever [x] SOB", "fever"),  # a template's empty box, up to the next box
    ("Symptoms: ☒ chest pain ☐ fever ☐ cough ☑ SOB", "cough"),
    ("ROS: +fever, -chills, -CP, +SOB.", "chills"),  # a minus on a list's item negates it
    ("+orthopnea, -PND, no LE edema.", "PND"),
    ("Negative: fever, hemoptysis.", "hemoptysis"),  # a backward trigger as a label looks forward, over a list
    ("Ruled out PE and MI.", "MI"),  # and opening its sentence, over its own item
    ("(-) CP, (+) SOB", "CP"),
    ("Was ruled out for MI last admission.", "MI"),
    ("Sepsis is not suspected.", "Sepsis"),
    ("Low suspicion for PE given Wells score 0.", "PE"),
    ("Low pretest probability of DVT.", "DVT"),
    ("Cough, fever, chills: denies.", "Cough"),  # a negation closing a list covers all of it (a "prn" does not)
    ("Nausea, vomiting, diarrhea, none.", "Nausea"),
    ("Patient denies chest pain.", "chest pain"),
    ("No evidence of pneumonia.", "pneumonia"),
    ("Negative for pulmonary embolism on CTA.", "pulmonary embolism"),
    ("No signs of stroke on exam.", "stroke"),
    ("He was seen without fever or chills.", "fever"),
    ("Free of seizures since March.", "seizures"),
    ("Not in respiratory failure at present.", "respiratory failure"),
    ("No history of myocardial infarction.", "myocardial infarction"),
    ("Absence of focal neurological deficit.", "focal neurological deficit"),
    ("She has never had a seizure.", "seizure"),
    ("Pulmonary embolism was ruled out.", "Pulmonary embolism"),
    ("Pneumonia has been ruled out by CT.", "Pneumonia"),
    ("PE is unlikely.", "PE"),
    ("Pulmonary embolism excluded by CTA.", "Pulmonary embolism"),
    ("Blood cultures negative.", "Blood cultures"),
    ("Chest pain: none.", "Chest pain"),
    ("Unlikely to be sepsis.", "sepsis"),
    ("Patient doesn't have diabetes.", "diabetes"),
    ("No family history of colon cancer.", "colon cancer"),
    ("Denies any family history of sudden cardiac death.", "sudden cardiac death"),
    ("Lungs clear of crackles.", "crackles"),
    ("Pneumonia is not likely.", "Pneumonia"),
    ("The patient is not septic.", "septic"),
    ("Sepsis without shock.", "shock"),
    ("Ruled out for MI.", "MI"),
    ("No new stroke compared with prior MRI.", "stroke"),
    ("MI ruled-out by troponins.", "MI"),
    ("Troponin negative x2, doubt ACS.", "ACS"),
    ("ACS doubtful.", "ACS"),
    ("Family history negative for cancer.", "cancer"),
]
POSSIBLE = [
    ("Sepsis was considered but felt unlikely.", "Sepsis"),
    ("Evaluated for PE with CTA, which was negative.", "PE"),
    ("CXR with RLL consolidation c/f CAP.", "CAP"),
    ("Code stroke called for new left sided weakness.", "stroke"),  # an activation for a suspected emergency
    ("Stroke alert activated in the ED.", "Stroke"),
    ("Code sepsis called, lactate 4.1.", "sepsis"),
    ("Suspected C. diff colitis, stool studies pending.", "diff colitis"),  # "C." ends no sentence
    ("Chest pain likely due to GERD.", "GERD"),  # the doubt is about the cause (the chest pain is present)
    ("Picture may be due to heart failure.", "heart failure"),  # a known limitation until 2026-12-04
    ("Rule out sepsis.", "sepsis"),
    ("Sepsis may be present.", "Sepsis"),  # a known limitation until 2026-12-04
    ("Pulmonary embolism is possible given the tachycardia.", "Pulmonary embolism"),
    ("Early stroke is questionable on CT.", "stroke"),
    ("Concern for PE.", "PE"),
    ("Cannot exclude pneumonia.", "pneumonia"),
    ("Suspected urosepsis.", "urosepsis"),
    ("Likely community acquired pneumonia.", "community acquired pneumonia"),
    ("?pneumonia on chest film.", "pneumonia"),
    ("Aspiration pneumonia?", "Aspiration pneumonia"),
    ("Sepsis suspected.", "Sepsis"),
    ("Pneumonia not ruled out.", "Pneumonia"),
    ("Pulmonary embolism cannot be excluded.", "Pulmonary embolism"),
    ("Possible early stroke on MRI.", "stroke"),
    ("Findings suspicious for malignancy.", "malignancy"),
    ("Differential includes meningitis.", "meningitis"),
    ("CT to evaluate for appendicitis.", "appendicitis"),
    ("Cannot rule out myocardial infarction.", "myocardial infarction"),
    ("Pneumonia vs atelectasis at the left base.", "atelectasis"),
    ("Sepsis, likely.", "Sepsis"),
    ("R/O acute coronary syndrome.", "acute coronary syndrome"),
    ("Pneumonia vs atelectasis at the left base.", "Pneumonia"),
    ("Hypotensive, concern for septic vs cardiogenic shock.", "cardiogenic shock"),
    ("Not clear if this is sepsis.", "sepsis"),
    ("Dr. Smith suspects pneumonia.", "pneumonia"),
    ("MI was not excluded.", "MI"),
    ("Sepsis protocol initiated in the ED, lactate 1.2.", "Sepsis"),  # the protocol of a suspected emergency
    ("Stroke protocol activated at 14:05.", "Stroke"),
    ("Sepsis bundle completed within 3 hours.", "Sepsis"),
    ("Rule-out MI, serial troponins.", "MI"),
    ("Stroke team at bedside.", "Stroke"),  # the names of a search for an emergency raised its flag
    ("Sepsis workup pending.", "Sepsis"),
    ("Sepsis order set initiated.", "Sepsis"),
    ("ACS pathway initiated.", "ACS"),
    ("Sepsis is possible given fever.", "Sepsis"),
]
HISTORICAL = [
    ("Last year, she had an MI.", "MI"),  # a trigger fronted before a comma looks forward
    ("In the past, he had a stroke.", "stroke"),
    ("Previously, diagnosed with DVT.", "DVT"),
    ("Hx: HTN, DM.", "DM"),  # a forward trigger as a label looks forward
    ("Last year had an MI.", "MI"),
    ("Treated for pneumonia last admission.", "pneumonia"),
    ("History notable for CVA with residual left sided weakness.", "CVA"),
    ("Allergic to penicillin (hives) and sulfa (rash).", "rash"),
    ("Hepatitis C, cured with Harvoni.", "Hepatitis C"),
    ("Hep C s/p treatment, SVR achieved.", "Hep C"),
    ("Alcohol use disorder, in early remission.", "Alcohol use disorder"),
    ("HCV genotype 1a, SVR achieved with Epclusa 2019.", "HCV"),
    ("Admitted 1 month ago for NSTEMI.", "NSTEMI"),  # a date after one or two words looks both ways
    ("Breast cancer s/p mastectomy 2015, no evidence of recurrence.", "Breast cancer"),
    ("UTI successfully treated with nitrofurantoin.", "UTI"),
    ("She had a heart attack in 2015.", "heart attack"),  # a year names the past, before or after the mention
    ("In 2019 she had a stroke.", "stroke"),
    ("History of MI.", "MI"),
    ("Status post MI with stent placement.", "MI"),
    ("H/o HTN, DM, CKD.", "CKD"),  # a history covers its whole list
    ("Triage: c/o chest pressure x1hr, hx HTN, DM, smoker.", "DM"),  # "hx" without "of", as notes write it
    ("S/p CABG in 2015.", "CABG"),
    ("Prior stroke with residual weakness.", "stroke"),
    ("PMH: diabetes, hypertension.", "hypertension"),
    ("Past medical history of atrial fibrillation.", "atrial fibrillation"),
    ("History of MI, now resolved.", "MI"),
    ("Pneumonia resolved.", "Pneumonia"),
    ("Stroke five years ago.", "Stroke"),
    ("Status post appendectomy.", "appendectomy"),
    ("Remote history of pulmonary embolism.", "pulmonary embolism"),
    ("Old inferior myocardial infarction on ECG.", "myocardial infarction"),
    ("History of MI on aspirin.", "MI"),  # a drug is not the treatment that makes a problem current
    ("History of DVT on arrival.", "DVT"),
    ("PMH: COPD on home O2, HTN.", "HTN"),
    ("Previously diagnosed with COPD.", "COPD"),
    ("Two years ago she had a GI bleed.", "GI bleed"),  # more than two weeks ago
    ("MI a few months ago.", "MI"),
    ("Rash 3 weeks ago.", "Rash"),
    ("DVT 6 mos ago, now on apixaban.", "DVT"),
    ("Years ago he had TB.", "TB"),
    ("History of possible seizure.", "seizure"),
]
FAMILY = [
    ("Pt's wife had a stroke last year.", "stroke"),
    ("Mother had breast cancer.", "breast cancer"),
    ("Family history of colon cancer.", "colon cancer"),
    ("FHx of early coronary artery disease.", "coronary artery disease"),
    ("Father died of a stroke at 60.", "stroke"),
    ("Breast cancer in her sister.", "Breast cancer"),
    ("Maternal grandmother with diabetes.", "diabetes"),
    ("Diabetes runs in the family.", "Diabetes"),
    ("Family history: mother with ovarian cancer.", "ovarian cancer"),
    ("Brother with MI at 45.", "MI"),
    ("Patient's son reports that his father had a stroke.", "stroke"),
]
HYPOTHETICAL = [
    ("Call 911 for chest pain not relieved by 1 SL NTG.", "chest pain"),
    ("Discussed risk of stroke with anticoagulation vs none.", "stroke"),  # "none" names the other choice
    ("Neuro checks q4h for stroke.", "stroke"),
    ("Monitoring for respiratory failure.", "respiratory failure"),
    ("Return precautions given for chest pain, shortness of breath or signs of stroke.", "stroke"),
    ("Return precautions given for chest pain, shortness of breath or signs of stroke.", "chest pain"),
    ("Advised to return to the ED for worsening shortness of breath.", "shortness of breath"),
    ("S/p TKA POD1, pain controlled, DVT ppx with lovenox.", "DVT"),
    ("Pt at high risk for falls; fall precautions in place.", "falls"),
    ("Return if chest pain develops.", "chest pain"),
    ("Home meds: aspirin 81 mg daily, HCTZ 25 mg, NTG SL prn, KCl 20 mEq.", "NTG"),
    ("Oxycodone 5 mg q4h prn pain.", "pain"),
    ("Zofran 4 mg IV q6h prn nausea, Lasix 40 mg IV BID.", "nausea"),
    ("In case of fever, call the clinic.", "fever"),
    ("Should she experience shortness of breath, return to the ED.", "shortness of breath"),
    ("Call for any signs of bleeding.", "bleeding"),
    ("At risk for pressure ulcers.", "pressure ulcers"),
    ("Discussed risks of bleeding with anticoagulation.", "bleeding"),
    ("Monitor for delirium overnight.", "delirium"),
    ("Return to the emergency department if she develops a stroke.", "stroke"),
    ("If sepsis, start antibiotics.", "sepsis"),
    ("Apixaban for stroke prophylaxis.", "stroke"),
    ("Continue DVT prophylaxis with enoxaparin.", "DVT"),
    ("Seizure precautions in place.", "Seizure"),
    ("Stroke risk factors reviewed with the family.", "Stroke"),
    ("Enoxaparin for prophylaxis against pulmonary embolism.", "pulmonary embolism"),
    ("Screening for sepsis on admission.", "sepsis"),
    ("Counseled on signs of stroke and when to call 911.", "stroke"),
    ("Stroke education provided to family.", "Stroke"),
]
# (sentence, mention, expected): scope ends, lists, two mentions, sections, HL7 line wraps
SCOPE = [
    ("Denies chest pain but reports dyspnea.", "chest pain", "negated"),
    ("Denies chest pain but reports dyspnea.", "dyspnea", "present"),
    ("Denies fever, reports productive cough.", "productive cough", "present"),
    ("No fever, chills or cough.", "fever", "negated"),
    ("No fever, chills or cough.", "chills", "negated"),
    ("No fever, chills or cough.", "cough", "negated"),
    ("Patient denies chest pain, shortness of breath, palpitations, nausea, vomiting or diaphoresis.", "diaphoresis", "negated"),
    ("No fever. Now septic shock requiring pressors.", "septic shock", "present"),
    ("No fever; sepsis from a urinary source.", "sepsis", "present"),
    ("No fever, possible pneumonia.", "pneumonia", "possible"),
    ("No fever, possible pneumonia.", "fever", "negated"),
    ("Possible pneumonia, no effusion.", "effusion", "negated"),
    ("History of MI, presents with chest pain.", "chest pain", "present"),
    ("History of stroke, now with acute pneumonia.", "acute pneumonia", "present"),
    ("No complaints aside from headache.", "headache", "present"),
    ("Negative for pneumonia, positive for influenza.", "influenza", "present"),
    ("Mother had breast cancer, patient has diabetes.", "diabetes", "present"),
    ("Sepsis secondary to pneumonia, pulmonary embolism ruled out.", "pulmonary embolism", "negated"),
    ("Cough resolved and now septic.", "septic", "present"),
    ("Fever is absent.", "Fever", "negated"),
    ("No\nevidence of\nsepsis.", "sepsis", "negated"),
    ("Patient denies chest\npain and\nshortness of breath.", "shortness of breath", "negated"),
    ("No fever\n\nSepsis suspected overnight.", "Sepsis", "present"),
    ("No fever\n\nSepsis.", "Sepsis", "present"),
    ("Denies fever Assessment: sepsis.", "sepsis", "present"),
    ("PMH: MI, CABG\nstroke in 2019.\nAssessment: acute stroke.", "stroke in", "historical"),
    ("PMH: MI, CABG\nstroke in 2019.\nAssessment: acute stroke.", "acute stroke", "present"),
    ("Family history: diabetes. Hypertension.\nHPI: presents with chest pain.", "Hypertension", "family"),
    ("Family history: diabetes. Hypertension.\nHPI: presents with chest pain.", "chest pain", "present"),
    ("FHx: no diabetes.", "diabetes", "negated"),
    ("Past medical history: possible seizure.", "seizure", "historical"),
    ("FHx: colon cancer\n\nAdmitted with sepsis.", "sepsis", "present"),
    # the headers after a family history end it
    ("FHx: father with MI\nSHx: former smoker\nECG: ST elevations, STEMI.", "former smoker", "present"),
    ("FHx: father with MI\nSHx: former smoker\nECG: ST elevations, STEMI.", "STEMI", "present"),
    # an allergy list's drugs and reactions are past ones, for its line only
    ("Allergies: penicillin (rash), sulfa - hives.\n72M presents with sepsis.", "rash", "historical"),
    ("Allergies: penicillin (rash), sulfa - hives.\n72M presents with sepsis.", "hives", "historical"),
    ("Allergies: penicillin (rash), sulfa - hives.\n72M presents with sepsis.", "sepsis", "present"),
    ("ALLERGIES: PCN (anaphylaxis)\nNew rash on the trunk.", "rash", "present"),
    ("Drug allergies: contrast (hives). Assessment: urticaria.", "urticaria", "present"),
    ("No history of stroke but a family history of MI.", "stroke", "negated"),
    ("No history of stroke but a family history of MI.", "MI", "family"),
    ("Mother at bedside, patient with sepsis.", "sepsis", "present"),
    ("PE was unlikely and sepsis was confirmed.", "sepsis", "present"),
    # an item that goes on with its own trigger is a clause of its own: an earlier item's scope stops short of it
    ("EKG without ischemic changes, chest pain likely MSK.", "chest pain", "present"),
    ("EKG without ischemic changes, chest pain likely MSK.", "ischemic changes", "negated"),
    ("No fever, cough likely viral.", "cough", "present"),
    ("No fever, chills, cough or rash.", "rash", "negated"),
    ("Denies fever, chills, cough possibly worse at night.", "chills", "negated"),
    ("No fever, chills, night sweats, weight loss, headache, neck stiffness, rash, cough, sputum, wheeze, "
     "dysuria, frequency, or back pain and the patient has a new stroke.", "new stroke", "present"),
]
# genuine limitations, kept to document them: (sentence, mention, the right answer, why it is missed)
XFAIL = [
    ("Sepsis, pneumonia ruled out.", "Sepsis", "present",
     "a backward scope crosses commas so that 'PE, pneumonia and sepsis ruled out' negates all three"),
]


@pytest.mark.parametrize("sentence,mention,expected",
                         [(s, m, "present") for s, m in PRESENT] + [(s, m, "negated") for s, m in NEGATED]
                         + [(s, m, "possible") for s, m in POSSIBLE] + [(s, m, "historical") for s, m in HISTORICAL]
                         + [(s, m, "family") for s, m in FAMILY] + [(s, m, "hypothetical") for s, m in HYPOTHETICAL]
                         + SCOPE)
def test_assertion(sentence, mention, expected):
    """Each sentence gives its mention the expected assertion status."""
    assert status(sentence, mention) == expected


@pytest.mark.parametrize("sentence,mention,expected", [
    pytest.param(s, m, e, marks=pytest.mark.xfail(strict=True, reason=r)) for s, m, e, r in XFAIL])
def test_known_limitations(sentence, mention, expected):
    """Cases ConText's flat scopes get wrong; strict, so a fix shows up."""
    assert status(sentence, mention) == expected


def test_no_phrase_has_two_meanings():
    """A trigger phrase belongs to one category and one direction, and is no pseudo-trigger."""
    phrases = [p for table in TRIGGERS.values() for ps in table.values() for p in ps] + PSEUDO_TRIGGERS
    assert len(phrases) == len(set(phrases))


def test_batch_agrees_with_single_calls():
    """`assertions` over all spans of a text gives what `assertion_of` gives per span."""
    text = "PMH: MI.\nAssessment: denies chest pain but reports dyspnea; rule out PE. Mother had stroke."
    spans = [(text.index(w), text.index(w) + len(w)) for w in ("MI", "chest pain", "dyspnea", "PE", "stroke")]
    assert assertions(text, spans) == [assertion_of(text, s, e) for s, e in spans]
    assert assertions(text, spans) == ["historical", "negated", "present", "possible", "family"]


def test_sentences_keep_line_wraps_and_split_at_blank_lines():
    """A single newline stays inside a sentence; a blank line, '. ', ';' and a header end one, and a newline ends a
    one-line section (an allergy list)."""
    text = "No evidence\nof sepsis. Cough; fever\n\nPlan: fluids"
    parts = [text[s.start:s.end].strip() for s in sentences(text) if text[s.start:s.end].strip()]
    assert parts == ["No evidence\nof sepsis.", "Cough;", "fever", "fluids"]
    text = "Allergies: PCN (rash)\nHPI: rash. Allergy: sulfa\nCough"
    assert [(text[s.start:s.end].strip(), s.section) for s in sentences(text) if text[s.start:s.end].strip()] == [
        ("PCN (rash)", "historical"), ("rash.", None), ("sulfa", "historical"), ("Cough", None)]
    text = "Allergies: PCN (rash)\n\nSepsis. Cough."
    assert [(text[s.start:s.end].strip(), s.section) for s in sentences(text) if s.start < s.end] == [
        ("PCN (rash)", "historical"), ("Sepsis.", None), ("Cough.", None)]
    for text in ("Allergies: PCN (rash)\n\nSepsis.", "Allergies: PCN. Sulfa.\nHPI: rash; Allergy: NKDA", "Allergies: PCN"):
        parts = sentences(text)  # in order, none inverted, none overlapping
        assert all(a.start <= a.end <= b.start for a, b in zip(parts, parts[1:])) and parts[-1].start <= parts[-1].end, text


def test_fast_enough():
    """Every suite mention takes well under a millisecond (the inference worker calls it per entity)."""
    cases = [(s, m) for s, m in PRESENT + NEGATED + POSSIBLE + HISTORICAL + FAMILY + HYPOTHETICAL]
    per = timeit.timeit(lambda: [status(s, m) for s, m in cases], number=20) / (20 * len(cases))
    assert per < 1e-3, per


def test_with_entities_sets_each_assertion():
    """The inference stage gives every predicted entity of a narrative its assertion status."""
    from clinstream.envelope import ModelRef
    from processors import ner
    from processors.enrich import with_entities
    from tests.processors.test_risk import envelope

    note = "Denies chest pain. Concern for sepsis. History of stroke."
    env = envelope("e1", "2026-01-01T10:00:00+00:00", note=note)
    predicted = [ner.Entity("PROBLEM", "Disease", note.index(t), note.index(t) + len(t), t, 0.9)
                 for t in ("chest pain", "sepsis", "stroke")]
    [out] = with_entities([env], [predicted], ModelRef(task="ner", name="m", version="1"))
    assert [(e.text, e.assertion) for e in out.entities] == [
        ("chest pain", "negated"), ("sepsis", "possible"), ("stroke", "historical")]
