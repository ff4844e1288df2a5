"""Drive a running Portcullis with PyPI's opa-python-client (the OPA client
many Python services use), unchanged: connection check, policy upload, data
writes and patches, rule queries, ad-hoc and bulk queries, deletes.

Run by scripts/client-compat.sh, which installs the client into a fresh
virtual environment and starts the server. Exits non-zero on the first
mismatch.
"""

import sys

from opa_client.opa import OpaClient

port = int(sys.argv[1])
client = OpaClient(host="127.0.0.1", port=port, timeout=30)


def check(label, got, want):
    if got != want:
        print(f"FAIL {label}: got {got!r}, want {want!r}")
        sys.exit(1)
    print(f"ok   {label}")


check("check_connection", client.check_connection(), True)
check("check_health", client.check_health(), True)

policy = """package compat

import rego.v1

default allow := false

allow if input.user in data.compat.admins

limit := data.compat.limits[input.team]
"""
check("update_policy_from_string", client.update_policy_from_string(policy, "compat/policy.rego"), True)
check("policy listed", "compat/policy.rego" in client.get_policies_list(), True)

check("update_or_create_data", client.update_or_create_data({"admins": ["ana"], "limits": {"payments": 8}}, "compat"), True)
check("get_data", client.get_data("compat/admins")["result"], ["ana"])
check("query_rule allowed", client.query_rule({"user": "ana"}, "compat", "allow")["result"], True)
check("query_rule refused", client.query_rule({"user": "bob"}, "compat", "allow")["result"], False)

check("patch_data", client.patch_data("compat/limits", [{"op": "replace", "path": "/payments", "value": 16}]), True)
check("query after patch", client.query_rule({"team": "payments"}, "compat", "limit")["result"], 16)

adhoc = client.ad_hoc_query("x := data.compat.limits.payments * 2")
check("ad_hoc_query", adhoc["result"], [{"x": 32}])
bulk = client.bulk_query_rule({"a": {"user": "ana"}, "b": {"user": "bob"}}, "compat", "allow")
check("bulk_query_rule", bulk, {"a": True, "b": False})

check("delete_policy", client.delete_policy("compat/policy.rego"), True)
check("policy gone", "compat/policy.rego" in client.get_policies_list(), False)
check("delete_data", client.delete_data("compat"), True)
print("all opa-python-client calls answered as OPA answers them")
