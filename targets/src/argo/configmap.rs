//! The workflow's ConfigMaps, the projected volume that mounts them at `/etc/pbc`, and the
//! containers' environment from the Secret.
//!
//! Files ([`super::carried`]) go into `<playbook>-pbc`, then `<playbook>-pbc-2`, … in path
//! order, each ConfigMap holding at most [`MAX_CONFIG_MAP_BYTES`] of keys and values (the
//! limit the API server enforces). A key is the file's path with `/` written `.` (the
//! top-level files keep their names); the volume's `items` put each key back at its path.
//! A file that alone passes the limit is `PB6003`; a file that cannot be carried `PB6004`.
//!
//! Every variable the configuration or the agents file names for a secret becomes an `env`
//! entry of every runner container, `valueFrom.secretKeyRef` of the Secret
//! `<playbook>-pbc-secrets` with the variable's name as its key (never optional: a pod
//! whose secret is missing does not start).

use super::carried::Carried;
use super::{CONFIG_VOLUME, PLAYBOOK_LABEL, config_map_name};
use crate::{Unit, obj};
use pbc_compiler::declare_codes;
use pbc_compiler::diag::Diagnostic;
use serde_json::{Value, json};
use std::collections::BTreeSet;

declare_codes! {
    /// A file the Argo workflow carries is larger than a ConfigMap may be.
    ///
    /// `pbc build --target argo` (and `pbc bundle`) put the resolved playbook, its schema
    /// files, `.pbc.yaml` with the policy files it names, and the agents file with its
    /// fixtures into ConfigMaps that every pod mounts at `/etc/pbc`. Kubernetes refuses a
    /// ConfigMap whose keys and values pass 1 MiB (1,048,576 bytes). Files are spread over
    /// several ConfigMaps (`<playbook>-pbc`, `<playbook>-pbc-2`, …) when together they are too
    /// large, but one file cannot be split: make it smaller (a schema with `$ref`s to shared
    /// definitions, a policy data document trimmed to what the policy reads).
    PB6003 CONFIG_MAP_TOO_LARGE "config-map-file-too-large" Error "a file the Argo workflow carries is larger than a ConfigMap may be";
    /// A file the Argo workflow needs cannot be put in its ConfigMap.
    ///
    /// The workflow's pods read the playbook's schema files, the policy files `.pbc.yaml`
    /// names, `tls.ca-file`, and the agents file (`serve.agents`) with its fixture
    /// directories from a ConfigMap mounted at `/etc/pbc`, at their paths relative to the
    /// configuration (the agents file's fixtures: relative to it). A file outside that
    /// directory, one that cannot be read, one that is not UTF-8 text, or two files that
    /// would land at the same path cannot be carried. Move or rename the file.
    ///
    /// ```yaml
    /// # .pbc.yaml
    /// policies:
    ///   limits:
    ///     rego: {files: [../common/limits.rego], query: data.limits.deny}   # outside: PB6004
    /// ```
    PB6004 CONFIG_MAP_FILE "config-map-file" Error "a file the Argo workflow needs cannot be put in its ConfigMap";

    /// The playbook sends its audit trail or notifications to a `file`, which the Argo runner
    /// cannot write.
    ///
    /// Every pod of an emitted workflow runs on a read-only root filesystem, with the
    /// configuration mounted read-only at `/etc/pbc` (a relative `file` path resolves there)
    /// and only an `emptyDir` scratch directory, deleted with the pod. A `file` audit sink or
    /// channel would fail in every pod, or write where nobody reads: the control it stands for
    /// would not be enforced.
    ///
    /// It is a warning, so that one configuration can serve `pbc run` and a workflow; make it
    /// an error with `severity: {PB6006: deny}` where workflows are what you deploy.
    ///
    /// Fix: for a workflow, send the audit trail to `s3`, `otlp`, `cloudtrail` or `syslog`, and
    /// notifications to a `webhook`, `slack`, `pagerduty` or `email` channel; keep `file` for
    /// `pbc run` and `pbc serve` (a configuration of their own).
    PB6006 FILE_OUTPUT_IN_WORKFLOW "file-output-in-workflow" Warning "an audit sink or channel the playbook uses writes a file, which the Argo runner cannot";
}

/// The most bytes of keys and values one ConfigMap holds (Kubernetes' limit).
pub const MAX_CONFIG_MAP_BYTES: usize = 1024 * 1024;

/// The Secret the containers' secret variables come from.
pub fn secret_name(playbook: &str) -> String {
    format!("{playbook}-pbc-secrets")
}

/// What the workflow mounts and passes to its containers.
#[derive(Clone, Debug, Default)]
pub struct Mounted {
    /// The ConfigMap documents.
    pub config_maps: Vec<Value>,
    /// The volume [`CONFIG_VOLUME`].
    pub volume: Value,
    /// The containers' `env`.
    pub env: Vec<Value>,
}

fn key_of(path: &str, taken: &BTreeSet<String>) -> String {
    let base: String = path
        .chars()
        .map(|c| match c {
            '/' => '.',
            c if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' => c,
            _ => '_',
        })
        .collect();
    if base.len() <= 253 && !taken.contains(&base) {
        return base;
    }
    let h = crate::bundle::sha256_hex(path.as_bytes());
    let mut k = format!("file-{}", &h[..16]);
    let mut n = 2;
    while taken.contains(&k) {
        k = format!("file-{}-{n}", &h[..16]);
        n += 1;
    }
    k
}

