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

# The documents each caller may evaluate, as paths under data: the
# document and what is below it. A grant names a decision document, never a
# package or a prefix: a package also holds helper rules that alias data
# (secrets.access.settings is the break-glass list), and data.system reaches
# data.platform through system.check.
grants := {
	"provisioning-orchestrator": [
		["provisioning", "decision"],
		["network", "decision"],
		["system", "main"],
	],
	"secret-broker": [["secrets", "access", "decision"]],
}

admins := {"platform-admin"}

# Whether `document` (path segments under data) is, or is below, a
# document granted to `identity`.
granted(identity, document) if {
	some grant in grants[identity]
	count(document) >= count(grant)
	array.slice(document, 0, count(grant)) == grant
}

# Admins may call everything (status, policies, every document).
allow if input.identity in admins

# Data API reads and decisions, v1 and v0.
allow if {
	input.method in {"GET", "POST"}
	input.path[0] in {"v1", "v0"}
	input.path[1] == "data"
	granted(input.identity, array.slice(input.path, 2, count(input.path)))
}

# Batch decisions.
allow if {
	input.method == "POST"
	input.path[0] == "v1"
	input.path[1] == "batch"
	input.path[2] == "data"
	granted(input.identity, array.slice(input.path, 3, count(input.path)))
}

# The default decision (POST /) is system.main, the provisioning check.
allow if {
	input.method == "POST"
	input.path == []
	granted(input.identity, ["system", "main"])
}
