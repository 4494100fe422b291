//! Value syntaxes of the format: durations, DNS-1123 labels, `LAYER:FUNCTION` references,
//! rate limits, Kubernetes label keys and values. Pure functions over text; the builder turns
//! their errors into diagnostics.

use std::fmt;

/// A duration in whole seconds (`30s`, `10m`, `4h`, `2d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration {
    pub seconds: u64,
}

impl Duration {
    pub const fn from_secs(seconds: u64) -> Self {
        Duration { seconds }
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_secs(self.seconds)
    }

    /// The shortest exact spelling: the largest unit that divides the value.
    pub fn canonical(self) -> String {
        let s = self.seconds;
        for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if s != 0 && s.is_multiple_of(n) {
                return format!("{}{unit}", s / n);
            }
        }
        format!("{s}s")
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// The longest duration accepted: Go's `time.Duration` (int64 nanoseconds) must hold it.
pub const MAX_DURATION_SECS: u64 = (i64::MAX as u64) / 1_000_000_000;

/// Why a duration string was refused, with a corrected spelling when one is obvious.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    pub message: String,
    pub help: String,
    pub suggestion: Option<String>,
}

const DURATION_FORM: &str =
    "a whole number followed by one unit, `s`, `m`, `h` or `d` (e.g. `30s`, `10m`, `4h`, `2d`)";

/// Parses `30s`, `10m`, `4h`, `2d`. The error explains, and suggests the intended spelling
/// for Go-style (`1h30m`), ISO 8601 (`PT4H`), upper-case, fractional and spelled-out forms.
pub fn parse_duration(t: &str) -> Result<Duration, DurationError> {
    let err = |message: String, suggestion: Option<Duration>| DurationError {
        message,
        help: match suggestion {
            Some(d) => format!("write `{d}`: {DURATION_FORM}"),
            None => format!("write {DURATION_FORM}"),
        },
        suggestion: suggestion.map(|d| d.canonical()),
    };
    if t.is_empty() {
        return Err(err("the duration is empty".into(), None));
    }
    if let Some(d) = strict(t) {
        let d = d.map_err(|m| err(m, None))?;
        if d.seconds == 0 {
            return Err(DurationError {
                message: format!("`{t}` is not a duration: it is zero"),
                help: "give a positive duration, or remove the field".into(),
                suggestion: None,
            });
        }
        return Ok(d);
    }
    let guess = lenient(t);
    let why = if t.contains(char::is_whitespace) {
        "has spaces"
    } else if t.starts_with(['P', 'p']) {
        "is ISO 8601, which playbooks do not use"
    } else if t.bytes().all(|b| b.is_ascii_digit()) {
        "has no unit"
    } else if t.contains('.') {
        "is not a whole number"
    } else if t.chars().any(|c| c.is_ascii_uppercase()) {
        "has an upper-case unit"
    } else if guess.is_some() && t.chars().filter(|c| c.is_ascii_alphabetic()).count() > 1 {
        "combines several units or spells the unit out"
    } else {
        "is not a number followed by `s`, `m`, `h` or `d`"
    };
    Err(err(format!("`{t}` is not a duration: it {why}"), guess))
}

/// `Some(Ok)` for the accepted form, `Some(Err)` for the accepted form that overflows,
/// `None` for anything else.
fn strict(t: &str) -> Option<Result<Duration, String>> {
    let unit = t.chars().last()?;
    let n = t.get(..t.len() - 1)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mul: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    let too_long = || {
        format!(
            "`{t}` is too long (at most {}d)",
            MAX_DURATION_SECS / 86_400
        )
    };
    let v: u64 = match n.parse() {
        Ok(v) => v,
        Err(_) => return Some(Err(too_long())),
    };
    match v.checked_mul(mul) {
        Some(s) if s <= MAX_DURATION_SECS => Some(Ok(Duration::from_secs(s))),
        _ => Some(Err(too_long())),
    }
}

