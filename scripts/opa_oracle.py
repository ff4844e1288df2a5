#!/usr/bin/env python3
"""OPA as the oracle for Portcullis's semantics (issue 20).

The corpus is tests/fidelity/corpus/*.cases: small Rego modules, each
isolating one behaviour. A case starts with a `## name` line; the lines
right after it that read `# input: JSON`, `# data: JSON`, `# query: Q`,
`# v0`, `# strict` or `# portcullis: refused TEXT` are its settings; the
rest, up to the next `## `, is the module. The query defaults to `data.t`.

Commands:
  record  [--opa BIN]   evaluate every case with OPA and write
                        tests/fidelity/answers.json (committed; replayed by
                        `cargo test --test opa_fidelity` with no OPA).
  compare [--opa BIN]   record into a temporary file and replay Portcullis
                        against it: a live comparison.
  generate [--minutes M] [--seed S] [--opa BIN]
                        random well-formed cases (scripts/fidelity_gen.py)
                        compared live; each difference is shrunk and written
                        to tests/fidelity/found/ to be added to the corpus.

BIN defaults to ../shared/tools/opa/opa (OPA 1.9). Without it, the PyPI
package opa-golib-python-bindings (OPA 1.20, in process) is not used: its
API evaluates with strict builtin errors only, which is not OPA's default.
"""
import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests/fidelity/corpus"
ANSWERS = ROOT / "tests/fidelity/answers.json"
DEFAULT_OPA = ROOT.parent / "shared/tools/opa/opa"
SETTINGS = ("input", "data", "query", "v0", "strict", "portcullis")


def parse_cases(text, origin):
    """The cases of one corpus file, in order."""
    cases = []
    current = None
    in_header = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("## "):
            current = {"name": line[3:].strip(), "settings": {}, "module": [], "origin": f"{origin}:{number}"}
            cases.append(current)
            in_header = True
            continue
        if current is None:
            if line.strip() and not line.startswith("#"):
                raise SystemExit(f"{origin}:{number}: text before the first case")
            continue
        if in_header and line.startswith("# "):
            key, _, value = line[2:].partition(":")
            if key.strip() in SETTINGS:
                current["settings"][key.strip()] = value.strip()
                continue
        in_header = False
        current["module"].append(line)
    for case in cases:
        case["module"] = "\n".join(case["module"]).strip("\n") + "\n"
    return cases


def load_corpus():
    return load_corpus_from(CORPUS)


def load_corpus_from(directory):
    cases = []
    for path in sorted(pathlib.Path(directory).glob("*.cases")):
        cases.extend(parse_cases(path.read_text(), path.name))
    names = [c["name"] for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"duplicate case names: {sorted(duplicates)}")
    return cases


def digest(case):
    """What the answer depends on: module and settings (not the Portcullis note)."""
    blob = case["module"] + "\0"
    for key, value in sorted(case["settings"].items()):
        if key != "portcullis":
            blob += f"{key}={value}\n"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_opa(opa, case, tmp):
    """OPA's answer: {"value": V} | {"undefined": true} | {"error": CODE, "message": M}."""
    work = pathlib.Path(tmp) / "case"
    if work.exists():
        for f in work.iterdir():
            f.unlink()
    else:
        work.mkdir()
    (work / "t.rego").write_text(case["module"])
    settings = case["settings"]
    args = [str(opa), "eval", "-f", "json", "-d", str(work / "t.rego")]
    if "data" in settings:
        (work / "data.json").write_text(settings["data"])
        args += ["-d", str(work / "data.json")]
    if "input" in settings:
        (work / "input.json").write_text(settings["input"])
        args += ["-i", str(work / "input.json")]
    if "v0" in settings:
        args.append("--v0-compatible")
    if "strict" in settings:
        args.append("--strict-builtin-errors")
    args.append(settings.get("query", "data.t"))
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    try:
        doc = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"{case['origin']}: OPA printed no JSON: {out.stdout}{out.stderr}")
    if "errors" in doc:
        first = doc["errors"][0]
        return {"error": first.get("code", "error"), "message": first.get("message", "")}
    result = doc.get("result")
    if not result:
        return {"undefined": True}
    return {"value": result[0]["expressions"][0]["value"]}


def opa_version(opa):
    out = subprocess.run([str(opa), "version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def record(opa, cases, target):
    answers = {"_opa": opa_version(opa)}
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            answer = run_opa(opa, case, tmp)
            answer["digest"] = digest(case)
            answers[case["name"]] = answer
    target.write_text(json.dumps(answers, indent=1, sort_keys=True) + "\n")
    return answers


def replay(answers_file, corpus_dir=None):
    """Run the Portcullis side (cargo test) on an answers file; True when equal."""
    env = dict(os.environ, PORTCULLIS_FIDELITY_ANSWERS=str(answers_file))
    if corpus_dir:
        env["PORTCULLIS_FIDELITY_CORPUS"] = str(corpus_dir)
    cmd = ["cargo", "test", "--quiet", "--test", "opa_fidelity", "--", "--nocapture"]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["record", "compare", "generate"])
    parser.add_argument("--opa", default=str(DEFAULT_OPA))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    opa = pathlib.Path(args.opa)
    if not opa.exists():
        raise SystemExit(f"no OPA binary at {opa} (pass --opa)")
    if args.command == "record":
        cases = load_corpus()
        record(opa, cases, ANSWERS)
        print(f"{len(cases)} answers recorded with {opa_version(opa)} into {ANSWERS.relative_to(ROOT)}")
    elif args.command == "compare":
        cases = load_corpus()
        with tempfile.TemporaryDirectory() as tmp:
            live = pathlib.Path(tmp) / "answers.json"
            record(opa, cases, live)
            print(f"{len(cases)} cases evaluated by {opa_version(opa)}; replaying Portcullis")
            sys.exit(0 if replay(live) else 1)
    else:
        sys.path.insert(0, str(ROOT / "scripts"))
        import fidelity_gen

        sys.exit(fidelity_gen.run(opa, args.minutes, args.seed))


if __name__ == "__main__":
    main()
