//! The Playbook model against the good inputs (no errors) and `testdata/bad/` (one
//! diagnostic code per file, both renderings snapshotted).

use pbc_compiler::check::{PlaybookDoc, check_document};
use pbc_compiler::config::Config;
use pbc_compiler::diag::{Diagnostic, Summary, sort_and_dedup};
use pbc_compiler::fs::OsFs;
use pbc_compiler::load::Loader;
use pbc_compiler::model::{ModelOptions, Playbook, from_document};
use pbc_compiler::render::{self, HumanOptions};
use pbc_compiler::span::SourceMap;
use pbc_compiler::types::SchemaStore;
use pbc_compiler::yaml::Limits;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The workspace root; display paths are relative to it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn loader() -> Loader {
    Loader::new(Arc::new(OsFs), root(), Limits::default())
}

fn sort(sources: &SourceMap, diags: &mut Vec<Diagnostic>) {
    sort_and_dedup(diags, |span| {
        let path = sources
            .get(span.file)
            .map(|f| f.path.to_string_lossy().into_owned())
            .unwrap_or_default();
        (path, span.start)
    });
}

/// The configuration `pbc check` would use for `path`: `.pbc.yaml` found upward, else the
/// defaults.
fn config(loader: &Loader, path: &Path) -> Config {
    let Some(file) = Config::discover(&OsFs, path) else {
        return Config::default();
    };
    let mut diags = Vec::new();
    let cfg = Config::load(loader, &file, &mut diags).unwrap_or_else(|e| panic!("{e}"));
    assert!(diags.is_empty(), "{}: {diags:?}", file.display());
    cfg
}

