use super::*;
use crate::agents::Agents;
use rmcp::model::ContentBlock;
use serde_json::json;

fn agents(text: &str) -> Result<Agents, String> {
    Agents::from_str(text, Path::new("/srv/ops"))
}

#[test]
fn an_exact_action_beats_its_layer_wildcard() {
    let a = agents(
        r#"actions:
  "k8s:*": {mcp: {command: [./bin/k8s-mcp, --read-only], tool: "{layer}_{function}"}}
  "k8s:drain_node": {command: [./drain]}
"#,
    )
    .unwrap();
    assert_eq!(a.action("k8s:drain_node").unwrap().kind(), "command");
    let m = a.action("k8s:cordon_node").unwrap();
    assert_eq!(m.kind(), "mcp");
    let spec = m.mcp.as_ref().unwrap();
    assert_eq!(spec.tool_for("k8s:cordon_node"), "k8s_cordon_node");
    // A relative program is taken relative to the agents file.
    assert_eq!(spec.server(), "/srv/ops/./bin/k8s-mcp --read-only");
    assert!(a.action("db:apply").is_none());
}

#[test]
fn the_default_tool_is_the_function() {
    let a = agents(r#"actions: {"k8s:*": {mcp: {url: "http://127.0.0.1:9/mcp"}}}"#).unwrap();
    let spec = a
        .action("k8s:get_node")
        .and_then(|s| s.mcp.as_ref())
        .unwrap();
    assert_eq!(spec.tool_for("k8s:get_node"), "get_node");
}

#[test]
fn bad_mcp_executors_are_refused() {
    for (text, says) in [
        (
            r#"actions: {"k8s:*": {mcp: {}}}"#,
            "exactly one of `command` and `url`",
        ),
        (
            r#"actions: {"k8s:*": {mcp: {command: [x], url: "http://h/mcp"}}}"#,
            "exactly one of `command` and `url`",
        ),
        (
            r#"actions: {"k8s:*": {mcp: {url: "ftp://h"}}}"#,
            "http:// or https://",
        ),
        (r#"actions: {"k8s:*": {mcp: {command: []}}}"#, "is empty"),
        (
            r#"actions: {"k8s:*": {mcp: {command: [x], headers-from-env: {A: B}}}}"#,
            "needs `url`",
        ),
        (
            r#"actions: {"k8s:*": {mcp: {command: [x], tool: "{verb}"}}}"#,
            "only `{layer}`",
        ),
        (r#"agents: {m: {mcp: {command: [x]}}}"#, "for actions"),
        (r#"actions: {"k8s*": {mcp: {command: [x]}}}"#, "`LAYER:*`"),
        (
            r#"actions: {"k8s:*": {mcp: {command: [x]}, command: [y]}}"#,
            "exactly one of",
        ),
    ] {
        let e = agents(text).unwrap_err();
        assert!(e.contains(says), "{text}: {e}");
    }
}

#[test]
fn arguments_are_checked_against_the_input_schema() {
    let schema = json!({
        "type": "object",
        "properties": {"node": {"type": "string"}, "grace": {"type": "integer"}},
        "required": ["node"],
    });
    assert!(check_arguments("drain", &schema, &json!({"node": "n1", "grace": 30})).is_ok());
    let e = check_arguments("drain", &schema, &json!({"grace": "30"})).unwrap_err();
    let ExecError::Refused(msg) = e else {
        panic!("{e:?}")
    };
    assert!(msg.contains("not called"), "{msg}");
    assert!(msg.contains("\"node\" is a required property"), "{msg}");
    assert!(msg.contains("/grace"), "{msg}");
}

fn result(content: Vec<ContentBlock>, structured: Option<Value>, error: bool) -> CallToolResult {
    let mut r = if error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    };
    r.structured_content = structured;
    r
}

#[test]
fn the_output_is_the_structured_content_else_the_text_as_json() {
    let r = result(
        vec![ContentBlock::text("ignored")],
        Some(json!({"a": 1})),
        false,
    );
    assert_eq!(output("t", r).unwrap(), json!({"a": 1}));
    let r = result(vec![ContentBlock::text(r#"{"b": [2]}"#)], None, false);
    assert_eq!(output("t", r).unwrap(), json!({"b": [2]}));
    let r = result(vec![ContentBlock::text("not json")], None, false);
    assert!(matches!(output("t", r), Err(ExecError::BadOutput(_))));
    let r = result(vec![], None, false);
    assert!(matches!(output("t", r), Err(ExecError::BadOutput(_))));
}

#[test]
fn a_result_marked_is_error_fails() {
    let r = result(
        vec![ContentBlock::text("node n9 not found")],
        Some(json!({})),
        true,
    );
    let e = output("drain_node", r).unwrap_err().to_string();
    assert_eq!(e, "tool `drain_node` reported an error: node n9 not found");
}

#[test]
fn a_call_works_from_a_blocking_task_of_a_server_runtime() {
    // `pbc serve` runs the engine in tokio's blocking pool: the call's own runtime must start
    // there (a program that does not exist fails without a panic).
    let spec = McpSpec {
        command: Some(vec!["/nonexistent/mcp-server".into()]),
        url: None,
        headers_from_env: Default::default(),
        tool: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async move {
        tokio::task::spawn_blocking(move || {
            let c = McpCall {
                spec: &spec,
                cwd: None,
                action: "k8s:get_node",
                params: &json!({}),
                timeout: Duration::from_secs(5),
                run: "run-1",
                ca_file: None,
            };
            call(&c, &|| false)
        })
        .await
        .unwrap()
    });
    assert!(matches!(got, Err(ExecError::Spawn { .. })), "{got:?}");
}

#[test]
fn the_lock_file_checks_actions_and_literal_params_offline() {
    use super::lock::{AgentsLock, LockedServer};
    let a = agents(
        r#"actions:
  "k8s:*": {mcp: {command: [./k8s-mcp]}}
  "db:migrate": {command: [./migrate]}
"#,
    )
    .unwrap();
    let schema = json!({
        "type": "object",
        "properties": {"node": {"type": "string"}, "grace": {"type": "integer"}},
        "required": ["node", "grace"],
        "additionalProperties": false,
    });
    let mut lock = AgentsLock {
        version: super::lock::VERSION,
        actions: Default::default(),
    };
    lock.actions.insert(
        "k8s:*".into(),
        LockedServer {
            server: "/srv/ops/./k8s-mcp".into(),
            tools: [("drain".to_string(), schema)].into_iter().collect(),
        },
    );
    // A value known only at run time is not checked; a literal is.
    assert!(
        lock.check(
            &a,
            "k8s:drain",
            &json!({"node": "n1", "grace": "${input.grace}"})
        )
        .is_empty()
    );
    let p = lock.check(
        &a,
        "k8s:drain",
        &json!({"node": 7, "grace": "${input.grace}", "force": true}),
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().any(|m| m.contains("/node")), "{p:?}");
    assert!(p.iter().any(|m| m.contains("force")), "{p:?}");
    let p = lock.check(&a, "k8s:drain", &json!({"grace": 3}));
    assert!(p[0].contains("\"node\" is a required property"), "{p:?}");
    let p = lock.check(&a, "k8s:reboot", &json!({}));
    assert!(p[0].contains("tool `reboot`, which the server"), "{p:?}");
    // Not an mcp executor's action, or none at all: nothing to say.
    assert!(lock.check(&a, "db:migrate", &json!({"x": 1})).is_empty());
    assert!(lock.check(&a, "s3:put", &json!({})).is_empty());
    // The text round-trips.
    let back: AgentsLock = serde_json::from_str(&lock.to_text()).unwrap();
    assert_eq!(back, lock);
}

#[test]
fn transport_errors_lose_their_rust_type_names() {
    assert_eq!(
        plain(
            "the call of tool `crash` failed: Transport send error: Transport [rmcp::transport::worker::WorkerTransport<X<Y>>] error: Client error: refused"
        ),
        "the call of tool `crash` failed: Transport send error: Client error: refused"
    );
    assert_eq!(plain("Transport closed"), "Transport closed");
}
