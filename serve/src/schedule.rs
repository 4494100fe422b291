//! Schedule triggers: every second the server looks for the fires due since it last looked,
//! in each schedule's time zone, and starts one run per fire (requester `schedule`, input
//! `{}`). A fire is recorded in the state store with the run it started, in the run's own
//! transaction and under a unique key, so it starts at most one run even when another server
//! shares the state. When the clock jumps past several fires at once, the latest one runs
//! (robfig/cron does the same). While a playbook's scheduled run is unfinished (waiting at a
//! gate, say), its next fires start nothing, as the Argo target's `concurrencyPolicy:
//! Forbid` does.
//!
//! On start, the fires due while no server ran (since one last looked, or since the
//! playbook's last recorded fire) are missed fires: `serve.missed-schedules: skip` (the
//! default) logs how many and starts nothing; `run-once` runs the playbook once. A state
//! store no server ever ran on has missed nothing.

use crate::App;
use crate::crontime::fires_between;
use chrono_tz::Tz;
use pbc_compiler::config::MissedSchedules;
use pbc_compiler::model::{CronSchedule, Trigger};
use pbc_runtime::clock::rfc3339;
use pbc_runtime::{Compiled, Error, Fired};
use std::sync::Arc;
use std::time::Duration;

/// The schedule of a playbook a schedule triggers, with its time zone (UTC when unset).
fn schedule_of(c: &Compiled) -> Option<(CronSchedule, Tz)> {
    match &c.playbook.spec.trigger.as_ref()?.value {
        Trigger::Schedule { cron, timezone } => Some((
            cron.value.schedule,
            timezone.as_ref().map_or(Tz::UTC, |t| t.value),
        )),
        _ => None,
    }
}

/// Logs each scheduled playbook of the set served and when it next fires.
pub(crate) fn announce(app: &App) {
    let now = app.clock.now_ms();
    for c in app.playbooks().iter() {
        let Some((s, tz)) = schedule_of(c) else {
            continue;
        };
        let text = match &c.playbook.spec.trigger.as_ref().map(|t| &t.value) {
            Some(Trigger::Schedule { cron, .. }) => cron.value.text.clone(),
            _ => String::new(),
        };
        let next = crate::crontime::next_after(&s, tz, now)
            .map_or_else(|| "not within a year".to_string(), rfc3339);
        tracing::info!(
            "schedule: {} runs at `{text}` ({}), next due {next}",
            c.name(),
            tz.name()
        );
    }
}

/// Starts the run of fire `(c, due)`; logs what happened. `Some(id)` when this process
/// started it.
fn fire(app: &App, rt: &mut pbc_runtime::Runtime, c: &Compiled, due: i64) -> Option<String> {
    match rt.begin_scheduled(c, &app.agents, due) {
        Ok(Fired::Started(id)) => {
            tracing::info!(
                run = %id,
                playbook = c.name(),
                user = "schedule",
                "run {id} of {} started by schedule (due {})",
                c.name(),
                rfc3339(due)
            );
            app.metrics.runs_started.inc();
            Some(id)
        }
        // Another server (or an earlier start) claimed it.
        Ok(Fired::AlreadyFired) => None,
        Ok(Fired::Busy { run, status }) => {
            tracing::info!(
                "schedule: {} due {} started nothing: its scheduled run {run} is still {status} (one scheduled run at a time)",
                c.name(),
                rfc3339(due)
            );
            None
        }
        Err(e) => {
            tracing::error!(
                "the schedule fire of {} due {} started no run: {e}",
                c.name(),
                rfc3339(due)
            );
            None
        }
    }
}

/// On start (blocking): handles the fires missed while no server ran, records that this
/// server looks from now on, and returns the time it has looked up to, with the runs to
/// drive.
pub(crate) fn catch_up(app: &App, mode: MissedSchedules) -> Result<(i64, Vec<String>), Error> {
    let mut rt = app.runtime()?;
    let now = app.clock.now_ms();
    // A fire due exactly now is not missed: the first tick starts it.
    let upto = now.saturating_sub(1);
    let mut ids = Vec::new();
    if let Some(seen) = rt.schedule_last_seen()? {
        for c in app.playbooks().iter() {
            let Some((s, tz)) = schedule_of(c) else {
                continue;
            };
            let since = rt.last_fire(c.name())?.map_or(seen, |f| f.max(seen));
            let missed = fires_between(&s, tz, since, upto);
            let Some(latest) = missed.latest else {
                continue;
            };
            let n = if missed.truncated {
                format!("{} or more", missed.count)
            } else {
                missed.count.to_string()
            };
            match mode {
                MissedSchedules::Skip => tracing::info!(
                    "schedule: {} missed {n} fire(s) while no server ran (the last due {}); skipped (serve.missed-schedules: skip)",
                    c.name(),
                    rfc3339(latest)
                ),
                MissedSchedules::RunOnce => {
                    tracing::info!(
                        "schedule: {} missed {n} fire(s) while no server ran; running it once for the last, due {} (serve.missed-schedules: run-once)",
                        c.name(),
                        rfc3339(latest)
                    );
                    ids.extend(fire(app, &mut rt, c, latest));
                }
            }
        }
    }
    rt.set_schedule_last_seen(upto)?;
    Ok((upto, ids))
}

/// One look (blocking): starts the latest fire due in `(cursor, now]` of each scheduled
/// playbook; moves `cursor` to now and records it.
fn look(app: &App, cursor: &mut i64) -> Result<Vec<String>, Error> {
    let now = app.clock.now_ms();
    if now <= *cursor {
        return Ok(Vec::new());
    }
    let mut rt = app.runtime()?;
    let mut ids = Vec::new();
    for c in app.playbooks().iter() {
        let Some((s, tz)) = schedule_of(c) else {
            continue;
        };
        let due = fires_between(&s, tz, *cursor, now);
        let Some(latest) = due.latest else {
            continue;
        };
        if due.count > 1 {
            tracing::info!(
                "schedule: the clock moved past {} fires of {} at once; only the last runs",
                due.count,
                c.name()
            );
        }
        ids.extend(fire(app, &mut rt, c, latest));
    }
    rt.set_schedule_last_seen(now)?;
    *cursor = now;
    Ok(ids)
}

/// Every second: the schedule fires due, each started once and driven in the background.
pub(crate) async fn run(app: Arc<App>, mut cursor: i64) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let a = app.clone();
        let r = tokio::task::spawn_blocking(move || {
            let r = look(&a, &mut cursor);
            (r, cursor)
        })
        .await;
        match r {
            Ok((Ok(ids), c)) => {
                cursor = c;
                for id in ids {
                    app.drive(id);
                }
            }
            Ok((Err(e), c)) => {
                cursor = c;
                tracing::error!("starting scheduled runs: {e}");
            }
            Err(e) => tracing::error!("starting scheduled runs: {e}"),
        }
    }
}
