#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks docs/api/*.schema.json with a real JSON Schema validator (python3-jsonschema): each
schema is valid draft 2020-12, the pinned /api/v1 documents (tests/daemon/golden) validate
against it, and documents broken the ways a serialiser could break them are rejected."""
import copy
import json
import sys

import jsonschema


def main(schemas, golden):
    failures = []
    for name in ("snapshot", "alerts"):
        schema = json.load(open(f"{schemas}/{name}.schema.json"))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        doc = json.load(open(f"{golden}/api_v1_{name}.json"))
        for error in validator.iter_errors(doc):
            failures.append(f"{name}: the pinned document does not validate: {error.message}")
        broken = []
        if name == "snapshot":
            for mutate in (lambda d: d.pop("states"),
                           lambda d: d["namespaces"][0]["states"].pop("CLOSE_WAIT"),
                           lambda d: d["processes"][0].update(pid="100"),
                           lambda d: d["processes"][0]["listen"][0].update({"class": "other"}),
                           lambda d: d["time_wait"][0].pop("destination"),
                           lambda d: d["namespaces"][0]["tcp_hash"].update(buckets=0),
                           lambda d: d["namespaces"][0]["tcp_hash"].pop("shared_with_host"),
                           lambda d: d.update(unexpected=1)):
                b = copy.deepcopy(doc)
                mutate(b)
                broken.append(b)
        else:
            for mutate in (lambda d: d["alerts"][0].pop("message"),
                           lambda d: d["alerts"][0].update(severity="urgent"),
                           lambda d: d["alerts"][0].pop("close_wait"),
                           lambda d: d["alerts"][0]["group"].update(kind="host")):
                b = copy.deepcopy(doc)
                mutate(b)
                broken.append(b)
        for i, b in enumerate(broken):
            if validator.is_valid(b):
                failures.append(f"{name}: broken document {i} validates")
    for f in failures:
        print(f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
