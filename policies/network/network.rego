# Network guardrails over the Kubernetes objects an environment will create
# (NetworkPolicy, Service, Ingress manifests as the orchestrator renders
# them), and, through object_violations, over single objects at admission.
#
# Input: {"team": "payments", "class": "feature",
#         "namespaces": ["payments-feature-x"], "objects": [manifest, ...]}
# Data: data.platform.network (private, protected and ingress-controller
# namespaces), data.platform.teams[*].network (allow_from_teams,
# egress_allowances), data.platform.namespaces (namespace -> team, class).
#
# CIDR logic is real CIDR math on parsed addresses (net.cidr_contains here;
# net.cidr_intersects and net.cidr_merge, which Portcullis provides in Rust,
# check the data in system.check).
package network

import rego.v1

decision := {
	"allowed": count(violations) == 0,
	"violations": violations,
	"warnings": warnings,
}

settings := data.platform.network

team_label := "portcullis.dev/team"

context := {"team": input.team, "class": input.class}

default objects := []

objects := input.objects if is_array(input.objects)

default declared_namespaces := []

declared_namespaces := input.namespaces if is_array(input.namespaces)

# Every namespace of the environment: declared, or holding an object.
namespaces := {ns | some ns in declared_namespaces; is_string(ns)} | {ns |
	some obj in objects
	ns := obj.metadata.namespace
	is_string(ns)
}

# The request as an object ({} when it is not one). In OPA
# `not is_string(input.team)` is undefined, not true, when the team is
# missing: the checks below read the fields through object.get.
default request := {}

request := input if is_object(input)

violations contains v if {
	not is_string(object.get(request, "team", null))
	v := {"code": "invalid_field", "object": "", "message": "team must be a string"}
}

violations contains v if {
	not is_string(object.get(request, "class", null))
	v := {"code": "invalid_field", "object": "", "message": "class must be a string"}
}

violations contains v if {
	is_object(input)
	some field, value in input
	field in {"objects", "namespaces"}
	not is_array(value)
	v := {"code": "invalid_field", "object": "", "message": sprintf("%s must be an array", [field])}
}

violations contains v if {
	some ns in declared_namespaces
	not is_string(ns)
	v := {"code": "invalid_field", "object": "", "message": sprintf("namespaces must list names, not %v", [ns])}
}

violations contains v if {
	some ns in namespaces
	not default_deny_namespaces[ns]
	v := {
		"code": "missing_default_deny",
		"object": concat("/", ["Namespace", ns]),
		"message": sprintf("namespace %s has no default-deny ingress NetworkPolicy (podSelector {}, policyTypes [Ingress], no ingress rules)", [ns]),
	}
}

# Dispatched by kind here rather than through object_violations: one
# function call less per object on the hot path.
violations contains v if {
	some obj in objects
	obj.kind == "NetworkPolicy"
	some v in policy_violations(obj, context)
}

violations contains v if {
	some obj in objects
	obj.kind == "Service"
	some v in service_violations(obj, context)
}

warnings contains w if {
	some obj in objects
	obj.kind == "NetworkPolicy"
	some rule in list_field(obj.spec, "ingress")
	some peer in rule_peers(rule, "from")
	peer.namespaceSelector == {}
	w := {
		"code": "all_namespaces",
		"object": object_name(obj),
		"message": "an empty namespaceSelector admits traffic from every namespace",
	}
}

# Namespaces with a NetworkPolicy that selects every pod and admits nothing.
default_deny_namespaces contains ns if {
	some obj in objects
	obj.kind == "NetworkPolicy"
	ns := obj.metadata.namespace
	selects_all_pods(obj.spec)
	"Ingress" in list_field(obj.spec, "policyTypes")
	count(list_field(obj.spec, "ingress")) == 0
}

# An absent or empty podSelector selects every pod; anything else, a
# malformed selector included, is not taken for one.
selects_all_pods(spec) if {
	is_object(spec)
	selector := object.get(spec, "podSelector", {})
	is_object(selector)
	object.get(selector, "matchLabels", {}) in {{}, null}
	object.get(selector, "matchExpressions", []) in {[], null}
}

# --- one object at a time (also used by data.admission)

# The violations of one object, given {"team", "class"} of its environment.
# Each kind is examined once, with its peers gathered once: function calls
# dominate evaluation cost, so the checks share what they read.
object_violations(obj, ctx) := service_violations(obj, ctx) if obj.kind == "Service"

object_violations(obj, ctx) := policy_violations(obj, ctx) if obj.kind == "NetworkPolicy"

object_violations(obj, _) := set() if not obj.kind in {"Service", "NetworkPolicy"}

# A list field of a NetworkPolicy spec or rule: [] when it is missing,
# null or not a list, as Kubernetes reads a null list.
list_field(parent, field) := parent[field] if is_array(parent[field])

else := []

# The peers a rule admits. Kubernetes admits every address when a rule
# lists no peers (the field missing, null or empty), so such a rule is
# checked as the blocks 0.0.0.0/0 and ::/0.
all_addresses := [{"ipBlock": {"cidr": "0.0.0.0/0"}}, {"ipBlock": {"cidr": "::/0"}}]

rule_peers(rule, field) := rule[field] if {
	is_array(rule[field])
	count(rule[field]) > 0
} else := all_addresses

# Defined for any object of a known kind, metadata or not, and whatever
# the types of its fields: a violation's message must not need a field
# whose absence would drop the violation, nor raise an error on bad input.
object_name(obj) := sprintf("%v/%v/%v", [obj.kind, object.get(obj, ["metadata", "namespace"], ""), object.get(obj, ["metadata", "name"], "")])

