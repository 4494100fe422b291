//! A PostgreSQL database of its own for a test, on the loopback server `.ci/run` starts
//! (`PBC_TEST_POSTGRES_URL`: a role that may create databases; its password in
//! `PBC_STATE_PASSWORD`). Under CI a missing URL fails; elsewhere the test says so and passes.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

pub fn connect(url: &str) -> postgres::Client {
    let mut cfg: postgres::Config = url.parse().unwrap();
    if let Ok(pw) = std::env::var("PBC_STATE_PASSWORD") {
        cfg.password(pw);
    }
    cfg.connect(postgres::NoTls)
        .expect("the PostgreSQL test server")
}

/// A database of its own, dropped after the test.
pub struct Db {
    admin: String,
    name: String,
    /// The database's URL (no password: `PBC_STATE_PASSWORD` holds it).
    pub url: String,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = connect(&self.admin).batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

pub fn fresh_db() -> Option<Db> {
    let admin = match std::env::var("PBC_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "PBC_TEST_POSTGRES_URL is required under CI (.ci/run starts PostgreSQL)"
            );
            eprintln!("skipped: set PBC_TEST_POSTGRES_URL to test the PostgreSQL store");
            return None;
        }
    };
    let name = format!(
        "pbc_c_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    connect(&admin)
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
        ))
        .unwrap();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let cut = base.rfind('/').expect("a URL with a database");
    let url = format!("{}/{name}{query}", &base[..cut]);
    Some(Db { admin, name, url })
}
