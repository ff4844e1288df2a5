# A small platform catalog for the policy unit tests, independent of the
# shipped bundles/ data.
package tests.fixtures

import rego.v1

platform := {
	"people": {"ana": {}, "ben": {}, "cruz": {}, "dee": {}, "eve": {}},
	"teams": {
		"payments": {
			"members": {"ana": "lead", "dee": "lead", "ben": "member"},
			"quota": {"cpu": 32, "memory_gb": 64, "storage_gb": 500, "gpu": 1, "databases": 4, "caches": 2, "environments": 5, "monthly_budget": 2000},
			"network": {"allow_from_teams": ["checkout"], "egress_allowances": ["198.51.100.0/24"]},
		},
		"checkout": {
			"members": {"cruz": "lead"},
			"quota": {"cpu": 8, "memory_gb": 16, "storage_gb": 100, "gpu": 0, "databases": 1, "caches": 1, "environments": 2, "monthly_budget": 500},
			"network": {"allow_from_teams": [], "egress_allowances": []},
		},
	},
	"classes": {
		"dev": {"max_ttl_hours": 72, "caps": {"cpu": 4}, "forbidden_sources": {"prod": true}},
		"feature": {"max_ttl_hours": 168, "caps": {"cpu": 8, "memory_gb": 16, "storage_gb": 100, "gpu": 0, "databases": 2, "caches": 1}, "forbidden_sources": {"prod": true}},
		"prod": {"caps": {"cpu": 64, "memory_gb": 256, "storage_gb": 2000, "gpu": 4}, "forbidden_sources": {}},
	},
	"services": {
		"payments-api": {"team": "payments", "owners": ["ben"], "criticality": "high"},
		"checkout-api": {"team": "checkout", "owners": ["cruz"], "criticality": "medium"},
	},
	"secrets": {
		"paths": {"kv/prod/payments-api": "payments-api", "kv/dev/payments-api": "payments-api", "kv/prod/checkout-api": "checkout-api"},
		"break_glass": ["kv/prod/break-glass"],
		"caps": {"default_seconds": 28800, "prod_seconds": 3600, "hard_cap_seconds": 86400},
		"prod_environments": ["prod"],
	},
	"namespaces": {
		"payments-dev": {"team": "payments", "class": "dev"},
		"payments-prod": {"team": "payments", "class": "prod"},
		"checkout-dev": {"team": "checkout", "class": "dev"},
		"ingress-nginx": {"team": "checkout", "class": "prod"},
	},
	"network": {
		"ingress_controller_namespaces": ["ingress-nginx"],
		"private_ranges": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
		"protected_ranges": ["169.254.0.0/16"],
	},
	"admission": {
		"allowed_registries": ["registry.example.com"],
		"labels": {"team": "portcullis.dev/team", "owner": "portcullis.dev/owner", "class": "portcullis.dev/class"},
		"ttl_annotation": "portcullis.dev/ttl",
		"exempt_namespaces": ["kube-system"],
		"container_caps": {"dev": {"cpu": 2, "memory_bytes": 4294967296}, "prod": {"cpu": 32, "memory_bytes": 137438953472}},
	},
}
