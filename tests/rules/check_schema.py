#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks config/waitwatch.schema.json with a real JSON Schema validator (python3-jsonschema):
the schema is valid draft 2020-12, the shipped config/waitwatch.json validates against it, and
configurations that waitwatchd rejects are rejected by the schema too."""
import json
import sys

import jsonschema


def strip_comments(text):
    """Removes // and /* */ comments outside strings, as waitwatchd's parser ignores them."""
    out, i, in_string = [], 0, False
    while i < len(text):
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


HASH = "$2b$04$2mGVvwBFmjbRshZmPfa6/.IlJIDkVW0KhEttk8tS.nFbH/L4Q7fNK"


def main(config_dir):
    schema = json.load(open(f"{config_dir}/waitwatch.schema.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    defaults = json.loads(strip_comments(open(f"{config_dir}/waitwatch.json").read()))
    validator.validate(defaults)

    good = [
        {},
        {"rules": []},
        {"rules": [{"name": "a", "type": "close_wait", "group_by": "unit",
                    "match": {"include": {"comm": "nginx", "local_port": ["well-known", 8080,
                                                                            "9000-9100"]},
                              "exclude": {"user": [0, "root"], "destination": "10.0.0.0/8"}}},
                   {"name": "b", "type": "time_wait", "rate_per_second": 100.5}]},
        {"web": {"tls_server_config": {"cert_file": "/etc/w/t.crt", "key_file": "/etc/w/t.key",
                                       "min_version": "TLS13"},
                 "basic_auth_users": {"prometheus": HASH}}},
    ]
    bad = [
        {"pol_interval": "5s"},
        {"poll_interval": "5 minutes"},
        {"namespaces": "some"},
        {"metrics": {"max_groups": 0}},
        {"rules": [{"type": "close_wait"}]},
        {"rules": [{"name": "x", "type": "closewait"}]},
        {"rules": [{"name": "x", "type": "close_wait", "min_sockets": -3}]},
        {"rules": [{"name": "x", "type": "close_wait", "port_usage_ratio": 0.5}]},
        {"rules": [{"name": "x", "type": "close_wait", "growth_window": "10m"}]},
        {"rules": [{"name": "x", "type": "time_wait", "port_usage_ratio": 1.5}]},
        {"rules": [{"name": "x", "type": "time_wait"}]},
        {"rules": [{"name": "x", "type": "time_wait", "time_wait_overflow": False}]},
        {"rules": [{"name": "x", "type": "close_wait", "match": {"include": {"comm": []}}}]},
        {"rules": [{"name": "x", "type": "close_wait", "match": {"only": {}}}]},
        {"rules": [{"name": "my rule", "type": "close_wait"}]},
        {"web": {"tls_server_config": {"cert_file": "/c"}}},
        {"web": {"tls_server_config": {"cert_file": "c", "key_file": "/k"}}},
        {"web": {"tls_server_config": {"cert_file": "/c", "key_file": "/k",
                                       "min_version": "TLS11"}}},
        {"web": {"basic_auth_users": {}}},
        {"web": {"basic_auth_users": {"alice": "hunter2"}}},
        {"web": {"basic_auth_users": {"a:b": HASH}}},
        {"web": {"basic_auth_users": {"alice": HASH.replace("$04$", "$17$")}}},
        {"web": {"http_server_config": {}}},
    ]
    failures = 0
    for config in good:
        errors = list(validator.iter_errors(config))
        if errors:
            print(f"FAIL: schema rejects a good config {config}: {errors[0].message}")
            failures += 1
    for config in bad:
        if validator.is_valid(config):
            print(f"FAIL: schema accepts a bad config {config}")
            failures += 1
    print(f"{len(good)} good and {len(bad)} bad configurations checked, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