/// Loads one file (a path relative to the workspace root) and builds every document.
fn check_file(loader: &Loader, rel: &str) -> (Vec<Playbook>, Vec<Diagnostic>) {
    let loaded = loader
        .load(&root().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    let mut diags = loaded.diags.clone();
    let mut books = Vec::new();
    let schemas = SchemaStore::new();
    let cfg = config(loader, &root().join(rel));
    for doc in &loaded.docs {
        // The model, then the semantic checks (types, graph) as `pbc check` runs them.
        let doc = PlaybookDoc::new(doc.root.clone(), None);
        if let Some((p, _)) = check_document(loader, &schemas, &doc, &cfg, &|_, _| {}, &mut diags) {
            books.push(p);
        }
    }
    sort(&loader.sources, &mut diags);
    (books, diags)
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.file_name().is_some_and(|n| n == ".pbc.yaml") {
            // A configuration, not an input.
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

#[test]
fn good_inputs_have_no_errors() {
    let root = root();
    let mut files = Vec::new();
    yaml_files(&root.join("testdata/example/playbooks/base"), &mut files);
    yaml_files(&root.join("testdata/seeds"), &mut files);
    assert!(files.len() >= 5, "{files:?}");
    let loader = loader();
    let mut playbooks = 0;
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap_or(f)
            .to_string_lossy()
            .into_owned();
        let (books, diags) = check_file(&loader, &rel);
        playbooks += books.len();
        let errors: Vec<&Diagnostic> = diags.iter().filter(|d| d.is_error()).collect();
        assert!(
            errors.is_empty(),
            "{rel}:\n{}",
            render::human(
                &loader.sources,
                &diags,
                &Summary::of(&diags, 1),
                &HumanOptions::default()
            )
        );
        // Warnings: only the seed's non-built-in guardrails (and an unread final report).
        for d in diags.iter().filter(|d| d.code.id != "PB4006") {
            assert_eq!(
                d.code.id, "PB2015",
                "{rel}: unexpected {}: {}",
                d.code.id, d.message
            );
        }
    }
    assert_eq!(playbooks, 6);
}

#[test]
fn the_model_carries_the_example() {
    let loader = loader();
    let (books, _) = check_file(
        &loader,
        "testdata/seeds/ops-actions/nightly-maintenance.yaml",
    );
    let p = &books[0];
    assert_eq!(p.name(), "nightly-maintenance");
    let Some(trigger) = &p.spec.trigger else {
        panic!("no trigger")
    };
    match &trigger.value {
        pbc_compiler::model::Trigger::Schedule { cron, timezone } => {
            assert_eq!(cron.text, "0 3 * * *");
            assert!(cron.schedule.matches(0, 3, 1, 1, 1));
            assert_eq!(
                timezone.as_ref().map(|t| t.value.name()),
                Some("Europe/Berlin")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.spec.rate_limits.len(), 3);
    assert_eq!(p.spec.stages.len(), 7);
    let scale = p
        .stage("scale-down")
        .unwrap_or_else(|| panic!("scale-down"));
    assert_eq!(
        scale.action().map(|a| a.value.to_string()).as_deref(),
        Some("k8s:scale_deployment")
    );
    assert_eq!(scale.sla.as_ref().map(|d| d.value.seconds), Some(1800));
    let f = loader
        .sources
        .get(scale.name.span.file)
        .unwrap_or_else(|| panic!("file"));
    assert_eq!(f.slice(scale.name.span), "scale-down");

    let (books, _) = check_file(
        &loader,
        "testdata/seeds/database-migration/database-migration.yaml",
    );
    let st = books[0]
        .stage("database-migration")
        .unwrap_or_else(|| panic!("stage"));
    assert_eq!(st.conditions.len(), 3);
    assert!(st.conditions[2].is_else());
    let approvers = st.conditions[0]
        .approvers
        .as_ref()
        .unwrap_or_else(|| panic!("approvers"));
    assert!(
        matches!(&approvers.value[0], pbc_compiler::model::Approver::Role(r) if r.value == "dba-team")
    );
    let f = loader
        .sources
        .get(st.span.file)
        .unwrap_or_else(|| panic!("file"));
    assert_eq!(
        f.slice(
            st.conditions[0]
                .test
                .as_ref()
                .unwrap_or_else(|| panic!("if"))
                .text
                .span
        ),
        "migration.affected-rows > 10000"
    );
}

/// One fixture: its code (the file-name prefix) is found, nothing else unexpected, both
/// renderings snapshotted. `testdata/bad` holds findings of error severity (each file exits 1),
/// `testdata/warn` those of warning and info severity.
fn fixture(dir: &str, path: &Path) {
    {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let rel = format!("testdata/{dir}/{name}");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first == "# schema: valid" || first == "# schema: invalid",
            "{rel}: the first line must be `# schema: valid` or `# schema: invalid`"
        );
        // Codes other than the file's that the culprit also (legitimately) causes.
        let also: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# also: "))
            .flat_map(|l| l.split_whitespace())
            .collect();
        let code = name.get(..6).unwrap_or_default();
        let loader = loader();
        let (_, diags) = check_file(&loader, &rel);
        assert!(
            diags.iter().any(|d| d.code.id == code),
            "{rel}: no {code} among {:?}",
            diags
                .iter()
                .map(|d| (d.code.id, &d.message))
                .collect::<Vec<_>>()
        );
        for d in &diags {
            assert!(
                d.code.id == code || also.contains(&d.code.id),
                "{rel}: unexpected {} ({})",
                d.code.id,
                d.message
            );
        }
        let summary = Summary::of(&diags, 1);
        let human = render::human(
            &loader.sources,
            &diags,
            &summary,
            &HumanOptions {
                color: false,
                width: 100,
            },
        );
        let json = render::json(&loader.sources, &diags, &summary);
        if dir == "bad" {
            assert!(
                diags.iter().any(|d| d.code.id == code && d.is_error()),
                "{rel}: testdata/bad holds errors; move warnings to testdata/warn"
            );
        } else {
            assert!(
                !diags.iter().any(|d| d.is_error()),
                "{rel}: testdata/warn holds no errors"
            );
        }
        insta::assert_snapshot!("human", human);
        insta::assert_snapshot!("json", json);
    }
}

/// Both directories in one test: insta's `glob!` is not meant to run concurrently.
#[test]
fn bad_and_warning_inputs() {
    insta::glob!("../../testdata/bad", "*.yaml", |path| fixture("bad", path));
    insta::glob!("../../testdata/warn", "*.yaml", |path| fixture(
        "warn", path
    ));
}

#[test]
fn every_code_has_a_fixture_and_docs() {
    let mut names: Vec<String> = Vec::new();
    for dir in ["testdata/bad", "testdata/warn"] {
        names.extend(
            std::fs::read_dir(root().join(dir))
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        );
    }
    for code in pbc_compiler::model::CODES
        .iter()
        .chain(pbc_compiler::model::names::CODES)
    {
        assert!(
            names.iter().any(|n| n.starts_with(code.id)),
            "no testdata/bad/{}-*.yaml or testdata/warn/{}-*.yaml",
            code.id,
            code.id
        );
        assert!(code.doc.lines().count() >= 3, "{}: document it", code.id);
        assert!(code.doc.contains("```yaml"), "{}: give an example", code.id);
    }
    // The type and graph checks: a fixture each (documented in their modules).
    for code in pbc_compiler::types::schema::CODES
        .iter()
        .chain(pbc_compiler::types::check::CODES)
        .chain(pbc_compiler::sema::CODES)
    {
        assert!(
            names.iter().any(|n| n.starts_with(code.id)),
            "no testdata/bad/{}-*.yaml or testdata/warn/{}-*.yaml",
            code.id,
            code.id
        );
        assert!(code.doc.lines().count() >= 3, "{}: document it", code.id);
    }
}

/// A column after non-ASCII text counts Unicode scalar values in JSON, while the human
/// rendering (miette, byte spans) underlines the right characters.
#[test]
fn columns_after_non_ascii_text() {
    let loader = loader();
    let text = "apiVersion: agenticops/v1\nkind: Playbook\nmetadata:\n  name: x\nspec:\n  trigger: e\n  stages:\n    - {prompt: \"日本語\", name: Bad, agent: glm-5}\n";
    let loaded = loader.load_text("mem.yaml", text);
    let mut diags = loaded.diags.clone();
    from_document(
        &loaded.docs[0].root,
        &loader.sources,
        &ModelOptions::default(),
        &mut diags,
    );
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d.code.id, "PB2008");
    let byte = text.find("Bad").unwrap_or_default() as u32;
    assert_eq!((d.span.start, d.span.end), (byte, byte + 3));
    // JSON: `    - {prompt: "日本語", name: ` is 28 scalar values (but 34 bytes).
    let prefix = "    - {prompt: \"日本語\", name: ";
    assert_eq!((prefix.chars().count(), prefix.len()), (28, 34));
    let json: serde_json::Value = serde_json::from_str(&render::json(
        &loader.sources,
        &diags,
        &Summary::of(&diags, 1),
    ))
    .unwrap_or_default();
    let j = &json["diagnostics"][0];
    assert_eq!(
        (j["line"].as_u64(), j["column"].as_u64()),
        (Some(8), Some(29))
    );
    assert_eq!(j["end_column"].as_u64(), Some(32));
    // Human: the underline sits under `Bad`; the three CJK characters are two columns wide
    // on a terminal, so it starts 28 + 3 display columns after the gutter.
    let human = render::human_one(&loader.sources, d, &HumanOptions::default());
    // The header's column counts scalar values too (miette's own would count bytes: 35).
    assert!(human.contains("[mem.yaml:8:29]"), "{human}");
    let lines: Vec<&str> = human.lines().collect();
    let src_idx = lines
        .iter()
        .position(|l| l.contains("{prompt: \"日本語\""))
        .unwrap_or_else(|| panic!("{human}"));
    let src_line = lines[src_idx];
    let gutter = src_line.find("│").unwrap_or_else(|| panic!("{human}")) + "│".len();
    let under = lines[src_idx + 1];
    let under_cols: Vec<char> = under.chars().collect();
    let gutter_cols = src_line[..gutter].chars().count();
    let first_mark = under_cols
        .iter()
        .enumerate()
        .skip(gutter_cols)
        .find(|(_, c)| !c.is_whitespace())
        .map(|(i, _)| i - gutter_cols)
        .unwrap_or_else(|| panic!("{human}"));
    let display_width = prefix.chars().count() + 3;
    // miette puts one space between the gutter bar and the source text.
    assert_eq!(first_mark, display_width + 1, "{human}");
    let marks: String = under_cols[gutter_cols + first_mark..]
        .iter()
        .take_while(|c| matches!(c, '─' | '┬'))
        .collect();
    assert_eq!(marks.chars().count(), 3, "{human}");
}
