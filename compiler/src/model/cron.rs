//! Cron schedules as Argo reads them (robfig/cron v3's standard parser): five fields
//! `minute hour day-of-month month day-of-week`, or one of the descriptors `@hourly`,
//! `@daily`, `@weekly`, `@monthly`, `@yearly`.
//!
//! Hand-written rather than borrowed so that every error points at the exact field, range
//! or step of the text. What the standard parser accepts, and so what is accepted here:
//! `*` and `?` (any), numbers, names (`JAN`-`DEC`, `SUN`-`SAT`, any case), ranges `a-b`, steps
//! `*/n`, `a-b/n` and `a/n` (from `a` to the field's maximum), lists `a,b-c`. Day-of-week is
//! 0-6 (7 is refused, as robfig refuses it). Deliberately stricter than robfig: `*-5`
//! (robfig silently ignores the `-5`) is refused. `@annually`, `@midnight`, `@every`,
//! `CRON_TZ=`/`TZ=` prefixes are refused: the format lists the five descriptors, and the time
//! zone has its own `timezone:` field.

use crate::diag::did_you_mean;

/// A parsed schedule: the set of matching values per field, as bit sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CronSchedule {
    /// Bit `m` set: minute `m` (0-59) matches.
    pub minutes: u64,
    /// Bit `h`: hour 0-23.
    pub hours: u32,
    /// Bit `d`: day of month 1-31.
    pub days_of_month: u32,
    /// Bit `m`: month 1-12.
    pub months: u16,
    /// Bit `d`: day of week 0-6 (Sunday is 0).
    pub days_of_week: u8,
    /// Day-of-month was `*` or `?` (robfig: then only day-of-week restricts the day).
    pub dom_any: bool,
    /// Day-of-week was `*` or `?`.
    pub dow_any: bool,
}

impl CronSchedule {
    /// True if the schedule fires at this minute (all values in the schedule's time zone).
    /// Day-of-month and day-of-week combine as in robfig/cron and Vixie cron: if either is
    /// `*`, both must match; otherwise either may.
    pub fn matches(&self, minute: u32, hour: u32, day: u32, month: u32, weekday: u32) -> bool {
        let bit = |set: u64, v: u32| v < 64 && set & (1u64 << v) != 0;
        let dom = bit(u64::from(self.days_of_month), day);
        let dow = bit(u64::from(self.days_of_week), weekday);
        let day_ok = if self.dom_any || self.dow_any {
            dom && dow
        } else {
            dom || dow
        };
        bit(self.minutes, minute)
            && bit(u64::from(self.hours), hour)
            && bit(u64::from(self.months), month)
            && day_ok
    }
}

/// A problem in a schedule: a byte range of the schedule text, a message and help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronError {
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub help: Option<String>,
    /// A replacement for the whole schedule, when there is an obvious one.
    pub replacement: Option<String>,
}

impl CronError {
    fn new(start: usize, end: usize, message: impl Into<String>) -> Self {
        CronError {
            start,
            end,
            message: message.into(),
            help: None,
            replacement: None,
        }
    }

    fn help(mut self, h: impl Into<String>) -> Self {
        self.help = Some(h.into());
        self
    }
}

/// The descriptors pbc accepts and the five fields each stands for.
pub const DESCRIPTORS: &[(&str, &str)] = &[
    ("@yearly", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
    },
    Field {
        name: "day-of-week",
        min: 0,
        max: 6,
        names: DAYS,
    },
];

const SYNTAX_HELP: &str = "a field is `*`, `?`, a number, a name (JAN-DEC, SUN-SAT), a range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated list of these";

