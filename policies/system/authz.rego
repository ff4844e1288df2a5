# Who may call the decision API, in the style of OPA's system.authz. Used
# when the configuration sets auth.authz_policy: /system/authz/allow.
#
# Input: {"method", "path": ["v1", "data", ...], "identity" (the token's
# name or the client certificate's common name; null when anonymous),
# "authenticated_by": "token" | "certificate" | "none", "params"}.
#
# Callers are named after the three systems that ask Portcullis: the
# provisioning orchestrator, the secret-access broker and platform admins.
package system.authz

import rego.v1

default allow := false

# Documents each caller may evaluate, by the first segment under data.
documents := {
	"provisioning-orchestrator": {"provisioning", "network", "system"},
	"secret-broker": {"secrets"},
}

admins := {"platform-admin"}

# Admins may call everything (status, policies, every document).
allow if input.identity in admins

# Data API reads and decisions, v1 and v0.
allow if {
	input.method in {"GET", "POST"}
	input.path[0] in {"v1", "v0"}
	input.path[1] == "data"
	input.path[2] in documents[input.identity]
}

# Batch decisions.
allow if {
	input.method == "POST"
	input.path[0] == "v1"
	input.path[1] == "batch"
	input.path[3] in documents[input.identity]
}

# The default decision (POST /) is the provisioning check.
allow if {
	input.method == "POST"
	input.path == []
	"provisioning" in documents[input.identity]
}