exposing_service_types := {"LoadBalancer", "NodePort"}

service_violations(obj, ctx) := {v |
	service_type := object.get(obj, ["spec", "type"], "ClusterIP")
	exposing_service_types[service_type]
	ctx.class in {"dev", "feature"}
	v := {
		"code": "exposed_service",
		"object": object_name(obj),
		"message": sprintf("a Service of type %s is not allowed in %s environments; use ClusterIP behind the ingress controller", [service_type, ctx.class]),
	}
}

policy_violations(obj, ctx) := vs if {
	name := object_name(obj)
	# name is used only inside the comprehensions below; this literal fails
	# the body if it is undefined, which the VM would not (engine::vm_gaps).
	is_string(name)
	from := [peer | some rule in list_field(obj.spec, "ingress"); some peer in rule_peers(rule, "from")]
	to := [peer | some rule in list_field(obj.spec, "egress"); some peer in rule_peers(rule, "to")]
	ingress_blocks := {cidr | some peer in from; cidr := peer.ipBlock.cidr; valid_cidr(cidr)}
	egress_blocks := {cidr | some peer in to; cidr := peer.ipBlock.cidr; valid_cidr(cidr)}
	# A block is public unless it lies wholly inside a private range. Each
	# block is classified once here; the checks below look it up in this
	# set instead of calling a function per block.
	private := {cidr |
		some cidr in ingress_blocks | egress_blocks
		some range in settings.private_ranges
		net.cidr_contains(range, cidr)
	}
	invalid := {v |
		some peer in array.concat(from, to)
		cidr := peer.ipBlock.cidr
		not valid_cidr(cidr)
		v := {"code": "invalid_cidr", "object": name, "message": sprintf("%v is not a valid CIDR", [cidr])}
	}
	public_ingress := {v |
		not object.get(obj, ["metadata", "namespace"], null) in settings.ingress_controller_namespaces
		some cidr in ingress_blocks
		not private[cidr]
		v := {
			"code": "public_ingress",
			"object": name,
			"message": sprintf("ingress from public range %s is only allowed into the ingress-controller namespaces %v", [cidr, settings.ingress_controller_namespaces]),
		}
	}
	protected_egress := {v |
		some cidr in egress_blocks
		some range in settings.protected_ranges
		intersects(cidr, range)
		v := {
			"code": "protected_destination",
			"object": name,
			"message": sprintf("egress to %s reaches the protected range %s (cloud metadata and link-local)", [cidr, range]),
		}
	}
	internet_egress := {v |
		some cidr in egress_blocks
		not private[cidr]
		not protected(cidr)
		not egress_allowed(ctx, cidr)
		v := {"code": "internet_egress", "object": name, "message": internet_egress_message(ctx, cidr)}
	}
	cross_team := {v |
		some peer in from
		source := selected_team(peer.namespaceSelector)
		source != ctx.team
		not allowed_source(ctx.team, source)
		v := {
			"code": "cross_team_ingress",
			"object": name,
			"message": sprintf("team %v does not allow ingress from team %v (data.platform.teams.%v.network.allow_from_teams)", [ctx.team, source, ctx.team]),
		}
	}
	# A namespaceSelector that selects by something other than the team
	# label or the namespace name among its matchLabels (matchExpressions,
	# or other labels only) can admit any team's namespaces, so it is not
	# taken to admit only allowed ones. ({} is the all_namespaces warning.)
	unresolved := {v |
		some peer in from
		selector := peer.namespaceSelector
		is_object(selector)
		selector != {}
		not selector.matchLabels[team_label]
		not selector.matchLabels["kubernetes.io/metadata.name"]
		v := {
			"code": "cross_team_ingress",
			"object": name,
			"message": sprintf("a namespaceSelector that names neither a team (%s) nor a namespace (kubernetes.io/metadata.name) can admit any team's namespaces: %v", [team_label, selector]),
		}
	}
	vs := ((((invalid | public_ingress) | protected_egress) | internet_egress) | cross_team) | unresolved
}

valid_cidr(cidr) if {
	is_string(cidr)
	net.cidr_is_valid(cidr)
}

protected(cidr) if {
	some range in settings.protected_ranges
	net.cidr_contains(range, cidr)
}

# Two CIDR blocks share an address exactly when one contains the other.
# (The same answer as net.cidr_intersects, which Portcullis also provides;
# written with the native builtin so this path can run on the bytecode VM.)
intersects(a, b) if net.cidr_contains(a, b)

intersects(a, b) if net.cidr_contains(b, a)

# Internet egress: prod only, and only inside one of the team's
# allowances. `portcullis check` requires allowances in merged form
# (net.cidr_merge), so containment in a single allowance is exactly
# containment in their union.
egress_allowed(ctx, cidr) if {
	ctx.class == "prod"
	some allowed in object.get(data.platform.teams, [ctx.team, "network", "egress_allowances"], [])
	net.cidr_contains(allowed, cidr)
}

internet_egress_message(ctx, cidr) := msg if {
	ctx.class == "prod"
	msg := sprintf("egress to %s is outside team %v's egress allowances", [cidr, ctx.team])
} else := sprintf("internet egress (%s) is only allowed in prod environments", [cidr])

# Namespace selectors that reach another team need that team's consent:
# the target (this policy's team) must list the source in allow_from_teams.
allowed_source(target, source) if {
	source in object.get(data.platform.teams, [target, "network", "allow_from_teams"], [])
}

selected_team(selector) := selector.matchLabels[team_label]

selected_team(selector) := team if {
	not selector.matchLabels[team_label]
	ns := selector.matchLabels["kubernetes.io/metadata.name"]
	team := data.platform.namespaces[ns].team
}
