# A static rule the editor runs as `pbc check` does (check-policies: in .pbc.yaml).
package lsp.agents

deny contains {"msg": msg, "path": sprintf("/spec/stages/%d/agent", [i])} if {
	some i, s in input.spec.stages
	s.agent == "unvetted-model"
	msg := sprintf("stage %v uses an unvetted model", [s.name])
}
