# Pre-provision check for the developer platform's environment requests.
#
# Input: an environment request as the orchestrator sends it (see README,
# "Decision contracts"). Data: data.platform.teams (members, quotas) and
# data.platform.classes (per-class TTL and size caps).
#
# Every lookup into data is by key, so the cost does not grow with the
# number of teams.
package provisioning

import rego.v1

default decision := {
	"allowed": false,
	"violations": [{"code": "invalid_request", "field": "", "message": "the request could not be evaluated"}],
	"warnings": [],
	"limits": {},
}

decision := {
	"allowed": count(violations) == 0,
	"violations": violations,
	"warnings": warnings,
	"limits": limits,
}

# The quota dimensions a request consumes.
quota_dimensions := ["cpu", "memory_gb", "storage_gb", "gpu"]

team := data.platform.teams[input.team]

class := data.platform.classes[input.class]

resources := object.get(input, "resources", {})

usage := object.get(input, "usage", {})

# Requested and in-use amounts per dimension, 0 where the request is silent.
requested := {dimension: object.get(resources, dimension, 0) | some dimension in quota_dimensions}

in_use := {dimension: object.get(usage, dimension, 0) | some dimension in quota_dimensions}

limits := {
	"quota": object.get(data.platform.teams, [input.team, "quota"], {}),
	"class": object.get(data.platform.classes, [input.class, "caps"], {}),
	"max_ttl_hours": object.get(data.platform.classes, [input.class, "max_ttl_hours"], null),
}

violations contains v if {
	not team
	v := {"code": "unknown_team", "field": "team", "message": sprintf("team %q is not in the platform catalog", [input.team])}
}

violations contains v if {
	not class
	v := {"code": "unknown_class", "field": "class", "message": sprintf("class %q is not one of dev, feature, staging, prod", [input.class])}
}

violations contains v if {
	team
	not team.members[input.owner]
	v := {"code": "owner_not_in_team", "field": "owner", "message": sprintf("owner %q is not a member of team %q", [input.owner, input.team])}
}

# DNS-1123 label: 1 to 63 of [a-z0-9-], starting and ending alphanumeric.
# Checked with string builtins: a regex match costs several times more.
dns_label_chars := "abcdefghijklmnopqrstuvwxyz0123456789-"

valid_name(name) if {
	is_string(name)
	count(name) > 0
	count(name) <= 63
	trim(name, dns_label_chars) == ""
	not startswith(name, "-")
	not endswith(name, "-")
}

violations contains v if {
	not valid_name(input.name)
	v := {"code": "invalid_name", "field": "name", "message": sprintf("name %q is not a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)", [input.name])}
}

violations contains v if {
	some dimension in quota_dimensions
	limit := team.quota[dimension]
	total := in_use[dimension] + requested[dimension]
	total > limit
	v := {"code": "quota_exceeded", "field": concat(".", ["resources", dimension]), "message": sprintf("%s: %v requested + %v in use exceeds the team quota of %v", [dimension, requested[dimension], in_use[dimension], limit])}
}

violations contains v if {
	limit := team.quota.environments
	object.get(usage, "environments", 0) + 1 > limit
	v := {"code": "quota_exceeded", "field": "environments", "message": sprintf("team %q already runs %v of its %v environments", [input.team, object.get(usage, "environments", 0), limit])}
}

violations contains v if {
	budget := team.quota.monthly_budget
	total := object.get(usage, "monthly_cost", 0) + object.get(input, "estimated_monthly_cost", 0)
	total > budget
	v := {"code": "budget_exceeded", "field": "estimated_monthly_cost", "message": sprintf("estimated monthly cost %v + %v already committed exceeds the team budget of %v", [object.get(input, "estimated_monthly_cost", 0), object.get(usage, "monthly_cost", 0), budget])}
}

violations contains v if {
	some dimension in quota_dimensions
	cap := class.caps[dimension]
	requested[dimension] > cap
	v := {"code": "size_cap_exceeded", "field": concat(".", ["resources", dimension]), "message": sprintf("%s: %v exceeds the %s environment cap of %v", [dimension, requested[dimension], input.class, cap])}
}

violations contains v if {
	max := class.max_ttl_hours
	not input.ttl_hours
	v := {"code": "ttl_required", "field": "ttl_hours", "message": sprintf("%s environments need a TTL of at most %v hours", [input.class, max])}
}

violations contains v if {
	max := class.max_ttl_hours
	input.ttl_hours > max
	v := {"code": "ttl_too_long", "field": "ttl_hours", "message": sprintf("TTL of %v hours exceeds the %s maximum of %v hours", [input.ttl_hours, input.class, max])}
}

violations contains v if {
	input.source_env
	class.forbidden_sources[input.source_env]
	v := {"code": "forbidden_source", "field": "source_env", "message": sprintf("%s environments may not be created from %s data", [input.class, input.source_env])}
}

# Warn when a request leaves less than a fifth of a quota.
warnings contains w if {
	some dimension in quota_dimensions
	limit := team.quota[dimension]
	limit > 0
	total := in_use[dimension] + requested[dimension]
	total <= limit
	total * 100 > limit * 80
	w := {"code": "quota_nearly_used", "field": concat(".", ["resources", dimension]), "message": sprintf("%s: this request brings team %q to %v of its %v quota", [dimension, input.team, total, limit])}
}