/// Parses a schedule. Errors carry byte ranges of `text`.
pub fn parse_cron(text: &str) -> Result<CronSchedule, CronError> {
    let trimmed_start = text.len() - text.trim_start().len();
    let body = text.trim();
    let body_end = trimmed_start + body.len();
    if body.is_empty() {
        return Err(CronError::new(0, text.len(), "the schedule is empty").help(
            "write five fields, `minute hour day-of-month month day-of-week`, e.g. `0 3 * * *`",
        ));
    }
    for prefix in ["CRON_TZ=", "TZ="] {
        if body.starts_with(prefix) {
            let end = body.find(char::is_whitespace).unwrap_or(body.len());
            return Err(CronError::new(
                trimmed_start,
                trimmed_start + end,
                format!("a `{prefix}` prefix is not accepted in the schedule"),
            )
            .help("put the time zone in the trigger's `timezone:` field"));
        }
    }
    if body.starts_with('@') {
        return descriptor(body, trimmed_start, body_end);
    }
    // Split into fields, keeping byte offsets.
    let mut fields: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                fields.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        fields.push((s, &text[s..]));
    }
    if fields.len() != 5 {
        let n = fields.len();
        let mut err = CronError::new(
            trimmed_start,
            body_end,
            format!(
                "a cron schedule has 5 fields (minute hour day-of-month month day-of-week), this one has {n}"
            ),
        );
        err = if n == 6 || n == 7 {
            err.help("Argo's cron has no seconds or year field (Quartz style); drop them and keep `minute hour day-of-month month day-of-week`")
        } else {
            err.help("write `minute hour day-of-month month day-of-week`, e.g. `0 3 * * *`, or use `@hourly`, `@daily`, `@weekly`, `@monthly` or `@yearly`")
        };
        return Err(err);
    }
    let mut sets = [0u64; 5];
    let mut any = [false; 5];
    for (k, ((off, f), spec)) in fields.iter().zip(FIELDS.iter()).enumerate() {
        let (set, star) = parse_field(f, *off, spec)?;
        if let Some(slot) = sets.get_mut(k) {
            *slot = set;
        }
        if let Some(slot) = any.get_mut(k) {
            *slot = star;
        }
    }
    Ok(CronSchedule {
        minutes: sets[0],
        hours: sets[1] as u32,
        days_of_month: sets[2] as u32,
        months: sets[3] as u16,
        days_of_week: sets[4] as u8,
        dom_any: any[2],
        dow_any: any[4],
    })
}

fn descriptor(body: &str, start: usize, end: usize) -> Result<CronSchedule, CronError> {
    let word_end = body.find(char::is_whitespace).unwrap_or(body.len());
    let word = &body[..word_end];
    if let Some((_, fields)) = DESCRIPTORS.iter().find(|(d, _)| *d == word) {
        if word_end < body.len() {
            let rest = body.len() - body[word_end..].trim_start().len();
            return Err(CronError::new(
                start + rest,
                end,
                format!("`{word}` takes no further fields"),
            )
            .help(format!("write `{word}` alone")));
        }
        return parse_cron(fields);
    }
    let names: Vec<&str> = DESCRIPTORS.iter().map(|(d, _)| *d).collect();
    let listed = crate::diag::one_of(&names);
    let (message, help, replacement) = match word {
        "@annually" => (
            "`@annually` is not accepted; pbc spells it `@yearly`".to_string(),
            "write `@yearly` (the same schedule, `0 0 1 1 *`)".to_string(),
            Some("@yearly"),
        ),
        "@midnight" => (
            "`@midnight` is not accepted; pbc spells it `@daily`".to_string(),
            "write `@daily` (the same schedule, `0 0 * * *`)".to_string(),
            Some("@daily"),
        ),
        "@every" => (
            "`@every` intervals are not accepted".to_string(),
            format!(
                "write a five-field schedule (`*/15 * * * *` runs every 15 minutes), or use {listed}"
            ),
            None,
        ),
        _ => {
            let lower = word.to_ascii_lowercase();
            let guess = did_you_mean(&lower, names.iter().copied());
            (
                format!("`{word}` is not a cron descriptor"),
                match guess {
                    Some(g) => format!("did you mean `{g}`? The descriptors are {listed}"),
                    None => format!("the descriptors are {listed}"),
                },
                guess,
            )
        }
    };
    let mut e = CronError::new(start, start + word_end, message).help(help);
    e.replacement = replacement.map(str::to_string);
    Err(e)
}

