//! Writing artifacts: YAML through serde-saphyr (deterministic, in insertion order, quoting
//! every string a YAML 1.1 reader such as Go's would read as something else), JSON pretty
//! printed with a final newline.

use serde_json::Value;

/// One YAML document (no `---`), ending with a newline.
pub fn yaml(v: &Value) -> String {
    let mut s = serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# unserializable: {e}\n"));
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Several YAML documents separated by `---`.
pub fn yaml_docs(vs: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in vs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&yaml(v));
    }
    out
}

/// Pretty JSON with a final newline.
pub fn json(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}

/// Compact JSON that Argo's `{{…}}` substitution leaves alone: `{{` can only occur inside
/// JSON strings, where `{\u007b` means the same.
pub fn compact_json_for_argo(v: &Value) -> String {
    let s = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    s.replace("{{", "{\\u007b")
}

/// Builds a JSON object from pairs, skipping `None`s.
#[macro_export]
macro_rules! obj {
    ($($k:expr => $v:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut m = serde_json::Map::new();
        $( $crate::out::put(&mut m, $k, $v); )*
        serde_json::Value::Object(m)
    }};
}

/// Something that may be put into an object: a value, or nothing.
pub trait Put {
    fn into_opt(self) -> Option<Value>;
}

impl Put for Value {
    fn into_opt(self) -> Option<Value> {
        Some(self)
    }
}

impl Put for Option<Value> {
    fn into_opt(self) -> Option<Value> {
        self
    }
}

impl Put for &str {
    fn into_opt(self) -> Option<Value> {
        Some(Value::String(self.to_string()))
    }
}

impl Put for String {
    fn into_opt(self) -> Option<Value> {
        Some(Value::String(self))
    }
}

impl Put for bool {
    fn into_opt(self) -> Option<Value> {
        Some(Value::Bool(self))
    }
}

impl Put for Option<String> {
    fn into_opt(self) -> Option<Value> {
        self.map(Value::String)
    }
}

pub fn put(m: &mut serde_json::Map<String, Value>, k: &str, v: impl Put) {
    if let Some(v) = v.into_opt() {
        m.insert(k.to_string(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_ambiguous_strings_are_quoted() {
        let y = yaml(&json!({"a": "yes", "b": "on", "c": "2024-01-01", "d": "10"}));
        assert_eq!(y, "a: \"yes\"\nb: \"on\"\nc: \"2024-01-01\"\nd: \"10\"\n");
    }

    #[test]
    fn argo_json_has_no_double_brace() {
        let s = compact_json_for_argo(&json!({"p": "x {{y}}"}));
        assert!(!s.contains("{{"));
        let back: Value = serde_json::from_str(&s).expect("json");
        assert_eq!(back, json!({"p": "x {{y}}"}));
    }
}
