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
}


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
    keep: str = "all"  # "all" | "no-z85" | "first-trimester-o"


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
        "presentation (§2, §4). codes.tsv also lists M79.89 (Other specified soft tissue "
        "disorders) under leg swelling; §2 does not name it and it is not specific to "
        "swelling, so it is deliberately left out.",
        (IsA("R22.4"), IsA("R60.0"), tsv(SNOMED, "102572006", "80068009", "271809000")),
    ),
    ValueSetSpec(
        "surgery",
        "Major surgery",
        "dvt-model.md §2 `recent-surgery`: major surgery (general, hip replacement, knee "
        "replacement, hip fracture) in the last 12 weeks, Wells item `bedridden-or-surgery` "
        "(§3), a risk factor of §4 rule 7 and a Wells PE item of §4 rule 1. Explicit codes "
        "of the four VSAC expansions; Procedure.category SNOMED 387713003 is matched by the "
        "loader's rule, not listed here.",
        (
            Vsac("general-surgery.json"),
            Vsac("hip-replacement-surgery.json"),
            Vsac("knee-replacement-surgery.json"),
            Vsac("hip-fracture-surgery.json"),
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
        "a past cancer is not active. Treatment encounters (Z51.0, Z51.11) are in "
        "`cancer-treatment`.",
        (
            Vsac("cancer.json", keep="no-z85"),
            tsv(SNOMED, "363346000"),
            tsv(ICD10CM, "C80.1", "C79.9"),
        ),
    ),
    ValueSetSpec(
        "cancer-treatment",
        "Cancer treatment encounter",
        "dvt-model.md §2 `active-cancer` (treatment part): an encounter for chemotherapy or "
        "radiotherapy in the last 183 days (Condition or Encounter reason), Wells item "
        "`active-cancer` (§3).",
        (tsv(ICD10CM, "Z51.0", "Z51.11"),),
    ),
    ValueSetSpec(
        "vte",
        "Deep vein thrombosis or pulmonary embolism",
        "dvt-model.md §2 `previous-vte`: a documented DVT or PE (including DVT of pregnancy and "
        "the puerperium), counted when recorded > 90 days ago or no longer active; Wells item "
        "`previous-dvt` (§3) and a Wells PE item (§4 rule 1). codes.tsv's chronic-DVT and PE "
        "rows are covered by the I82.5 and I26 filters.",
        (
            IsA("I82.4"),
            IsA("I82.5"),
            IsA("I26"),
            IsA("O22.3"),
            tsv(ICD10CM, "O87.1"),
            IsA("O88.2"),
            tsv(
                SNOMED,
                "128053003",
                "404223003",
                "444325005",
                "213220000",
                "134399007",
                "59282003",
                "233935004",
            ),
        ),
    ),
    ValueSetSpec(
        "vte-history",
        "Personal history of DVT or PE",
        "dvt-model.md §2 `previous-vte`: a personal-history code for DVT or PE, counted at any "
        "time; Wells item `previous-dvt` (§3). codes.tsv's Z86.72 (history of "
        "thrombophlebitis) is not a DVT or PE and is deliberately left out.",
        (tsv(ICD10CM, "Z86.718", "Z86.711"), tsv(SNOMED, "161508001", "161512007")),
    ),
    ValueSetSpec(
        "acute-dvt",
        "Acute deep vein thrombosis of the leg",
        "dvt-model.md §2 `current-dvt`: an acute DVT of the lower limb already diagnosed "
        "(active, recorded ≤ 90 days ago); §4 rule 3 then gives no card. Chronic DVT (I82.5-) "
        "and PE are not a current DVT and are left out.",
        (
            IsA("I82.4"),
            tsv(SNOMED, "128053003", "404223003", "444325005", "213220000", "134399007"),
        ),
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
        "expansion (SNOMED CT and ICD-10-PCS).",
        (Vsac("delivery-procedures.json"),),
    ),
    ValueSetSpec(
        "postpartum",
        "Postpartum state or puerperal complication",
        "dvt-model.md §2 `postpartum`: the postpartum state or a complication of the "
        "puerperium, ≤ 42 days; §4 rule 4. codes.tsv's Z39.2 (routine postpartum follow-up) "
        "is not named by §2 and is deliberately left out; its O90.89 and O87.1 rows are "
        "covered by the O90 and O87 filters.",
        (tsv(SNOMED, "86569001"), IsA("O87"), IsA("O90")),
    ),
    ValueSetSpec(
        "estrogen",
        "Oestrogen or hormonal contraception",
        "dvt-model.md §2 `estrogen-use`: current oestrogen or hormonal contraception "
        "(MedicationRequest / MedicationStatement by RxNorm; Condition by ICD-10-CM); shown as "
        "a risk finding. codes.tsv's Z79.818 and its SNOMED hormonal-therapy findings are not "
        "named by §2 and are deliberately left out.",
        (
            Vsac("contraceptive-medications.json", (RXNORM,)),
            Vsac("estrogens-older-adults.json", (RXNORM,)),
            tsv(ICD10CM, "Z79.3", "Z79.890"),
        ),
    ),
    ValueSetSpec(
        "anticoagulant",
        "Anticoagulant therapy",
        "dvt-model.md §2 `anticoagulated`: current anticoagulant therapy (MedicationRequest / "
        "MedicationStatement by RxNorm; Condition Z79.01); the §4 modifier that turns a warning "
        "into info and drops the D-dimer suggestion, and the §7 D-dimer order note. codes.tsv's "
        "SNOMED 182764009 (a procedure) is not named by §2 and is deliberately left out.",
        (Vsac("anticoagulant-therapy.json", (RXNORM,)), tsv(ICD10CM, "Z79.01")),
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
        (IsA("R06.0"), tsv(SNOMED, "267036007")),
    ),
    ValueSetSpec(
        "chest-pain",
        "Chest pain",
        "dvt-model.md §2 `chest-pain`: chest pain, a PE warning sign (§4 rule 1, ≤ 3 days).",
        (tsv(ICD10CM, "R07.1", "R07.89", "R07.9"), tsv(SNOMED, "29857009")),
    ),
    ValueSetSpec(
        "cough",
        "Cough",
        "dvt-model.md §2 `cough`: cough, a PE warning sign (§4 rule 1, ≤ 3 days); R05 and the "
        "codes below it.",
        (IsA("R05"), tsv(SNOMED, "49727002")),
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
            "version": "1.0.0",
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
            elif isinstance(part, Vsac):
                f = self.vsac.get(part.file)
                if f is None:
                    fail(f"{spec_id}: missing VSAC file {part.file}")
                systems = part.systems or tuple(sorted({c["system"] for c in f.contains}))
                for system in systems:
                    concepts = [{"code": c["code"], "display": c["display"]}
                                for c in f.contains if c["system"] == system and keep(part.keep, c)]
                    source = f"VSAC expansion: {f.title} ({f.oid}), valuesets/{f.name}"
                    if part.keep == "no-z85":
                        source += ", without Z85.- (personal history)"
                    elif part.keep == "first-trimester-o":
                        source += ", ICD-10-CM O-codes whose display says \"first trimester\" (dvt-model.md §4 rule 4)"
                    add_concepts(system, source, f.url, f.version, concepts)
            else:
                fail(f"{spec_id}: unknown part {part!r}")
        return includes, n_codes, n_filters


def keep(rule: str, c: dict) -> bool:
    if rule == "all":
        return True
    if rule == "no-z85":
        return not c["code"].startswith("Z85")
    if rule == "first-trimester-o":
        return c["code"].startswith("O") and "first trimester" in c["display"].lower()
    fail(f"unknown keep rule {rule}")
    return False


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
