# The policy-vs-playbook example's data-protection policy, in Rego v1 and over pbc's input document: an external
# API call carrying PII to a vendor outside the approved list is denied.
package agent.data_protection

deny contains msg if {
	input.action == "http:api_call"
	not is_approved_vendor(input.params.endpoint)
	contains_pii(input.params.payload)
	msg := sprintf("Blocked external API call to %v with PII", [input.params.endpoint])
}

is_approved_vendor(endpoint) if {
	some vendor in data.approved_vendors
	startswith(endpoint, sprintf("https://%v", [vendor]))
}

pii_fields := {"ssn", "email", "phone"}

contains_pii(payload) if {
	some field, _ in payload
	field in pii_fields
}
