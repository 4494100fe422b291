//! The fields a task exports for the workflow's conditions: `OUT/output.json` (the stage's
//! output) and `OUT/fields/PARAM` (strings raw, numbers and booleans as JSON text, durations
//! in seconds for `--export-seconds`; absent or null: no file).

use pbc_runtime::Error;
use serde_json::Value;
use std::path::Path;

/// One `--export` / `--export-seconds`.
#[derive(Debug)]
pub struct Export {
    param: String,
    pointer: String,
    seconds: bool,
}

/// Parses `PARAM=/json/pointer` pairs.
pub fn parse(plain: &[String], seconds: &[String]) -> Result<Vec<Export>, Error> {
    let mut v = Vec::new();
    for (list, secs) in [(plain, false), (seconds, true)] {
        for e in list {
            let Some((param, pointer)) = e.split_once('=') else {
                return Err(Error::Usage(format!(
                    "--export {e}: expected PARAM=/json/pointer"
                )));
            };
            let safe = !param.is_empty()
                && param
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !safe || !(pointer.is_empty() || pointer.starts_with('/')) {
                return Err(Error::Usage(format!(
                    "--export {e}: the parameter is letters, digits, `-` and `_`, the pointer starts with `/`"
                )));
            }
            v.push(Export {
                param: param.to_string(),
                pointer: pointer.to_string(),
                seconds: secs,
            });
        }
    }
    Ok(v)
}

/// The text a field is exported as, or `None` (no file).
fn text(v: &Value, seconds: bool) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if seconds => pbc_compiler::model::values::parse_duration(s)
            .ok()
            .map(|d| d.seconds.to_string()),
        Value::String(s) => Some(s.clone()),
        v => Some(v.to_string()),
    }
}

fn io(p: &Path, e: std::io::Error) -> Error {
    Error::Io(format!("{}: {e}", p.display()))
}

/// Writes `output` (when given) and each exported field of `from`.
pub fn write(out: &Path, output: Option<&Value>, from: &Value, ex: &[Export]) -> Result<(), Error> {
    let fields = out.join("fields");
    std::fs::create_dir_all(&fields).map_err(|e| io(&fields, e))?;
    if let Some(o) = output {
        let p = out.join("output.json");
        let text = serde_json::to_string(o).map_err(|e| Error::Io(e.to_string()))?;
        std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    }
    for e in ex {
        if let Some(t) = from.pointer(&e.pointer).and_then(|v| text(v, e.seconds)) {
            let p = fields.join(&e.param);
            std::fs::write(&p, t).map_err(|err| io(&p, err))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_as_the_conditions_read_them() {
        assert_eq!(text(&json!("HIGH"), false).as_deref(), Some("HIGH"));
        assert_eq!(text(&json!(3.5), false).as_deref(), Some("3.5"));
        assert_eq!(text(&json!(true), false).as_deref(), Some("true"));
        assert_eq!(text(&json!(null), false), None);
        assert_eq!(text(&json!("2h"), true).as_deref(), Some("7200"));
        assert_eq!(text(&json!(90), true).as_deref(), Some("90"));
        assert!(parse(&["a=b".into()], &[]).is_err());
        assert!(parse(&["../x=/b".into()], &[]).is_err());
    }
}
