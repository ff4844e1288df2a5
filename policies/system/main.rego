# The default decision: what `POST /` answers (config `default_decision`,
# `/system/main`). It routes an environment request to the quota check.
package system

import rego.v1

main := data.provisioning.decision
