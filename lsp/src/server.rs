//! The server's loop: buffers in, debounced checks, diagnostics out, requests answered
//! from the latest check.

use crate::analysis::Workspace;
use crate::convert::{Encoding, path_to_uri, uri_to_path};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{self as notif, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::{InitializeParams, PublishDiagnosticsParams, ServerCapabilities, Uri};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long typing must pause before a re-check.
const DEBOUNCE: Duration = Duration::from_millis(120);

/// An open document: its URI as the client spells it, its version and unsaved text.
pub(crate) struct Buffer {
    pub uri: Uri,
    pub version: i32,
    pub text: String,
}

pub(crate) struct Server {
    pub enc: Encoding,
    pub buffers: BTreeMap<PathBuf, Buffer>,
    pub ws: Workspace,
    /// The diagnostics on the client, per file.
    published: BTreeMap<PathBuf, Vec<lsp_types::Diagnostic>>,
    /// When the pending re-check runs (none pending: `None`).
    due: Option<Instant>,
    checked: bool,
}

/// The capabilities pbc's server offers, in the agreed position encoding.
pub fn capabilities(enc: Encoding) -> ServerCapabilities {
    use lsp_types::*;
    ServerCapabilities {
        position_encoding: Some(enc.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::FULL),
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                ..Default::default()
            },
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), " ".into(), ":".into()]),
            ..Default::default()
        }),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        ..Default::default()
    }
}

/// Serves one client on `conn` until it shuts down.
pub fn serve(conn: &Connection) -> Result<(), String> {
    let (id, params) = conn.initialize_start().map_err(|e| e.to_string())?;
    let params: InitializeParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
    let enc = Encoding::negotiate(
        params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_deref()),
    );
    #[allow(deprecated)] // `root_uri`: still what older clients (Neovim 0.7) send
    let root = params
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .and_then(|f| uri_to_path(&f.uri))
        .or_else(|| params.root_uri.as_ref().and_then(uri_to_path))
        .or_else(|| std::env::current_dir().ok())
        .ok_or(
            "no workspace root: the client named none, and the working directory is unreadable",
        )?;
    let result = serde_json::json!({
        "capabilities": capabilities(enc),
        "serverInfo": { "name": "pbc", "version": env!("CARGO_PKG_VERSION") },
    });
    conn.initialize_finish(id, result)
        .map_err(|e| e.to_string())?;
    let mut s = Server {
        enc,
        buffers: BTreeMap::new(),
        ws: Workspace::new(&root, enc),
        published: BTreeMap::new(),
        due: None,
        checked: false,
    };
    loop {
        let msg = match s.due {
            Some(due) => match conn
                .receiver
                .recv_timeout(due.saturating_duration_since(Instant::now()))
            {
                Ok(m) => m,
                Err(e) if e.is_timeout() => {
                    s.recheck(conn);
                    continue;
                }
                Err(_) => return Ok(()),
            },
            None => match conn.receiver.recv() {
                Ok(m) => m,
                Err(_) => return Ok(()),
            },
        };
        match msg {
            Message::Request(r) => {
                // After `shutdown` the server ends, whether or not `exit` follows in time.
                if r.method == req::Shutdown::METHOD {
                    let _ = conn.handle_shutdown(&r);
                    return Ok(());
                }
                // Answers read the buffers as they are now.
                if s.due.is_some() || !s.checked {
                    s.recheck(conn);
                }
                let resp = s.request(r);
                send(conn, Message::Response(resp));
            }
            Message::Notification(n) => s.notification(n),
            Message::Response(_) => {}
        }
    }
}

fn send(conn: &Connection, m: Message) {
    // The client has gone when this fails; the loop ends on the closed channel.
    let _ = conn.sender.send(m);
}

