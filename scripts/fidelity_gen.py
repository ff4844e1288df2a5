"""Random well-formed policies and inputs, compared between OPA and
Portcullis (scripts/opa-oracle.sh generate).

Each round writes a batch of cases in the corpus format into a temporary
directory, records OPA's answers, and replays Portcullis on them (the
`opa_fidelity` test, pointed at the batch). A difference Portcullis does
not warn about at load is shrunk (rules, then literals, then input fields
removed while the difference stays) and written to tests/fidelity/found/ as
a case for the corpus. The run stops after the given minutes.

The constructs are those of issue 20: negation over missing fields,
builtins with arguments that make them fail, comparisons across types,
comprehensions, `every`, `some … in`, partial sets and objects, `else`,
defaults, functions, `in`, object.get and data lookups.
"""
import json
import pathlib
import random
import re
import subprocess
import tempfile
import time

import opa_oracle

FIELDS = ["a", "b", "team", "roles", "n", "xs", "name", "usage"]
DATA = {"teams": {"a": {"cpu": 4, "members": ["ann"]}, "b": {"cpu": 0.5}}, "limits": {"cpu": 8, "names": ["x", "y"]}}


def literal(rng, depth=0):
    kinds = ["int", "float", "string", "bool", "null"] + (["array", "object", "set"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "int":
        return str(rng.choice([0, 1, 2, 3, -1, 10, 100]))
    if kind == "float":
        return rng.choice(["0.5", "1.5", "2.25", "-0.5"])
    if kind == "string":
        return json.dumps(rng.choice(["a", "b", "ann", "x", "", "1", "Ab", "straße"]))
    if kind == "bool":
        return rng.choice(["true", "false"])
    if kind == "null":
        return "null"
    items = [literal(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "array":
        return "[" + ", ".join(items) + "]"
    if kind == "set":
        return "{" + ", ".join(items) + "}" if items else "set()"
    keys = rng.sample(["a", "b", "c"], len(items))
    return "{" + ", ".join(f'"{k}": {v}' for k, v in zip(keys, items)) + "}"


def json_value(rng, depth=0):
    kind = rng.choice(["int", "float", "string", "bool", "null"] + (["array", "object"] if depth < 2 else []))
    if kind == "int":
        return rng.choice([0, 1, 2, 5, -3, 100])
    if kind == "float":
        return rng.choice([0.5, 2.5, 1e9, -1.25])
    if kind == "string":
        return rng.choice(["a", "b", "ann", "7", "x y", ""])
    if kind == "bool":
        return rng.choice([True, False])
    if kind == "null":
        return None
    if kind == "array":
        return [json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(FIELDS): json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def ref(rng):
    field = rng.choice(FIELDS)
    return rng.choice([
        f"input.{field}",
        f"input.{field}",
        f"input.{field}[0]",
        f"data.teams[input.{field}]",
        f"data.teams[input.{field}].cpu",
        f'object.get(input, "{field}", {literal(rng)})',
        f"data.limits.{rng.choice(['cpu', 'names'])}",
    ])


UNARY = ["to_number", "upper", "lower", "count", "is_string", "is_number", "is_object", "abs", "sort",
         "json.marshal", "trim_space", "units.parse_bytes", "base64.decode", "type_name", "sum", "max"]
BINARY = ["startswith", "endswith", "contains", "object.get", "split", "concat", "sprintf", "array.concat",
          "regex.match", "net.cidr_contains", "semver.compare", "indexof"]


def call(rng):
    if rng.random() < 0.6:
        return f"{rng.choice(UNARY)}({ref(rng) if rng.random() < 0.7 else literal(rng)})"
    name = rng.choice(BINARY)
    if name == "object.get":
        return f"object.get({ref(rng)}, {literal(rng)}, {literal(rng)})"
    if name == "sprintf":
        return f'sprintf({json.dumps(rng.choice(["%v", "%s", "%d", "%v-%v", "%.2f"]))}, [{ref(rng)}])'
    args = [ref(rng) if rng.random() < 0.6 else literal(rng) for _ in range(2)]
    return f"{name}({args[0]}, {args[1]})"


def term(rng):
    return rng.choice([ref, call, literal])(rng)


def condition(rng, bound):
    op = rng.choice(["==", "!=", "<", ">", ">=", "<="])
    forms = [
        lambda: f"not {term(rng)}",
        lambda: f"not {call(rng)}",
        lambda: f"{term(rng)} {op} {term(rng)}",
        lambda: f"{term(rng)}",
        lambda: f"{literal(rng)} in {ref(rng)}",
        lambda: f"not {literal(rng)} in {ref(rng)}",
        lambda: f"count([v | some v in {ref(rng)}]) {op} {literal(rng)}",
        lambda: f"every v in {ref(rng)} {{ v {op} {literal(rng)} }}",
        lambda: f"some v in {ref(rng)}; v {op} {literal(rng)}",
    ]
    if bound:
        forms.append(lambda: f"not {rng.choice(bound)} {op} {term(rng)}")
    return rng.choice(forms)()


def rule(rng, index):
    bound = []
    body = []
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.3:
            var = f"v{len(bound)}"
            body.append(f"{var} := {term(rng)}")
            bound.append(var)
        else:
            body.append(condition(rng, bound))
    body_text = "\n\t".join(body)
    kind = rng.choice(["complete", "set", "object", "else", "default", "function"])
    name = f"r{index}"
    value = rng.choice(bound) if bound and rng.random() < 0.6 else literal(rng)
    if kind == "complete":
        return f"{name} := {value} if {{\n\t{body_text}\n}}"
    if kind == "set":
        return f"{name} contains {value} if {{\n\t{body_text}\n}}"
    if kind == "object":
        key = rng.choice(bound) if bound else json.dumps("k")
        return f"{name}[{key}] := {value} if {{\n\t{body_text}\n}}"
    if kind == "else":
        return f"{name} := {value} if {{\n\t{body_text}\n}} else := {literal(rng)}"
    if kind == "default":
        return f"default {name} := {literal(rng)}\n\n{name} := {value} if {{\n\t{body_text}\n}}"
    # A function over one argument, called on input.
    body_text = body_text.replace("input.", "arg.")
    return (f"f{index}(arg) := {value if value not in bound else literal(rng)} if {{\n\t{body_text}\n}}\n\n"
            f"{name} := f{index}(input)")


def case(rng, number):
    rules = [rule(rng, i) for i in range(rng.randint(1, 3))]
    module = "package t\n\n" + "\n\n".join(rules) + "\n"
    document = {f: json_value(rng) for f in FIELDS if rng.random() < 0.5}
    return {
        "name": f"generated/{number}",
        "settings": {"input": json.dumps(document), "data": json.dumps(DATA)},
        "module": module,
        "origin": f"generated:{number}",
    }


def write_cases(cases, directory):
    text = []
    for c in cases:
        text.append(f"## {c['name']}")
        for key, value in c["settings"].items():
            text.append(f"# {key}: {value}" if value != "" else f"# {key}")
        text.append(c["module"])
    (directory / "generated.cases").write_text("\n".join(text) + "\n")


def differences(opa, cases, tmp):
    """The names of the cases where Portcullis differs without a warning."""
    directory = pathlib.Path(tmp) / "corpus"
    directory.mkdir(exist_ok=True)
    write_cases(cases, directory)
    answers = pathlib.Path(tmp) / "answers.json"
    opa_oracle.record(opa, opa_oracle.load_corpus_from(directory), answers)
    env_out = subprocess.run(
        ["cargo", "test", "--quiet", "--test", "opa_fidelity", "--", "--nocapture"],
        cwd=opa_oracle.ROOT, capture_output=True, text=True,
        env=dict(__import__("os").environ, PORTCULLIS_FIDELITY_ANSWERS=str(answers),
                 PORTCULLIS_FIDELITY_CORPUS=str(directory)),
    )
    found = {}
    for line in env_out.stderr.splitlines():
        match = re.match(r"DIFF (\S+) \(([^)]*)\): (.*)", line)
        if match and "[warned]" not in line:
            found[match.group(1)] = match.group(3)
    return found


def shrink(opa, original, tmp, budget=40):
    """A smaller case with the same difference: drop rules, body lines and
    input fields one at a time while the difference stays."""
    current = dict(original, settings=dict(original["settings"]))
    attempts = 0
    changed = True
    while changed and attempts < budget:
        changed = False
        lines = current["module"].splitlines()
        candidates = []
        for i, line in enumerate(lines):
            if line.startswith("\t") and not line.startswith("\t}"):
                candidates.append(("line", i))
        fields = list(json.loads(current["settings"]["input"]).keys())
        candidates += [("field", f) for f in fields]
        for kind, what in candidates:
            attempts += 1
            if attempts > budget:
                break
            trial = dict(current, settings=dict(current["settings"]))
            if kind == "line":
                trial["module"] = "\n".join(l for j, l in enumerate(lines) if j != what) + "\n"
            else:
                document = json.loads(trial["settings"]["input"])
                document.pop(what, None)
                trial["settings"]["input"] = json.dumps(document)
            if trial["name"] in differences(opa, [trial], tmp):
                current = trial
                changed = True
                break
    return current


def run(opa, minutes, seed):
    seed = seed if seed is not None else int(time.time())
    rng = random.Random(seed)
    deadline = time.time() + minutes * 60
    found_dir = opa_oracle.ROOT / "tests/fidelity/found"
    total = 0
    unexplained = 0
    round_number = 0
    with tempfile.TemporaryDirectory() as tmp:
        while time.time() < deadline:
            round_number += 1
            batch = [case(rng, f"{seed}-{round_number}-{i}") for i in range(100)]
            total += len(batch)
            diffs = differences(opa, batch, tmp)
            for c in batch:
                if c["name"] not in diffs or time.time() > deadline:
                    continue
                unexplained += 1
                small = shrink(opa, c, tmp)
                found_dir.mkdir(exist_ok=True)
                safe = small["name"].replace("/", "-")
                write_cases([small], pathlib.Path(tmp))
                (found_dir / f"{safe}.cases").write_text((pathlib.Path(tmp) / "generated.cases").read_text())
                print(f"difference: {small['name']}: {diffs[c['name']]}")
            print(f"round {round_number}: {total} cases, {unexplained} unexplained differences (seed {seed})", flush=True)
    print(f"generated {total} cases in {minutes} minutes (seed {seed}): {unexplained} unexplained differences")
    return 0 if unexplained == 0 else 1
