//! Dispatch: runs the parsed command line (`crate::cli` defines it) through the command
//! modules; nothing here does the work.

use crate::cli::*;
use clap::Parser;
use std::process::ExitCode;

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let g = cli.global.clone();
    match cli.command {
        Command::Check {
            paths,
            format,
            policy,
            lock,
            agents,
        } => crate::commands::check(&g, paths, format, policy, lock, agents),
        Command::Agents { action } => match action {
            crate::agents::AgentsAction::Tools {
                agents,
                lock,
                timeout,
            } => crate::agents::tools(agents, lock, &timeout),
        },
        Command::Build {
            dir,
            target,
            output,
            load_restrictor,
        } => crate::commands::build(&g, dir, target, output, load_restrictor),
        Command::Explain { code } => crate::commands::explain(code),
        Command::Lsp => match pbc_lsp::run_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => crate::commands::usage_error(format!("pbc lsp: {e}")),
        },
        Command::Bundle {
            root,
            env,
            output,
            check,
        } => crate::commands::bundle(&g, root, env, output, check),
        Command::Coverage {
            paths,
            env,
            catalogs,
            format,
            matrix,
            audit,
            since,
        } => crate::commands::coverage(
            &g,
            paths,
            env,
            catalogs,
            format,
            crate::reports::CoverageExtras {
                matrix,
                audit,
                since,
            },
        ),
        Command::Enforcement {
            paths,
            target,
            format,
        } => crate::enforcement::main(&g, paths, target, format),
        Command::Diff {
            base,
            paths,
            format,
        } => crate::commands::diff(&g, base, paths, format),
        Command::Run {
            path,
            input,
            agents,
            playbook,
            state,
            as_who,
            format,
            allow_unenforced_guardrails,
        } => crate::run::run(
            &g,
            crate::run::RunArgs {
                path,
                input,
                agents,
                playbook,
                state: state.state,
                as_who,
                json: format == RunFormat::Json,
                allow_unenforced_guardrails,
            },
        ),
        Command::Runner(cmd) => crate::runner::main(&g, cmd),
        Command::Approve {
            id,
            as_who,
            sign,
            statement,
            valid_for,
            state,
        } => crate::signed::approve(
            state.state,
            &id,
            &as_who,
            sign.as_deref(),
            statement.as_deref(),
            &valid_for,
        ),
        Command::Keygen { out } => crate::signed::keygen(&out),
        Command::Reject {
            id,
            as_who,
            reason,
            state,
        } => crate::run::decide(state.state, &id, &as_who, Some(&reason)),
        Command::Resume {
            run,
            agents,
            format,
            state,
        } => crate::run::resume(state.state, &run, agents, format == RunFormat::Json),
        Command::Runs {
            action,
            format,
            stats,
            state,
        } => match action {
            None if stats => crate::run::stats(state.state, format == RunFormat::Json),
            None => crate::run::runs(state.state, format == RunFormat::Json),
            Some(RunsAction::Stop {
                all,
                release,
                run,
                as_who,
                state: inner,
            }) => {
                let state = inner.state.or(state.state);
                if release {
                    crate::run::release(state, as_who)
                } else {
                    crate::run::stop(state, all, run, as_who)
                }
            }
        },
        Command::Serve {
            root,
            env,
            listen,
            agents,
            log_format,
            tls_cert,
            tls_key,
            state,
        } => crate::run::serve(pbc_serve::Options {
            root,
            env,
            listen,
            state: state.state,
            agents,
            config: g.config.clone(),
            log_format: match log_format {
                LogFormatArg::Json => pbc_serve::log::LogFormat::Json,
                LogFormatArg::Text => pbc_serve::log::LogFormat::Text,
            },
            tls_cert,
            tls_key,
        }),
        Command::Notifications { action } => match action {
            NotificationsAction::Status { format, state } => {
                crate::notifications::status(state.state, format == RunFormat::Json)
            }
            NotificationsAction::Retry { state } => crate::notifications::retry(state.state),
            NotificationsAction::Test { channel, dir } => {
                crate::notifications::test(&g, &channel, dir)
            }
        },
        Command::State { action } => match action {
            StateAction::Migrate { url, state } => crate::state::migrate(state.state, url),
        },
        Command::Audit { action } => match action {
            AuditAction::Verify {
                file,
                against: None,
                state,
            } => crate::run::verify(state.state, file),
            AuditAction::Verify {
                file,
                against: Some(sink),
                state,
            } => crate::audit::verify_against(state.state, file, &sink),
            AuditAction::Sinks { format, state } => {
                crate::audit::sinks(state.state, format == RunFormat::Json)
            }
            AuditAction::Export {
                run,
                since,
                format,
                account,
                state,
            } => crate::audit::export(state.state, run, since, format, &account),
        },
        Command::Policy { action } => match action {
            PolicyAction::Test { dir } => crate::policy::test(&g, dir),
            PolicyAction::Eval { name, input } => crate::policy::eval(&g, &name, &input),
        },
        Command::DebugPanic => panic!("debug-panic: a deliberate panic"),
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every subcommand and every argument, at every depth, says what it is for.
    #[test]
    fn every_argument_and_subcommand_has_help() {
        let mut missing = Vec::new();
        let mut todo = vec![(String::from("pbc"), Cli::command())];
        while let Some((path, cmd)) = todo.pop() {
            if cmd.get_about().is_none() && path != "pbc" && !cmd.is_hide_set() {
                missing.push(format!("{path} (subcommand)"));
            }
            for a in cmd.get_arguments() {
                if a.is_hide_set() {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                todo.push((format!("{path} {}", sub.get_name()), sub.clone()));
            }
        }
        missing.sort();
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
