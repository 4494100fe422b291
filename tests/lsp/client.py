"""Drives `pbc lsp` over stdio with pygls's language client (lsprotocol's types).

Usage: client.py PBC WORKSPACE ENCODING. ENCODING is `utf-32` (the client offers UTF-32 and
UTF-16: the server must choose UTF-32) or `utf-16` (offered alone). WORKSPACE is a copy of
tests/lsp/workspace that this script may change. Exits non-zero on the first failed check.
Expected positions are computed here from the fixture text, in the agreed encoding.
"""

import asyncio
import pathlib
import subprocess
import sys

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

PBC, WS, ENC = sys.argv[1], pathlib.Path(sys.argv[2]).resolve(), sys.argv[3]
TIMEOUT = 60  # seconds: a wait that never ends is a failure, not a hang


def uri(p):
    return p.as_uri()


def col(line, index):
    """The character of `index` in `line`, counted in the agreed encoding."""
    if ENC == "utf-32":
        return index
    return len(line[:index].encode("utf-16-le")) // 2


def pos_of(text, needle, nth=0):
    """The protocol position of the `nth` occurrence of `needle` in `text`."""
    i = -1
    for _ in range(nth + 1):
        i = text.index(needle, i + 1)
    line_no = text.count("\n", 0, i)
    line = text.splitlines()[line_no]
    start = i - (text.rfind("\n", 0, i) + 1)
    return T.Position(line=line_no, character=col(line, start))


def apply(text, edits):
    """Applies text edits (positions in the agreed encoding) to `text`."""
    lines = text.split("\n")

    def offset(p):
        line = lines[p.line]
        units, idx = 0, 0
        while idx < len(line) and units < p.character:
            units += 1 if ENC == "utf-32" else len(line[idx].encode("utf-16-le")) // 2
            idx += 1
        return sum(len(l) + 1 for l in lines[: p.line]) + idx

    for e in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        s, t = offset(e.range.start), offset(e.range.end)
        text = text[:s] + e.new_text + text[t:]
    return text


class Client(LanguageClient):
    def __init__(self):
        super().__init__("pbc-lsp-test", "1")
        self.diags = {}
        self.changed = asyncio.Event()

        @self.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def publish(ls, params):
            ls.diags[params.uri] = params.diagnostics
            ls.changed.set()

    async def wait_for(self, u, pred, what):
        """Waits until the diagnostics of `u` satisfy `pred`."""

        async def loop():
            while not (u in self.diags and pred(self.diags[u])):
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(loop(), TIMEOUT)
        except asyncio.TimeoutError:
            sys.exit(f"timed out waiting for {what}; diagnostics of {u}: {self.diags.get(u)}")
        return self.diags[u]


def codes(ds):
    return sorted(d.code for d in ds)