/// Parses one field: returns its bit set and whether it was `*`/`?` alone.
fn parse_field(f: &str, off: usize, spec: &Field) -> Result<(u64, bool), CronError> {
    let mut set = 0u64;
    let mut star = false;
    let mut pos = 0usize;
    for part in f.split(',') {
        let p_off = off + pos;
        pos += part.len() + 1;
        if part.is_empty() {
            return Err(CronError::new(
                p_off,
                p_off,
                format!("empty list element in the {} field", spec.name),
            )
            .help("remove the extra comma"));
        }
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (part, None),
        };
        if let Some(s) = step
            && s.contains('/')
        {
            return Err(CronError::new(
                p_off,
                p_off + part.len(),
                format!("`{part}` has more than one `/`"),
            )
            .help(SYNTAX_HELP));
        }
        let (lo, hi, is_star) = if range == "*" || range == "?" {
            (spec.min, spec.max, true)
        } else if range.starts_with("*") || range.starts_with("?") {
            return Err(CronError::new(
                p_off,
                p_off + range.len(),
                format!("`{range}` is not a valid {} value", spec.name),
            )
            .help(format!(
                "`*` stands for the whole range {}-{}; write `*` or a range `a-b`",
                spec.min, spec.max
            )));
        } else {
            let (a, b) = match range.split_once('-') {
                Some((a, b)) => (a, Some(b)),
                None => (range, None),
            };
            let lo = value(a, p_off, spec)?;
            let hi = match b {
                Some(b) if b.contains('-') => {
                    return Err(CronError::new(
                        p_off,
                        p_off + range.len(),
                        format!("`{range}` has more than one `-`"),
                    )
                    .help(SYNTAX_HELP));
                }
                Some(b) => value(b, p_off + a.len() + 1, spec)?,
                // `a/n` runs from `a` to the maximum.
                None if step.is_some() => spec.max,
                None => lo,
            };
            if lo > hi {
                return Err(CronError::new(
                    p_off,
                    p_off + range.len(),
                    format!(
                        "the range `{range}` runs backwards in the {} field",
                        spec.name
                    ),
                )
                .help(format!(
                    "write the smaller value first; a range cannot wrap around ({}-{})",
                    spec.min, spec.max
                )));
            }
            (lo, hi, false)
        };
        let step_n = match step {
            None => 1,
            Some(s) => {
                let s_off = p_off + range.len() + 1;
                let n: u32 = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                    s.parse().unwrap_or(u32::MAX)
                } else {
                    return Err(CronError::new(
                        s_off,
                        s_off + s.len(),
                        format!("the step `{s}` is not a number"),
                    )
                    .help("a step is a positive whole number: `*/15`"));
                };
                if n == 0 {
                    return Err(CronError::new(
                        s_off,
                        s_off + s.len(),
                        "a step of 0 never advances",
                    )
                    .help("use a positive step, e.g. `*/15`"));
                }
                if n > spec.max - spec.min + 1 {
                    return Err(CronError::new(
                        s_off,
                        s_off + s.len(),
                        format!(
                            "the step `{s}` is larger than the {} field's range ({}-{})",
                            spec.name, spec.min, spec.max
                        ),
                    )
                    .help("use a smaller step, or a single value"));
                }
                n
            }
        };
        if is_star && step_n == 1 {
            star = true;
        }
        let mut v = lo;
        while v <= hi {
            set |= 1u64 << v;
            v += step_n;
        }
    }
    Ok((set, star))
}

