# Pre-provision check for the developer platform's environment requests.
#
# Input: an environment request as the orchestrator sends it (README,
# "Decision contracts"). Data: data.platform.teams (members, quotas) and
# data.platform.classes (per-class TTL, size caps, forbidden sources).
#
# Fail closed: a field of the wrong type, or a negative amount, is a
# violation of its own, and no rule raises a builtin error on bad input,
# so a malformed request is denied rather than slipping through as "no
# violations".
# A non-object input has no fields, so it is denied for its missing ones.
# Fast: every lookup into data is by key, so cost does not grow with the
# number of teams; and rules read input fields directly rather than through
# one-line typed wrappers, because each rule costs the VM a call.
package provisioning

import rego.v1

decision := {
	"allowed": count(violations) == 0,
	"violations": violations,
	"warnings": warnings,
	"limits": limits,
}

# The quota dimensions a request consumes.
quota_dimensions := ["cpu", "memory_gb", "storage_gb", "gpu", "databases", "caches"]

# Typed views of the request's maps: {} when the field is missing or is
# not an object (and a violation then reports it).
default resources := {}

resources := input.resources if is_object(input.resources)

default usage := {}

usage := input.usage if is_object(input.usage)

# The estimated cost, 0 when missing or not a number.
default cost := 0

cost := input.estimated_monthly_cost if is_number(input.estimated_monthly_cost)

# Amounts per dimension: what the request asks for and what the team
# already uses; 0 where the request says nothing (or says it badly, which
# is reported as invalid_field). Built with object.union rather than a
# helper function: a function call per dimension costs more than the rest.
zero_resources := {"cpu": 0, "memory_gb": 0, "storage_gb": 0, "gpu": 0, "databases": 0, "caches": 0}

zero_usage := {"cpu": 0, "memory_gb": 0, "storage_gb": 0, "gpu": 0, "databases": 0, "caches": 0, "environments": 0, "monthly_cost": 0}

requested := object.union(zero_resources, {k: n | some k, n in resources; is_number(n)})

in_use := object.union(zero_usage, {k: n | some k, n in usage; is_number(n)})

# The catalog entries the request names. Catalog keys are strings, so
# these are undefined when the field is missing or has the wrong type.
team := data.platform.teams[input.team]

class := data.platform.classes[input.class]

# What applies to this request, for the caller to show.
limits := {"quota": quota, "class": caps, "max_ttl_hours": max_ttl_hours}

default quota := {}

quota := team.quota

default caps := {}

caps := class.caps

default max_ttl_hours := null

max_ttl_hours := class.max_ttl_hours

# --- the shape of the request

string_fields := ["name", "team", "class", "owner"]

violations contains v if {
	is_object(input)
	some field in string_fields
	not is_string(object.get(input, field, null))
	v := {"code": "invalid_field", "field": field, "message": sprintf("%s must be a string", [field])}
}

# A request that is not an object is refused as a whole (in OPA, the
# field rules below are undefined on it, and it would pass). Through a rule:
# with no input at all, `not is_object(input)` is undefined in OPA, not true.
default request_is_object := false

request_is_object if is_object(input)

violations contains v if {
	not request_is_object
	v := {"code": "invalid_field", "field": "", "message": "the request must be a JSON object"}
}

# Both maps are required: a request without usage would count as a team
# using nothing and pass every quota. (A missing field is read through
# object.get: in OPA, `not is_object(input.usage)` is undefined, not true,
# when usage is missing.)
violations contains v if {
	is_object(input)
	some field in ["resources", "usage"]
	not is_object(object.get(input, field, null))
	v := {"code": "invalid_field", "field": field, "message": sprintf("%s must be an object", [field])}
}

violations contains v if {
	some field in ["ttl_hours", "estimated_monthly_cost"]
	value := input[field]
	not is_number(value)
	value != null
	v := {"code": "invalid_field", "field": field, "message": sprintf("%s must be a number", [field])}
}

# Each map is checked in one pass; the per-amount rules below only look
# for what is wrong when that pass fails.
resources_valid if {
	every key, value in resources {
		key in quota_dimensions
		is_number(value)
		value >= 0
	}
}

usage_valid if {
	every value in usage {
		is_number(value)
		value >= 0
	}
}

violations contains v if {
	not resources_valid
	some key, value in resources
	not is_number(value)
	v := {"code": "invalid_field", "field": concat(".", ["resources", key]), "message": "resource amounts must be numbers"}
}

# A resource the policy has no quota for (a new kind, or a misspelt one)
# must not be provisioned unchecked.
violations contains v if {
	not resources_valid
	some key, _ in resources
	not key in quota_dimensions
	v := {"code": "invalid_field", "field": concat(".", ["resources", key]), "message": sprintf("%v is not a quota dimension (one of %s)", [key, concat(", ", quota_dimensions)])}
}

