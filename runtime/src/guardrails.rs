//! Guardrails: the built-ins `no-secrets-in-code`, `pii-detection` and
//! `prompt-injection-detection`, the organisation's own from configuration (regular
//! expressions, or a command), applied to a stage's input and output.
//!
//! A triggered guardrail blocks the stage and names itself and where it matched: the JSON
//! path of the string and the line and column inside it. The matched text itself is never
//! reported: [`Finding`] carries no text, and [`redact_value`] / [`Redactor`] replace matches
//! with `[REDACTED:<guardrail>]` before anything is stored, logged or sent.

use crate::exec::run_json_command;
use pbc_compiler::config::GuardrailDef;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

/// The guardrails the runtime enforces without configuration.
pub const BUILTINS: &[&str] = pbc_compiler::model::BUILTIN_GUARDRAILS;

/// Where a guardrail matched. Holds no matched text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub guardrail: String,
    /// The detector inside the guardrail (`aws-access-key-id`, `luhn-card-number`, …).
    pub rule: String,
    /// `input/code`, `output/findings/0/title`: where the string is.
    pub path: String,
    /// 1-based line and column (in characters) inside that string, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// Length of the match in characters, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    /// Byte range in the string (for redaction; not serialized).
    #[serde(skip)]
    pub range: Option<(usize, usize)>,
}

impl Finding {
    /// `no-secrets-in-code (aws-access-key-id) at input/code:2:18`
    pub fn describe(&self) -> String {
        let at = match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.path),
            _ => self.path.clone(),
        };
        format!("{} ({}) at {at}", self.guardrail, self.rule)
    }
}

struct Rule {
    name: &'static str,
    re: Regex,
    /// Validates a candidate (Luhn, SSN ranges, entropy).
    check: fn(&str) -> bool,
}

fn any(_: &str) -> bool {
    true
}

fn rules(guardrail: &str) -> Option<&'static [Rule]> {
    static SECRETS: OnceLock<Vec<Rule>> = OnceLock::new();
    static PII: OnceLock<Vec<Rule>> = OnceLock::new();
    static INJECTION: OnceLock<Vec<Rule>> = OnceLock::new();
    type Spec<'a> = (&'static str, &'a str, fn(&str) -> bool);
    let mk = |v: &[Spec<'_>]| -> Vec<Rule> {
        v.iter()
            .filter_map(|(name, re, check)| {
                Regex::new(re).ok().map(|re| Rule {
                    name,
                    re,
                    check: *check,
                })
            })
            .collect()
    };
    match guardrail {
        "no-secrets-in-code" => Some(SECRETS.get_or_init(|| {
            mk(&[
                (
                    "aws-access-key-id",
                    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[0-9A-Z]{16}\b",
                    any,
                ),
                (
                    "aws-secret-access-key",
                    r#"(?i)aws[\w.-]{0,30}?(?:secret|private)[\w.-]{0,20}['"]?\s*[:=]\s*['"]?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
                    any,
                ),
                (
                    "private-key",
                    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)",
                    any,
                ),
                (
                    "github-token",
                    r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
                    any,
                ),
                ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", any),
                ("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}\b", any),
                ("stripe-key", r"\b(?:sk|rk)_live_[0-9A-Za-z]{16,}\b", any),
                ("api-key", r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b", any),
                (
                    "jwt",
                    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
                    any,
                ),
                (
                    "high-entropy-assignment",
                    r#"(?i)[\w.-]*(?:secret|token|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth[_-]?key)[\w.-]*['"]?\s*(?::=|=>|[:=])\s*['"]?([^\s'"`,;)]{12,})"#,
                    high_entropy,
                ),
            ])
        })),
        "pii-detection" => Some(PII.get_or_init(|| {
            mk(&[
                (
                    "email-address",
                    r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
                    any,
                ),
                ("us-ssn", r"\b\d{3}-\d{2}-\d{4}\b", ssn),
                ("luhn-card-number", r"\b\d(?:[ -]?\d){12,18}\b", luhn_card),
                (
                    "phone-number",
                    r"(?:\+[1-9]\d{0,2}[ .-]?)?(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b|\+[1-9]\d{9,14}\b",
                    any,
                ),
            ])
        })),
        "prompt-injection-detection" => Some(INJECTION.get_or_init(|| {
            mk(&[
                (
                    "ignore-instructions",
                    r"(?i)\b(?:ignore|disregard|skip|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+)*(?:previous|prior|above|earlier|preceding|original|system)\s+(?:instructions?|prompts?|directions|rules|messages|guidelines)",
                    any,
                ),
                (
                    "forget-instructions",
                    r"(?i)\bforget\s+(?:all\s+|everything\s+)?(?:you\s+(?:were|have\s+been)\s+told|(?:your|the|previous|prior)\s+(?:previous\s+|prior\s+)?(?:instructions|rules|prompt))",
                    any,
                ),
                (
                    "override-instructions",
                    r"(?i)\b(?:override|replace)\s+(?:your|the)\s+(?:instructions|rules|guidelines|system\s+prompt)|\bnew\s+instructions\s*:",
                    any,
                ),
                (
                    "reveal-system-prompt",
                    r"(?i)\b(?:reveal|print|show|repeat|output|leak|dump)\s+(?:me\s+)?(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|initial\s+instructions|instructions\s+above)",
                    any,
                ),
                (
                    "exfiltrate-environment",
                    r"(?i)\b(?:print|dump|list|show|reveal|output|send)\s+(?:me\s+)?(?:all\s+)?(?:the\s+|your\s+)?(?:environment\s+variables|env\s+vars|secrets|credentials|api\s+keys)\b",
                    any,
                ),
                (
                    "jailbreak",
                    r"(?i)\byou\s+are\s+now\s+(?:a\s+|an\s+|in\s+)?(?:dan\b|developer\s+mode|jailbroken|unrestricted|unfiltered)|\bjailbreak\b|\bdo\s+anything\s+now\b",
                    any,
                ),
                (
                    "role-switch-marker",
                    r"(?im)<\|(?:im_start|im_end|system|assistant|user)\|>|\[/?INST\]|<<SYS>>|</?system>|^\s*#{2,}\s*(?:system|instruction)s?\s*:|^\s*(?:system|assistant)\s*:\s",
                    any,
                ),
            ])
        })),
        _ => None,
    }
}

