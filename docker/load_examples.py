#!/usr/bin/env python3
"""Load the synthetic patients of the example hook requests into a FHIR server.

Each `*.request.json` is a CDS Hooks request with prefetch. Its prefetch resources
(single resources, and the entries of prefetch Bundles) become one transaction Bundle
of PUTs (so the ids the requests refer to are kept), POSTed to the FHIR base.

    load_examples.py [--base URL] [--wait SECONDS] [EXAMPLES_DIR]

Defaults: --base $FHIR_BASE_URL or http://localhost:8080/fhir, EXAMPLES_DIR
cds-hooks/examples. Standard library only, so it runs in python:3-slim.
"""

import argparse
import glob
import json
import os
import sys
import time
import urllib.error
import urllib.request

FHIR_JSON = "application/fhir+json"


def resources_of(value):
    """The resources a prefetch value holds (null and OperationOutcome hold none)."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        return []
    if value["resourceType"] == "OperationOutcome":
        return []
    if value["resourceType"] != "Bundle":
        return [value]
    found = []
    for entry in value.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if (entry.get("search") or {}).get("mode") == "outcome":
            continue
        found.extend(resources_of(resource))
    return found


def transaction(request):
    """A transaction Bundle with a PUT per prefetch resource (each once)."""
    entries, seen = [], set()
    for value in (request.get("prefetch") or {}).values():
        for resource in resources_of(value):
            rid = resource.get("id")
            if not rid:
                print("  skipped a %s without id" % resource["resourceType"], file=sys.stderr)
                continue
            url = "%s/%s" % (resource["resourceType"], rid)
            if url in seen:
                continue
            seen.add(url)
            entries.append({"resource": resource,
                            "request": {"method": "PUT", "url": url}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def send(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Accept": FHIR_JSON, "Content-Type": FHIR_JSON})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return response.status, response.read()


def wait_for(base, seconds):
    """Poll /metadata until the server answers (HAPI takes a minute to start)."""
    until = time.monotonic() + seconds
    while True:
        try:
            status, _ = send("GET", base + "/metadata", timeout=10)
            if status == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > until:
            sys.exit("load_examples: %s did not answer within %ss" % (base, seconds))
        time.sleep(2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("examples", nargs="?", default="cds-hooks/examples")
    parser.add_argument("--base", default=os.environ.get("FHIR_BASE_URL", "http://localhost:8080/fhir"))
    parser.add_argument("--wait", type=int, default=int(os.environ.get("FHIR_WAIT_SECONDS", "300")))
    args = parser.parse_args()
    base = args.base.rstrip("/")

    files = sorted(glob.glob(os.path.join(args.examples, "*.request.json")))
    if not files:
        sys.exit("load_examples: no *.request.json in %s" % args.examples)
    wait_for(base, args.wait)
    failed = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            bundle = transaction(json.load(f))
        name = os.path.basename(path)
        if not bundle["entry"]:
            print("%s: no prefetch resources" % name)
            continue
        try:
            status, _ = send("POST", base, bundle, timeout=120)
            print("%s: %d resources loaded (HTTP %d)" % (name, len(bundle["entry"]), status))
        except urllib.error.HTTPError as e:
            failed += 1
            detail = e.read()[:500].decode("utf-8", "replace")
            print("%s: HTTP %d %s" % (name, e.code, detail), file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
