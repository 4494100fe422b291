//! Conditions that gate less often: the `conditions[]` of a stage that is `conditional` in
//! both documents. Decidable cases only: a `then: manual` branch whose `if` is kept but no
//! longer manual, `else: manual` turned `auto`, a simple comparison (`FIELD OP NUMBER`) whose
//! threshold is relaxed, and manual branches removed (more of the base's manual branches
//! left unmatched than the overlay has new manual ones). A rewritten condition is not
//! compared.

use super::compare::{Cmp, text};
use super::*;

/// A condition of the form `FIELD OP NUMBER`: (field, operator, threshold).
fn threshold(cond: &str) -> Option<(&str, &str, f64)> {
    let c = cond.trim();
    for op in [">=", "<=", ">", "<"] {
        if let Some(i) = c.find(op) {
            let field = c[..i].trim();
            let num = c[i + op.len()..].trim();
            let simple = !field.is_empty()
                && field
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch));
            return match (simple, num.parse::<f64>()) {
                (true, Ok(n)) if n.is_finite() => Some((field, op, n)),
                _ => None,
            };
        }
    }
    None
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Cmp<'_> {
    pub(super) fn conditions(&mut self, name: &str, bs: &Node, cs: &Node) {
        let (b, c) = (bs.get("conditions"), cs.get("conditions"));
        let Some(bl) = b.and_then(Node::as_seq) else {
            return;
        };
        let cl = c.and_then(Node::as_seq).unwrap_or(&[]);
        let list_at = c.map_or_else(
            || self.removal(&["spec", "stages", name, "conditions"]),
            |n| n.span,
        );
        let manual = |x: &Node| text(x.get("then")) == Some("manual");
        // The overlay's branches matched by one of the base's.
        let mut used = vec![false; cl.len()];
        let mut unmatched: Vec<(&Node, &str)> = Vec::new();
        for bb in bl {
            if let Some(be) = bb.get("else") {
                let ce = cl.iter().find_map(|x| x.get("else"));
                if text(Some(be)) == Some("manual") && text(ce) != Some("manual") {
                    self.emit(
                        &CONDITION_WIDENED,
                        ce.map_or(list_at, |n| n.span),
                        format!(
                            "the overlay turns `else: manual` of stage `{name}` into `else: {}`",
                            text(ce).unwrap_or("nothing")
                        ),
                        be.span,
                        "`else: manual`".into(),
                    );
                }
                continue;
            }
            let (Some(bif), Some(bthen)) = (bb.get("if"), bb.get("then")) else {
                continue;
            };
            if !manual(bb) {
                continue;
            }
            let bcond = text(Some(bif)).unwrap_or("");
            let label = format!("gates `{bcond}` manually");
            let same = cl.iter().enumerate().find(|(i, x)| {
                !used[*i]
                    && text(x.get("if")).is_some_and(|t| normalize_ws(t) == normalize_ws(bcond))
            });
            if let Some((i, x)) = same {
                used[i] = true;
                if let Some(t) = x.get("then")
                    && !manual(x)
                {
                    self.emit(
                        &CONDITION_WIDENED,
                        t.span,
                        format!("the overlay no longer gates `{bcond}` manually in stage `{name}`"),
                        bthen.span,
                        label,
                    );
                } else {
                    // A manual branch without approvers of its own uses the stage's.
                    self.approver_list(
                        &format!("the branch `if: {bcond}` of stage `{name}`"),
                        bb.get("approvers").or_else(|| bs.get("approvers")),
                        x.get("approvers").or_else(|| cs.get("approvers")),
                        &["spec", "stages", name, "conditions"],
                    );
                }
                continue;
            }
            // The same field and operator with another threshold.
            let similar = threshold(bcond).and_then(|(f, op, bn)| {
                cl.iter().enumerate().find_map(|(i, x)| {
                    let xi = x.get("if")?;
                    let (xf, xop, xn) = threshold(text(Some(xi))?)?;
                    (!used[i] && xf == f && xop == op && manual(x)).then_some((i, xi, xn, op, bn))
                })
            });
            match similar {
                Some((i, xi, xn, op, bn)) => {
                    used[i] = true;
                    let laxer = if op.starts_with('>') {
                        xn > bn
                    } else {
                        xn < bn
                    };
                    if laxer {
                        self.emit(
                            &CONDITION_WIDENED,
                            xi.span,
                            format!(
                                "the overlay relaxes the threshold of a gate of stage `{name}`: `{}` gates less often than `{bcond}`",
                                text(Some(xi)).unwrap_or("")
                            ),
                            bif.span,
                            label,
                        );
                    }
                }
                None => unmatched.push((bif, bcond)),
            }
        }
        // A manual branch the overlay rewrote is paired with one of the overlay's new manual
        // branches (not compared); the base's manual branches beyond those are removed.
        let new_manual = cl
            .iter()
            .enumerate()
            .filter(|(i, x)| !used[*i] && x.get("if").is_some() && manual(x))
            .count();
        for (bif, bcond) in unmatched.into_iter().skip(new_manual) {
            self.emit(
                &CONDITION_WIDENED,
                list_at,
                format!(
                    "the overlay removes the branch `if: {bcond}` (`then: manual`) from stage `{name}`"
                ),
                bif.span,
                format!("gates `{bcond}` manually"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::threshold;

    #[test]
    fn thresholds_are_simple_comparisons() {
        assert_eq!(threshold("x.y > 10"), Some(("x.y", ">", 10.0)));
        assert_eq!(threshold("a >= 2.5"), Some(("a", ">=", 2.5)));
        assert_eq!(threshold("a > b"), None);
        assert_eq!(threshold("a > 1 AND b < 2"), None);
    }
}
