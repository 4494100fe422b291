//! `serve:` in `.pbc.yaml`: the settings of `pbc serve`. Today its public address, which
//! notifications link to (a Slack message's "Review" button opens the approval's page there).

use super::{bad, unknown_key};
use crate::diag::Diagnostic;
use crate::yaml::Node;

/// `serve:`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServeSettings {
    /// Where people reach `pbc serve` (`https://pbc.example.com`), without a trailing `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

impl ServeSettings {
    /// The page where a person decides approval `id`, when a public URL is configured.
    pub fn approval_url(&self, id: &str) -> Option<String> {
        self.public_url
            .as_ref()
            .map(|u| format!("{u}/ui/approvals/{id}"))
    }
}

const KEYS: &[&str] = &["public-url"];

pub(super) fn read(v: &Node, diags: &mut Vec<Diagnostic>) -> ServeSettings {
    let mut out = ServeSettings::default();
    let Some(entries) = v.as_map() else {
        diags.push(bad(
            v.span,
            format!("`serve` must be a mapping, found {}", v.type_name()),
        ));
        return out;
    };
    for e in entries {
        match e.key_str() {
            "public-url" => match e.value.as_str().map(str::trim) {
                Some(u)
                    if (u.starts_with("https://") || u.starts_with("http://"))
                        && !u.contains(char::is_whitespace) =>
                {
                    out.public_url = Some(u.trim_end_matches('/').to_string())
                }
                _ => diags.push(bad(
                    e.value.span,
                    "`public-url` must be an https:// (or http://) URL".into(),
                )),
            },
            other => diags.push(unknown_key(e.key.span, other, KEYS)),
        }
    }
    out
}
