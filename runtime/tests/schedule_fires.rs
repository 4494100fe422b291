//! A schedule fire starts at most one run, whichever process claims it first, and its run's
//! requester is `schedule`.

use pbc_runtime::{Agents, Fired, LoadOptions, RunStatus, Runtime, SCHEDULE_REQUESTER, load};

const PLAYBOOK: &str = r#"apiVersion: agenticops/v1
kind: Playbook
metadata: {name: nightly}
spec:
  trigger: {schedule: "0 12 * * *", timezone: Europe/Berlin}
  stages:
    - name: report
      agent: bot
      prompt: "report"
"#;

#[test]
fn a_fire_starts_one_run_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("pb.yaml"), PLAYBOOK).unwrap();
    std::fs::create_dir(d.join("recorded")).unwrap();
    std::fs::write(d.join("recorded/report.json"), r#"{"ok": true}"#).unwrap();
    std::fs::write(
        d.join("agents.yaml"),
        "agents:\n  bot: {fixture: recorded/}\n",
    )
    .unwrap();
    let c = load(&d.join("pb.yaml"), &LoadOptions::default()).unwrap();
    let agents = Agents::from_file(&d.join("agents.yaml")).unwrap();
    let mut a = Runtime::open(&d.join("st")).unwrap();
    let mut b = Runtime::open(&d.join("st")).unwrap();
    assert_eq!(a.schedule_last_seen().unwrap(), None);
    assert_eq!(a.last_fire("nightly").unwrap(), None);

    let due = 1_700_000_000_000;
    let Fired::Started(run) = a.begin_scheduled(&c, &agents, due).unwrap() else {
        panic!("no run started");
    };
    // The same fire, from another connection (another server on the same state): nothing.
    assert_eq!(
        b.begin_scheduled(&c, &agents, due).unwrap(),
        Fired::AlreadyFired
    );
    assert_eq!(
        a.begin_scheduled(&c, &agents, due).unwrap(),
        Fired::AlreadyFired
    );
    // The next fire while this run is unfinished: nothing either.
    assert_eq!(
        a.begin_scheduled(&c, &agents, due + 60_000).unwrap(),
        Fired::Busy {
            run: run.clone(),
            status: RunStatus::Running
        }
    );
    assert_eq!(a.fire_run("nightly", due + 60_000).unwrap(), None);
    assert_eq!(b.fire_run("nightly", due).unwrap(), Some(run.clone()));
    assert_eq!(b.last_fire("nightly").unwrap(), Some(due));
    let runs = b.runs().unwrap();
    assert_eq!(runs.len(), 1);
    let report = b.drive_run(&run).unwrap();
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(report.requester, SCHEDULE_REQUESTER);

    // The next fire is another run.
    let next = b.begin_scheduled(&c, &agents, due + 86_400_000).unwrap();
    assert!(matches!(next, Fired::Started(n) if n != run));
    assert_eq!(a.last_fire("nightly").unwrap(), Some(due + 86_400_000));

    a.set_schedule_last_seen(due + 5).unwrap();
    assert_eq!(b.schedule_last_seen().unwrap(), Some(due + 5));
}