/// Understands other spellings, only to suggest the accepted one.
fn lenient(t: &str) -> Option<Duration> {
    let mut s = t.trim().to_ascii_lowercase();
    if let Some(rest) = s.strip_prefix('p') {
        // ISO 8601: P[nD]T[nH][nM][nS]
        s = rest.replace('t', "");
    }
    let mut total = 0f64;
    let mut rest = s.as_str();
    let mut any = false;
    while !rest.is_empty() {
        rest = rest.trim_start();
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest.get(..num_len)?.parse().ok()?;
        rest = rest.get(num_len..)?.trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let mul = match unit {
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            "" if !any => 1.0,
            _ => return None,
        };
        total += num * mul;
        any = true;
    }
    if !any || total <= 0.0 || total.fract() != 0.0 || total > MAX_DURATION_SECS as f64 {
        return None;
    }
    Some(Duration::from_secs(total as u64))
}

/// Checks a DNS-1123 label: at most 63 of `[a-z0-9-]`, starting and ending alphanumeric.
/// On failure returns the byte range of the first offending character (or the part beyond
/// 63 characters) and what is wrong with it.
pub fn dns1123_problem(t: &str) -> Option<(usize, usize, String)> {
    if t.is_empty() {
        return Some((0, 0, "it is empty".into()));
    }
    for (i, c) in t.char_indices() {
        let ok = c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        if !ok {
            let what = if c.is_ascii_uppercase() {
                "upper-case letters are not allowed".to_string()
            } else if c == ' ' {
                "spaces are not allowed".to_string()
            } else if c.is_whitespace() || c.is_control() {
                format!("`{}` is not allowed", c.escape_debug())
            } else {
                format!("`{c}` is not allowed")
            };
            return Some((i, i + c.len_utf8(), what));
        }
    }
    if t.starts_with('-') {
        return Some((0, 1, "it must start with a letter or digit".into()));
    }
    if t.ends_with('-') {
        return Some((
            t.len() - 1,
            t.len(),
            "it must end with a letter or digit".into(),
        ));
    }
    if t.len() > 63 {
        return Some((
            63,
            t.len(),
            format!("it is {} characters long, over 63", t.len()),
        ));
    }
    None
}

/// The closest DNS-1123 label to `t` (lower-cased, other characters turned into `-`), or
/// `None` if nothing usable remains.
pub fn normalize_dns1123(t: &str) -> Option<String> {
    let mut out = String::new();
    for c in t.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut s = out.trim_matches('-').to_string();
    if s.len() > 63 {
        s.truncate(63);
        s = s.trim_end_matches('-').to_string();
    }
    (!s.is_empty()).then_some(s)
}

/// A `LAYER:FUNCTION` reference (`k8s:scale_deployment`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionRef {
    pub layer: String,
    pub function: String,
}

impl fmt::Display for ActionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.layer, self.function)
    }
}

fn ident(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses `LAYER:FUNCTION`; each part starts with a letter or digit and holds letters,
/// digits, `_`, `-` and `.`. The error is a byte range and a message.
pub fn parse_action_ref(t: &str) -> Result<ActionRef, (usize, usize, String)> {
    let Some((layer, function)) = t.split_once(':') else {
        return Err((
            0,
            t.len(),
            format!("`{t}` has no `:` between layer and function"),
        ));
    };
    if !ident(layer) {
        return Err((
            0,
            layer.len(),
            if layer.is_empty() {
                "the layer before `:` is empty".to_string()
            } else {
                format!("`{layer}` is not a valid layer name")
            },
        ));
    }
    let f0 = layer.len() + 1;
    if !ident(function) {
        return Err((
            f0,
            t.len(),
            if function.is_empty() {
                "the function after `:` is empty".to_string()
            } else {
                format!("`{function}` is not a valid function name")
            },
        ));
    }
    Ok(ActionRef {
        layer: layer.to_string(),
        function: function.to_string(),
    })
}

/// The unit of a rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RateUnit {
    Second,
    Minute,
    Hour,
    Day,
}

impl RateUnit {
    pub const ALL: [&'static str; 4] = ["second", "minute", "hour", "day"];

    pub fn as_str(self) -> &'static str {
        match self {
            RateUnit::Second => "second",
            RateUnit::Minute => "minute",
            RateUnit::Hour => "hour",
            RateUnit::Day => "day",
        }
    }

