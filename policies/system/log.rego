# Decision-log masking, in the style of OPA's system.log.mask. Portcullis
# evaluates data.system.log.mask with the decision event as input (its
# `input`, `result`, `path`, ...) before the event is written, and removes
# or replaces every field the rule names. The Rust side also always erases
# Kubernetes Secret values from admission events (config
# decision_logs.mask.kubernetes_secrets), so this rule covers the rest.
#
# Answers: a pointer string erases that field; {"op": "upsert", "path",
# "value"} replaces its value. Erased and replaced pointers are listed in
# the event's `erased` and `masked` fields.
package system.log

import rego.v1

# Top-level input fields that carry credentials, in any API.
credential_fields := {"token", "password", "credentials", "api_key", "authorization"}

mask contains pointer if {
	some field, _ in input.input
	lower(field) in credential_fields
	pointer := concat("/", ["", "input", field])
}

# Literal environment values of admitted workloads whose names look like
# credentials are replaced (the names stay, for the audit).
mask contains {"op": "upsert", "path": path, "value": "**REDACTED**"} if {
	some i, container in input.input.request.object.spec.containers
	some j, env in container.env
	is_string(env.value)
	credential_name(env.name)
	path := sprintf("/input/request/object/spec/containers/%d/env/%d/value", [i, j])
}

credential_name(name) if {
	some word in {"PASSWORD", "TOKEN", "SECRET", "API_KEY", "PRIVATE_KEY"}
	contains(upper(name), word)
}
