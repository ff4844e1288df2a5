package tests.secrets

import rego.v1

import data.secrets.access
import data.tests.fixtures

base := {"requester": "ben", "secret_path": "kv/prod/payments-api/db-password", "environment": "prod", "reason": "rotate after incident 42", "duration_seconds": 1800}

decide(overrides) := d if {
	d := access.decision with input as object.union(base, overrides) with data.platform as fixtures.platform
}

test_owner_is_approved_with_prod_cap if {
	d := decide({})
	d.decision == "approve"
	d.max_duration_seconds == 3600
	d.reasons == ["ben owns service payments-api"]
	d.approvers == []
}

test_team_member_is_approved if {
	d := decide({"requester": "ana"})
	d.decision == "approve"
	d.reasons == ["ana is a member of payments, which owns service payments-api"]
}

test_exact_prefix_path_matches if {
	decide({"secret_path": "kv/prod/payments-api"}).decision == "approve"
}

test_outsider_goes_to_review_with_the_leads if {
	d := decide({"requester": "cruz"})
	d.decision == "review"
	d.approvers == ["ana", "dee"]
	d.reasons == ["cruz is not on team payments, which owns service payments-api"]
	d.max_duration_seconds == 86400
}

test_lead_is_not_their_own_approver if {
	d := decide({"requester": "ana", "duration_seconds": 7200})
	d.decision == "review"
	d.approvers == ["dee"]
}

sole_lead := {"requester": "cruz", "secret_path": "kv/prod/checkout-api/token", "duration_seconds": 7200}

test_a_sole_lead_over_the_cap_goes_to_the_fallback_approvers if {
	# cruz is checkout's only lead: no lead but the requester can approve.
	with_fallback := object.union(fixtures.platform, {"secrets": {"fallback_approvers": ["ana", "cruz"]}})
	d := access.decision with input as object.union(base, sole_lead) with data.platform as with_fallback
	d.decision == "review"
	d.approvers == ["ana"]
}

test_a_review_no_one_can_act_on_is_denied if {
	d := decide(sole_lead)
	d.decision == "deny"
	d.approvers == []
	d.reasons == ["no one but cruz can approve access to checkout-api: add a lead to team checkout or set secrets.fallback_approvers"]
}

test_over_prod_cap_needs_review if {
	d := decide({"duration_seconds": 7200})
	d.decision == "review"
	d.reasons == ["duration 7200 s exceeds the automatic approval cap of 3600 s for prod"]
}

test_non_prod_uses_default_cap if {
	d := decide({"secret_path": "kv/dev/payments-api/token", "environment": "dev", "reason": "", "duration_seconds": 7200})
	d.decision == "approve"
	d.max_duration_seconds == 28800
	decide({"secret_path": "kv/dev/payments-api/token", "environment": "dev", "duration_seconds": 30000}).reasons == ["duration 30000 s exceeds the automatic approval cap of 28800 s"]
}

test_a_prod_path_is_prod_whatever_the_environment_says if {
	# The path names prod: claiming dev (or nothing) gets neither the
	# default cap nor a pass on the reason.
	d := decide({"environment": "dev", "duration_seconds": 7200})
	d.decision == "review"
	d.reasons == ["duration 7200 s exceeds the automatic approval cap of 3600 s for prod"]
	decide({"environment": "dev", "reason": ""}).reasons == ["prod access needs a reason"]
	no_environment := access.decision with input as object.remove(base, ["environment"]) with data.platform as fixtures.platform
	no_environment.max_duration_seconds == 3600
}

test_unknown_requester_is_denied if {
	d := decide({"requester": "mallory"})
	d.decision == "deny"
	d.reasons == ["requester \"mallory\" is not a known person"]
	d.max_duration_seconds == 0
}

test_missing_requester_is_denied if {
	d := access.decision with input as object.remove(base, ["requester"]) with data.platform as fixtures.platform
	d.decision == "deny"
	"requester is missing or not a string" in d.reasons
}

test_unknown_path_is_denied if {
	d := decide({"secret_path": "kv/prod/unknown/thing"})
	d.decision == "deny"
	d.reasons == ["secret path \"kv/prod/unknown/thing\" belongs to no registered service"]
}

test_similar_prefix_does_not_match if {
	decide({"secret_path": "kv/prod/payments-api-old/x"}).decision == "deny"
}

test_missing_path_is_denied if {
	decide({"secret_path": 7}).reasons == ["secret_path is missing or not a string"]
}

test_break_glass_is_always_denied if {
	d := decide({"requester": "ana", "secret_path": "kv/prod/break-glass/root-token"})
	d.decision == "deny"
	d.reasons == ["\"kv/prod/break-glass/root-token\" is a break-glass path: use the break-glass procedure, not the broker"]
	decide({"secret_path": "kv/prod/break-glass"}).decision == "deny"
}

test_prod_without_reason_is_denied if {
	decide({"reason": "   "}).reasons == ["prod access needs a reason"]
	decide({"reason": 42}).decision == "deny"
}

test_durations_are_bounded if {
	decide({"duration_seconds": 90000}).reasons == ["duration 90000 s exceeds the hard cap of 86400 s"]
	decide({"duration_seconds": 0}).reasons == ["duration_seconds must be a positive number"]
	decide({"duration_seconds": "1h"}).decision == "deny"
}
