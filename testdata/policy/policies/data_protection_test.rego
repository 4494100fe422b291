# Rego unit tests of the data-protection policy (`pbc policy test` runs `test_` rules, as
# `opa test` does).
package agent.data_protection_test

import data.agent.data_protection

test_pii_to_an_unapproved_vendor_is_denied if {
	count(data_protection.deny) == 1 with input as {
		"action": "http:api_call",
		"params": {"endpoint": "https://untrusted-api.com", "payload": {"ssn": "123-45-6789"}},
	}
}

test_non_pii_is_allowed if {
	count(data_protection.deny) == 0 with input as {
		"action": "http:api_call",
		"params": {"endpoint": "https://untrusted-api.com", "payload": {"product_id": "ABC123"}},
	}
}
