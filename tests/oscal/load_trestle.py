"""Loads OSCAL documents with compliance-trestle (IBM's OSCAL SDK; its models are generated
from NIST's OSCAL schemas and forbid unknown fields), as a consumer of pbc's output would.

Usage: load_trestle.py FILE... ; prints one line per file (its root and counts), exits 1 on
the first document trestle refuses.
"""

import pathlib
import sys

from trestle.oscal.assessment_results import AssessmentResults
from trestle.oscal.component import ComponentDefinition

MODELS = {
    "assessment-results": AssessmentResults,
    "component-definition": ComponentDefinition,
}


def main() -> int:
    for name in sys.argv[1:]:
        path = pathlib.Path(name)
        text = path.read_text(encoding="utf-8")
        root = next((k for k in MODELS if f'"{k}"' in text[:200]), None)
        if root is None:
            print(f"{name}: not an assessment-results or component-definition document")
            return 1
        # oscal_read checks the root key and the oscal-version trestle supports.
        model = MODELS[root].oscal_read(path)
        if model is None:
            print(f"{name}: trestle read nothing")
            return 1
        if root == "assessment-results":
            findings = sum(len(r.findings or []) for r in model.results)
            observations = sum(len(r.observations or []) for r in model.results)
            print(f"{name}: assessment-results, {len(model.results)} result(s), {findings} finding(s), {observations} observation(s)")
        else:
            reqs = sum(
                len(ci.implemented_requirements)
                for c in (model.components or [])
                for ci in (c.control_implementations or [])
            )
            print(f"{name}: component-definition, {len(model.components or [])} component(s), {reqs} implemented requirement(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