/// One number or name of a field.
fn value(t: &str, off: usize, spec: &Field) -> Result<u32, CronError> {
    let end = off + t.len();
    if t.is_empty() {
        return Err(CronError::new(
            off,
            end,
            format!("a range in the {} field is missing a value", spec.name),
        )
        .help(SYNTAX_HELP));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = t.parse().unwrap_or(u32::MAX);
        if n < spec.min || n > spec.max {
            let mut e = CronError::new(
                off,
                end,
                format!(
                    "`{t}` is out of range for the {} field ({}-{})",
                    spec.name, spec.min, spec.max
                ),
            );
            e = if spec.name == "day-of-week" && n == 7 {
                e.help("Sunday is 0 in Argo's cron; 7 is not accepted")
            } else {
                e.help(format!("use a value from {} to {}", spec.min, spec.max))
            };
            return Err(e);
        }
        return Ok(n);
    }
    let lower = t.to_ascii_lowercase();
    if let Some(i) = spec.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + spec.min);
    }
    let mut e = CronError::new(
        off,
        end,
        format!("`{t}` is not a valid {} value", spec.name),
    );
    if !spec.names.is_empty() {
        let upper: Vec<String> = spec.names.iter().map(|n| n.to_uppercase()).collect();
        let guess = did_you_mean(&lower, spec.names.iter().copied());
        e = e.help(match guess {
            Some(g) => format!(
                "did you mean `{}`? The {} field takes {}-{} or the names {}",
                g.to_uppercase(),
                spec.name,
                spec.min,
                spec.max,
                upper.join(", ")
            ),
            None => format!(
                "the {} field takes {}-{} or the names {}",
                spec.name,
                spec.min,
                spec.max,
                upper.join(", ")
            ),
        });
    } else if matches!(t, "L" | "W" | "LW") || t.contains(['#', 'L', 'W']) {
        e = e.help("Quartz extensions (`L`, `W`, `#`) are not part of Argo's cron");
    } else {
        e = e.help(SYNTAX_HELP);
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(t: &str) -> (String, String) {
        let e = parse_cron(t).unwrap_err();
        (t[e.start..e.end].to_string(), e.message)
    }

    #[test]
    fn accepts_standard_forms() {
        for t in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 9-17/2 * * MON-FRI",
            "0 0 1,15 * ?",
            "5/10 * * jan,Jul *",
            "@hourly",
            "@yearly",
            "  0 3 * * *  ",
            "0\t3 * * *",
        ] {
            assert!(parse_cron(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn schedule_sets() {
        let s = parse_cron("0 9-17/2 * * MON-FRI").unwrap();
        assert_eq!(s.minutes, 1);
        assert_eq!(
            s.hours,
            (1 << 9) | (1 << 11) | (1 << 13) | (1 << 15) | (1 << 17)
        );
        assert_eq!(s.days_of_week, 0b0111110);
        assert!(s.dom_any && !s.dow_any);
        assert!(s.matches(0, 9, 12, 3, 1));
        assert!(!s.matches(0, 9, 12, 3, 0));
        let d = parse_cron("@weekly").unwrap();
        assert!(d.matches(0, 0, 5, 5, 0));
        // Both day fields restricted: either may match.
        let both = parse_cron("0 0 1 * MON").unwrap();
        assert!(both.matches(0, 0, 1, 1, 3) && both.matches(0, 0, 2, 1, 1));
    }

    #[test]
    fn errors_point_at_the_culprit() {
        assert_eq!(err("0 25 * * *").0, "25");
        assert_eq!(err("0 3 * * 7").0, "7");
        assert_eq!(err("0 3 * * MON-FRY").0, "FRY");
        assert_eq!(err("0 3 * * 5-1").0, "5-1");
        assert_eq!(err("*/0 3 * * *").0, "0");
        assert_eq!(err("0 0 3 * * *").0, "0 0 3 * * *");
        assert_eq!(err("0 3 * *").0, "0 3 * *");
        assert_eq!(err("0 3 L * *").0, "L");
        assert_eq!(err("0 3 1,,2 * *").0, "");
        assert_eq!(err("*-5 3 * * *").0, "*-5");
        assert_eq!(err("@annually").0, "@annually");
        assert_eq!(err("@dayly").1, "`@dayly` is not a cron descriptor");
        assert_eq!(err("@daily 3").0, "3");
        assert_eq!(err("CRON_TZ=UTC 0 3 * * *").0, "CRON_TZ=UTC");
        assert_eq!(err("0 3 * * 1/99").0, "99");
        assert_eq!(err("99999999999 3 * * *").0, "99999999999");
    }
}