/// Shannon entropy of at least 3.5 bits per character, with letters and digits mixed, and
/// not a placeholder.
fn high_entropy(s: &str) -> bool {
    if s.starts_with("${") || s.starts_with('<') || s.starts_with('{') || s.starts_with('$') {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if ["changeme", "placeholder", "xxxxxxxx", "redacted"]
        .iter()
        .any(|p| lower.contains(p))
    {
        return false;
    }
    let has_digit = s.chars().any(|c| c.is_ascii_digit());
    let has_alpha = s.chars().any(|c| c.is_ascii_alphabetic());
    if !(has_digit && has_alpha) {
        return false;
    }
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    let n = s.chars().count();
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
    }
    let h: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum();
    h >= 3.5
}

/// Area 001-899 except 666, group 01-99, serial 0001-9999.
fn ssn(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let [a, g, n] = parts.as_slice() else {
        return false;
    };
    let (Ok(a), Ok(g), Ok(n)) = (a.parse::<u32>(), g.parse::<u32>(), n.parse::<u32>()) else {
        return false;
    };
    a != 0 && a != 666 && a < 900 && g != 0 && n != 0
}

/// 13-19 digits that pass the Luhn check.
fn luhn_card(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|d| *d == digits[0]) {
        return false;
    }
    luhn(&digits)
}

/// The Luhn checksum.
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// One enforceable guardrail.
#[derive(Clone, Debug)]
pub enum Guard {
    Builtin(String),
    Patterns { name: String, res: Vec<Regex> },
    Command { name: String, argv: Vec<String> },
}

impl Guard {
    pub fn name(&self) -> &str {
        match self {
            Guard::Builtin(n)
            | Guard::Patterns { name: n, .. }
            | Guard::Command { name: n, .. } => n,
        }
    }

    /// The guardrail `name`, if the runtime can enforce it.
    pub fn resolve(name: &str, defs: &BTreeMap<String, GuardrailDef>) -> Option<Guard> {
        if let Some(d) = defs.get(name) {
            if !d.command.is_empty() {
                return Some(Guard::Command {
                    name: name.to_string(),
                    argv: d.command.clone(),
                });
            }
            let res: Vec<Regex> = d
                .patterns
                .iter()
                .filter_map(|p| Regex::new(p).ok())
                .collect();
            if !res.is_empty() {
                return Some(Guard::Patterns {
                    name: name.to_string(),
                    res,
                });
            }
            return None;
        }
        BUILTINS
            .contains(&name)
            .then(|| Guard::Builtin(name.to_string()))
    }

