//! An edit to one playbook file of a tree is re-checked by that file's documents only when
//! that gives what checking the whole tree gives. Each step edits a buffer, re-checks
//! incrementally, and compares every file's findings with a new workspace that checks
//! everything from scratch with the same buffers (the oracle); the count of trees re-checked
//! by one file's documents shows which path each step took.

use pbc_lsp::Workspace;
use pbc_lsp::convert::Encoding;
use std::path::{Path, PathBuf};

fn playbook(name: &str, labels: &str, extra: &str) -> String {
    format!(
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  trigger: pull-request-created\n  stages:\n    - name: review\n      agent: glm-5\n      prompt: Review the change.\n      approval: manual\n      approvers:\n        - role: reviewers\n      sla: 4h\n{extra}    - name: apply\n      agent: glm-5\n      prompt: Apply the change.\n      context: [review]\n      approval: auto\n"
    )
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("a parent")).expect("writable");
    std::fs::write(p, text).expect("writable");
}

/// A base of three files (one with two playbooks) and overlays: `dev` (prefix, labels, a
/// strategic-merge patch naming one playbook, a JSON patch selecting by label), and unless
/// `dev_only`, `production` (protected: its patch weakens a gate, allowed with a reason) and
/// `staging` (a replacement ties documents together).
fn fixture(dev_only: bool, tag: &str) -> PathBuf {
    let root =
        std::env::temp_dir().join(format!("pbc-lsp-incremental-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    write(
        &root,
        ".pbc.yaml",
        "roles:\n  reviewers: [ann@example.com, bob@example.com]\n",
    );
    write(
        &root,
        "base/kustomization.yaml",
        "resources:\n  - alpha.yaml\n  - pair.yaml\n  - gamma.yaml\n",
    );
    write(&root, "base/alpha.yaml", &playbook("alpha", "team: a", ""));
    write(
        &root,
        "base/pair.yaml",
        &format!(
            "{}---\n{}",
            playbook("beta", "team: b", ""),
            playbook("delta", "team: b", "")
        ),
    );
    write(&root, "base/gamma.yaml", &playbook("gamma", "team: a", ""));
    write(
        &root,
        "overlays/dev/kustomization.yaml",
        "resources:\n  - ../../base\nnamePrefix: dev-\nlabels:\n  - pairs: {env: dev}\npatches:\n  - path: alpha-patch.yaml\n  - target: {kind: Playbook, labelSelector: team=b}\n    patch: |-\n      - op: replace\n        path: /spec/stages/0/sla\n        value: 2h\n",
    );
    write(
        &root,
        "overlays/dev/alpha-patch.yaml",
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: alpha\nspec:\n  stages:\n    - name: review\n      prompt: Review the change in dev.\n",
    );
    if dev_only {
        return root;
    }
    write(
        &root,
        "overlays/production/kustomization.yaml",
        "resources:\n  - ../../base\nnamePrefix: prod-\npatches:\n  - path: gate.yaml\n",
    );
    write(
        &root,
        "overlays/production/gate.yaml",
        "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: gamma\nspec:\n  stages:\n    - name: review\n      # pbc:allow(PB1031): gamma is reviewed elsewhere\n      approval: auto\n",
    );
    write(
        &root,
        "overlays/staging/kustomization.yaml",
        "resources:\n  - ../../base\nnamePrefix: stg-\nreplacements:\n  - source: {kind: Playbook, name: alpha, fieldPath: spec.stages.0.sla}\n    targets:\n      - select: {kind: Playbook, name: gamma}\n        fieldPaths: [spec.stages.0.sla]\n",
    );
    root
}

/// The incremental workspace's findings equal those of a workspace checking everything.
fn assert_same(ws: &Workspace, root: &Path, buffers: &[(PathBuf, String)], step: &str) {
    let mut fresh = Workspace::new(root, Encoding::Utf16);
    for (p, t) in buffers {
        fresh.set_buffer(p, Some(t));
    }
    fresh.check();
    let keys = |w: &Workspace| w.files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(ws), keys(&fresh), "{step}: files with findings");
    for (p, found) in &fresh.files {
        assert_eq!(
            ws.files.get(p),
            Some(found),
            "{step}: findings of {}",
            p.display()
        );
    }
}

/// Only `dev`: the findings in the base are this tree's alone (with other trees, theirs
/// would be shown for the same file too).
#[test]
fn one_file_rechecked_alone_gives_what_the_whole_tree_gives() {
    steps(true);
}

/// With `production` and `staging`, which are always re-checked whole.
#[test]
fn trees_that_cannot_be_rechecked_by_one_file_are_rechecked_whole() {
    steps(false);
}

