use super::*;
use crate::expr::parse;
use crate::span::FileId;
use crate::types::schema::{EnumTy, Field};
use std::sync::Arc;

struct E(Vec<(String, Ty)>);
impl Env for E {
    fn root(&self, name: &str, _at: ESpan) -> Root {
        match self.0.iter().find(|(n, _)| n == name) {
            Some((_, t)) => Root::Type(t.clone(), None),
            None => Root::Unknown,
        }
    }
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }
}

fn env() -> E {
    let sp = Span::point(FileId(0), 0);
    let risk = Ty::Enum(Arc::new(EnumTy {
        members: vec![
            "LOW".into(),
            "MEDIUM".into(),
            "HIGH".into(),
            "CRITICAL".into(),
        ],
        span: sp,
    }));
    let f = |n: &str, ty: Ty, required: bool| Field {
        name: n.into(),
        ty,
        required,
        span: sp,
    };
    let report = Ty::Object(Arc::new(ObjTy {
        fields: vec![
            f("risk-level", risk, true),
            f("affected-rows", Ty::Integer, true),
            f("ratio", Ty::Number, true),
            f("wait", Ty::Duration, true),
            f("note", Ty::String, false),
            f("ok", Ty::Bool, true),
        ],
        open: true,
        span: sp,
    }));
    E(vec![("security-report".into(), report)])
}

fn codes(src: &str, purpose: Purpose) -> Vec<(&'static str, String)> {
    let (e, errs) = parse(src);
    assert!(errs.is_empty(), "{errs:?}");
    let c = check(&e.unwrap(), &env(), purpose);
    c.findings
        .iter()
        .map(|f| {
            (
                f.code.id,
                src[f.span.start as usize..f.span.end as usize].to_string(),
            )
        })
        .collect()
}

#[test]
fn accepts_good_conditions() {
    for s in [
        "security-report.risk-level >= HIGH",
        "security-report.risk-level IN [HIGH, 'CRITICAL']",
        "security-report.affected-rows > 10000 AND security-report.ok",
        "security-report.ratio < 5%",
        "security-report.wait > 4h OR NOT security-report.ok == true",
    ] {
        assert_eq!(codes(s, Purpose::Gate), vec![], "{s}");
    }
}

#[test]
fn reports_at_sub_spans() {
    assert_eq!(
        codes("security-report.risk_level >= HIGH", Purpose::Gate),
        vec![("PB3012", "risk_level".into())]
    );
    assert_eq!(
        codes("security-reprot.risk-level >= HIGH", Purpose::Gate),
        vec![("PB3011", "security-reprot".into())]
    );
    assert_eq!(
        codes("security-report.risk-level >= HIGHEST", Purpose::Gate),
        vec![("PB3015", "HIGHEST".into())]
    );
    assert_eq!(
        codes("security-report.note > 'a'", Purpose::Gate)[1],
        ("PB3014", ">".into())
    );
    assert_eq!(
        codes("security-report.affected-rows > 20%", Purpose::Gate),
        vec![("PB3013", "20%".into())]
    );
    assert_eq!(
        codes("security-report.wait > 5", Purpose::Gate),
        vec![("PB3013", "5".into())]
    );
    assert_eq!(
        codes("security-report.affected-rows IN 5", Purpose::Gate),
        vec![("PB3016", "5".into())]
    );
    assert_eq!(
        codes("security-report.affected-rows", Purpose::Gate),
        vec![("PB3013", "security-report.affected-rows".into())]
    );
    assert_eq!(
        codes("security-report.note == 'x'", Purpose::Gate),
        vec![("PB3018", "note".into())]
    );
    assert_eq!(
        codes("1 == 1", Purpose::When),
        vec![("PB3017", "1 == 1".into())]
    );
    assert_eq!(
        codes("security-report.ok == HIGH", Purpose::Gate),
        vec![("PB3019", "HIGH".into())]
    );
}
