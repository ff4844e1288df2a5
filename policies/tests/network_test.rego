package tests.network

import rego.v1

import data.network
import data.tests.fixtures

default_deny(ns) := {
	"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	"metadata": {"name": "default-deny", "namespace": ns},
	"spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}

policy(ns, spec) := {
	"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
	"metadata": {"name": "p", "namespace": ns},
	"spec": object.union({"podSelector": {"matchLabels": {"app": "api"}}}, spec),
}

service(ns, type) := {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": ns}, "spec": {"type": type}}

env(class, objects) := {"team": "payments", "class": class, "namespaces": ["payments-x"], "objects": objects}

decide(request) := d if {
	d := network.decision with input as request with data.platform as fixtures.platform
}

codes(request) := {v.code | some v in decide(request).violations}

test_clean_environment_is_allowed if {
	d := decide(env("feature", [default_deny("payments-x"), service("payments-x", "ClusterIP")]))
	d.allowed
	d.violations == set()
	d.warnings == set()
}

test_namespace_without_default_deny_is_refused if {
	d := decide(env("feature", []))
	not d.allowed
	d.violations == {{"code": "missing_default_deny", "object": "Namespace/payments-x", "message": "namespace payments-x has no default-deny ingress NetworkPolicy (podSelector {}, policyTypes [Ingress], no ingress rules)"}}
}

test_policy_with_ingress_rules_is_not_default_deny if {
	allow_all := policy("payments-x", {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{}]})
	codes(env("feature", [allow_all]))["missing_default_deny"]
}

test_namespaces_of_objects_need_default_deny_too if {
	codes(env("feature", [default_deny("payments-x"), service("payments-y", "ClusterIP")]))["missing_default_deny"]
}

test_load_balancer_in_dev_and_feature_is_refused if {
	codes(env("feature", [default_deny("payments-x"), service("payments-x", "LoadBalancer")]))["exposed_service"]
	codes(env("dev", [default_deny("payments-x"), service("payments-x", "NodePort")]))["exposed_service"]
	not codes(env("prod", [default_deny("payments-x"), service("payments-x", "LoadBalancer")]))["exposed_service"]
}

test_rules_without_peers_admit_every_address if {
	# Kubernetes reads a rule with no from/to as "from/to anywhere".
	open_egress := policy("payments-x", {"egress": [{"ports": [{"port": 443}]}]})
	codes(env("feature", [default_deny("payments-x"), open_egress]))["internet_egress"]
	codes(env("feature", [default_deny("payments-x"), open_egress]))["protected_destination"]
	open_ingress := policy("payments-x", {"ingress": [{"from": []}]})
	codes(env("feature", [default_deny("payments-x"), open_ingress]))["public_ingress"]
	null_ingress := policy("payments-x", {"ingress": null})
	not codes(env("feature", [default_deny("payments-x"), null_ingress]))["public_ingress"]
}

test_objects_without_metadata_are_still_checked if {
	# A manifest without metadata names no object, but its violations stand.
	p := object.remove(policy("payments-x", {"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}), ["metadata"])
	codes(env("feature", [default_deny("payments-x"), p]))["public_ingress"]
	s := object.remove(service("payments-x", "LoadBalancer"), ["metadata"])
	codes(env("feature", [default_deny("payments-x"), s]))["exposed_service"]
}

test_public_ingress_is_refused_outside_ingress_controllers if {
	p := policy("payments-x", {"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})
	codes(env("prod", [default_deny("payments-x"), p]))["public_ingress"]
	partly_public := policy("payments-x", {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/7"}}]}]})
	codes(env("prod", [default_deny("payments-x"), partly_public]))["public_ingress"]
	controller := policy("ingress-nginx", {"ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})
	not codes({"team": "payments", "class": "prod", "objects": [default_deny("ingress-nginx"), controller]})["public_ingress"]
}

test_private_ingress_is_fine if {
	p := policy("payments-x", {"ingress": [{"from": [{"ipBlock": {"cidr": "10.20.0.0/16"}}, {"ipBlock": {"cidr": "fd00:1::/64"}}]}]})
	decide(env("prod", [default_deny("payments-x"), p])).allowed
}

test_internet_egress_only_in_prod if {
	p := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/26"}}]}]})
	d := decide(env("feature", [default_deny("payments-x"), p]))
	some v in d.violations
	v.code == "internet_egress"
	v.message == "internet egress (198.51.100.0/26) is only allowed in prod environments"
	decide(env("prod", [default_deny("payments-x"), p])).allowed
}

test_prod_egress_inside_allowances if {
	p := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.128/25"}}, {"ipBlock": {"cidr": "198.51.100.7/32"}}]}]})
	decide(env("prod", [default_deny("payments-x"), p])).allowed
	wider := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/23"}}]}]})
	codes(env("prod", [default_deny("payments-x"), wider]))["internet_egress"]
	outside := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}]})
	d := decide(env("prod", [default_deny("payments-x"), outside]))
	some v in d.violations
	v.message == "egress to 203.0.113.0/24 is outside team payments's egress allowances"
}

test_egress_to_metadata_is_always_refused if {
	p := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "169.254.169.254/32"}}]}]})
	codes(env("prod", [default_deny("payments-x"), p]))["protected_destination"]
	wide := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})
	codes(env("prod", [default_deny("payments-x"), wide]))["protected_destination"]
	inside := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "169.254.169.0/24"}}]}]})
	codes(env("prod", [default_deny("payments-x"), inside]))["protected_destination"]
	beside := policy("payments-x", {"egress": [{"to": [{"ipBlock": {"cidr": "169.253.0.0/16"}}]}]})
	not codes(env("prod", [default_deny("payments-x"), beside]))["protected_destination"]
}

