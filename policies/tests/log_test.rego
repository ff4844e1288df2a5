package system.log_test

import rego.v1

test_credential_fields_are_erased if {
	masks := data.system.log.mask with input as {"input": {"team": "payments", "Token": "t0p", "password": "x"}}
	masks == {"/input/Token", "/input/password"}
}

test_ordinary_input_is_untouched if {
	count(data.system.log.mask) == 0 with input as {"input": {"team": "payments", "cpu": 2}}
}

test_credential_env_values_are_replaced if {
	event := {"input": {"request": {"object": {"spec": {"containers": [{"env": [
		{"name": "LOG_LEVEL", "value": "debug"},
		{"name": "db_password", "value": "hunter2"},
		{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}},
	]}]}}}}}
	masks := data.system.log.mask with input as event
	masks == {{"op": "upsert", "path": "/input/request/object/spec/containers/0/env/1/value", "value": "**REDACTED**"}}
}
