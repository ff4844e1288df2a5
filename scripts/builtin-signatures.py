#!/usr/bin/env python3
"""Record the argument types of OPA's builtins into
src/engine/builtin_signatures.json, for the load-time type check of
literal arguments (src/engine/literal_types.rs).

Usage: scripts/builtin-signatures.py [OPA_BINARY]  (default ../shared/tools/opa/opa)

The types are OPA's own (`opa capabilities --current`), without the
descriptions: {name: [argument type, ...]}.
"""
import json
import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
opa = sys.argv[1] if len(sys.argv) > 1 else str(root.parent / "shared/tools/opa/opa")
caps = json.loads(subprocess.run([opa, "capabilities", "--current"], capture_output=True, text=True, check=True).stdout)


def strip(t):
    if isinstance(t, dict):
        return {k: strip(v) for k, v in t.items() if k not in ("description", "name")}
    if isinstance(t, list):
        return [strip(v) for v in t]
    return t


table = {}
for builtin in caps["builtins"]:
    decl = builtin.get("decl", {})
    if decl.get("type") != "function" or builtin.get("infix"):
        continue
    if decl.get("variadic"):
        continue
    table[builtin["name"]] = [strip(a) for a in decl.get("args", [])]
out = root / "src/engine/builtin_signatures.json"
out.write_text(json.dumps(table, sort_keys=True, separators=(",", ":")) + "\n")
print(f"{len(table)} signatures from OPA into {out.relative_to(root)}")