fn steps(dev_only: bool) {
    let root = fixture(dev_only, if dev_only { "dev" } else { "all" });
    let alpha = root.join("base/alpha.yaml");
    let pair = root.join("base/pair.yaml");
    let mut ws = Workspace::new(&root, Encoding::Utf16);
    ws.check();
    assert_same(&ws, &root, &[], "first check");
    let disk = ws.files.clone();

    let with_extra = |extra: &str| playbook("alpha", "team: a", extra);
    // (step, file, text, whether `dev` may be re-checked by the file alone)
    let steps: Vec<(&str, &PathBuf, String, bool)> = vec![
        (
            "a prompt changes",
            &alpha,
            playbook("alpha", "team: a", "").replace("Apply the change.", "Apply it now."),
            true,
        ),
        (
            "a stage needs one that does not exist",
            &alpha,
            with_extra("      needs: [nope]\n"),
            true,
        ),
        (
            "a misspelt field",
            &alpha,
            with_extra("      timout: 5m\n"),
            true,
        ),
        ("fixed again", &alpha, with_extra(""), true),
        (
            "the playbook is renamed: the patch naming it matches nothing",
            &alpha,
            playbook("alpha2", "team: a", ""),
            false,
        ),
        ("renamed back", &alpha, with_extra(""), false),
        (
            "a label the JSON patch selects on is added",
            &alpha,
            playbook("alpha", "team: b", ""),
            false,
        ),
        ("the label is removed", &alpha, with_extra(""), false),
        (
            "the YAML does not parse",
            &alpha,
            with_extra("").replace("      approval: auto\n", "      approval: [auto\n"),
            false,
        ),
        ("it parses again", &alpha, with_extra(""), false),
        (
            "the second playbook of a two-document file changes",
            &pair,
            format!(
                "{}---\n{}",
                playbook("beta", "team: b", ""),
                playbook("delta", "team: b", "      retries: 99\n")
            ),
            true,
        ),
    ];
    let mut buffers: Vec<(PathBuf, String)> = Vec::new();
    let mut spliced_any = false;
    for (step, path, text, alone) in steps {
        buffers.retain(|(p, _)| p != path);
        buffers.push((path.clone(), text.clone()));
        let before = ws.spliced;
        ws.set_buffer(path, Some(&text));
        ws.check();
        assert_same(&ws, &root, &buffers, step);
        // `dev` is the only tree a one-file re-check can stand for: `staging` has a
        // replacement, `production` a finding in its patch.
        let expected = usize::from(alone);
        assert_eq!(
            ws.spliced - before,
            expected,
            "{step}: trees re-checked by one file"
        );
        spliced_any |= alone;
    }
    assert!(spliced_any);

    // Closing the buffers brings back the disk's findings.
    for (p, _) in &buffers {
        ws.set_buffer(p, None);
    }
    ws.check();
    assert_eq!(ws.files, disk, "closed buffers: the disk's findings again");
    let _ = std::fs::remove_dir_all(&root);
}

/// An edit to an overlay's patch resolves the tree whole, but the playbooks that resolve as
/// before keep their findings; an edit to a schema (which the checks read, not the
/// resolution) checks every playbook again.
#[test]
fn playbooks_an_overlay_edit_leaves_alone_keep_their_findings() {
    let root = fixture(true, "patch");
    write(
        &root,
        "base/alpha.yaml",
        &playbook(
            "alpha",
            "team: a",
            "      output-schema: schemas/out.json\n",
        )
        .replace(
            "      approval: auto\n",
            "      approval: auto\n      when: out.ok == true\n",
        ),
    );
    let schema = |props: &str| {
        format!("{{\"type\": \"object\", \"properties\": {{{props}}}, \"required\": []}}\n")
    };
    write(
        &root,
        "base/schemas/out.json",
        &schema("\"ok\": {\"type\": \"boolean\"}"),
    );
    let patch = root.join("overlays/dev/alpha-patch.yaml");
    let patch_text = std::fs::read_to_string(&patch).expect("the fixture's patch");
    let out = root.join("base/schemas/out.json");
    let mut ws = Workspace::new(&root, Encoding::Utf16);
    ws.check();
    assert_same(&ws, &root, &[], "first check");

    let mut buffers: Vec<(PathBuf, String)> = Vec::new();
    let mut edit = |ws: &mut Workspace, path: &PathBuf, text: String, step: &str| {
        buffers.retain(|(p, _)| p != path);
        buffers.push((path.clone(), text.clone()));
        let before = ws.reused;
        ws.set_buffer(path, Some(&text));
        ws.check();
        assert_same(ws, &root, &buffers, step);
        ws.reused - before
    };
    // Four playbooks in `dev`; the patch changes one of them.
    let kept = edit(
        &mut ws,
        &patch,
        patch_text.replace("in dev.", "in dev, twice."),
        "the patch's prompt changes",
    );
    assert_eq!(
        kept, 3,
        "the playbooks the patch does not touch keep their findings"
    );
    let kept = edit(
        &mut ws,
        &patch,
        format!("{patch_text}      timout: 5m\n"),
        "the patch adds a misspelt field",
    );
    assert_eq!(kept, 3);
    assert!(
        ws.files.get(&patch).is_some_and(|f| !f.is_empty()),
        "the misspelt field is found in the patch: {:#?}",
        ws.files
    );
    let kept = edit(
        &mut ws,
        &out,
        schema("\"okay\": {\"type\": \"boolean\"}"),
        "the schema loses the field a condition reads",
    );
    assert_eq!(kept, 0, "a schema changed: every playbook is checked again");
    assert!(
        ws.files.keys().any(|p| p.ends_with("base/alpha.yaml")),
        "`out.ok` is no longer in the schema: {:#?}",
        ws.files
    );
    let _ = std::fs::remove_dir_all(&root);
}
