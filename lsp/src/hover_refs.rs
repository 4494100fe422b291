//! What a playbook refers to outside itself: a compliance tag (the control's title and the
//! evidence rules that back it), an output reference in a condition
//! (`security-report.risk-level`: the field's type and description in the stage's
//! `output-schema`), a role (its entry in the configuration's `roles:`). Hover text,
//! completion candidates and definitions.

use pbc_compiler::load::Loader;
use pbc_compiler::yaml::Node;
use pbc_lints::Compliance;
use pbc_lints::tags::{Resolved, resolve};
use serde_json::Value as Json;
use std::path::Path;

/// The hover text of compliance tag `tag`.
pub(crate) fn compliance_tag(comp: &Compliance, tag: &str) -> Option<String> {
    match resolve(&comp.catalogs, tag) {
        Resolved::Control { catalog, control } => {
            let mut s = format!(
                "**{tag}**: {} — {}",
                control.name,
                if catalog.title.is_empty() {
                    &catalog.framework
                } else {
                    &catalog.title
                }
            );
            if let Some(g) = control.group.as_deref().and_then(|g| catalog.group(g)) {
                s.push_str(&format!(" · {}", g.name));
            }
            if let Some(d) = &control.description {
                s.push_str(&format!("\n\n{d}"));
            }
            let rules: Vec<_> = comp
                .rules
                .rules
                .iter()
                .filter(|r| r.catalog == catalog.id && r.control_id == control.id)
                .collect();
            if rules.is_empty() {
                s.push_str("\n\nNo evidence rule: pbc does not assess this control.");
            }
            for r in rules {
                let needs: Vec<&str> = r.requires.iter().map(|k| k.name()).collect();
                s.push_str(&format!(
                    "\n\nEvidence rule: requires {}. {}",
                    needs.join(", "),
                    r.rationale.trim()
                ));
            }
            Some(s)
        }
        Resolved::Ambiguous { .. } => Some(format!(
            "**{tag}**: ambiguous — a 2013 control objective or 2022 numbering with `A.`; name one control"
        )),
        Resolved::Unknown { suggestion, .. } => Some(match suggestion {
            Some(t) => format!("**{tag}**: no such control (did you mean `{t}`?)"),
            None => format!("**{tag}**: no control of the loaded catalogs"),
        }),
    }
}

/// The dotted reference under byte `off` of `text` (`report.field.sub`), if any.
pub(crate) fn reference_at(text: &str, off: usize) -> Option<&str> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let bytes = text.as_bytes();
    if off > bytes.len() {
        return None;
    }
    let mut start = off;
    while start > 0 && ok(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = off;
    while end < bytes.len() && ok(bytes[end]) {
        end += 1;
    }
    let token = text.get(start..end)?.trim_matches('.');
    token.contains('.').then_some(token)
}

/// The members of the enum a condition compares with, when the text before the cursor
/// (`before`, on the condition's line) ends in `REPORT.FIELD == ` or `!=` (and perhaps the
/// start of a word): the field's `enum` in the report's output schema, each written as the
/// condition language reads it (a bare word, else a quoted string).
pub(crate) fn compared_enum(
    loader: &Loader,
    root: &Node,
    file: &Path,
    before: &str,
) -> Option<Vec<String>> {
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_');
    let t = before.trim_end_matches(word).trim_end();
    let t = t
        .strip_suffix("==")
        .or_else(|| t.strip_suffix("!="))?
        .trim_end();
    let start = t
        .rfind(|c: char| !(word(c) || c == '.'))
        .map_or(0, |i| i + 1);
    let (report, fields) = t.get(start..)?.split_once('.')?;
    let (_, _, target) = output_schema(root, file, report)?;
    let loaded = loader.load(&target).ok()?;
    let mut s: Json = loaded.docs.first()?.root.to_json();
    for f in fields.split('.') {
        // Bounded by the reference's length: one step a dotted segment.
        s = s.get("properties")?.get(f)?.clone();
    }
    let members = s.get("enum")?.as_array()?;
    Some(
        members
            .iter()
            .map(|m| match m.as_str() {
                Some(w) if !w.is_empty() && w.chars().all(word) => w.to_string(),
                Some(w) => format!("'{}'", w.replace('\\', "\\\\").replace('\'', "\\'")),
                None => m.to_string(),
            })
            .collect(),
    )
}