async def main():
    c = Client()
    await c.start_io(PBC, "lsp", cwd=str(WS))
    offered = [T.PositionEncodingKind.Utf32, T.PositionEncodingKind.Utf16]
    if ENC == "utf-16":
        offered = [T.PositionEncodingKind.Utf16]
    init = await c.initialize_async(
        T.InitializeParams(
            capabilities=T.ClientCapabilities(
                general=T.GeneralClientCapabilities(position_encodings=offered)
            ),
            root_uri=uri(WS),
            workspace_folders=[T.WorkspaceFolder(uri=uri(WS), name="ws")],
        )
    )
    assert init.capabilities.position_encoding == ENC, init.capabilities.position_encoding
    c.initialized(T.InitializedParams())

    # A loose file from disk: its misspelt field, after a non-BMP character on its line.
    loose = WS / "loose.yaml"
    text = loose.read_text()
    lu = uri(loose)
    c.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=lu, language_id="yaml", version=1, text=text)
        )
    )
    ds = await c.wait_for(lu, lambda ds: len(ds) > 0, "the finding of loose.yaml")
    assert codes(ds) == ["PB2001"], codes(ds)
    d = ds[0]
    start = pos_of(text, "aproval")
    assert d.range.start == start, (d.range, start)
    assert d.range.end.character == start.character + len("aproval"), d.range
    assert d.source == "pbc" and d.severity == T.DiagnosticSeverity.Error, d

    # Hover on the finding shows `pbc explain`'s text.
    explain = subprocess.run([PBC, "explain", "PB2001"], capture_output=True, text=True, check=True).stdout
    h = await c.text_document_hover_async(T.HoverParams(text_document=T.TextDocumentIdentifier(uri=lu), position=start))
    first_para = explain.strip().split("\n\n")[1].strip() if "\n\n" in explain.strip() else explain.strip()
    assert "PB2001" in h.contents.value, h.contents.value
    assert first_para.splitlines()[0] in h.contents.value, (first_para, h.contents.value)

    # Code actions: the did-you-mean rename, and the suppression.
    acts = await c.text_document_code_action_async(
        T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(uri=lu),
            range=d.range,
            context=T.CodeActionContext(diagnostics=[d]),
        )
    )
    titles = [a.title for a in acts]
    assert "rename to `approval`" in titles, titles
    assert "suppress PB2001 with `# pbc:allow(PB2001)`" in titles, titles
    rename = next(a for a in acts if a.title == "rename to `approval`")
    fixed = apply(text, rename.edit.changes[lu])
    assert "approval: auto" in fixed and "aproval" not in fixed, fixed
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=lu, version=2),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    await c.wait_for(lu, lambda ds: len(ds) == 0, "the rename to clear loose.yaml")

    # The suppression, applied to the original text, silences the finding too.
    supp = next(a for a in acts if a.title.startswith("suppress"))
    suppressed = apply(text, supp.edit.changes[lu])
    assert "    # pbc:allow(PB2001)\n    - {name: review" in suppressed, suppressed
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=lu, version=3),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    await c.wait_for(lu, lambda ds: codes(ds) == ["PB2001"], "the finding to come back")
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=lu, version=4),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=suppressed)],
        )
    )
    await c.wait_for(lu, lambda ds: len(ds) == 0, "the suppression to clear loose.yaml")

    # A duplicate stage: the first definition is related information.
    dup = WS / "duplicate.yaml"
    du = uri(dup)
    dtext = dup.read_text()
    c.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=du, language_id="yaml", version=1, text=dtext)
        )
    )
    ds = await c.wait_for(du, lambda ds: "PB2011" in codes(ds), "the duplicate stage")
    d = next(d for d in ds if d.code == "PB2011")
    assert d.range.start == pos_of(dtext, "review", 1), d.range
    rel = d.related_information
    assert rel and rel[0].location.uri == du and rel[0].message == "first defined here", rel
    assert rel[0].location.range.start == pos_of(dtext, "review", 0), rel

    # A base shared by an overlay: an unsaved change is checked through the overlay, and
    # once closed unsaved, the file's diagnostics are those of the disk again.
    base = WS / "playbooks/base/review.yaml"
    bu = uri(base)
    btext = base.read_text()
    c.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=bu, language_id="yaml", version=1, text=btext)
        )
    )
    await c.wait_for(bu, lambda ds: len(ds) == 0, "the base to check clean")
    broken = btext.replace("needs: [analyze]", "needs: [analyse]", 1)
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=bu, version=2),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=broken)],
        )
    )
    ds = await c.wait_for(bu, lambda ds: "PB4001" in codes(ds), "the unknown stage in the base")
    d = next(d for d in ds if d.code == "PB4001")
    assert d.range.start == pos_of(broken, "analyse"), d.range

    # Hover, definition, references and completion on the base.
    at_need = pos_of(btext, "analyze]")
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=bu, version=3),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=btext)],
        )
    )
    h = await c.text_document_hover_async(T.HoverParams(text_document=T.TextDocumentIdentifier(uri=bu), position=at_need))
    assert "stage `analyze`" in h.contents.value and "agent `glm-5`" in h.contents.value, h.contents.value
    h = await c.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=bu), position=pos_of(btext, "approvers"))
    )
    assert "**`approvers`**" in h.contents.value, h.contents.value
    h = await c.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=bu), position=pos_of(btext, "review", 1))
    )
    assert "approval `manual`" in h.contents.value and "role `security-team`" in h.contents.value, h.contents.value
    defn = await c.text_document_definition_async(
        T.DefinitionParams(text_document=T.TextDocumentIdentifier(uri=bu), position=at_need)
    )
    defn = defn if isinstance(defn, T.Location) else defn[0]
    assert defn.uri == bu and defn.range.start == pos_of(btext, "analyze"), defn
    defn = await c.text_document_definition_async(
        T.DefinitionParams(text_document=T.TextDocumentIdentifier(uri=bu), position=pos_of(btext, "schemas/report.json"))
    )
    defn = defn if isinstance(defn, T.Location) else defn[0]
    assert defn.uri == uri(WS / "playbooks/base/schemas/report.json"), defn
    refs = await c.text_document_references_async(
        T.ReferenceParams(
            text_document=T.TextDocumentIdentifier(uri=bu),
            position=pos_of(btext, "analyze"),
            context=T.ReferenceContext(include_declaration=True),
        )
    )
    assert sorted((r.range.start.line, r.range.start.character) for r in refs) == sorted(
        [(p.line, p.character) for p in (pos_of(btext, "analyze"), at_need, pos_of(btext, "analyze]", 1))]
    ), refs
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=bu), position=at_need)
    )
    items = comp if isinstance(comp, list) else comp.items
    assert {"analyze", "review"} <= {i.label for i in items}, [i.label for i in items]
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=bu), position=pos_of(btext, "approval:"))
    )
    items = comp if isinstance(comp, list) else comp.items
    labels = {i.label for i in items}
    assert {"approval", "needs", "output-schema", "guardrails"} <= labels, labels
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=bu), position=pos_of(btext, "manual"))
    )
    items = comp if isinstance(comp, list) else comp.items
    assert {"auto", "manual", "conditional"} <= {i.label for i in items}, [i.label for i in items]

    # Hover on what a playbook refers to: a compliance tag (the control and its evidence
    # rule) and an output reference in a condition (the field in the output schema).
    ref = WS / "refs.yaml"
    ru = uri(ref)
    rtext = ref.read_text()
    c.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=ru, language_id="yaml", version=1, text=rtext)
        )
    )
    h = await c.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "CC8.1"))
    )
    v = h.contents.value
    assert "SOC2-CC8.1" in v and "approved" in v and "human-gate" in v, v
    h = await c.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "verdict ==")),
    )
    v = h.contents.value
    assert "stage `judge`" in v and "type `string`" in v and "The reviewer's verdict on the change." in v, v
    assert '"pass"' in v and '"fail"' in v, v
    # Completion after `verdict.verdict ==`: the members of the field's enum.
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "fail\n"))
    )
    items = comp if isinstance(comp, list) else comp.items
    assert {i.label for i in items} == {"pass", "fail"}, [i.label for i in items]
    # Go to definition on an output reference: the field's key in the output schema.
    defn = await c.text_document_definition_async(
        T.DefinitionParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "verdict =="))
    )
    defn = defn if isinstance(defn, T.Location) else defn[0]
    vschema = WS / "schemas/verdict.json"
    assert defn.uri == uri(vschema), defn
    assert defn.range.start == pos_of(vschema.read_text(), '"verdict"'), defn
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "SOC2-CC8.1"))
    )
    items = {i.label: i.detail for i in (comp if isinstance(comp, list) else comp.items)}
    assert "SOC2-CC6.1" in items and "ISO27001-8.32" in items, list(items)[:20]
    assert "change" in items["ISO27001-8.32"].lower(), items["ISO27001-8.32"]
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "verdict =="))
    )
    items = {i.label: i.detail for i in (comp if isinstance(comp, list) else comp.items)}
    assert items.get("verdict.verdict") == "The reviewer's verdict on the change.", items
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "pii-detection"))
    )
    labels = {i.label for i in (comp if isinstance(comp, list) else comp.items)}
    assert {"pii-detection", "prompt-injection-detection", "acme-secrets"} <= labels, labels
    comp = await c.text_document_completion_async(
        T.CompletionParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "ops-log"))
    )
    labels = {i.label for i in (comp if isinstance(comp, list) else comp.items)}
    assert labels == {"ops-log", "pager"}, labels
    # The static policies of `check-policies:` run as in `pbc check`: at the value they name.
    bad = rtext.replace("agent: glm-5\n      needs: [judge]\n      when", "agent: unvetted-model\n      needs: [judge]\n      when", 1)
    assert bad != rtext
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=ru, version=2),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=bad)],
        )
    )
    ds = await c.wait_for(ru, lambda ds: "PB6020" in codes(ds), "the static policy's denial")
    d = next(d for d in ds if d.code == "PB6020")
    assert "stage announce uses an unvetted model" in d.message, d.message
    assert d.range.start == pos_of(bad, "unvetted-model"), d.range
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=ru, version=3),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=rtext)],
        )
    )
    await c.wait_for(ru, lambda ds: "PB6020" not in codes(ds), "the denial to clear")

    # References of an output: every condition reading it.
    refs = await c.text_document_references_async(
        T.ReferenceParams(
            text_document=T.TextDocumentIdentifier(uri=ru),
            position=pos_of(rtext, "schemas/verdict.json"),
            context=T.ReferenceContext(include_declaration=True),
        )
    )
    got = sorted((r.range.start.line, r.range.start.character, r.range.end.character) for r in refs)
    want = sorted(
        (p.line, p.character, p.character + len("verdict.verdict"))
        for p in (pos_of(rtext, "verdict.verdict =="), pos_of(rtext, "verdict.verdict !="))
    )
    assert got == want, (got, want)

    # From an overlay's patch, a stage's name goes to the base's stage.
    patch = WS / "playbooks/overlays/prod/patch.yaml"
    ptext = patch.read_text()
    c.text_document_did_open(
        T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri(patch), language_id="yaml", version=1, text=ptext)
        )
    )
    await c.wait_for(uri(patch), lambda ds: len(ds) == 0, "the overlay's patch to check clean")
    defn = await c.text_document_definition_async(
        T.DefinitionParams(text_document=T.TextDocumentIdentifier(uri=uri(patch)), position=pos_of(ptext, "review\n"))
    )
    defn = defn if isinstance(defn, list) else [defn]
    assert [(d.uri, d.range.start) for d in defn] == [(bu, pos_of(btext, "review\n"))], defn
    # Where else an overlaid field is set: the base value from the patch, the patch from the base.
    base_line = btext[: btext.index("sla: 4h")].count("\n") + 1
    patch_line = ptext[: ptext.index("sla: 2h")].count("\n") + 1
    h = await c.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=uri(patch)), position=pos_of(ptext, "2h"))
    )
    assert f"- playbooks/base/review.yaml:{base_line}: `4h`" in h.contents.value, h.contents.value
    h = await c.text_document_hover_async(
        T.HoverParams(text_document=T.TextDocumentIdentifier(uri=bu), position=pos_of(btext, "4h"))
    )
    assert f"- playbooks/overlays/prod/patch.yaml:{patch_line}: `2h`" in h.contents.value, h.contents.value
    cfg = WS / ".pbc.yaml"
    defn = await c.text_document_definition_async(
        T.DefinitionParams(text_document=T.TextDocumentIdentifier(uri=ru), position=pos_of(rtext, "security-team"))
    )
    defn = defn if isinstance(defn, T.Location) else defn[0]
    assert defn.uri == uri(cfg) and defn.range.start == pos_of(cfg.read_text(), "security-team"), defn

    # Closed unsaved: the disk's diagnostics again (clean).
    c.text_document_did_change(
        T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=bu, version=4),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=broken)],
        )
    )
    await c.wait_for(bu, lambda ds: "PB4001" in codes(ds), "the unknown stage again")
    c.text_document_did_close(T.DidCloseTextDocumentParams(text_document=T.TextDocumentIdentifier(uri=bu)))
    await c.wait_for(bu, lambda ds: len(ds) == 0, "the closed base to show the disk's diagnostics")

    await c.shutdown_async(None)
    c.exit(None)
    await c.stop()
    print("ok")


asyncio.run(main())
