//! The loader: bytes to text (UTF-8, BOM, size), then saphyr's events to spanned nodes with
//! an explicit stack (no recursion), anchors, aliases and merge keys, within the limits of
//! size, depth, nodes and alias expansion.

use super::*;

/// Limits that bound what a file may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_depth: usize,
    pub max_alias_nodes: usize,
    /// The most resources one resolution may produce (`limits.max-resources`).
    pub max_resources: usize,
    /// The most YAML nodes (keys, values, items) one resolution may produce, shared
    /// subtrees counted each time they appear (`limits.max-nodes`).
    pub max_nodes: u64,
    /// The most bytes one build may write (`limits.max-output-bytes`).
    pub max_output_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 8 * 1024 * 1024,
            max_depth: 128,
            max_alias_nodes: 100_000,
            max_resources: 20_000,
            max_nodes: 5_000_000,
            max_output_bytes: 256 * 1024 * 1024,
        }
    }
}

/// One YAML document of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub root: Node,
    /// Index of the document in its file (0-based).
    pub index: usize,
    /// The nodes of the document as [`Node::count`] counts them (aliases expanded),
    /// counted while it was read.
    pub nodes: u64,
}

/// Checks raw bytes: binary content and UTF-8. Returns the text or a diagnostic.
pub fn decode(file: FileId, bytes: Vec<u8>) -> Result<String, Box<Diagnostic>> {
    decode_or_keep(file, bytes).map_err(|(d, _)| d)
}

/// [`decode`], handing the bytes back with the diagnostic (so that the caller can keep a
/// lossy text without copying every file it reads).
pub fn decode_or_keep(file: FileId, bytes: Vec<u8>) -> Result<String, (Box<Diagnostic>, Vec<u8>)> {
    let probe = &bytes[..bytes.len().min(8192)];
    if let Some(pos) = memchr::memchr(0, probe) {
        return Err((
            Box::new(
                Diagnostic::new(
                    &BINARY_FILE,
                    Span::point(file, 0),
                    format!("the file is binary (a NUL byte at offset {pos}), not YAML or JSON"),
                )
                .with_help("remove it from the checked paths, or list it in `.gitignore`"),
            ),
            bytes,
        ));
    }
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            Err((
                Box::new(
                    Diagnostic::new(
                        &INVALID_UTF8,
                        Span::point(file, valid as u32),
                        format!("the file is not valid UTF-8: invalid byte at offset {valid}"),
                    )
                    .with_help("re-encode the file as UTF-8"),
                ),
                e.into_bytes(),
            ))
        }
    }
}

/// Converts saphyr markers (char index, 1-based line, 0-based char column) to byte offsets,
/// in amortized linear time over a file.
pub(super) struct ByteIndex<'a> {
    file: &'a SourceFile,
    char_idx: usize,
    byte_idx: usize,
    /// An ASCII text's char indices are its byte offsets.
    ascii: bool,
}

impl<'a> ByteIndex<'a> {
    fn new(file: &'a SourceFile) -> Self {
        ByteIndex {
            file,
            char_idx: 0,
            byte_idx: 0,
            ascii: file.text.is_ascii(),
        }
    }

    fn byte(&mut self, m: &Marker) -> u32 {
        let text: &str = &self.file.text;
        if self.ascii {
            return m.index().min(text.len()) as u32;
        }
        if m.index() < self.char_idx {
            // Go back to the start of the marker's line, then walk forward.
            let Some(ls) = self.file.line_start(m.line() as u32) else {
                return text.len() as u32;
            };
            self.byte_idx = ls as usize;
            self.char_idx = m.index().saturating_sub(m.col());
        }
        let rest = &text[self.byte_idx..];
        let need = m.index() - self.char_idx;
        let mut adv = rest.len();
        for (n, (i, _)) in rest.char_indices().enumerate() {
            if n == need {
                adv = i;
                break;
            }
        }
        if need == 0 {
            adv = 0;
        }
        self.byte_idx += adv;
        self.char_idx = m.index();
        self.byte_idx as u32
    }