    pub fn seconds(self) -> u64 {
        match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3_600,
            RateUnit::Day => 86_400,
        }
    }

    fn parse(t: &str) -> Option<RateUnit> {
        Some(match t {
            "second" => RateUnit::Second,
            "minute" => RateUnit::Minute,
            "hour" => RateUnit::Hour,
            "day" => RateUnit::Day,
            _ => return None,
        })
    }
}

/// A problem in a rate limit: byte range, message, help.
pub type RateError = (usize, usize, String, String);

/// Parses `"N per second|minute|hour|day"` (N ≥ 1); returns the count, the unit and the
/// byte ranges of both.
pub fn parse_rate(t: &str) -> Result<(u64, RateUnit), RateError> {
    let form =
        "write `N per second`, `N per minute`, `N per hour` or `N per day`, e.g. `10 per hour`";
    let words: Vec<(usize, &str)> = t
        .split(' ')
        .scan(0usize, |pos, w| {
            let at = *pos;
            *pos += w.len() + 1;
            Some((at, w))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let (Some(&(n_at, n)), Some(&(p_at, per)), Some(&(u_at, unit)), None) =
        (words.first(), words.get(1), words.get(2), words.get(3))
    else {
        // Common shorthand: `10/hour`, `10/h`.
        let hint = t
            .split_once('/')
            .and_then(|(n, u)| {
                let u = match u.trim() {
                    "s" | "sec" | "second" => "second",
                    "m" | "min" | "minute" => "minute",
                    "h" | "hr" | "hour" => "hour",
                    "d" | "day" => "day",
                    _ => return None,
                };
                Some(format!("write `{} per {u}`", n.trim()))
            })
            .unwrap_or_else(|| form.to_string());
        return Err((0, t.len(), format!("`{t}` is not a rate limit"), hint));
    };
    if per != "per" {
        return Err((
            p_at,
            p_at + per.len(),
            format!("expected `per`, found `{per}`"),
            form.to_string(),
        ));
    }
    let count: u64 = match n.parse() {
        Ok(c) if n.bytes().all(|b| b.is_ascii_digit()) => c,
        _ => {
            return Err((
                n_at,
                n_at + n.len(),
                format!("`{n}` is not a whole number"),
                form.to_string(),
            ));
        }
    };
    if count == 0 {
        return Err((
            n_at,
            n_at + n.len(),
            "a rate limit of 0 never lets the action run".to_string(),
            "use a positive count; to forbid the action, remove the stages that call it"
                .to_string(),
        ));
    }
    let Some(u) = RateUnit::parse(unit) else {
        let singular = unit.strip_suffix('s').and_then(RateUnit::parse);
        let help = match singular {
            Some(u) => format!("write `{count} per {}` (singular)", u.as_str()),
            None => match crate::diag::did_you_mean(unit, RateUnit::ALL) {
                Some(g) => format!("did you mean `{g}`? {form}"),
                None => form.to_string(),
            },
        };
        return Err((
            u_at,
            u_at + unit.len(),
            format!("`{unit}` is not a rate unit"),
            help,
        ));
    };
    Ok((count, u))
}

fn k8s_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                && b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

/// Checks a Kubernetes label or annotation key (`[prefix/]name`); returns what is wrong.
pub fn k8s_key_problem(k: &str) -> Option<String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && !dns1123_subdomain(p)
    {
        return Some(format!(
            "the prefix `{p}` is not a DNS subdomain (lower-case alphanumerics, `-` and `.`, at most 253)"
        ));
    }
    if !k8s_name_part(name) {
        return Some(format!(
            "the name `{name}` must be 1-63 alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric"
        ));
    }
    None
}

/// Checks a Kubernetes label value; returns what is wrong.
pub fn k8s_label_value_problem(v: &str) -> Option<String> {
    if v.is_empty() || k8s_name_part(v) {
        None
    } else {
        Some("a label value must be empty or 1-63 alphanumerics, `-`, `_` or `.`, starting and ending alphanumeric".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap().seconds, 30);
        assert_eq!(parse_duration("10m").unwrap().seconds, 600);
        assert_eq!(parse_duration("4h").unwrap().seconds, 14_400);
        assert_eq!(parse_duration("2d").unwrap().seconds, 172_800);
        assert_eq!(Duration::from_secs(5400).canonical(), "90m");
        assert_eq!(Duration::from_secs(86_400).to_string(), "1d");
        let e = parse_duration("1h30m").unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("90m"));
        assert_eq!(
            parse_duration("PT4H").unwrap_err().suggestion.as_deref(),
            Some("4h")
        );
        assert_eq!(
            parse_duration("4 hours").unwrap_err().suggestion.as_deref(),
            Some("4h")
        );
        assert_eq!(
            parse_duration("1.5h").unwrap_err().suggestion.as_deref(),
            Some("90m")
        );
        assert_eq!(
            parse_duration("4H").unwrap_err().suggestion.as_deref(),
            Some("4h")
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("300000d").is_err());
        assert!(parse_duration("soon").unwrap_err().suggestion.is_none());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn dns_labels() {
        assert!(dns1123_problem("code-review-agent").is_none());
        assert!(dns1123_problem("a").is_none());
        assert!(dns1123_problem("0abc").is_none());
        assert_eq!(dns1123_problem("Bad\tName").unwrap().0, 0);
        assert_eq!(dns1123_problem("bad\tname").unwrap().0, 3);
        assert_eq!(dns1123_problem("-x").unwrap().0, 0);
        assert_eq!(dns1123_problem("x-").unwrap().0, 1);
        assert_eq!(dns1123_problem("日本-stage").unwrap().1, 3);
        assert!(dns1123_problem(&"a".repeat(64)).is_some());
        assert_eq!(normalize_dns1123("Bad\tName").as_deref(), Some("bad-name"));
        assert_eq!(normalize_dns1123("日本-stage").as_deref(), Some("stage"));
        assert_eq!(
            normalize_dns1123("Code_Review--Agent_").as_deref(),
            Some("code-review-agent")
        );
        assert_eq!(normalize_dns1123("日本"), None);
        assert_eq!(normalize_dns1123(&"a".repeat(70)).unwrap().len(), 63);
    }

    #[test]
    fn action_refs() {
        let a = parse_action_ref("k8s:scale_deployment").unwrap();
        assert_eq!(
            (a.layer.as_str(), a.function.as_str()),
            ("k8s", "scale_deployment")
        );
        assert_eq!(parse_action_ref("notify").unwrap_err().0, 0);
        assert_eq!(parse_action_ref("db:").unwrap_err().0, 3);
        assert_eq!(parse_action_ref(":x").unwrap_err().1, 0);
        assert!(parse_action_ref("a:b:c").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10 per hour").unwrap(), (10, RateUnit::Hour));
        assert_eq!(parse_rate("1 per day").unwrap(), (1, RateUnit::Day));
        let e = parse_rate("10 per hours").unwrap_err();
        assert_eq!((e.0, e.1), (7, 12));
        assert!(e.3.contains("10 per hour"));
        assert_eq!(parse_rate("10/hour").unwrap_err().3, "write `10 per hour`");
        assert_eq!(parse_rate("0 per hour").unwrap_err().0, 0);
        assert_eq!(parse_rate("ten per hour").unwrap_err().1, 3);
        assert_eq!(parse_rate("10 each hour").unwrap_err().0, 3);
    }

    #[test]
    fn k8s_keys() {
        assert!(k8s_key_problem("app.kubernetes.io/part-of").is_none());
        assert!(k8s_key_problem("team").is_none());
        assert!(k8s_key_problem("Team Name").is_some());
        assert!(k8s_key_problem("Example.com/x").is_some());
        assert!(k8s_label_value_problem("platform-security").is_none());
        assert!(k8s_label_value_problem("").is_none());
        assert!(k8s_label_value_problem("a b").is_some());
    }
}
