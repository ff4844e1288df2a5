# Consistency checks of the platform data, run by `portcullis check`: each
# message in `errors` is a defect in bundles/ that would otherwise surface
# only at decision time.
package system.check

import rego.v1

platform := data.platform

quota_keys := ["cpu", "memory_gb", "storage_gb", "gpu", "databases", "caches", "environments", "monthly_budget"]

errors contains msg if {
	some name, team in platform.teams
	not is_object(object.get(team, "quota", null))
	msg := sprintf("teams.%s has no quota", [name])
}

errors contains msg if {
	some name, team in platform.teams
	is_object(team.quota)
	some key in quota_keys
	not is_number(object.get(team.quota, key, null))
	msg := sprintf("teams.%s.quota.%s is missing or not a number", [name, key])
}

errors contains msg if {
	some name, team in platform.teams
	count([p | some p, role in team.members; role == "lead"]) == 0
	msg := sprintf("teams.%s has no lead", [name])
}

errors contains msg if {
	some name, team in platform.teams
	some person, _ in team.members
	not platform.people[person]
	msg := sprintf("teams.%s.members names %s, who is not in people", [name, person])
}

errors contains msg if {
	some name, team in platform.teams
	some source in object.get(team, ["network", "allow_from_teams"], [])
	not platform.teams[source]
	msg := sprintf("teams.%s.network.allow_from_teams names unknown team %v", [name, source])
}

errors contains msg if {
	some name, team in platform.teams
	some cidr in object.get(team, ["network", "egress_allowances"], [])
	not valid_cidr(cidr)
	msg := sprintf("teams.%s.network.egress_allowances has a malformed CIDR %v", [name, cidr])
}

# Allowances must be in merged form, so that the network policy can test
# containment in one allowance (see network.egress_allowed).
errors contains msg if {
	some name, team in platform.teams
	allowances := object.get(team, ["network", "egress_allowances"], [])
	every cidr in allowances {
		valid_cidr(cidr)
	}
	merged := net.cidr_merge(allowances)
	merged != {canonical(cidr) | some cidr in allowances}
	msg := sprintf("teams.%s.network.egress_allowances must be merged: use %v", [name, sort(merged)])
}

# A CIDR with its host bits cleared, as net.cidr_merge writes it.
canonical(cidr) := c if {
	some c in net.cidr_merge([cidr])
}

errors contains msg if {
	some name, team in platform.teams
	some cidr in object.get(team, ["network", "egress_allowances"], [])
	valid_cidr(cidr)
	some range in platform.network.protected_ranges
	valid_cidr(range)
	net.cidr_intersects(cidr, range)
	msg := sprintf("teams.%s.network.egress_allowances %v overlaps the protected range %v", [name, cidr, range])
}

errors contains msg if {
	some key in ["private_ranges", "protected_ranges"]
	some cidr in platform.network[key]
	not valid_cidr(cidr)
	msg := sprintf("network.%s has a malformed CIDR %v", [key, cidr])
}

valid_cidr(cidr) if {
	is_string(cidr)
	net.cidr_is_valid(cidr)
}

errors contains msg if {
	some name, service in platform.services
	not platform.teams[service.team]
	msg := sprintf("services.%s is owned by %v, which is not a team", [name, service.team])
}

errors contains msg if {
	some name, service in platform.services
	some owner in service.owners
	not platform.teams[service.team].members[owner]
	msg := sprintf("services.%s lists owner %v, who is not on team %v", [name, owner, service.team])
}

errors contains msg if {
	some prefix, service in platform.secrets.paths
	not platform.services[service]
	msg := sprintf("secrets.paths.%s points to unknown service %v", [prefix, service])
}

errors contains msg if {
	some name, ns in platform.namespaces
	not platform.teams[ns.team]
	msg := sprintf("namespaces.%s belongs to unknown team %v", [name, ns.team])
}

errors contains msg if {
	some name, ns in platform.namespaces
	not platform.classes[ns.class]
	msg := sprintf("namespaces.%s has unknown class %v", [name, ns.class])
}

errors contains msg if {
	some person in object.get(platform, ["secrets", "fallback_approvers"], [])
	not platform.people[person]
	msg := sprintf("secrets.fallback_approvers names %v, who is not in people", [person])
}
