//! The `sortOptions` field of a kustomization.

use super::*;

pub(super) fn sort_options(n: &Node, diags: &mut Vec<Diagnostic>) -> Option<SortSpec> {
    let m = n.as_map()?;
    let mut fifo = false;
    let mut legacy = None;
    let mut order_seen = false;
    for e in m {
        match e.key_str() {
            "order" => match e.value.as_str() {
                Some("legacy") => order_seen = true,
                Some("fifo") => {
                    fifo = true;
                    order_seen = true;
                }
                _ => diags.push(
                    invalid(
                        e.value.span,
                        "`sortOptions.order` must be `legacy` or `fifo`",
                    )
                    .with_help("`legacy` sorts by kind, then name; `fifo` keeps the input order"),
                ),
            },
            "legacySortOptions" => {
                let mut first = Vec::new();
                let mut last = Vec::new();
                if let Some(lm) = e.value.as_map() {
                    for l in lm {
                        let k = l.key_str();
                        let list: Vec<String> = l
                            .value
                            .as_seq()
                            .map(|s| s.iter().filter_map(as_string).collect())
                            .unwrap_or_default();
                        match k {
                            "orderFirst" => first = list,
                            "orderLast" => last = list,
                            other => unknown_key(
                                &l.key,
                                other,
                                "`legacySortOptions`",
                                &["orderFirst", "orderLast"],
                                diags,
                            ),
                        }
                    }
                }
                legacy = Some((first, last));
            }
            other => unknown_key(
                &e.key,
                other,
                "`sortOptions`",
                &["order", "legacySortOptions"],
                diags,
            ),
        }
    }
    if !order_seen {
        diags.push(invalid(
            n.span,
            "`sortOptions` needs `order: legacy` or `order: fifo`",
        ));
    }
    if fifo && let Some(e) = m.iter().find(|e| e.key_str() == "legacySortOptions") {
        diags.push(
            invalid(
                e.key.span,
                "`sortOptions.legacySortOptions` is set, but the order is `fifo`, not `legacy`",
            )
            .with_help("remove `legacySortOptions`, or set `order: legacy`"),
        );
    }
    Some(SortSpec { fifo, legacy })
}