    fn span(&mut self, s: &saphyr_parser::Span) -> Span {
        let a = self.byte(&s.start);
        let b = self.byte(&s.end);
        Span::new(self.file.id, a, b)
    }
}

/// Mappings with fewer entries are checked for duplicate keys by a scan.
pub(super) const SMALL_MAP: usize = 16;

pub(super) enum Frame {
    Seq {
        span: Span,
        anchor: usize,
        /// Where its items start in the shared item stack.
        items: usize,
    },
    Map {
        span: Span,
        anchor: usize,
        /// Where its entries start in the shared entry stack.
        entries: usize,
        pending_key: Option<Node>,
        /// First spans by key, built once the mapping holds [`SMALL_MAP`] entries.
        seen: Option<HashMap<String, Span>>,
        /// `<<` merge sources, applied at the end.
        merges: Vec<Node>,
    },
}

/// Parses a file's text into documents. Problems go to `diags`; a document with a syntax
/// error is dropped (with everything after it).
pub fn parse(file: &SourceFile, limits: &Limits, diags: &mut Vec<Diagnostic>) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut idx = ByteIndex::new(file);
    let mut parser = Parser::new_from_str(&file.text);
    let mut stack: Vec<Frame> = Vec::new();
    // The children of the open collections, innermost last: a collection's children are
    // moved out into a vector of their exact size when it ends (no growing, no shrinking).
    let mut item_stack: Vec<Node> = Vec::new();
    let mut entry_stack: Vec<Entry> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut alias_nodes = 0usize;
    let mut doc_root: Option<Node> = None;
    let mut doc_index = 0usize;
    // The nodes of the current document (for the resolver's node budget).
    let mut doc_nodes = 0u64;

    loop {
        let (ev, sspan) = match parser.next_event() {
            None => break,
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                diags.push(scan_error(&mut idx, &e));
                break;
            }
        };
        let span = idx.span(&sspan);
        let node = match ev {
            Event::StreamStart | Event::Nothing => continue,
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                anchors.clear();
                alias_nodes = 0;
                continue;
            }
            Event::DocumentEnd => {
                if let Some(root) = doc_root.take() {
                    docs.push(Document {
                        root,
                        index: doc_index,
                        nodes: doc_nodes,
                    });
                }
                doc_nodes = 0;
                doc_index += 1;
                continue;
            }
            Event::SequenceStart(anchor, _tag) => {
                if stack.len() >= limits.max_depth {
                    diags.push(too_deep(span, limits));
                    return docs;
                }
                stack.push(Frame::Seq {
                    span,
                    anchor,
                    items: item_stack.len(),
                });
                continue;
            }
            Event::MappingStart(anchor, _tag) => {
                if stack.len() >= limits.max_depth {
                    diags.push(too_deep(span, limits));
                    return docs;
                }
                stack.push(Frame::Map {
                    span,
                    anchor,
                    entries: entry_stack.len(),
                    pending_key: None,
                    seen: None,
                    merges: Vec::new(),
                });
                continue;
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq {
                    span: start,
                    anchor,
                    items,
                }) = stack.pop()
                else {
                    diags.push(internal_yaml(span));
                    return docs;
                };
                let items: Vec<Node> = item_stack.drain(items.min(item_stack.len())..).collect();
                let s = collection_span(file, start, span, items.last().map(|n| n.span));
                let node = Node::seq(s, items);
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::MappingEnd => {
                let Some(Frame::Map {
                    span: start,
                    anchor,
                    entries,
                    merges,
                    ..
                }) = stack.pop()
                else {
                    diags.push(internal_yaml(span));
                    return docs;
                };
                let mut entries: Vec<Entry> = entry_stack
                    .drain(entries.min(entry_stack.len())..)
                    .collect();
                if !merges.is_empty() {
                    apply_merges(&mut entries, merges);
                    entries.shrink_to_fit();
                }
                let last = entries.last().map(|e| e.value.span);
                let first = entries.first().map(|e| e.key.span);
                let mut s = collection_span(file, start, span, last);
                if let Some(f) = first
                    && f.start < s.start
                {
                    s.start = f.start;
                }
                let node = Node::map(s, entries);
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Scalar(value, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let mut kind = if style == Style::Plain {
                    resolve_plain(&value)
                } else {
                    ScalarKind::Str
                };
                if let Some(t) = &tag
                    && (t.handle == "!!" || t.handle == "tag:yaml.org,2002:")
                {
                    kind = match t.suffix.as_str() {
                        "str" => ScalarKind::Str,
                        "int" => ScalarKind::Int,
                        "float" => ScalarKind::Float,
                        "bool" => ScalarKind::Bool,
                        "null" => ScalarKind::Null,
                        _ => kind,
                    };
                }
                if style == Style::Plain
                    && tag.is_none()
                    && let Some(reading) = yaml11_reading(&value)
                {
                    diags.push(
                        Diagnostic::new(
                            &YAML11_SCALAR,
                            span,
                            format!(
                                "`{value}` is {} here, but YAML 1.1 readers such as kubectl and Argo read {reading}",
                                match kind {
                                    ScalarKind::Int => "an integer",
                                    ScalarKind::Float => "a number",
                                    _ => "a string",
                                }
                            ),
                        )
                        .with_help(format!("quote it: \"{value}\""))
                        .with_fix(
                            "quote the value",
                            vec![crate::diag::Edit {
                                span,
                                text: format!("\"{value}\""),
                            }],
                        ),
                    );
                }
                // Inline up to 24 bytes; a longer text gets an exact-size copy (the scanner
                // grows its strings generously).
                let text = Text::from(value.as_ref());
                let node = Node::scalar(span, text, kind, style);
                if anchor > 0 {
                    anchors.insert(anchor, node.clone());
                }
                node
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    diags.push(Diagnostic::new(
                        &YAML_SYNTAX,
                        span,
                        "this alias refers to an anchor that is not defined before it",
                    ));
                    return docs;
                };
                let cost = target.count();
                alias_nodes = alias_nodes.saturating_add(cost);
                // The alias event itself is counted with the other nodes below.
                doc_nodes = doc_nodes.saturating_add(cost as u64).saturating_sub(1);
                if alias_nodes > limits.max_alias_nodes {
                    diags.push(
                        Diagnostic::new(
                            &ALIAS_BUDGET,
                            span,
                            format!(
                                "alias expansion exceeds the budget of {} nodes (a \"billion laughs\" document?)",
                                limits.max_alias_nodes
                            ),
                        )
                        .with_help("use fewer nested aliases, or raise `limits.max-alias-nodes` in `.pbc.yaml`"),
                    );
                    return docs;
                }
                if stack.len() + target.depth() > limits.max_depth {
                    diags.push(too_deep(span, limits));
                    return docs;
                }
                target.clone()
            }
        };

        doc_nodes = doc_nodes.saturating_add(1);
        // Attach the finished node to its parent.
        match stack.last_mut() {
            None => {
                doc_root = Some(node);
            }
            Some(Frame::Seq { .. }) => item_stack.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                seen,
                merges,
                ..
            }) => match pending_key.take() {
                None => {
                    if node.as_scalar().is_none() {
                        diags.push(
                            Diagnostic::new(
                                &COMPLEX_KEY,
                                node.span,
                                format!("a mapping key must be a string, not {}", node.type_name()),
                            )
                            .with_help("write the key as a plain or quoted string"),
                        );
                        return docs;
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    let k = key.as_scalar().map(|s| s.text.as_str()).unwrap_or("");
                    let is_merge =
                        k == "<<" && key.as_scalar().is_some_and(|s| s.style == Style::Plain);
                    if is_merge {
                        match &node.value {
                            Value::Seq(items) => merges.extend(items.iter().cloned()),
                            _ => merges.push(node),
                        }
                        continue;
                    }
                    let entries = &entry_stack[(*entries).min(entry_stack.len())..];
                    // Small mappings (nearly all) are scanned; a large one gets an index.
                    let first = if entries.len() < SMALL_MAP {
                        entries
                            .iter()
                            .find(|e| e.key_str() == k)
                            .map(|e| e.key.span)
                    } else {
                        let seen = seen.get_or_insert_with(|| {
                            let mut m = HashMap::with_capacity(entries.len() * 2);
                            for e in entries.iter() {
                                m.entry(e.key_str().to_string()).or_insert(e.key.span);
                            }
                            m
                        });
                        match seen.get(k) {
                            Some(f) => Some(*f),
                            None => {
                                seen.insert(k.to_string(), key.span);
                                None
                            }
                        }
                    };
                    if let Some(first) = first {
                        diags.push(
                            Diagnostic::new(
                                &DUPLICATE_KEY,
                                key.span,
                                format!("duplicate key `{k}`"),
                            )
                            .with_label_text("defined again here")
                            .with_label(first, "first defined here")
                            .with_help("remove one of the two entries"),
                        );
                    }
                    entry_stack.push(Entry { key, value: node });
                }
            },
        }
    }
    if let Some(root) = doc_root.take() {
        docs.push(Document {
            root,
            index: doc_index,
            nodes: doc_nodes,
        });
    }
    docs
}

