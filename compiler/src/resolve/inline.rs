//! Inline patches (`patch: |-` …) are YAML inside a YAML string. They are parsed on their own
//! and every span is mapped back into the kustomization file, so that a diagnostic about an
//! inline patch points at its line in `kustomization.yaml`.

use crate::diag::Diagnostic;
use crate::span::{SourceFile, Span};
use crate::yaml::{self, Document, Limits, Node, Style, Value};

/// Maps byte offsets of a scalar's value text to offsets in its file.
struct LineMap {
    /// (offset of the line in the text, offset of the line in the file)
    lines: Vec<(u32, u32)>,
}

impl LineMap {
    fn map(&self, off: u32) -> u32 {
        let i = match self.lines.binary_search_by_key(&off, |l| l.0) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let (t, f) = self.lines.get(i).copied().unwrap_or((0, 0));
        f + (off - t.min(off))
    }
}

fn build_map(file: &SourceFile, node: &Node, text: &str) -> Option<LineMap> {
    let s = node.as_scalar()?;
    let src = file.slice(node.span);
    match s.style {
        Style::Plain if src == text => Some(LineMap {
            lines: vec![(0, node.span.start)],
        }),
        Style::SingleQuoted | Style::DoubleQuoted
            if src.len() == text.len() + 2 && &src[1..src.len() - 1] == text =>
        {
            Some(LineMap {
                lines: vec![(0, node.span.start + 1)],
            })
        }
        Style::Literal => {
            // The span starts at the content, or at the `|` header before it.
            let at = file.line_col(node.span.start).line;
            let header = if matches!(
                file.text.as_bytes().get(node.span.start as usize),
                Some(b'|')
            ) {
                at
            } else {
                at - 1
            };
            let mut lines = Vec::new();
            let mut indent: Option<usize> = None;
            let mut toff = 0u32;
            for (k, tl) in text.split('\n').enumerate() {
                let fline = header + 1 + k as u32;
                let fstart = file.line_start(fline)?;
                let ftext = file.line_text(fline);
                if !tl.is_empty() {
                    let ind = *indent.get_or_insert_with(|| ftext.len().saturating_sub(tl.len()));
                    if ftext.get(ind..)? != tl {
                        return None;
                    }
                    lines.push((toff, fstart + ind as u32));
                } else {
                    lines.push((toff, fstart + ftext.len().min(indent.unwrap_or(0)) as u32));
                }
                toff += tl.len() as u32 + 1;
            }
            Some(LineMap { lines })
        }
        _ => None,
    }
}

fn remap_node(n: &mut Node, f: &dyn Fn(Span) -> Span) {
    let mut stack = vec![n];
    while let Some(x) = stack.pop() {
        x.span = f(x.span);
        match &mut x.value {
            Value::Seq(items) => stack.extend(items.iter_mut()),
            Value::Map(entries) => {
                for e in entries {
                    e.key.span = f(e.key.span);
                    stack.push(&mut e.value);
                }
            }
            Value::Scalar(_) => {}
        }
    }
}

/// Parses the text of an inline patch held by `node` (a string scalar of `file`).
pub(crate) fn parse_inline(
    file: &SourceFile,
    node: &Node,
    limits: &Limits,
) -> (Vec<Document>, Vec<Diagnostic>) {
    let text = node.as_scalar().map(|s| s.text.as_str()).unwrap_or("");
    let tmp = SourceFile::new(file.id, file.path.clone(), text.into());
    let mut diags = Vec::new();
    let mut docs = yaml::parse(&tmp, limits, &mut diags);
    let map = build_map(file, node, text);
    let whole = node.span;
    let f = move |s: Span| -> Span {
        match &map {
            Some(m) => Span::new(whole.file, m.map(s.start), m.map(s.end)),
            None => whole,
        }
    };
    for d in &mut docs {
        remap_node(&mut d.root, &f);
    }
    for d in &mut diags {
        d.span = f(d.span);
        for l in &mut d.labels {
            l.span = f(l.span);
        }
        if let Some(fix) = &mut d.fix {
            for e in &mut fix.edits {
                e.span = f(e.span);
            }
        }
    }
    (docs, diags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::SourceMap;

    #[test]
    fn literal_block_spans_map_back() {
        let text = "patches:\n  - patch: |-\n      - op: add\n        path: /x\n        value: 1\n";
        let sm = SourceMap::new();
        let f = sm.add("k.yaml", text);
        let mut d = Vec::new();
        let docs = yaml::parse(&f, &Limits::default(), &mut d);
        let scalar = docs[0].root.get("patches").unwrap().as_seq().unwrap()[0]
            .get("patch")
            .unwrap()
            .clone();
        let (pdocs, pd) = parse_inline(&f, &scalar, &Limits::default());
        assert!(pd.is_empty());
        let op = &pdocs[0].root.as_seq().unwrap()[0];
        let path = op.get("path").unwrap();
        assert_eq!(f.slice(path.span), "/x");
        assert_eq!(f.line_col(path.span.start).line, 4);
    }

    #[test]
    fn quoted_json_maps_back() {
        let text = "patch: '[{\"op\": \"remove\", \"path\": \"/a\"}]'\n";
        let sm = SourceMap::new();
        let f = sm.add("k.yaml", text);
        let mut d = Vec::new();
        let docs = yaml::parse(&f, &Limits::default(), &mut d);
        let scalar = docs[0].root.get("patch").unwrap().clone();
        let (pdocs, _) = parse_inline(&f, &scalar, &Limits::default());
        let path = pdocs[0].root.as_seq().unwrap()[0].get("path").unwrap();
        assert_eq!(f.slice(path.span), "\"/a\"");
    }
}
