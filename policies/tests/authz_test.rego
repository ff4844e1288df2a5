package system.authz_test

import rego.v1

request(identity, method, path) := {"identity": identity, "method": method, "path": path, "authenticated_by": "token", "params": {}}

test_admins_may_call_everything if {
	data.system.authz.allow with input as request("platform-admin", "GET", ["v1", "policies"])
}

test_callers_reach_only_their_documents if {
	data.system.authz.allow with input as request("provisioning-orchestrator", "POST", ["v1", "data", "provisioning", "decision"])
	data.system.authz.allow with input as request("secret-broker", "POST", ["v0", "data", "secrets", "access", "decision"])
	not data.system.authz.allow with input as request("secret-broker", "POST", ["v1", "data", "provisioning", "decision"])
	not data.system.authz.allow with input as request("provisioning-orchestrator", "DELETE", ["v1", "data", "provisioning"])
}

test_batch_and_default_decision if {
	data.system.authz.allow with input as request("provisioning-orchestrator", "POST", ["v1", "batch", "data", "network", "decision"])
	not data.system.authz.allow with input as request("secret-broker", "POST", ["v1", "batch", "data", "network", "decision"])
	data.system.authz.allow with input as request("provisioning-orchestrator", "POST", [])
	not data.system.authz.allow with input as request("secret-broker", "POST", [])
}

test_anonymous_and_status_are_refused if {
	not data.system.authz.allow with input as request(null, "POST", ["v1", "data", "provisioning", "decision"])
	not data.system.authz.allow with input as request("provisioning-orchestrator", "GET", ["v1", "status"])
}

test_grants_are_documents_not_prefixes if {
	# The packages around a granted decision, and data.system's checks
	# over data.platform, are not granted.
	not data.system.authz.allow with input as request("provisioning-orchestrator", "GET", ["v1", "data", "system", "check", "platform", "secrets"])
	not data.system.authz.allow with input as request("provisioning-orchestrator", "GET", ["v1", "data", "system"])
	not data.system.authz.allow with input as request("provisioning-orchestrator", "GET", ["v1", "data", "provisioning"])
	not data.system.authz.allow with input as request("provisioning-orchestrator", "GET", ["v1", "data", "provisioning", "team"])
	not data.system.authz.allow with input as request("secret-broker", "GET", ["v1", "data", "secrets", "access", "settings"])
	not data.system.authz.allow with input as request("provisioning-orchestrator", "GET", ["v1", "data", "provisioning", "decisions"])
	data.system.authz.allow with input as request("provisioning-orchestrator", "GET", ["v1", "data", "provisioning", "decision", "allowed"])
	data.system.authz.allow with input as request("secret-broker", "POST", ["v1", "data", "secrets", "access", "decision"])
	not data.system.authz.allow with input as request("secret-broker", "POST", ["v1", "batch", "data", "secrets", "access"])
}