# Usage is what the team already consumes: an amount that is not a number
# must not count as 0 and let the request through.
violations contains v if {
	not usage_valid
	some key, value in usage
	not is_number(value)
	v := {"code": "invalid_field", "field": concat(".", ["usage", key]), "message": "usage amounts must be numbers"}
}

# A negative amount would offset the rest: -500 GB of storage requested, or
# a negative cost, would let an over-quota team or budget through.
violations contains v if {
	not resources_valid
	some key, value in resources
	is_number(value)
	value < 0
	v := {"code": "invalid_field", "field": concat(".", ["resources", key]), "message": "resource amounts must not be negative"}
}

violations contains v if {
	not usage_valid
	some key, value in usage
	is_number(value)
	value < 0
	v := {"code": "invalid_field", "field": concat(".", ["usage", key]), "message": "usage amounts must not be negative"}
}

violations contains v if {
	some field in ["ttl_hours", "estimated_monthly_cost"]
	value := input[field]
	is_number(value)
	value < 0
	v := {"code": "invalid_field", "field": field, "message": sprintf("%s must not be negative", [field])}
}

# --- who and what

violations contains v if {
	team_name := input.team
	is_string(team_name)
	not team
	v := {"code": "unknown_team", "field": "team", "message": sprintf("team %q is not in the platform catalog", [team_name])}
}

violations contains v if {
	class_name := input.class
	is_string(class_name)
	not class
	v := {"code": "unknown_class", "field": "class", "message": sprintf("class %q is not one of dev, feature, staging, prod", [class_name])}
}

violations contains v if {
	owner := input.owner
	is_string(owner)
	team
	not team.members[owner]
	v := {"code": "owner_not_in_team", "field": "owner", "message": sprintf("owner %q is not a member of team %q", [owner, input.team])}
}

# DNS-1123 label: 1 to 63 of [a-z0-9-], starting and ending alphanumeric.
# Checked with string builtins: a regex match costs several times more.
violations contains v if {
	name := input.name
	is_string(name)
	not dns_label(name)
	v := {"code": "invalid_name", "field": "name", "message": sprintf("name %q is not a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters, alphanumeric at both ends)", [name])}
}

dns_label(name) if {
	count(name) > 0
	count(name) <= 63
	trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
	not startswith(name, "-")
	not endswith(name, "-")
}

# --- quotas and budget

violations contains v if {
	team_quota := team.quota
	used := in_use
	asked := requested
	some d in quota_dimensions
	limit := team_quota[d]
	used[d] + asked[d] > limit
	v := {"code": "quota_exceeded", "field": concat(".", ["resources", d]), "message": sprintf("%s: %v requested + %v in use exceeds the team quota of %v", [d, asked[d], used[d], limit])}
}

violations contains v if {
	limit := team.quota.environments
	in_use.environments + 1 > limit
	v := {"code": "quota_exceeded", "field": "environments", "message": sprintf("team %q already runs %v of its %v environments", [input.team, in_use.environments, limit])}
}

violations contains v if {
	budget := team.quota.monthly_budget
	in_use.monthly_cost + cost > budget
	v := {"code": "budget_exceeded", "field": "estimated_monthly_cost", "message": sprintf("estimated monthly cost %v + %v already committed exceeds the team budget of %v", [cost, in_use.monthly_cost, budget])}
}

# --- the environment class

violations contains v if {
	class_caps := class.caps
	asked := requested
	some d in quota_dimensions
	cap := class_caps[d]
	asked[d] > cap
	v := {"code": "size_cap_exceeded", "field": concat(".", ["resources", d]), "message": sprintf("%s: %v exceeds the %s environment cap of %v", [d, asked[d], input.class, cap])}
}

violations contains v if {
	max := class.max_ttl_hours
	not is_number(object.get(input, "ttl_hours", null))
	v := {"code": "ttl_required", "field": "ttl_hours", "message": sprintf("%s environments need a TTL of at most %v hours", [input.class, max])}
}

violations contains v if {
	max := class.max_ttl_hours
	ttl := input.ttl_hours
	is_number(ttl)
	ttl > max
	v := {"code": "ttl_too_long", "field": "ttl_hours", "message": sprintf("TTL of %v hours exceeds the %s maximum of %v hours", [ttl, input.class, max])}
}

violations contains v if {
	source := input.source_env
	is_string(source)
	class.forbidden_sources[source]
	v := {"code": "forbidden_source", "field": "source_env", "message": sprintf("%s environments may not be created from %s data", [input.class, source])}
}

# Warn when a request leaves less than a fifth of a quota.
warnings contains w if {
	team_quota := team.quota
	used := in_use
	asked := requested
	some d in quota_dimensions
	limit := team_quota[d]
	limit > 0
	total := used[d] + asked[d]
	total <= limit
	total * 100 > limit * 80
	w := {"code": "quota_nearly_used", "field": concat(".", ["resources", d]), "message": sprintf("%s: this request brings team %q to %v of its %v quota", [d, input.team, total, limit])}
}
