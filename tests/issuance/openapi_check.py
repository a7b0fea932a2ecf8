"""Checks JSON bodies against the schemas of an OpenAPI 3.1 document (JSON Schema 2020-12).

stdin: {"document": <the document>, "cases": [{"label", "path", "method", "status",
"body"}...]}. A case's schema is the one the document gives for that route's status
(application/json). Prints one line per failure and exits 1 if any; 2 on a case whose
route or status the document does not describe. Also checks every request and response
example in the document against its own schema.
"""
import json
import sys

from jsonschema import Draft202012Validator


def schema_of(doc, content):
    schema = dict(content.get("schema") or {})
    # "#/components/..." references resolve against this root.
    schema["components"] = doc.get("components", {})
    return schema


def check(doc, content, body, label, failures):
    v = Draft202012Validator(schema_of(doc, content))
    for e in sorted(v.iter_errors(body), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        failures.append(f"{label}: at {where}: {e.message[:300]}")


def main():
    data = json.load(sys.stdin)
    doc = data["document"]
    failures = []
    examples = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            rb = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if rb and "example" in rb:
                examples += 1
                check(doc, rb, rb["example"], f"request example {method} {path}", failures)
            for status, resp in op.get("responses", {}).items():
                c = resp.get("content", {}).get("application/json")
                if c and "example" in c:
                    examples += 1
                    check(doc, c, c["example"], f"response example {method} {path} {status}", failures)
    for case in data["cases"]:
        op = doc["paths"].get(case["path"], {}).get(case["method"])
        if op is None:
            print(f"{case['label']}: {case['method']} {case['path']} is not in the document")
            sys.exit(2)
        resp = op["responses"].get(str(case["status"])) or op["responses"].get("default")
        c = (resp or {}).get("content", {}).get("application/json")
        if c is None:
            print(f"{case['label']}: no JSON schema documented for status {case['status']}")
            sys.exit(2)
        check(doc, c, case["body"], case["label"], failures)
    for f in failures:
        print(f)
    print(f"checked {len(data['cases'])} live answers and {examples} examples")
    sys.exit(1 if failures else 0)


main()
