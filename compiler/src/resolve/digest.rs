//! The byte-level pieces of kustomize's generators: base64 as kustomize writes secret and
//! binary values (wrapped every 70 characters when longer), JSON as Go's `encoding/json`
//! writes it, SHA-256, and the name suffix kustomize derives from a generated ConfigMap or
//! Secret (its hasher: the first ten hex digits of the SHA-256 of a JSON encoding, with
//! `0 1 3 a e` spelt `g h k m t`).

use crate::yaml::{Node, ScalarKind, Value};
use std::collections::BTreeMap;

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
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
