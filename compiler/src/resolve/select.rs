//! Patch targets: group/version/kind/name/namespace as anchored regular expressions, and
//! Kubernetes label and annotation selectors (`a=b`, `a!=b`, `a in (x, y)`, `a notin (x)`,
//! `a`, `!a`), all ANDed.

use regex::Regex;
use std::collections::BTreeMap;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Req {
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label (or annotation) selector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Req>,
}

impl LabelSelector {
    /// Parses Kubernetes selector syntax.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        let mut reqs = Vec::new();
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < chars.len() && chars[*i].is_whitespace() {
                *i += 1;
            }
        };
        let is_word = |c: char| !c.is_whitespace() && !matches!(c, ',' | '=' | '!' | '(' | ')');
        let word = |i: &mut usize| -> String {
            let start = *i;
            while *i < chars.len() && is_word(chars[*i]) {
                *i += 1;
            }
            chars[start..*i].iter().collect()
        };
        skip_ws(&mut i);
        if i >= chars.len() {
            return Ok(LabelSelector { reqs });
        }
        loop {
            skip_ws(&mut i);
            let negated = i < chars.len() && chars[i] == '!';
            if negated {
                i += 1;
                skip_ws(&mut i);
            }
            let key = word(&mut i);
            if key.is_empty() {
                return Err(format!("expected a label key at character {}", i + 1));
            }
            skip_ws(&mut i);
            if negated {
                reqs.push(Req::NotExists(key));
            } else if i < chars.len() && (chars[i] == '=' || chars[i] == '!') {
                let not = chars[i] == '!';
                i += 1;
                if not {
                    if i >= chars.len() || chars[i] != '=' {
                        return Err(format!("expected `!=` at character {i}"));
                    }
                    i += 1;
                } else if i < chars.len() && chars[i] == '=' {
                    i += 1;
                }
                skip_ws(&mut i);
                let v = word(&mut i);
                reqs.push(if not {
                    Req::NotIn(key, vec![v])
                } else {
                    Req::In(key, vec![v])
                });
            } else {
                // `in` / `notin` / bare key.
                let save = i;
                let op = word(&mut i);
                match op.as_str() {
                    "in" | "notin" => {
                        skip_ws(&mut i);
                        if i >= chars.len() || chars[i] != '(' {
                            return Err(format!("expected `(` after `{op}`"));
                        }
                        i += 1;
                        let mut vals = Vec::new();
                        loop {
                            skip_ws(&mut i);
                            let v = word(&mut i);
                            skip_ws(&mut i);
                            vals.push(v);
                            match chars.get(i) {
                                Some(',') => i += 1,
                                Some(')') => {
                                    i += 1;
                                    break;
                                }
                                _ => return Err(format!("expected `,` or `)` in the `{op}` list")),
                            }
                        }
                        reqs.push(if op == "in" {
                            Req::In(key, vals)
                        } else {
                            Req::NotIn(key, vals)
                        });
                    }
                    "" => {
                        i = save;
                        reqs.push(Req::Exists(key));
                    }
                    other => {
                        return Err(format!(
                            "unexpected `{other}` after `{key}`: expected `=`, `!=`, `in` or `notin`"
                        ));
                    }
                }
            }
            skip_ws(&mut i);
            match chars.get(i) {
                None => break,
                Some(',') => i += 1,
                Some(c) => return Err(format!("unexpected `{c}` at character {}", i + 1)),
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.reqs.iter().all(|r| match r {
            Req::Exists(k) => labels.contains_key(k),
            Req::NotExists(k) => !labels.contains_key(k),
            Req::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Req::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
        })
    }
}

/// An anchored regular expression as kustomize builds it (`^(?:re)$`); empty matches all.
#[derive(Clone, Debug)]
pub struct Pattern(Option<Regex>);

impl Pattern {
    pub fn new(s: &str) -> Result<Pattern, String> {
        if s.is_empty() {
            return Ok(Pattern(None));
        }
        Regex::new(&format!("^(?:{s})$"))
            .map(|r| Pattern(Some(r)))
            .map_err(|e| e.to_string())
    }

    pub fn any() -> Pattern {
        Pattern(None)
    }

    pub fn is_any(&self) -> bool {
        self.0.is_none()
    }

    pub fn matches(&self, s: &str) -> bool {
        self.0.as_ref().is_none_or(|r| r.is_match(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors() {
        let l = labels(&[("tier", "critical"), ("owner", "sre")]);
        for (s, want) in [
            ("tier=critical", true),
            ("tier==critical", true),
            ("tier!=critical", false),
            ("tier in (normal, critical)", true),
            ("tier notin (critical)", false),
            ("owner", true),
            ("!owner", false),
            ("!missing,tier=critical", true),
            ("missing!=x", true),
            ("", true),
        ] {
            assert_eq!(LabelSelector::parse(s).unwrap().matches(&l), want, "{s}");
        }
        assert!(LabelSelector::parse("tier in critical").is_err());
        assert!(LabelSelector::parse("a b").is_err());
    }

    #[test]
    fn anchored() {
        let p = Pattern::new(".*-agent").unwrap();
        assert!(p.matches("code-review-agent"));
        assert!(!Pattern::new("agent").unwrap().matches("code-review-agent"));
        assert!(Pattern::new("(").is_err());
    }
}