test_malformed_cidr_is_reported if {
	p := policy("payments-x", {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]})
	codes(env("prod", [default_deny("payments-x"), p])) == {"invalid_cidr"}
}

test_declared_namespaces_must_be_names if {
	d := decide({"team": "payments", "class": "feature", "namespaces": [7], "objects": []})
	some v in d.violations
	v == {"code": "invalid_field", "object": "", "message": "namespaces must list names, not 7"}
}

test_a_selector_that_names_no_team_is_not_taken_for_consent if {
	# matchExpressions, or other labels, can select any team's namespaces.
	by_expression := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [{"key": "portcullis.dev/team", "operator": "In", "values": ["growth"]}]}}]}]})
	codes(env("prod", [default_deny("payments-x"), by_expression]))["cross_team_ingress"]
	by_other_label := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "prod"}}}]}]})
	codes(env("prod", [default_deny("payments-x"), by_other_label]))["cross_team_ingress"]
	by_team := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"portcullis.dev/team": "payments", "env": "prod"}}}]}]})
	not codes(env("prod", [default_deny("payments-x"), by_team]))["cross_team_ingress"]
}

test_cross_team_selector_needs_consent if {
	from_checkout := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"portcullis.dev/team": "checkout"}}}]}]})
	decide(env("prod", [default_deny("payments-x"), from_checkout])).allowed
	from_stranger := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"portcullis.dev/team": "growth"}}}]}]})
	codes(env("prod", [default_deny("payments-x"), from_stranger]))["cross_team_ingress"]
	by_namespace := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "checkout-dev"}}}]}]})
	decide(env("prod", [default_deny("payments-x"), by_namespace])).allowed
	own_team := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"portcullis.dev/team": "payments"}}}]}]})
	decide(env("prod", [default_deny("payments-x"), own_team])).allowed
}

test_reverse_direction_is_not_implied if {
	# payments allows checkout; checkout does not allow payments.
	p := policy("checkout-x", {"ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"portcullis.dev/team": "payments"}}}]}]})
	codes({"team": "checkout", "class": "prod", "objects": [default_deny("checkout-x"), p]})["cross_team_ingress"]
}

test_empty_namespace_selector_warns if {
	p := policy("payments-x", {"ingress": [{"from": [{"namespaceSelector": {}}]}]})
	d := decide(env("prod", [default_deny("payments-x"), p]))
	d.allowed
	some w in d.warnings
	w.code == "all_namespaces"
}

test_bad_request_shape_is_refused if {
	codes({"objects": []}) == {"invalid_field"}
	codes({"team": "payments", "class": "prod", "objects": "nope"}) == {"invalid_field"}
	decide({"team": "payments", "class": "prod", "objects": []}).allowed
}
