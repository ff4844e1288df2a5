#!/usr/bin/env python3
"""Record OPA's answers for the shipped policies into a golden file.

Usage: scripts/opa-golden.py [--generate N] [OPA_BINARY]  (default ../shared/tools/opa/opa)

--generate N first replaces the generated cases (names starting with
`generated-`) by N new ones: the examples' inputs (examples/*.json) for
each shipped entry point, with a field removed, given another type, or
added, chosen with a fixed seed, so that a request an orchestrator gets
wrong is answered as OPA answers it.

The cases (query + input) are in tests/fixtures/opa_golden/cases.json; this
script evaluates each with `opa eval` on policies/ and bundles/ and writes
tests/fixtures/opa_golden/answers.json ({name: value, or "<undefined>"}).
`cargo test --test opa_golden` replays the cases against Portcullis and
compares with the recorded answers: no OPA and no network needed there.
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import random

root = pathlib.Path(__file__).resolve().parent.parent
args = sys.argv[1:]
generate = 0
if args[:1] == ["--generate"]:
    generate = int(args[1])
    args = args[2:]
opa = args[0] if args else str(root.parent / "shared/tools/opa/opa")
cases_file = root / "tests/fixtures/opa_golden/cases.json"
cases = json.loads(cases_file.read_text())

ENTRY_POINTS = {
    "feature-payments.json": "data.provisioning.decision",
    "network-feature-payments.json": "data.network.decision",
    "network-violations.json": "data.network.decision",
    "secret-request.json": "data.secrets.access.decision",
    "secret-request-review.json": "data.secrets.access.decision",
    "admission-pod.json": "data.admission.decision",
    "admission-pod-denied.json": "data.admission.decision",
}
OTHER_VALUES = [None, 0, -1, 2.5, "", "x", True, [], {}, [1, "a"], {"a": 1}]


def paths(value, prefix=()):
    """Every path to a field or element of `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield prefix + (i,)
            yield from paths(item, prefix + (i,))


def mutate(document, rng):
    """A copy of `document` with one field removed, retyped or added."""
    document = json.loads(json.dumps(document))
    where = list(paths(document))
    if not where:
        return document, "unchanged"
    path = rng.choice(where)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    kind = rng.choice(["remove", "retype", "retype", "add"])
    shown = ".".join(str(p) for p in path)
    if kind == "remove":
        del parent[last]
    elif kind == "retype":
        parent[last] = rng.choice(OTHER_VALUES)
    elif isinstance(parent, dict):
        parent["unexpected"] = rng.choice(OTHER_VALUES)
        shown = ".".join(str(p) for p in path[:-1] + ("unexpected",))
    else:
        parent.append(rng.choice(OTHER_VALUES))
    return document, f"{kind} {shown}"


if generate:
    cases = {k: v for k, v in cases.items() if not k.startswith("generated-")}
    rng = random.Random(20)
    examples = sorted(ENTRY_POINTS)
    for i in range(generate):
        example = examples[i % len(examples)]
        document = json.loads((root / "examples" / example).read_text())["input"]
        mutated, how = mutate(document, rng)
        cases[f"generated-{i:03}-{example[:-5]}"] = {
            "query": ENTRY_POINTS[example],
            "input": mutated,
            "mutation": how,
        }
    cases_file.write_text(json.dumps(cases, indent=1, sort_keys=True) + "\n")
version = subprocess.run([opa, "version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
answers = {"_opa": version}
with tempfile.TemporaryDirectory() as tmp:
    input_file = pathlib.Path(tmp) / "input.json"
    for name, case in sorted(cases.items()):
        input_file.write_text(json.dumps(case["input"]))
        out = subprocess.run(
            [opa, "eval", "-f", "json", "-d", "policies", "-d", "bundles", "-i", str(input_file), case["query"]],
            capture_output=True, text=True, check=True, cwd=root,
        )
        result = json.loads(out.stdout).get("result")
        answers[name] = result[0]["expressions"][0]["value"] if result else "<undefined>"
(root / "tests/fixtures/opa_golden/answers.json").write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
print(f"{len(cases)} answers recorded with {version}")