    /// Matches in one string: byte ranges and rule names.
    fn scan_text(&self, s: &str) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        match self {
            Guard::Builtin(n) => {
                for r in rules(n).unwrap_or(&[]) {
                    for caps in r.re.captures_iter(s) {
                        let m = caps.get(1).or_else(|| caps.get(0));
                        if let Some(m) = m
                            && (r.check)(m.as_str())
                            && !out.iter().any(|(a, b, _)| m.start() < *b && *a < m.end())
                        {
                            out.push((m.start(), m.end(), r.name.to_string()));
                        }
                    }
                }
            }
            Guard::Patterns { res, .. } => {
                for (i, re) in res.iter().enumerate() {
                    for m in re.find_iter(s) {
                        if m.end() > m.start() {
                            out.push((m.start(), m.end(), format!("pattern-{}", i + 1)));
                        }
                    }
                }
            }
            Guard::Command { .. } => {}
        }
        out
    }

    /// Checks `data` (rooted at `root`, e.g. `input`). Err: the guardrail could not be
    /// evaluated (its command failed), which the caller treats as a failure, never a pass.
    pub fn check(&self, stage: &str, root: &str, data: &Value) -> Result<Vec<Finding>, String> {
        if let Guard::Command { name, argv } = self {
            return command_check(name, argv, stage, root, data);
        }
        let mut out: Vec<Finding> = Vec::new();
        walk_strings(data, root.to_string(), &mut |path, s| {
            for (a, b, rule) in self.scan_text(s) {
                let (line, column) = line_col(s, a);
                out.push(Finding {
                    guardrail: self.name().to_string(),
                    rule,
                    path: path.to_string(),
                    line: Some(line),
                    column: Some(column),
                    length: Some(s.get(a..b).map(|t| t.chars().count()).unwrap_or(0)),
                    range: Some((a, b)),
                });
            }
        });
        if self.name() == crate::redact::SECRETS && matches!(self, Guard::Builtin(_)) {
            // Secret-named fields: the whole value is the finding (text matches inside it
            // are dropped for it).
            let fields = crate::redact::key_findings(data, root);
            out.retain(|f| {
                !fields
                    .iter()
                    .any(|k| f.path == k.path || f.path.starts_with(&format!("{}/", k.path)))
            });
            out.extend(fields);
        }
        Ok(out)
    }
}

fn line_col(s: &str, byte: usize) -> (usize, usize) {
    let before = s.get(..byte).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

fn walk_strings(v: &Value, path: String, f: &mut dyn FnMut(&str, &str)) {
    match v {
        Value::String(s) => f(&path, s),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk_strings(x, format!("{path}/{i}"), f);
            }
        }
        Value::Object(m) => {
            for (k, x) in m {
                walk_strings(x, format!("{path}/{}", escape_pointer(k)), f);
            }
        }
        _ => {}
    }
}