/// The ConfigMaps of one playbook, or the findings that keep them from being built.
pub fn mount(u: Unit<'_>, carried: &Carried) -> Result<Mounted, Vec<Diagnostic>> {
    let pb = u.playbook;
    let name_span = u
        .root
        .get_path(&["metadata", "name"])
        .map(|n| n.span)
        .unwrap_or(u.root.span);
    let mut diags: Vec<Diagnostic> = carried
        .problems
        .iter()
        .map(|p| {
            Diagnostic::new(
                &CONFIG_MAP_FILE,
                p.span.unwrap_or(name_span),
                p.message.clone(),
            )
            .with_help(p.help.clone())
        })
        .collect();
    let mut taken = BTreeSet::new();
    // (ConfigMap data, items) per ConfigMap.
    let mut maps: Vec<(serde_json::Map<String, Value>, Vec<Value>, usize)> = Vec::new();
    for (path, f) in &carried.files {
        let key = key_of(path, &taken);
        let size = key.len() + f.text.len();
        if size > MAX_CONFIG_MAP_BYTES {
            diags.push(
                Diagnostic::new(
                    &CONFIG_MAP_TOO_LARGE,
                    f.span.unwrap_or(name_span),
                    format!(
                        "{} is {} bytes: more than a ConfigMap may hold ({MAX_CONFIG_MAP_BYTES} bytes), so the Argo workflow of `{}` cannot carry it",
                        f.source,
                        f.text.len(),
                        pb.name()
                    ),
                )
                .with_help("make the file smaller: a ConfigMap holds at most 1 MiB and one file cannot be split over several"),
            );
            continue;
        }
        taken.insert(key.clone());
        if maps
            .last()
            .is_none_or(|(_, _, used)| used + size > MAX_CONFIG_MAP_BYTES)
        {
            maps.push((serde_json::Map::new(), Vec::new(), 0));
        }
        if let Some((data, items, used)) = maps.last_mut() {
            data.insert(key.clone(), Value::String(f.text.clone()));
            items.push(json!({"key": key, "path": path}));
            *used += size;
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    let base = config_map_name(pb.name());
    let mut config_maps = Vec::new();
    let mut sources = Vec::new();
    for (i, (data, items, _)) in maps.into_iter().enumerate() {
        let name = if i == 0 {
            base.clone()
        } else {
            format!("{base}-{}", i + 1)
        };
        config_maps.push(obj! {
            "apiVersion" => "v1",
            "kind" => "ConfigMap",
            "metadata" => obj! {
                "name" => name.clone(),
                "namespace" => pb.metadata.namespace.as_ref().map(|n| n.value.clone()),
                "labels" => json!({PLAYBOOK_LABEL: pb.name(), "app.kubernetes.io/managed-by": "pbc"}),
            },
            "data" => Value::Object(data),
        });
        sources.push(json!({"configMap": {"name": name, "items": items}}));
    }
    let secret = secret_name(pb.name());
    let mut env: Vec<Value> = carried
        .state_url
        .iter()
        .map(|u| json!({"name": "PBC_STATE_URL", "value": u}))
        .collect();
    env.extend(
        carried
            .secrets
            .iter()
            .map(|v| json!({"name": v, "valueFrom": {"secretKeyRef": {"name": secret, "key": v}}})),
    );
    Ok(Mounted {
        config_maps,
        volume: json!({"name": CONFIG_VOLUME, "projected": {"sources": sources}}),
        env,
    })
}

/// The warnings about `file` audit sinks and channels the playbook uses, which a pod cannot
/// write (`PB6006`).
pub fn file_outputs(u: Unit<'_>, carried: &Carried) -> Vec<Diagnostic> {
    let pb = u.playbook;
    let mut diags = Vec::new();
    let (sinks, channels) = pbc_compiler::model::names::references(pb);
    for (key, name, span) in &carried.file_outputs {
        let used: Vec<&pbc_compiler::model::Spanned<String>> = if *key == "audit-sinks" {
            sinks.iter().copied().filter(|s| s.value == *name).collect()
        } else {
            channels
                .iter()
                .copied()
                .filter(|s| s.value == *name)
                .collect()
        };
        let Some(first) = used.first() else { continue };
        let what = if *key == "audit-sinks" {
            "audit sink"
        } else {
            "notification channel"
        };
        let mut d = Diagnostic::new(
            &FILE_OUTPUT_IN_WORKFLOW,
            first.span,
            format!(
                "{what} `{name}` writes a file, which the Argo workflow of `{}` cannot: its pods have a read-only root filesystem and the configuration is mounted read-only at /etc/pbc",
                pb.name()
            ),
        )
        .with_help(if *key == "audit-sinks" {
            "send a workflow's audit trail to an `s3`, `otlp`, `cloudtrail` or `syslog` sink; keep `file` for `pbc run` and `pbc serve`"
        } else {
            "notify a workflow through a `webhook`, `slack`, `pagerduty` or `email` channel; keep `file` for `pbc run` and `pbc serve`"
        });
        if let Some(s) = span {
            d = d.with_label(*s, "a `file` output");
        }
        diags.push(d);
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_and_distinct() {
        let mut taken = BTreeSet::new();
        assert_eq!(key_of("playbook.yaml", &taken), "playbook.yaml");
        assert_eq!(key_of("schemas/0/a b.json", &taken), "schemas.0.a_b.json");
        taken.insert("schemas.0.a.json".to_string());
        let k = key_of("schemas/0/a.json", &taken);
        assert!(k.starts_with("file-") && k.len() == 21, "{k}");
        let long = "a/".repeat(200);
        assert!(key_of(&long, &taken).starts_with("file-"));
    }
}
