//! The byte-level pieces of kustomize's generators: base64 as kustomize writes secret and
//! binary values (wrapped every 70 characters when longer), JSON as Go's `encoding/json`
//! writes it, SHA-256 (the `sha2` crate), and the name suffix kustomize derives from a generated ConfigMap or
//! Secret (its hasher: the first ten hex digits of the SHA-256 of a JSON encoding, with
//! `0 1 3 a e` spelt `g h k m t`).

use crate::yaml::{Node, ScalarKind, Value};
use std::collections::BTreeMap;

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// kyaml's `encodeBase64`: base64, and when it is 70 characters or longer, a newline after
/// every 70 (the last line included).
pub(crate) fn base64_wrapped(data: &[u8]) -> String {
    let enc = base64(data);
    if enc.len() / 70 == 0 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + enc.len() / 70 + 1);
    for chunk in enc.as_bytes().chunks(70) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// A YAML node as JSON, as Go's `json.Marshal` of what kustomize's hasher reads writes it:
/// map keys sorted, strings escaped as Go escapes them. An explicit stack: the node may be
/// as deep as the input.
pub(crate) fn write_json(root: &Node, out: &mut String) {
    enum Item<'a> {
        Text(&'static str),
        Key(&'a str),
        Val(&'a Node),
    }
    let mut stack = vec![Item::Val(root)];
    while let Some(it) = stack.pop() {
        match it {
            Item::Text(t) => out.push_str(t),
            Item::Key(k) => {
                go_string(k, out);
                out.push(':');
            }
            Item::Val(n) => match &n.value {
                Value::Scalar(s) => match s.kind {
                    ScalarKind::Null => out.push_str("null"),
                    ScalarKind::Bool | ScalarKind::Int | ScalarKind::Float
                        if serde_json::from_str::<serde_json::Value>(&s.text).is_ok() =>
                    {
                        out.push_str(&s.text)
                    }
                    _ => go_string(&s.text, out),
                },
                Value::Seq(items) => {
                    out.push('[');
                    stack.push(Item::Text("]"));
                    for (i, v) in items.iter().enumerate().rev() {
                        stack.push(Item::Val(v));
                        if i > 0 {
                            stack.push(Item::Text(","));
                        }
                    }
                }
                Value::Map(m) => {
                    // Go's map: sorted keys, the last of a repeated key.
                    let mut sorted: BTreeMap<&str, &Node> = BTreeMap::new();
                    for e in m.iter() {
                        sorted.insert(e.key_str(), &e.value);
                    }
                    out.push('{');
                    stack.push(Item::Text("}"));
                    for (i, (k, v)) in sorted.into_iter().enumerate().rev() {
                        stack.push(Item::Val(v));
                        stack.push(Item::Key(k));
                        if i > 0 {
                            stack.push(Item::Text(","));
                        }
                    }
                }
            },
        }
    }
}

/// A string as Go's `encoding/json` writes it (HTML-safe).
fn go_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{0}'..='\u{1f}' => {
                let b = c as u32;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize & 15] as char);
                out.push(HEX[b as usize & 15] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// SHA-256.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// kustomize's name suffix for a generated ConfigMap or Secret: the SHA-256 of
/// `{"data":…,"kind":…,"name":""}` (a Secret's `type` too, and `binaryData` or
/// `stringData` when present).
pub(crate) fn name_hash(doc: &Node) -> String {
    let kind = doc.get("kind").and_then(Node::as_str).unwrap_or("");
    // The fields, sorted by name as Go writes a map; a missing one is `""`.
    let extra = if kind == "Secret" {
        "stringData"
    } else {
        "binaryData"
    };
    let mut fields: Vec<(&str, Option<&Node>)> = vec![
        ("data", doc.get("data")),
        ("kind", None),
        // kustomize's hasher looks the name up as one field called `metadata/name`, which
        // no resource has: the name it hashes is always empty.
        ("name", None),
    ];
    if kind == "Secret" {
        fields.push(("type", doc.get("type")));
    }
    if let Some(n) = doc.get(extra).filter(|n| n.as_map().is_some()) {
        fields.push((extra, Some(n)));
    }
    fields.sort_by(|a, b| a.0.cmp(b.0));
    let mut text = String::from("{");
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        go_string(k, &mut text);
        text.push(':');
        match (*k, v) {
            ("kind", _) => go_string(kind, &mut text),
            (_, Some(n)) => write_json(n, &mut text),
            (_, None) => text.push_str("\"\""),
        }
    }
    text.push('}');
    let digest = sha256(text.as_bytes());
    let mut out = String::with_capacity(10);
    for b in digest.iter().take(5) {
        for nib in [b >> 4, b & 15] {
            out.push(match nib {
                0 => 'g',
                1 => 'h',
                3 => 'k',
                10 => 'm',
                14 => 't',
                n => char::from_digit(u32::from(n), 16).unwrap_or('0'),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_and_base64_known_answers() {
        let hex: String = sha256(b"abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let hex: String = sha256(b"").iter().map(|b| format!("{b:02x}")).collect();
        assert!(hex.starts_with("e3b0c442"));
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"f"), "Zg==");
        let long = base64_wrapped(&[b'x'; 60]);
        assert_eq!(long.lines().map(str::len).collect::<Vec<_>>(), [70, 10]);
        assert!(long.ends_with('\n'));
    }

    #[test]
    fn the_hash_of_a_config_map_is_kustomizes() {
        let sm = crate::span::SourceMap::new();
        let f = sm.add(
            "t.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: any}\ndata: {foo: bar}\n",
        );
        let mut d = Vec::new();
        let docs = crate::yaml::parse(&f, &crate::yaml::Limits::default(), &mut d);
        // kubectl kustomize names this ConfigMap `any-798k5k7g9f`.
        assert_eq!(name_hash(&docs[0].root), "798k5k7g9f");
    }

    #[test]
    fn go_json_escapes_html() {
        let mut s = String::new();
        go_string("a<b>&\"\\\n\u{1}", &mut s);
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001""#);
    }
}