fn escape_pointer(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

#[derive(Deserialize)]
struct CommandVerdict {
    triggered: bool,
    #[serde(default)]
    matches: Vec<CommandMatch>,
}

#[derive(Deserialize)]
struct CommandMatch {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn command_check(
    name: &str,
    argv: &[String],
    stage: &str,
    root: &str,
    data: &Value,
) -> Result<Vec<Finding>, String> {
    let req = serde_json::json!({"guardrail": name, "stage": stage, "where": root, "data": data});
    let out = run_json_command(argv, None, &req, Duration::from_secs(30), &|| false)
        .map_err(|e| format!("guardrail `{name}` could not be evaluated: {e}"))?;
    let v: CommandVerdict = serde_json::from_value(out).map_err(|e| {
        format!(
            "guardrail `{name}` printed no verdict {{\"triggered\": bool, \"matches\": […]}}: {e}"
        )
    })?;
    if !v.triggered {
        return Ok(Vec::new());
    }
    let mut out: Vec<Finding> = v
        .matches
        .into_iter()
        .map(|m| Finding {
            guardrail: name.to_string(),
            rule: m.reason.unwrap_or_else(|| "command".into()),
            path: match m.path {
                Some(p) if p.starts_with('/') => format!("{root}{p}"),
                Some(p) if !p.is_empty() => format!("{root}/{p}"),
                _ => root.to_string(),
            },
            line: None,
            column: None,
            length: None,
            range: None,
        })
        .collect();
    if out.is_empty() {
        out.push(Finding {
            guardrail: name.to_string(),
            rule: "command".into(),
            path: root.to_string(),
            line: None,
            column: None,
            length: None,
            range: None,
        });
    }
    Ok(out)
}

/// Replaces every finding's match in `v` (rooted at `root`) with `[REDACTED:<guardrail>]`; a
/// finding without a range redacts the whole string at its path (or everything under it).
pub fn redact_value(v: &Value, root: &str, findings: &[Finding]) -> Value {
    fn go(v: &Value, path: &str, findings: &[Finding]) -> Value {
        let whole = findings.iter().find(|f| {
            f.range.is_none() && (f.path == path || path.starts_with(&format!("{}/", f.path)))
        });
        if let Some(f) = whole
            && !v.is_null()
        {
            return match v {
                Value::Object(_) | Value::Array(_) if f.path == path => {
                    Value::String(format!("[REDACTED:{}]", f.guardrail))
                }
                Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                    Value::String(format!("[REDACTED:{}]", f.guardrail))
                }
                _ => go_children(v, path, findings),
            };
        }
        match v {
            Value::String(s) => {
                let mut ranges: Vec<(usize, usize, &str)> = findings
                    .iter()
                    .filter(|f| f.path == path)
                    .filter_map(|f| f.range.map(|(a, b)| (a, b, f.guardrail.as_str())))
                    .collect();
                if ranges.is_empty() {
                    return v.clone();
                }
                Value::String(splice(s, &mut ranges))
            }
            _ => go_children(v, path, findings),
        }
    }
    fn go_children(v: &Value, path: &str, findings: &[Finding]) -> Value {
        match v {
            Value::Array(a) => Value::Array(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| go(x, &format!("{path}/{i}"), findings))
                    .collect(),
            ),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| {
                        (
                            k.clone(),
                            go(x, &format!("{path}/{}", escape_pointer(k)), findings),
                        )
                    })
                    .collect(),
            ),
            _ => v.clone(),
        }
    }
    go(v, root, findings)
}

fn splice(s: &str, ranges: &mut [(usize, usize, &str)]) -> String {
    ranges.sort();
    let mut out = String::new();
    let mut at = 0;
    for (a, b, g) in ranges.iter() {
        if *b <= at {
            continue;
        }
        let a = (*a).max(at);
        out.push_str(s.get(at..a).unwrap_or(""));
        out.push_str(&format!("[REDACTED:{g}]"));
        at = *b;
    }
    out.push_str(s.get(at..).unwrap_or(""));
    out
}

/// Redacts free text (error messages, excerpts) and JSON values with every pattern-based
/// guardrail of a run and, always, the secret detector (`no-secrets-in-code`: its value
/// patterns and, in JSON, its key rule, see [`crate::redact`]), whichever guardrails the
/// stages list: guardrails decide what blocks; redaction always runs.
#[derive(Clone, Debug)]
pub struct Redactor {
    guards: Vec<Guard>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(Vec::new())
    }
}

impl Redactor {
    pub fn new(guards: Vec<Guard>) -> Self {
        let mut guards: Vec<Guard> = guards
            .into_iter()
            .filter(|g| !matches!(g, Guard::Command { .. }))
            .collect();
        if !guards
            .iter()
            .any(|g| matches!(g, Guard::Builtin(n) if n == crate::redact::SECRETS))
        {
            guards.insert(0, Guard::Builtin(crate::redact::SECRETS.to_string()));
        }
        Redactor { guards }
    }

    /// The secret detector alone (stored outputs).
    pub fn secrets() -> Self {
        Redactor::new(Vec::new())
    }

    pub fn text(&self, s: &str) -> String {
        let mut ranges: Vec<(usize, usize, String)> = Vec::new();
        for g in &self.guards {
            for (a, b, _) in g.scan_text(s) {
                ranges.push((a, b, g.name().to_string()));
            }
        }
        if ranges.is_empty() {
            return s.to_string();
        }
        let mut r: Vec<(usize, usize, &str)> = ranges
            .iter()
            .map(|(a, b, g)| (*a, *b, g.as_str()))
            .collect();
        splice(s, &mut r)
    }

    /// A JSON value: secret-named fields replaced whole, then every string (keys too).
    pub fn value(&self, v: &Value) -> Value {
        self.strings(&crate::redact::redact_keys(v))
    }

    fn strings(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.strings(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (self.text(k), self.strings(x)))
                    .collect(),
            ),
            x => x.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
