package tests.provisioning

import rego.v1

import data.provisioning

platform := {
	"teams": {"payments": {
		"members": {"ana": "lead", "ben": "member"},
		"quota": {"cpu": 32, "memory_gb": 64, "storage_gb": 500, "gpu": 1, "environments": 5, "monthly_budget": 2000},
	}},
	"classes": {
		"feature": {"max_ttl_hours": 168, "caps": {"cpu": 8, "memory_gb": 16, "storage_gb": 100, "gpu": 0}, "forbidden_sources": {"prod": true}},
		"prod": {"caps": {"cpu": 64, "memory_gb": 256, "storage_gb": 2000, "gpu": 4}, "forbidden_sources": {}},
	},
}

request := {
	"name": "feature-payments",
	"owner": "ana",
	"team": "payments",
	"class": "feature",
	"source_env": "staging",
	"ttl_hours": 168,
	"resources": {"cpu": 4, "memory_gb": 8, "storage_gb": 50, "gpu": 0},
	"estimated_monthly_cost": 120,
	"usage": {"cpu": 10, "memory_gb": 20, "storage_gb": 100, "gpu": 0, "environments": 2, "monthly_cost": 800},
}

codes(req) := {v.code | some v in d.violations} if {
	d := provisioning.decision with input as req with data.platform as platform
}

test_fitting_request_is_allowed if {
	d := provisioning.decision with input as request with data.platform as platform
	d.allowed
	count(d.violations) == 0
	count(d.warnings) == 0
	d.limits.max_ttl_hours == 168
}

test_unknown_team_is_denied if {
	codes(object.union(request, {"team": "nobody"}))["unknown_team"]
}

test_unknown_class_is_denied if {
	codes(object.union(request, {"class": "huge"}))["unknown_class"]
}

test_owner_outside_team_is_denied if {
	codes(object.union(request, {"owner": "mallory"}))["owner_not_in_team"]
}

test_member_owner_is_not_flagged if {
	not codes(object.union(request, {"owner": "ben"}))["owner_not_in_team"]
}

test_invalid_name_is_denied if {
	codes(object.union(request, {"name": "Feature_Payments"}))["invalid_name"]
}

test_cpu_over_quota_is_denied if {
	codes(object.union(request, {"usage": {"cpu": 30}}))["quota_exceeded"]
}

test_environment_count_over_quota_is_denied if {
	d := provisioning.decision with input as object.union(request, {"usage": {"environments": 5}}) with data.platform as platform
	some v in d.violations
	v.field == "environments"
}

test_budget_is_enforced if {
	codes(object.union(request, {"estimated_monthly_cost": 1500}))["budget_exceeded"]
}

test_class_size_cap_is_enforced if {
	codes(object.union(request, {"resources": {"cpu": 12}}))["size_cap_exceeded"]
}

test_feature_ttl_over_seven_days_is_denied if {
	codes(object.union(request, {"ttl_hours": 169}))["ttl_too_long"]
}

test_feature_without_ttl_is_denied if {
	codes(object.remove(request, ["ttl_hours"]))["ttl_required"]
}

test_prod_needs_no_ttl if {
	req := object.union(object.remove(request, ["ttl_hours"]), {"class": "prod", "source_env": "prod"})
	d := provisioning.decision with input as req with data.platform as platform
	d.allowed
}

test_prod_data_into_feature_is_denied if {
	codes(object.union(request, {"source_env": "prod"}))["forbidden_source"]
}

test_nearly_used_quota_warns if {
	d := provisioning.decision with input as object.union(request, {"usage": {"cpu": 24}}) with data.platform as platform
	d.allowed
	some w in d.warnings
	w.field == "resources.cpu"
}

test_default_decision_routes_to_provisioning if {
	d := data.system.main with input as request with data.platform as platform
	d.allowed
}

