package tests.check

import rego.v1

import data.system.check
import data.tests.fixtures

test_fixture_catalog_is_consistent if {
	check.errors == set() with data.platform as fixtures.platform
}

test_allowances_must_be_merged_and_clear_of_protected_ranges if {
	split := json.patch(fixtures.platform, [
		{"op": "replace", "path": "/teams/payments/network/egress_allowances", "value": ["198.51.100.0/25", "198.51.100.128/25", "169.254.0.0/24"]},
	])
	errors := check.errors with data.platform as split
	errors == {
		"teams.payments.network.egress_allowances must be merged: use [\"169.254.0.0/24\", \"198.51.100.0/24\"]",
		"teams.payments.network.egress_allowances 169.254.0.0/24 overlaps the protected range 169.254.0.0/16",
	}
}

test_fallback_approvers_must_be_known_people if {
	unknown := json.patch(fixtures.platform, [{"op": "add", "path": "/secrets/fallback_approvers", "value": ["ana", "nobody"]}])
	check.errors == {"secrets.fallback_approvers names nobody, who is not in people"} with data.platform as unknown
}

test_every_kind_of_defect_is_reported if {
	broken := json.patch(fixtures.platform, [
		{"op": "remove", "path": "/teams/checkout/quota"},
		{"op": "replace", "path": "/teams/payments/quota/gpu", "value": "one"},
		{"op": "add", "path": "/teams/payments/members/zed", "value": "member"},
		{"op": "replace", "path": "/teams/payments/network/allow_from_teams", "value": ["ghosts"]},
		{"op": "replace", "path": "/teams/payments/network/egress_allowances", "value": ["10.0.0.0/33"]},
		{"op": "replace", "path": "/network/protected_ranges", "value": ["nope"]},
		{"op": "replace", "path": "/services/checkout-api/team", "value": "ghosts"},
		{"op": "replace", "path": "/services/payments-api/owners", "value": ["cruz"]},
		{"op": "add", "path": "/secrets/paths/kv~1x", "value": "ghost-api"},
		{"op": "add", "path": "/namespaces/ghost-dev", "value": {"team": "ghosts", "class": "huge"}},
		{"op": "replace", "path": "/teams/checkout/members", "value": {"cruz": "member"}},
	])
	errors := check.errors with data.platform as broken
	errors == {
		"teams.checkout has no quota",
		"teams.payments.quota.gpu is missing or not a number",
		"teams.payments.members names zed, who is not in people",
		"teams.payments.network.allow_from_teams names unknown team ghosts",
		"teams.payments.network.egress_allowances has a malformed CIDR 10.0.0.0/33",
		"network.protected_ranges has a malformed CIDR nope",
		"services.checkout-api is owned by ghosts, which is not a team",
		"services.checkout-api lists owner cruz, who is not on team ghosts",
		"services.payments-api lists owner cruz, who is not on team payments",
		"secrets.paths.kv/x points to unknown service ghost-api",
		"namespaces.ghost-dev belongs to unknown team ghosts",
		"namespaces.ghost-dev has unknown class huge",
		"teams.checkout has no lead",
	}
}
