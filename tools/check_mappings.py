#!/usr/bin/env python3
"""Check mappings/valuesets/*.json against mappings/README.md (format), codes.tsv and
the codes dvt-model.md version 2 §2 assigns to each value set.

Usage: python3 tools/check_mappings.py [--shared DIR]
Exits 1 with one line per problem; otherwise prints each value set's code and filter count.
Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXT = "https://dvt-cds.example.org/fhir/StructureDefinition/"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SYSTEMS = {
    ICD10CM, "http://snomed.info/sct", "http://loinc.org",
    "http://www.nlm.nih.gov/research/umls/rxnorm", "http://www.ama-assn.org/go/cpt",
    "http://www.cms.gov/Medicare/Coding/ICD10",
}

# codes.tsv codes the contract assigns to each value set (alternatives: all rows of the
# named codes.tsv concepts, added below).
ASSIGNED = {
    "leg-pain": "M79.661 M79.662 M79.669 M79.604 M79.605 M79.606 300954003 10601006",
    "leg-swelling": "R22.41 R22.42 R22.43 R22.40 102572006 271809000 449614009 449615005",
    "leg-swelling-unsited": "R60.0 80068009",
    "leg-site-only-swelling": "M79.89",
    "generic-pain": "22253000",
    "generic-swelling": "65124004 267038008",
    "leg-site": "32696007 48979004",
    "bedridden": "Z74.01 160685001",
    "paralysis": "G81.90 G82.20 G83.10 102568007 50582007 60389000 20022000",
    "leg-cast": "29345 29405",
    "cancer": "363346000 C80.1 C79.9",
    "cancer-treatment": "Z51.0 Z51.11 Z51.12 367336001 108290001 33195004",
    "palliative-care": "Z51.5 103735009",
    "dvt": "I82.401 I82.4Y9 I82.4Z9 I82.509 I82.5Z1 O22.31 O87.1 "
           "128053003 404223003 444325005 213220000 134399007",
    "dvt-chronic": "I82.509 I82.5Z1",
    "pe": "I26.99 I26.02 I26.94 59282003 233935004",
    "dvt-history": "Z86.718 161508001",
    "pe-history": "Z86.711 161512007",
    "pregnancy": "77386006 Z33.1 Z3A.01 O26.891 O22.31",
    "first-trimester": "Z3A.01 O26.891 O22.31",
    "delivery": "386216000 85548006",
    "postpartum": "86569001 O87.1 O90.89 Z39.2",
    "hcg": "2106-3 2118-8",
    "estrogen": "Z79.3 Z79.890",
    "anticoagulant": "Z79.01",
    "dyspnoea": "R06.00 R06.02 R06.09 267036007 60845006",
    "chest-pain": "R07.9 R07.1 R07.81 R07.89 29857009",
    "cough": "R05 49727002",
    "haemoptysis": "R04.2 66857006",
    "syncope": "R55 271594007",
    "dizziness": "R42 404640003 386705008",
    "spo2": "59408-5 2708-6",
    "hypoxaemia": "R09.02",
    "symptom-question": "75325-1 8661-1",
    "heart-rate": "8867-4",
    "pregnancy-status": "82810-3",
    "d-dimer-feu": "48065-7 48067-3 71427-9",
    "d-dimer-ddu": "48066-5 48058-2 91556-1",
    "d-dimer-order": "85379 48065-7",
    "leg-vein-ultrasound": "93970 93971 69385-3 69392-9 80860-0 46363-8 48691-0 48692-8 "
                           "39420-5 39443-7 39432-0",
    "ctpa": "71275",
    "difficulty-walking": "R26.2",
}
ALTERNATIVES = {
    "baker-cyst": ["Alternative dx: Baker cyst"],
    "calf-muscle-strain": ["Alternative dx: calf muscle strain"],
    "knee-ligament-or-meniscus-injury": ["Alternative dx: PCL sprain", "Alternative dx: meniscus tear"],
    "nerve-compression": ["Alternative dx: sciatica/radiculopathy/disc"],
    "arterial-disease": ["Alternative dx: arterial disease"],
    "superficial-thrombophlebitis": ["Alternative dx: superficial thrombophlebitis"],
    "cellulitis": ["Alternative dx: cellulitis / other"],
}
EXPECTED_IDS = set(ASSIGNED) | set(ALTERNATIVES) | {
    "surgery", "long-haul-travel", "upper-limb-site", "metastatic-cancer",
    "haematological-cancer", "antineoplastic", "pregnancy-loss",
}
# dvt-model.md v2 §2 "never" / "not" rules on explicit codes (ranges and excludes are
# checked by the Rust tests, which classify codes as the service does).
FORBIDDEN = {
    "leg-swelling": ["M79.89", "R60.0", "80068009"],
    "leg-vein-ultrasound": ["39942-8"],
    "dvt-history": ["Z86.72"],
    "dvt": ["I80.3", "I80.9", "I82.220", "I82.290", "I82.890", "I82.90", "195437003"],
    "cough": ["R05.2", "R05.3"],
    "delivery": ["59412", "59425", "59426", "59430"],
}


def empties(node, path="$"):
    """Paths of empty arrays, empty strings, empty objects and nulls."""
    if node is None or node == "" or node == [] or node == {}:
        yield path
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from empties(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from empties(v, f"{path}[{i}]")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--dir", type=Path, default=REPO / "mappings" / "valuesets")
    args = ap.parse_args()
    problems: list[str] = []

    rows = list(csv.DictReader((args.shared / "clinical" / "codes.tsv").open(encoding="utf-8"),
                               delimiter="\t"))
    secondary: dict[tuple[str, str], str] = {}
    last = None
    for r in rows:
        v = r["verified_by"]
        if v.startswith("secondary"):
            last = v
        elif v == "same":
            v = last
        if v and v.startswith("secondary"):
            secondary[(r["system"], r["code"])] = v
    assigned = {k: v.split() for k, v in ASSIGNED.items()}
    for vs_id, concepts in ALTERNATIVES.items():
        assigned[vs_id] = [r["code"] for r in rows if r["concept"] in concepts]
        if not assigned[vs_id]:
            problems.append(f"{vs_id}: no codes.tsv rows for {concepts}")

    found_ids = set()
    for path in sorted(args.dir.glob("*.json")):
        name = path.name
        try:
            vs = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            problems.append(f"{name}: does not parse: {e}")
            continue
        vs_id = vs.get("id")
        found_ids.add(vs_id)
        if name != f"{vs_id}.json":
            problems.append(f"{name}: id {vs_id!r} does not match the file name")
        for p in empties(vs):
            problems.append(f"{name}: empty or null at {p}")
        for key in ("resourceType", "url", "version", "name", "title", "status", "description"):
            if key not in vs:
                problems.append(f"{name}: missing {key}")
        if vs.get("url") != f"https://dvt-cds.example.org/fhir/ValueSet/{vs_id}":
            problems.append(f"{name}: url {vs.get('url')}")
        if vs.get("version") != "2.0.0":
            problems.append(f"{name}: version {vs.get('version')}")

        codes: dict[tuple[str, str], dict] = {}
        filters: list[str] = []
        compose = vs.get("compose")
        if vs_id == "long-haul-travel":
            if compose is not None:
                problems.append(f"{name}: must have no compose")
        elif compose is None:
            problems.append(f"{name}: no compose")
        if compose is not None and not ({"include"} <= set(compose) <= {"include", "exclude"}):
            problems.append(f"{name}: compose has {sorted(set(compose) - {'include', 'exclude'})}")
        parts = [("include", i, inc) for i, inc in enumerate((compose or {}).get("include", []))]
        parts += [("exclude", i, inc) for i, inc in enumerate((compose or {}).get("exclude", []))]
        excluded: set[str] = set()
        for which, i, inc in parts:
            where = f"{name}: {which}[{i}]"
            extra = set(inc) - {"extension", "system", "concept", "filter"}
            if extra:
                problems.append(f"{where}: unexpected {sorted(extra)}")
            if ("concept" in inc) == ("filter" in inc):
                problems.append(f"{where}: needs exactly one of concept / filter")
            system = inc.get("system")
            if system not in SYSTEMS:
                problems.append(f"{where}: system {system}")
            ext = {e["url"].removeprefix(EXT): e for e in inc.get("extension", [])}
            source = ext.get("source", {}).get("valueString")
            if not source:
                problems.append(f"{where}: no source extension")
            elif source.startswith("VSAC") and not ("source-url" in ext and "source-version" in ext):
                problems.append(f"{where}: VSAC source without source-url/version")
            for f in inc.get("filter", []):
                if f.get("property") == "code-range":
                    # Checked in full by `dvt-cds mappings check`; here: the shape only.
                    if (system not in (ICD10CM, "http://www.ama-assn.org/go/cpt")
                            or f != {"property": "code-range", "op": "=", "value": f.get("value")}
                            or len(inc["filter"]) != 1
                            or str(f.get("value")).count("-") != 1):
                        problems.append(f"{where}: bad filter {f}")
                    continue
                if system != ICD10CM or f != {"property": "concept", "op": "is-a",
                                              "value": f.get("value")}:
                    problems.append(f"{where}: bad filter {f}")
                if which == "exclude":
                    excluded.add(f.get("value"))
                else:
                    filters.append(f.get("value"))
            if which == "exclude":
                excluded.update(c.get("code") for c in inc.get("concept", []))
                continue
            concepts = inc.get("concept", [])
            if [c["code"] for c in concepts] != sorted(c["code"] for c in concepts):
                problems.append(f"{where}: concepts not sorted by code")
            for c in concepts:
                key = (system, c.get("code"))
                if key in codes:
                    problems.append(f"{where}: duplicate {key}")
                codes[key] = c
                if not c.get("display"):
                    problems.append(f"{where}: {c.get('code')} has no display")
                sec = [e for e in c.get("extension", []) if e["url"] == EXT + "secondary"]
                if key in secondary and source.startswith("codes.tsv") and not sec:
                    problems.append(f"{where}: {c['code']} is secondary in codes.tsv but not marked")

        plain = {code for _, code in codes}

        def covered(code: str) -> bool:
            return code in plain or any(code.startswith(f) for f in filters)

        for code in assigned.get(vs_id, []):
            if code in excluded or any(code.startswith(e) for e in excluded):
                problems.append(f"{name}: codes.tsv code {code} assigned by the contract is excluded")
            elif not covered(code):
                problems.append(f"{name}: codes.tsv code {code} assigned by the contract is missing")
        for code in FORBIDDEN.get(vs_id, []):
            if covered(code):
                problems.append(f"{name}: {code} must be left out")
        if vs_id == "cancer":
            bad = sorted(c for c in plain if c.startswith(("Z85", "Z51")))
            if bad:
                problems.append(f"{name}: history/treatment codes {bad[:5]}")
        if vs_id == "first-trimester":
            for (system, code), c in codes.items():
                if code.startswith("O") and "first trimester" not in c["display"]:
                    problems.append(f"{name}: {code} {c['display']!r} is not first trimester")
        print(f"{vs_id}: {len(codes)} codes, {len(filters)} filters")

    for missing in sorted(EXPECTED_IDS - found_ids):
        problems.append(f"value set {missing} not written")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"OK: {len(found_ids)} value sets")


if __name__ == "__main__":
    main()
