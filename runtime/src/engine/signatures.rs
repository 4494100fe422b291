//! Signed approvals in the local engine: a statement is checked when an approval is recorded
//! (`pbc approve --sign`, `pbc serve`) and again, from the verified audit chain, before the
//! run goes past the gate (`pbc resume`), when the run's configuration sets
//! `approvals.require-signature` (the checks themselves are [`crate::approval_sig`]'s).

use super::{Live, Runtime};
use crate::agents::same_person;
use crate::approval_sig::{self, Expect, Keys, Rejected};
use crate::report::Approval;

impl Runtime {
    /// Checks `token` as `who`'s approval of `a`. Without a token: refused when signatures
    /// are required, else nothing to check.
    pub(super) fn check_statement(
        &self,
        live: &Live,
        a: &Approval,
        who: &str,
        token: Option<&str>,
    ) -> Result<(), Rejected> {
        let cfg = &live.c.frozen.config.approvals;
        let Some(token) = token else {
            return if cfg.require_signature {
                Err(Rejected::Missing)
            } else {
                Ok(())
            };
        };
        let x = Expect {
            run: &live.run.id,
            stage: a.stage.as_deref().unwrap_or(""),
            decision: "approve",
            playbook_sha256: &live.c.frozen.resolved_sha256,
            requester: &live.run.requester,
            approvers: &a.approvers,
            roles: &live.agents.roles,
            min_approvals: 1,
            now: self.now().div_euclid(1000),
        };
        let v = approval_sig::verify(token, &Keys::from_settings(cfg), &x)?;
        if !same_person(&v.statement.approver, who) {
            return Err(Rejected::Malformed(format!(
                "the statement is {}'s, given as {who}'s",
                v.statement.approver
            )));
        }
        Ok(())
    }

    /// Before a run goes past an approved gate: the statement of each approval (one per
    /// person a `min-approvals` gate needs) from the verified chain, when signatures are
    /// required. Err: the run's or stage's error.
    pub(super) fn confirm_signature(
        &self,
        live: &Live,
        a: &Approval,
        votes: &[crate::chain::Vote],
    ) -> Result<(), String> {
        if !live.c.frozen.config.approvals.require_signature {
            return Ok(());
        }
        for (who, token) in votes {
            self.check_statement(live, a, who, token.as_deref())
                .map_err(|r| {
                    format!(
                        "approval {} does not pass the gate ({}): {r}; nothing was run",
                        a.id,
                        r.code()
                    )
                })?;
        }
        Ok(())
    }
}

impl Runtime {
    /// The statement that approves `id` as `approver`, issued now and valid for
    /// `validity_secs` (to be signed by the approver's key or a delegate's).
    pub fn approval_statement(
        &mut self,
        id: &str,
        approver: &str,
        validity_secs: i64,
    ) -> crate::Result<approval_sig::Statement> {
        let a = self.approval_state(id)?;
        let live = self.load_live(&a.run)?;
        Ok(approval_sig::Statement::new(
            &live.run.id,
            a.stage.as_deref().unwrap_or(""),
            "approve",
            approver,
            &live.c.frozen.resolved_sha256,
            self.now().div_euclid(1000),
            validity_secs,
        ))
    }
}