/// Applies `<<` merge keys: entries of the merged mappings that the mapping does not define
/// itself are appended, earlier sources winning.
pub(super) fn apply_merges(entries: &mut Vec<Entry>, merges: Vec<Node>) {
    for m in merges {
        if let Value::Map(src) = m.value {
            for e in src {
                if !entries.iter().any(|x| x.key_str() == e.key_str()) {
                    entries.push(e);
                }
            }
        }
    }
}

/// A collection's span: from its start to its closing bracket (flow) or its last child
/// (block).
pub(super) fn collection_span(
    file: &SourceFile,
    start: Span,
    end_ev: Span,
    last_child: Option<Span>,
) -> Span {
    let first = file.text.as_bytes().get(start.start as usize).copied();
    let flow = matches!(first, Some(b'[') | Some(b'{'));
    let end = if flow {
        end_ev.end.max(start.end)
    } else {
        last_child.map(|c| c.end).unwrap_or(start.end)
    };
    Span::new(start.file, start.start, end)
}

pub(super) fn too_deep(span: Span, limits: &Limits) -> Diagnostic {
    Diagnostic::new(
        &NESTING_TOO_DEEP,
        span,
        format!(
            "collections nest more than {} levels deep",
            limits.max_depth
        ),
    )
    .with_help("flatten the document, or raise `limits.max-depth` in `.pbc.yaml`")
}

pub(super) fn internal_yaml(span: Span) -> Diagnostic {
    Diagnostic::new(
        &YAML_SYNTAX,
        span,
        "the YAML event stream is inconsistent (unbalanced collection end)",
    )
}

pub(super) fn scan_error(idx: &mut ByteIndex<'_>, e: &ScanError) -> Diagnostic {
    let at = idx.byte(e.marker());
    let info = e.info();
    if info.contains("recursion limit") {
        return Diagnostic::new(
            &NESTING_TOO_DEEP,
            Span::point(idx.file.id, at),
            "flow collections nest too deeply",
        )
        .with_help("flatten the document");
    }
    let mut d = Diagnostic::new(
        &YAML_SYNTAX,
        Span::point(idx.file.id, at),
        format!("invalid YAML: {info}"),
    );
    if info.contains("tab") {
        d = d.with_help("YAML indentation must use spaces, not tabs");
    } else if info.contains("mapping values are not allowed") {
        d = d.with_help("a `: ` inside a plain value starts a mapping; quote the value");
    } else if info.contains("unknown anchor") {
        d = d.with_help("define the anchor (`&name`) before using the alias (`*name`)");
    }
    d
}
