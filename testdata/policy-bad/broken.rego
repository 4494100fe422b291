package broken

deny contains msg if {
	input.action == "payments:refund"
	msg := sprintf("refund of %v", [input.params.amount]
}
