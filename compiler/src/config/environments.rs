//! `environments:` (which environments are protected from weakening overlays) and
//! `promotion-order:` (the order changes travel through them) in `.pbc.yaml`.

use super::*;

/// `environments.NAME`: the settings of one environment (an overlay directory name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvSettings {
    /// `protect`: whether overlays of this environment may not weaken its base. Unset: the
    /// names in `production-environments` are protected, the others are not.
    pub protect: Option<bool>,
}

impl Config {
    /// Whether the environment `env` is protected: `environments.ENV.protect` when set,
    /// else whether `production-environments` names it.
    pub fn is_protected(&self, env: &str) -> bool {
        match self.environments.get(env).and_then(|e| e.protect) {
            Some(p) => p,
            None => self.production_environments.iter().any(|p| p == env),
        }
    }

    /// The environment before `env` in `promotion-order`, if it names both.
    pub fn previous_environment(&self, env: &str) -> Option<&str> {
        let i = self.promotion_order.iter().position(|e| e == env)?;
        i.checked_sub(1)
            .and_then(|p| self.promotion_order.get(p))
            .map(String::as_str)
    }

    pub(super) fn read_environments(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(entries) = v.as_map() else {
            diags.push(bad(
                v.span,
                format!(
                    "`environments` must be a mapping of environment names to settings, found {}",
                    v.type_name()
                ),
            ));
            return;
        };
        for e in entries {
            let name = e.key_str().to_string();
            if e.value.is_null() {
                self.environments.insert(name, EnvSettings::default());
                continue;
            }
            let Some(fields) = e.value.as_map() else {
                diags.push(bad(
                    e.value.span,
                    format!(
                        "environment `{name}` must be a mapping such as `{{protect: true}}`, found {}",
                        e.value.type_name()
                    ),
                ));
                continue;
            };
            let mut s = EnvSettings::default();
            for f in fields {
                match f.key_str() {
                    "protect" => match f.value.as_scalar() {
                        Some(sc) if sc.kind == ScalarKind::Bool => {
                            s.protect = Some(sc.text.as_str() == "true");
                        }
                        _ => diags.push(bad(
                            f.value.span,
                            format!(
                                "`environments.{name}.protect` must be `true` or `false`, found {}",
                                f.value.type_name()
                            ),
                        )),
                    },
                    other => diags.push(unknown_key(f.key.span, other, ENV_KEYS)),
                }
            }
            self.environments.insert(name, s);
        }
    }

    pub(super) fn read_promotion_order(&mut self, v: &Node, diags: &mut Vec<Diagnostic>) {
        let Some(list) = string_list(v, "promotion-order", diags) else {
            return;
        };
        let mut order: Vec<String> = Vec::new();
        for (name, span) in list {
            if order.contains(&name) {
                diags.push(bad(span, format!("`promotion-order` names `{name}` twice")));
                continue;
            }
            order.push(name);
        }
        self.promotion_order = order;
    }
}

const ENV_KEYS: &[&str] = &["protect"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use std::sync::Arc;

    fn cfg(text: &str) -> (Config, Vec<Diagnostic>) {
        let loader = Loader::new(Arc::new(MemFs::new()), "", Limits::default());
        let l = loader.load_text("c.yaml", text);
        let mut diags = l.diags.clone();
        let mut c = Config::default();
        if let Some(d) = l.docs.first() {
            c.apply(&d.root, &mut diags);
        }
        (c, diags)
    }

    #[test]
    fn production_names_are_protected_unless_unprotected() {
        let (c, d) = cfg("environments: {dev: {protect: true}, prod: {protect: false}}\n");
        assert!(d.is_empty(), "{d:?}");
        assert!(c.is_protected("dev"));
        assert!(!c.is_protected("prod"));
        assert!(c.is_protected("production"));
        assert!(!c.is_protected("staging"));
    }

    #[test]
    fn promotion_order_names_the_previous_environment() {
        let (c, d) = cfg("promotion-order: [dev, staging, production]\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.previous_environment("production"), Some("staging"));
        assert_eq!(c.previous_environment("dev"), None);
        assert_eq!(c.previous_environment("qa"), None);
    }

    #[test]
    fn bad_values_are_config_findings() {
        for text in [
            "environments: [dev]\n",
            "environments: {dev: {protect: yes-please}}\n",
            "environments: {dev: {protected: true}}\n",
            "environments: {dev: true}\n",
            "promotion-order: dev\n",
            "promotion-order: [dev, dev]\n",
        ] {
            let (_, d) = cfg(text);
            assert!(
                d.iter().any(|d| d.code.id.starts_with("PB00")),
                "{text}: {d:?}"
            );
        }
    }
}
