//! `pbc approve --sign KEYFILE` / `--statement STATEMENT` (signed approval statements,
//! docs/approvals.md) and `pbc keygen`.

use crate::run::{decide_with, fail};
use pbc_runtime::Error;
use pbc_runtime::approval_sig;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// `pbc approve ID --as WHO [--sign KEYFILE [--valid-for D] | --statement S]`.
pub fn approve(
    state: Option<std::path::PathBuf>,
    id: &str,
    who: &str,
    sign: Option<&Path>,
    statement: Option<&str>,
    valid_for: &str,
) -> ExitCode {
    let key = match sign {
        Some(p) => match approval_sig::read_signing_key(p) {
            Ok(k) => Some(k),
            Err(e) => return fail(&e),
        },
        None => None,
    };
    let validity = match pbc_compiler::model::values::parse_duration(valid_for) {
        Ok(d) if d.seconds > 0 => i64::try_from(d.seconds).unwrap_or(i64::MAX),
        _ => {
            return fail(&Error::Usage(format!(
                "--valid-for {valid_for}: expected a duration such as `10m`, `4h` or `1d`"
            )));
        }
    };
    decide_with(state, id, None, |rt| {
        let token = match (&key, statement) {
            (Some(k), _) => {
                let st = rt.approval_statement(id, who, validity)?;
                println!(
                    "signed: run {}, stage {}, playbook sha256 {}, valid until {}",
                    st.run,
                    if st.stage.is_empty() {
                        "(playbook)"
                    } else {
                        &st.stage
                    },
                    st.playbook_sha256,
                    st.expires_at
                );
                Some(st.sign(k))
            }
            (None, Some(s)) => Some(s.to_string()),
            (None, None) => None,
        };
        match token {
            Some(t) => rt.approve_signed(id, who, &t),
            None => rt.approve(id, who),
        }
    })
}

/// `pbc keygen --out FILE`.
pub fn keygen(out: &Path) -> ExitCode {
    let r = (|| -> Result<String, Error> {
        let (pem, public) = approval_sig::generate()?;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(out).map_err(|e| {
            Error::Usage(format!(
                "{}: cannot create the key file: {e}",
                out.display()
            ))
        })?;
        f.write_all(pem.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::Io(format!("{}: {e}", out.display())))?;
        Ok(public)
    })();
    match r {
        Ok(public) => {
            println!("{public}");
            eprintln!(
                "private key written to {} (keep it to yourself); add the public key above to `approvals.keys` in .pbc.yaml",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