/// A schema file's stem as conditions name it: the file name without `.json` and a
/// trailing `.schema`.
pub(crate) fn stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let name = name.strip_suffix(".json").unwrap_or(name);
    name.strip_suffix(".schema").unwrap_or(name)
}

/// The stage of playbook `root` (at `file`) whose output is `report`: its name, its
/// `output-schema` as written, and the schema's path.
fn output_schema<'a>(
    root: &'a Node,
    file: &Path,
    report: &str,
) -> Option<(Option<&'a str>, &'a str, std::path::PathBuf)> {
    let stages = root.get_path(&["spec", "stages"])?.as_seq()?;
    let (stage, schema_path) = stages.iter().find_map(|st| {
        let p = st.get("output-schema")?.as_str()?;
        (stem(p) == report).then(|| (st.get("name").and_then(Node::as_str), p))
    })?;
    let target = pbc_compiler::fs::normalize(&file.parent()?.join(schema_path));
    Some((stage, schema_path, target))
}

/// Where output reference `reference` (`REPORT.FIELD…`) of playbook `root` (at `file`) is
/// declared: the field's key under `properties` in the report's output schema.
pub(crate) fn output_field(
    loader: &Loader,
    root: &Node,
    file: &Path,
    reference: &str,
) -> Option<(
    std::path::PathBuf,
    std::sync::Arc<pbc_compiler::load::Loaded>,
    pbc_compiler::span::Span,
)> {
    let (report, fields) = reference.split_once('.')?;
    let (_, _, target) = output_schema(root, file, report)?;
    let loaded = loader.load(&target).ok()?;
    let mut node = &loaded.docs.first()?.root;
    let mut at = None;
    for f in fields.split('.') {
        // Bounded by the reference's length: one step a dotted segment.
        let e = node.get("properties")?.entry(f)?;
        at = Some(e.key.span);
        node = &e.value;
    }
    Some((target, loaded.clone(), at?))
}

/// The hover text of output reference `reference` (`REPORT.FIELD…`) in playbook `root`
/// (at `file`): the stage that produces the report and the field's schema.
pub(crate) fn output_reference(
    loader: &Loader,
    root: &Node,
    file: &Path,
    reference: &str,
) -> Option<String> {
    let (report, fields) = reference.split_once('.')?;
    let (stage, schema_path, target) = output_schema(root, file, report)?;
    let loaded = loader.load(&target).ok()?;
    let mut s: Json = loaded.docs.first()?.root.to_json();
    for f in fields.split('.') {
        // Bounded by the reference's length: one step a dotted segment.
        s = s.get("properties")?.get(f)?.clone();
    }
    let mut out = format!(
        "**`{reference}`**: output of stage `{}` ({schema_path})",
        stage.unwrap_or("?")
    );
    if let Some(t) = s.get("type") {
        out.push_str(&format!(
            " · type `{}`",
            t.as_str().map_or(t.to_string(), String::from)
        ));
    }
    if let Some(e) = s.get("enum").and_then(Json::as_array) {
        let members: Vec<String> = e.iter().map(|m| m.to_string()).collect();
        out.push_str(&format!(" · one of {}", members.join(", ")));
    }
    if let Some(d) = s.get("description").and_then(Json::as_str) {
        out.push_str(&format!("\n\n{d}"));
    }
    Some(out)
}

/// Every control tag of the loaded catalogs (canonical prefix), with the control's name.
pub(crate) fn control_tags(comp: &Compliance) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for cat in &comp.catalogs.catalogs {
        let Some(prefix) = cat.tag_prefixes.first() else {
            continue;
        };
        for c in &cat.controls {
            out.push((format!("{prefix}{}", c.id), c.name.clone()));
        }
    }
    out
}

