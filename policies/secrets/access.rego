# Secret-access auto-approval for the secret broker.
#
# Input: {"requester", "secret_path", "environment", "reason", "duration_seconds"}
# Data: data.platform.secrets (path prefix -> service, break-glass prefixes,
# duration caps), data.platform.services (service -> team, owners),
# data.platform.teams (members with roles), data.platform.people.
#
# Output: {"decision": "approve" | "review" | "deny", "reasons": [...],
#          "approvers": [...], "max_duration_seconds": N}
# Deny wins over everything; approve needs ownership or team membership and
# a duration within the automatic cap; everything else goes to the owning
# team's leads for review.
package secrets.access

import rego.v1

settings := data.platform.secrets

requester := input.requester if is_string(input.requester)

secret_path := input.secret_path if is_string(input.secret_path)

duration := input.duration_seconds if is_number(input.duration_seconds)

# Prod when the caller says so, or when a segment of the path names a prod
# environment (kv/prod/...): a request cannot lower its own environment to
# get the non-prod cap or skip the reason.
prod if input.environment in settings.prod_environments

prod if {
	some part in split(secret_path, "/")
	part in settings.prod_environments
}

# The registered prefix that matches the path most specifically, by
# segments ("kv/prod/payments-api" matches "kv/prod/payments-api/db").
# Looked up by key for each of the path's prefixes, longest last.
matching_prefixes := [prefix |
	parts := split(secret_path, "/")
	some n in numbers.range(1, count(parts))
	prefix := concat("/", array.slice(parts, 0, n))
	settings.paths[prefix]
]

service_name := settings.paths[matching_prefixes[count(matching_prefixes) - 1]]

service := data.platform.services[service_name]

owning_team := data.platform.teams[service.team]

owner if requester in service.owners

team_member if owning_team.members[requester]

auto_cap := settings.caps.prod_seconds if prod

else := settings.caps.default_seconds

break_glass if {
	some prefix in settings.break_glass
	segment_prefix(prefix, secret_path)
}

segment_prefix(prefix, path) if prefix == path

segment_prefix(prefix, path) if startswith(path, concat("", [prefix, "/"]))

has_reason if {
	is_string(input.reason)
	trim_space(input.reason) != ""
}

# --- what must never pass

deny_reasons contains "requester is missing or not a string" if not requester

deny_reasons contains msg if {
	not data.platform.people[requester]
	requester
	msg := sprintf("requester %q is not a known person", [requester])
}

deny_reasons contains "secret_path is missing or not a string" if not secret_path

deny_reasons contains msg if {
	secret_path
	not service
	not break_glass
	msg := sprintf("secret path %q belongs to no registered service", [secret_path])
}

deny_reasons contains msg if {
	break_glass
	msg := sprintf("%q is a break-glass path: use the break-glass procedure, not the broker", [secret_path])
}

deny_reasons contains "prod access needs a reason" if {
	prod
	not has_reason
}

deny_reasons contains "duration_seconds must be a positive number" if not positive_duration

positive_duration if duration > 0

deny_reasons contains msg if {
	duration > settings.caps.hard_cap_seconds
	msg := sprintf("duration %v s exceeds the hard cap of %v s", [duration, settings.caps.hard_cap_seconds])
}

# --- what passes on its own

approve_reasons contains msg if {
	owner
	msg := sprintf("%s owns service %s", [requester, service_name])
}

approve_reasons contains msg if {
	not owner
	team_member
	msg := sprintf("%s is a member of %s, which owns service %s", [requester, service.team, service_name])
}

# --- why a human must look

review_reasons contains msg if {
	not owner
	not team_member
	msg := sprintf("%s is not on team %s, which owns service %s", [requester, service.team, service_name])
}

review_reasons contains msg if {
	duration > auto_cap
	msg := sprintf("duration %v s exceeds the automatic approval cap of %v s%s", [duration, auto_cap, prod_suffix])
}

prod_suffix := " for prod" if prod

else := ""

leads := sort([person |
	some person, role in owning_team.members
	role == "lead"
	person != requester
])

# Who reviews: the owning team's leads other than the requester; when there
# are none (the sole lead asks for more than the automatic cap), the
# configured fallback group (settings.fallback_approvers), never the
# requester. With neither, the request is denied: a review that no one can
# act on is no decision.
approvers := leads if count(leads) > 0

else := sort([person |
	some person in object.get(settings, "fallback_approvers", [])
	person != requester
])

deny_reasons contains msg if {
	count(review_reasons) > 0
	count(approvers) == 0
	msg := sprintf("no one but %s can approve access to %s: add a lead to team %s or set secrets.fallback_approvers", [requester, service_name, service.team])
}

decision := {
	"decision": "deny",
	"reasons": sort(deny_reasons),
	"approvers": [],
	"max_duration_seconds": 0,
} if {
	count(deny_reasons) > 0
} else := {
	"decision": "approve",
	"reasons": sort(approve_reasons),
	"approvers": [],
	"max_duration_seconds": auto_cap,
} if {
	count(review_reasons) == 0
	count(approve_reasons) > 0
} else := {
	"decision": "review",
	"reasons": sort(review_reasons),
	"approvers": approvers,
	"max_duration_seconds": settings.caps.hard_cap_seconds,
}
