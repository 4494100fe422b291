# Static rules `pbc check --policy testdata/policy-static` runs over each resolved playbook.
package pbc.stages

# A structured finding: reported at the value the path names, in the file that set it.
deny contains {"msg": msg, "path": sprintf("/spec/stages/%d/retries", [i])} if {
	some i, s in input.spec.stages
	s.retries == 0
	msg := sprintf("stage %v must retry at least once", [s.name])
}

# conftest's form: a message.
warn contains msg if {
	not input.metadata.labels.owner
	msg := sprintf("playbook %v has no `owner` label", [input.metadata.name])
}
