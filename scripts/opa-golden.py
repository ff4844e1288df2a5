#!/usr/bin/env python3
"""Record OPA's answers for the shipped policies into a golden file.

Usage: scripts/opa-golden.py [OPA_BINARY]  (default ../shared/tools/opa/opa)

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

root = pathlib.Path(__file__).resolve().parent.parent
opa = sys.argv[1] if len(sys.argv) > 1 else str(root.parent / "shared/tools/opa/opa")
cases = json.loads((root / "tests/fixtures/opa_golden/cases.json").read_text())
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
