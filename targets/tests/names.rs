//! PB6001: names made too long by overlays, naming the prefix.

mod common;

const PB: &str = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: nightly-database-maintenance-window\nspec:\n  trigger:\n    schedule: \"0 3 * * *\"\n  stages:\n    - name: a\n      action: db:vacuum\n";

#[test]
fn a_prefix_that_makes_a_cron_workflow_name_too_long() {
    let d = common::temp_dir("names");
    std::fs::create_dir_all(d.join("base")).expect("mkdir");
    std::fs::create_dir_all(d.join("ov")).expect("mkdir");
    std::fs::write(
        d.join("base/kustomization.yaml"),
        "resources:\n  - p.yaml\n",
    )
    .expect("w");
    std::fs::write(d.join("base/p.yaml"), PB).expect("w");
    std::fs::write(
        d.join("ov/kustomization.yaml"),
        "resources:\n  - ../base\nnamePrefix: staging-eu-central-1-\n",
    )
    .expect("w");
    let l = common::loader(&d);
    let c = pbc_targets::bundle::compile(
        &l,
        &Default::default(),
        &d.join("ov"),
        &Default::default(),
        &common::no_extra,
    )
    .expect("compiles");
    let d6: Vec<_> = c.diags.iter().filter(|x| x.code.id == "PB6001").collect();
    assert_eq!(d6.len(), 1, "{:?}", c.diags);
    let x = d6[0];
    assert!(x.message.contains("CronWorkflow"), "{}", x.message);
    assert!(x.message.contains("57 characters") || x.message.contains("characters long"));
    let f = l.sources.get(x.span.file).expect("file");
    assert!(f.path.ends_with("ov/kustomization.yaml"));
    assert_eq!(f.slice(x.span), "staging-eu-central-1-");
    assert!(
        x.labels
            .iter()
            .any(|lb| lb.message.contains("playbook's name"))
    );
    assert!(
        x.help
            .as_deref()
            .unwrap_or("")
            .contains("`staging-eu-central-1-`")
    );
    // Without the prefix the name fits.
    let c = pbc_targets::bundle::compile(
        &l,
        &Default::default(),
        &d.join("base"),
        &Default::default(),
        &common::no_extra,
    )
    .expect("compiles");
    assert!(c.diags.iter().all(|x| x.code.id != "PB6001"));
    let _ = std::fs::remove_dir_all(&d);
}