test_wrong_types_are_denied_not_ignored if {
	codes(object.union(request, {"team": 42}))["invalid_field"]
	codes(object.union(request, {"name": 7}))["invalid_field"]
	codes(object.union(request, {"resources": "lots"}))["invalid_field"]
	codes(object.union(request, {"resources": {"cpu": "4"}}))["invalid_field"]
	codes(object.union(request, {"ttl_hours": "7d"}))["invalid_field"]
}

test_negative_amounts_are_denied_not_offset if {
	# A team at its storage quota cannot make room by asking for -100 GB,
	# nor pass its budget with a negative cost.
	at_quota := object.union(request, {"usage": {"storage_gb": 500}, "resources": {"storage_gb": -100}})
	d := provisioning.decision with input as at_quota with data.platform as platform
	not d.allowed
	{"code": "invalid_field", "field": "resources.storage_gb", "message": "resource amounts must not be negative"} in d.violations
	codes(object.union(request, {"usage": {"cpu": -5}}))["invalid_field"]
	over_budget := object.union(request, {"usage": {"monthly_cost": 2500}, "estimated_monthly_cost": -600})
	codes(over_budget)["invalid_field"]
	codes(object.union(request, {"ttl_hours": -1}))["invalid_field"]
}

test_resources_without_a_quota_are_denied_not_ignored if {
	# A GPU request under a misspelt key must not bypass the GPU quota.
	req := object.union(request, {"resources": {"cpu": 4, "gpus": 8}})
	d := provisioning.decision with input as req with data.platform as platform
	not d.allowed
	d.violations == {{
		"code": "invalid_field", "field": "resources.gpus",
		"message": "gpus is not a quota dimension (one of cpu, memory_gb, storage_gb, gpu, databases, caches)",
	}}
}

test_usage_that_is_not_a_number_is_denied_not_counted_as_zero if {
	# 40 CPUs in use as a string: the request must not pass as if none were.
	req := object.union(request, {"usage": {"cpu": "40"}})
	d := provisioning.decision with input as req with data.platform as platform
	not d.allowed
	some v in d.violations
	v == {"code": "invalid_field", "field": "usage.cpu", "message": "usage amounts must be numbers"}
}

test_missing_usage_or_resources_is_invalid_not_zero if {
	# An orchestrator that forgets usage must not pass every quota.
	no_usage := object.remove(request, ["usage"])
	d := provisioning.decision with input as no_usage with data.platform as platform
	not d.allowed
	{"code": "invalid_field", "field": "usage", "message": "usage must be an object"} in d.violations
	no_resources := object.remove(request, ["resources"])
	e := provisioning.decision with input as no_resources with data.platform as platform
	not e.allowed
	{"code": "invalid_field", "field": "resources", "message": "resources must be an object"} in e.violations
	codes(object.union(request, {"usage": null}))["invalid_field"]
	codes(object.union(request, {"usage": [1]}))["invalid_field"]
}

test_non_object_input_is_denied if {
	d := provisioning.decision with input as ["not", "a", "request"] with data.platform as platform
	not d.allowed
	{"code": "invalid_field", "field": "", "message": "the request must be a JSON object"} in d.violations
}

test_name_edges if {
	codes(object.union(request, {"name": "-payments"}))["invalid_name"]
	codes(object.union(request, {"name": "payments-"}))["invalid_name"]
	codes(object.union(request, {"name": ""}))["invalid_name"]
	codes(object.union(request, {"name": concat("", [x | some _ in numbers.range(1, 64); x := "a"])}))["invalid_name"]
	not codes(object.union(request, {"name": concat("", [x | some _ in numbers.range(1, 63); x := "a"])}))["invalid_name"]
}

# With no input at all (GET /v1/data/system/main), OPA reads every
# `not f(input…)` as undefined: the request must still be refused.
test_no_input_at_all_is_refused if {
	d := provisioning.decision with data.platform as platform
	not d.allowed
	d.violations[_].code == "invalid_field"
}