impl Server {
    fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            notif::DidOpenTextDocument::METHOD => {
                if let Ok(p) = n.extract::<lsp_types::DidOpenTextDocumentParams>(
                    notif::DidOpenTextDocument::METHOD,
                ) && let Some(path) = uri_to_path(&p.text_document.uri)
                {
                    let d = p.text_document;
                    self.ws.set_buffer(&path, Some(&d.text));
                    self.buffers.insert(
                        path,
                        Buffer {
                            uri: d.uri,
                            version: d.version,
                            text: d.text,
                        },
                    );
                    self.schedule();
                }
            }
            notif::DidChangeTextDocument::METHOD => {
                if let Ok(p) = n.extract::<lsp_types::DidChangeTextDocumentParams>(
                    notif::DidChangeTextDocument::METHOD,
                ) && let Some(path) = uri_to_path(&p.text_document.uri)
                    && let Some(b) = self.buffers.get_mut(&path)
                    && let Some(change) = p.content_changes.into_iter().next_back()
                {
                    // Full synchronization: each change carries the whole text.
                    b.text = change.text;
                    self.ws.set_buffer(&path, Some(&b.text));
                    b.version = p.text_document.version;
                    self.schedule();
                }
            }
            notif::DidCloseTextDocument::METHOD => {
                if let Ok(p) = n.extract::<lsp_types::DidCloseTextDocumentParams>(
                    notif::DidCloseTextDocument::METHOD,
                ) && let Some(path) = uri_to_path(&p.text_document.uri)
                {
                    // Its diagnostics become those of the file on disk.
                    self.buffers.remove(&path);
                    self.ws.set_buffer(&path, None);
                    self.schedule();
                }
            }
            notif::DidChangeWatchedFiles::METHOD => {
                if let Ok(p) = n.extract::<lsp_types::DidChangeWatchedFilesParams>(
                    notif::DidChangeWatchedFiles::METHOD,
                ) {
                    for c in p.changes {
                        if let Some(path) = uri_to_path(&c.uri) {
                            self.ws.touch(&path);
                        }
                    }
                    self.schedule();
                }
            }
            _ => {}
        }
    }

    fn schedule(&mut self) {
        self.due = Some(Instant::now() + DEBOUNCE);
    }

    /// Checks the workspace now and publishes what changed.
    fn recheck(&mut self, conn: &Connection) {
        self.due = None;
        self.checked = true;
        self.ws.check();
        let paths: BTreeSet<PathBuf> = self
            .published
            .keys()
            .chain(self.ws.files.keys())
            .chain(self.buffers.keys())
            .cloned()
            .collect();
        for path in paths {
            let diagnostics: Vec<lsp_types::Diagnostic> = self
                .ws
                .files
                .get(&path)
                .map(|v| v.iter().map(|f| f.diag.clone()).collect())
                .unwrap_or_default();
            let open = self.buffers.get(&path);
            // Open files hear of every check (their version moved); others of changes.
            if open.is_none()
                && self
                    .published
                    .get(&path)
                    .is_some_and(|old| *old == diagnostics)
            {
                continue;
            }
            let (uri, version) = match open {
                Some(b) => (Some(b.uri.clone()), Some(b.version)),
                None => (path_to_uri(&path), None),
            };
            let Some(uri) = uri else { continue };
            let params = PublishDiagnosticsParams {
                uri,
                diagnostics: diagnostics.clone(),
                version,
            };
            send(
                conn,
                Message::Notification(Notification::new(
                    notif::PublishDiagnostics::METHOD.into(),
                    params,
                )),
            );
            if diagnostics.is_empty() {
                self.published.remove(&path);
            } else {
                self.published.insert(path, diagnostics);
            }
        }
    }

    fn request(&self, r: Request) -> Response {
        let id = r.id.clone();
        let result = match r.method.as_str() {
            req::HoverRequest::METHOD => self
                .params(r)
                .map(|p| serde_json::to_value(crate::features::hover(self, p))),
            req::GotoDefinition::METHOD => self
                .params(r)
                .map(|p| serde_json::to_value(crate::navigate::definition(self, p))),
            req::References::METHOD => self
                .params(r)
                .map(|p| serde_json::to_value(crate::navigate::references(self, p))),
            req::Completion::METHOD => self
                .params(r)
                .map(|p| serde_json::to_value(crate::features::completion(self, p))),
            req::CodeActionRequest::METHOD => self
                .params(r)
                .map(|p| serde_json::to_value(crate::actions::code_actions(self, p))),
            m => Err(Response::new_err(
                id.clone(),
                ErrorCode::MethodNotFound as i32,
                format!("pbc lsp does not handle `{m}`"),
            )),
        };
        match result {
            Ok(Ok(v)) => Response::new_ok(id, v),
            Ok(Err(e)) => Response::new_err(id, ErrorCode::InternalError as i32, e.to_string()),
            Err(resp) => resp,
        }
    }

    #[allow(clippy::result_large_err)] // the error is the response itself
    fn params<P: serde::de::DeserializeOwned>(&self, r: Request) -> Result<P, Response> {
        let id = r.id.clone();
        serde_json::from_value(r.params)
            .map_err(|e| Response::new_err(id, ErrorCode::InvalidParams as i32, e.to_string()))
    }
}