/// Every `REPORT.FIELD` a condition of playbook `root` (at `file`) can read: each stage's
/// output schema's top-level properties, with their descriptions.
pub(crate) fn output_fields(loader: &Loader, root: &Node, file: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(stages) = root.get_path(&["spec", "stages"]).and_then(Node::as_seq) else {
        return out;
    };
    let Some(dir) = file.parent() else {
        return out;
    };
    for st in stages {
        let Some(p) = st.get("output-schema").and_then(Node::as_str) else {
            continue;
        };
        let target = pbc_compiler::fs::normalize(&dir.join(p));
        let Ok(loaded) = loader.load(&target) else {
            continue;
        };
        let Some(doc) = loaded.docs.first() else {
            continue;
        };
        let schema = doc.root.to_json();
        for (k, v) in schema
            .get("properties")
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            let d = v.get("description").and_then(Json::as_str).unwrap_or("");
            out.push((format!("{}.{k}", stem(p)), d.to_string()));
        }
    }
    out
}

/// Every reference to report `report` (`REPORT.FIELD…`) in the `when` and `conditions[].if`
/// of playbook `root`: the byte ranges of the references in `text`.
pub(crate) fn output_uses(root: &Node, text: &str, report: &str) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let stages = root.get_path(&["spec", "stages"]).and_then(Node::as_seq);
    let mut exprs: Vec<&Node> = Vec::new();
    for st in stages.unwrap_or(&[]) {
        exprs.extend(st.get("when"));
        for c in st.get("conditions").and_then(Node::as_seq).unwrap_or(&[]) {
            exprs.extend(c.get("if"));
        }
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    for e in exprs {
        let (start, end) = (e.span.start as usize, e.span.end as usize);
        let Some(src) = text.get(start..end) else {
            continue;
        };
        let b = src.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if !ok(b[i]) {
                i += 1;
                continue;
            }
            let t0 = i;
            while i < b.len() && ok(b[i]) {
                i += 1;
            }
            let token = &src[t0..i];
            if token
                .split_once('.')
                .is_some_and(|(r, f)| r == report && !f.is_empty())
            {
                out.push(((start + t0) as u32, (start + i) as u32));
            }
        }
    }
    out
}

/// Where role `role` is defined: the key under `roles:` in the configuration at `config`.
pub(crate) fn role_definition(
    loader: &Loader,
    config: &Path,
    role: &str,
) -> Option<(
    std::sync::Arc<pbc_compiler::load::Loaded>,
    pbc_compiler::span::Span,
)> {
    let loaded = loader.load(config).ok()?;
    let roles = loaded.docs.first()?.root.get("roles")?.as_map()?;
    let span = roles.iter().find(|e| e.key_str() == role)?.key.span;
    Some((loaded.clone(), span))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_under_the_cursor() {
        let t = "if: security-report.risk-level >= HIGH";
        assert_eq!(reference_at(t, 8), Some("security-report.risk-level"));
        assert_eq!(reference_at(t, 25), Some("security-report.risk-level"));
        assert_eq!(reference_at(t, 35), None); // HIGH: no dot
        assert_eq!(reference_at(t, 100), None);
    }

    #[test]
    fn stems_drop_json_and_schema() {
        assert_eq!(
            stem("schemas/security-report.schema.json"),
            "security-report"
        );
        assert_eq!(stem("report.json"), "report");
    }

    #[test]
    fn a_control_tag_names_its_control_and_evidence_rule() {
        let comp = Compliance::builtin(Default::default());
        let h = compliance_tag(&comp, "SOC2-CC8.1").unwrap();
        assert!(h.starts_with("**SOC2-CC8.1**: "), "{h}");
        assert!(h.contains("Evidence rule: requires"), "{h}");
        let h = compliance_tag(&comp, "SOC2-CC99.1").unwrap();
        assert!(
            h.contains("no control") || h.contains("no such control"),
            "{h}"
        );
    }
}
