"""`sentra-lang lsp` over the protocol: a real server process driven by pygls' LSP client.

Positions in the expectations are computed here from the text (UTF-16 code units, as LSP
requires by default), independently of the server, or written out by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types

from tests.editors.lsp_client import LspSession, uri

pytestmark = pytest.mark.slow

POLICY = """\
policy payments version "1" {
  risk_threshold 100
}

input {
  amount: number?
  note: string normalize lower, trim = ""
}

action PAY {
  when note == "💸💸💸" and amount > 10 block risk 30 as BIG_EMOJI_PAYMENT threat "Fraud" "emoji"
  allow risk 5 as PAYMENT_OK "paid 💸 {amount}"
}

otherwise block as UNKNOWN "unknown action"
"""
BROKEN = POLICY.replace("{amount}", "{amont}")
LIBRARY = """\
# shared declarations
input {
  context.tenant: enum {"acme", "globex"} = "acme"
  context.verified: bool = false
}

let TRUSTED = {"acme"}
let verified_tenant = context.verified and context.tenant in TRUSTED
"""
IMPORTING = """\
import "lib/shared.sentra"

policy tenants version "1" {
}

action EXPORT {
  when verified_tenant allow as EXPORT_OK "ok"
  block risk 10 as EXPORT_REFUSED threat "Data Exfiltration" "no"
}

otherwise block as UNKNOWN "unknown"
"""
SUITE = """\
suite "payments" for "payments.sentra"

scenario "a small payment" {
  agent "a" PAY { amount: 3 } -> allowed rule PAYMENT_OK risk 5
  agent "a" PAY { note: "💸💸💸", amount: 11 } -> blocked rule BIG_EMOJI_PAYMENT
}
"""


def at(text: str, needle: str, nth: int = 0, shift: int = 0) -> tuple[int, int]:
    """(line, UTF-16 character) of the `nth` occurrence of `needle`, plus `shift` characters."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    offset += shift
    line = text.count("\n", 0, offset)
    column_text = text[text.rfind("\n", 0, offset) + 1:offset]
    return line, len(column_text.encode("utf-16-le")) // 2


def span(diag: types.Diagnostic) -> tuple[tuple[int, int], tuple[int, int]]:
    r = diag.range
    return (r.start.line, r.start.character), (r.end.line, r.end.character)


def hover_text(lsp: LspSession, address: str, position: tuple[int, int]) -> str:
    result = lsp.hover(address, *position)
    assert result is not None, f"no hover at {position}"
    assert isinstance(result.contents, types.MarkupContent)
    assert result.contents.kind == types.MarkupKind.Markdown
    return result.contents.value


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------- session

def test_initialize_announces_the_features(lsp: LspSession) -> None:
    capabilities = lsp.initialized.capabilities
    assert lsp.initialized.server_info is not None
    assert lsp.initialized.server_info.name == "sentra-lang"
    assert capabilities.hover_provider and capabilities.definition_provider
    assert capabilities.document_formatting_provider
    assert capabilities.completion_provider is not None
    assert list(capabilities.completion_provider.trigger_characters or []) == ["."]
    sync = capabilities.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental and sync.open_close
    assert lsp.encoding == "utf-16"


def test_shutdown_then_exit_ends_the_process_with_status_0(tmp_path: Path) -> None:
    session = LspSession()
    session.open(tmp_path / "p.sentra", POLICY)
    assert session.close() == 0


# ----------------------------------------------------------------------------- diagnostics

def test_errors_are_published_on_open_and_cleared_by_the_fix(lsp: LspSession,
                                                            tmp_path: Path) -> None:
    address = lsp.open(tmp_path / "payments.sentra", BROKEN)   # never saved: the buffer counts
    [diag] = lsp.diagnostics(address, version=1)
    assert diag.code == "SL101" and diag.source == "sentra-lang"
    assert diag.severity == types.DiagnosticSeverity.Error
    assert diag.message == "undeclared field `amont` in reason\nhelp: did you mean `amount`?"
    # `{amont}` is code points 37-44 of line 12; the emoji before it is two UTF-16 units
    assert span(diag) == ((11, 38), (11, 45))
    version = lsp.change(address, "amount", start=(11, 39), end=(11, 44))
    assert lsp.diagnostics(address, version=version) == []


def test_each_change_is_diagnosed_and_the_last_version_wins(lsp: LspSession,
                                                           tmp_path: Path) -> None:
    address = lsp.open(tmp_path / "p.sentra", POLICY)
    assert lsp.diagnostics(address, version=1) == []
    lsp.change(address, BROKEN)
    last = lsp.change(address, BROKEN.replace("when note", "when nte"))
    codes = [d.code for d in lsp.diagnostics(address, version=last)]
    assert codes == ["SL107", "SL101", "SL101"]      # `note` unread, `nte` and `amont` unknown


def test_syntax_errors_are_diagnostics_and_the_file_recovers(lsp: LspSession,
                                                            tmp_path: Path) -> None:
    broken = POLICY.replace("allow risk 5 as", "allow risk as")
    address = lsp.open(tmp_path / "p.sentra", broken)
    [diag] = lsp.diagnostics(address, version=1)
    assert diag.code == "SL001"
    assert span(diag)[0] == at(broken, "as PAYMENT_OK")
    version = lsp.change(address, POLICY)
    assert lsp.diagnostics(address, version=version) == []


def test_line_breaks_are_lsps_crlf_and_u2028_is_not_one(lsp: LspSession, tmp_path: Path) -> None:
    text = BROKEN.replace("\n", "\r\n").replace("paid 💸 {amont}", "paid\u2028💸 {amont}")
    address = lsp.open(tmp_path / "crlf.sentra", text)
    [diag] = lsp.diagnostics(address, version=1)
    assert span(diag) == ((11, 38), (11, 45))


# `{amont}` is code points 37-44 of line 12, after one emoji; `amount` on line 11 starts at code
# point 25, after three: an emoji is 4 UTF-8 bytes and one UTF-32 unit
@pytest.mark.parametrize(("encoding", "columns", "amount"),
                         [("utf-8", (40, 47), 34), ("utf-32", (37, 44), 25)])
def test_positions_follow_the_negotiated_encoding(tmp_path: Path, encoding: str,
                                                  columns: tuple[int, int], amount: int) -> None:
    session = LspSession(encodings=[encoding], options={"diagnosticsDelay": 0})
    try:
        assert session.encoding == encoding
        address = session.open(tmp_path / "p.sentra", BROKEN)
        [diag] = session.diagnostics(address, version=1)
        assert span(diag) == ((11, columns[0]), (11, columns[1]))
        hover = session.hover(address, 10, amount)
        assert hover is not None and hover.range is not None
        assert "**field** `amount`" in str(hover.contents)
        assert (hover.range.start.character, hover.range.end.character) == (amount, amount + 6)
    finally:
        assert session.close() == 0


def test_analysis_findings_are_diagnostics_too(lsp: LspSession, tmp_path: Path) -> None:
    shadowed = POLICY.replace('  allow risk 5 as PAYMENT_OK "paid 💸 {amount}"\n',
                              '  allow risk 5 as PAYMENT_OK "paid 💸 {amount}"\n'
                              '  when amount > 100 block as NEVER_REACHED "never"\n')
    address = lsp.open(tmp_path / "p.sentra", shadowed)
    [diag] = lsp.diagnostics(address, version=1)
    assert diag.code == "SL401" and diag.severity == types.DiagnosticSeverity.Warning
    assert list(diag.tags or []) == [types.DiagnosticTag.Unnecessary]
    assert span(diag)[0][0] == at(shadowed, "when amount > 100")[0]


def test_a_closed_document_loses_its_diagnostics(lsp: LspSession, tmp_path: Path) -> None:
    address = lsp.open(tmp_path / "p.sentra", BROKEN)
    assert lsp.diagnostics(address, version=1)
    lsp.close_document(address)
    assert lsp.diagnostics(address) == []


# ------------------------------------------------------------------------------- imports

def test_unsaved_buffers_resolve_imports_from_their_own_folder(lsp: LspSession,
                                                               tmp_path: Path) -> None:
    write(tmp_path / "project", {"lib/shared.sentra": LIBRARY})
    address = lsp.open(tmp_path / "project" / "tenants.sentra", IMPORTING)   # not on disk
    assert lsp.diagnostics(address, version=1) == []
    position = at(IMPORTING, "verified_tenant", shift=3)
    assert "**named condition** `verified_tenant`" in hover_text(lsp, address, position)


def test_a_problem_in_an_imported_file_shows_on_the_import(lsp: LspSession,
                                                           tmp_path: Path) -> None:
    write(tmp_path, {"lib/shared.sentra": LIBRARY.replace("= false", "= flase")})
    address = lsp.open(tmp_path / "tenants.sentra", IMPORTING)
    [diag] = lsp.diagnostics(address, version=1)
    assert span(diag) == ((0, 0), (0, len('import "lib/shared.sentra"')))
    assert diag.message.startswith("shared.sentra:4:")
    related = diag.related_information or []
    assert related[0].location.uri == uri(tmp_path / "lib" / "shared.sentra")
    assert related[0].location.range.start.line == 3


def test_saving_a_library_refreshes_the_files_that_import_it(lsp: LspSession,
                                                            tmp_path: Path) -> None:
    write(tmp_path, {"lib/shared.sentra": LIBRARY})
    address = lsp.open(tmp_path / "tenants.sentra", IMPORTING)
    assert lsp.diagnostics(address, version=1) == []
    library = tmp_path / "lib" / "shared.sentra"
    library.write_text(LIBRARY.replace("let TRUSTED", "let TRUST"), encoding="utf-8")
    lsp.save(uri(library))
    codes = [d.code for d in lsp.diagnostics(address, version=1)]
    assert codes == ["SL102"]


def test_a_policy_changed_on_disk_refreshes_its_suites(lsp: LspSession, tmp_path: Path) -> None:
    write(tmp_path, {"payments.sentra": POLICY})
    address = lsp.open(tmp_path / "payments.sentra-test", SUITE)
    assert lsp.diagnostics(address, version=1) == []
    policy = tmp_path / "payments.sentra"
    policy.write_text(POLICY.replace("as PAYMENT_OK", "as PAYMENT_DONE"), encoding="utf-8")
    lsp.changed_on_disk(uri(policy))               # another program wrote it: no save event
    [diag] = lsp.diagnostics(address, version=1)
    assert diag.code == "SL503" and "`PAYMENT_OK`" in diag.message


# ---------------------------------------------------------------------------------- hover

def test_hover_on_a_field_gives_type_presence_default_and_normalisation(
        lsp: LspSession, tmp_path: Path) -> None:
    address = lsp.open(tmp_path / "p.sentra", POLICY)
    position = at(POLICY, "amount > 10")     # after three emoji: UTF-16 columns matter
    result = lsp.hover(address, *position)
    assert result is not None and result.range is not None
    assert (result.range.start.line, result.range.start.character) == position
    assert result.range.end.character == position[1] + len("amount")
    text = hover_text(lsp, address, position)
    assert "**field** `amount`: `number`, optional" in text
    assert "```sentra\namount: number?\n```" in text
    note = hover_text(lsp, address, at(POLICY, "note ==", shift=1))
    assert "**field** `note`: `string`, default `\"\"`" in note
    assert "normalised before matching: lower, trim" in note
    assert "amount" in hover_text(lsp, address, at(POLICY, "{amount}", shift=2))


def test_hover_on_a_rule_id_and_its_as_gives_outcome_risk_and_threat(
        lsp: LspSession, tmp_path: Path) -> None:
    address = lsp.open(tmp_path / "p.sentra", POLICY)
    for position in (at(POLICY, "BIG_EMOJI_PAYMENT", shift=4), at(POLICY, "as BIG_EMOJI")):
        text = hover_text(lsp, address, position)
        assert "**rule** `BIG_EMOJI_PAYMENT`: **block**" in text
        assert "risk 30, attempted and recorded, never applied" in text
        assert 'threat "Fraud"' in text and "action `PAY`" in text
    allow = hover_text(lsp, address, at(POLICY, "PAYMENT_OK"))
    assert "**allow**, risk 5, added to the agent's cumulative risk" in allow
    fallback = hover_text(lsp, address, at(POLICY, "UNKNOWN"))
    assert "**rule** `UNKNOWN`: **block**" in fallback and "`otherwise`" in fallback


def test_hover_on_lets_imports_and_actions(lsp: LspSession, tmp_path: Path) -> None:
    write(tmp_path, {"lib/shared.sentra": LIBRARY})
    address = lsp.open(tmp_path / "tenants.sentra", IMPORTING)
    imported = hover_text(lsp, address, at(IMPORTING, "lib/shared"))
    assert str(tmp_path / "lib" / "shared.sentra") in imported
    assert "`context.tenant`" in imported and "`TRUSTED`" in imported
    let = hover_text(lsp, address, at(IMPORTING, "verified_tenant"))
    assert "let verified_tenant = context.verified and context.tenant in TRUSTED" in let
    assert "*declared in `shared.sentra`, line 8*" in let
    action = hover_text(lsp, address, at(IMPORTING, "EXPORT {"))
    assert "- `EXPORT_OK`: allow" in action and "- `EXPORT_REFUSED`: block, risk 10" in action
    assert lsp.hover(address, *at(IMPORTING, "policy")) is None


# ----------------------------------------------------------------------------- definition

def test_definition_of_fields_lets_and_imports(lsp: LspSession, tmp_path: Path) -> None:
    write(tmp_path, {"lib/shared.sentra": LIBRARY})
    library = uri(tmp_path / "lib" / "shared.sentra")
    address = lsp.open(tmp_path / "tenants.sentra", IMPORTING)
    let = lsp.definition(address, *at(IMPORTING, "verified_tenant"))
    assert let.uri == library
    assert (let.range.start.line, let.range.start.character) == at(LIBRARY, "verified_tenant")
    imported = lsp.definition(address, *at(IMPORTING, "shared.sentra"))
    assert imported.uri == library and imported.range.start.line == 0
    here = lsp.open(tmp_path / "p.sentra", POLICY)
    field = lsp.definition(here, *at(POLICY, "amount > 10"))
    assert field.uri == here
    assert (field.range.start.line, field.range.start.character) == at(POLICY, "amount: number")
    assert lsp.definition(here, *at(POLICY, "risk_threshold")) is None


def test_definition_of_a_rule_id_in_a_suite_jumps_into_the_policy(lsp: LspSession,
                                                                  tmp_path: Path) -> None:
    write(tmp_path, {"payments.sentra": POLICY})
    address = lsp.open(tmp_path / "payments.sentra-test", SUITE)
    assert lsp.diagnostics(address, version=1) == []
    target = lsp.definition(address, *at(SUITE, "BIG_EMOJI_PAYMENT", shift=2))
    assert target.uri == uri(tmp_path / "payments.sentra")
    assert (target.range.start.line, target.range.start.character) == \
        at(POLICY, "BIG_EMOJI_PAYMENT")
    field = lsp.definition(address, *at(SUITE, "note:"))
    assert (field.range.start.line, field.range.start.character) == at(POLICY, "note: string")
    policy = lsp.definition(address, *at(SUITE, "payments.sentra"))
    assert policy.uri == uri(tmp_path / "payments.sentra") and policy.range.start.line == 0
    action = lsp.definition(address, *at(SUITE, "PAY {"))
    assert (action.range.start.line, action.range.start.character) == at(POLICY, "PAY {")


def test_suite_hover_and_diagnostics_come_from_its_policy(lsp: LspSession,
                                                          tmp_path: Path) -> None:
    write(tmp_path, {"payments.sentra": POLICY})
    address = lsp.open(tmp_path / "payments.sentra-test", SUITE)
    assert lsp.diagnostics(address, version=1) == []
    text = hover_text(lsp, address, at(SUITE, "rule BIG"))
    assert "**rule** `BIG_EMOJI_PAYMENT`: **block**" in text
    assert "*declared in `payments.sentra`, line 11*" in text
    version = lsp.change(address, SUITE.replace("rule PAYMENT_OK", "rule PAYMENT_KO"))
    [diag] = lsp.diagnostics(address, version=version)
    assert diag.code == "SL503" and "`PAYMENT_KO`" in diag.message
    version = lsp.change(address, SUITE.replace(
        "-> allowed rule PAYMENT_OK risk 5", "-> blocked rule RISK_THRESHOLD_EXCEEDED"))
    assert lsp.diagnostics(address, version=version) == []
    runtime = hover_text(lsp, address, at(SUITE, "rule PAYMENT_OK"))
    assert "**runtime rule** `RISK_THRESHOLD_EXCEEDED`" in runtime


def test_a_suite_shows_its_policys_errors_on_the_policy_name(lsp: LspSession,
                                                             tmp_path: Path) -> None:
    write(tmp_path, {"payments.sentra": BROKEN})
    address = lsp.open(tmp_path / "payments.sentra-test", SUITE)
    codes = [(d.code, span(d)[0]) for d in lsp.diagnostics(address, version=1)]
    assert codes == [("SL501", at(SUITE, '"payments.sentra"')),
                     ("SL101", at(SUITE, '"payments.sentra"'))]
    missing = lsp.open(tmp_path / "other.sentra-test", SUITE.replace("payments.sentra",
                                                                     "missing.sentra"))
    [diag] = lsp.diagnostics(missing, version=1)
    assert diag.code == "SL501" and "cannot read policy `missing.sentra`" in diag.message


# ----------------------------------------------------------------------------- formatting

def test_formatting_is_the_formatters_output_as_one_edit(lsp: LspSession, tmp_path: Path) -> None:
    messy = POLICY.replace("  risk_threshold 100", "risk_threshold     100").replace(
        "action PAY {", "action PAY{   # payments")
    expected = subprocess.run([sys.executable, "-m", "sentra_lang", "fmt", "-"], input=messy,
                              capture_output=True, text=True, check=True).stdout
    address = lsp.open(tmp_path / "p.sentra", messy)
    [edit] = lsp.formatting(address) or []
    assert edit.new_text == expected != messy
    end = (messy.count("\n"), 0)
    assert span(types.Diagnostic(edit.range, "")) == ((0, 0), end)
    assert lsp.formatting(lsp.open(tmp_path / "q.sentra", expected)) == []


def test_formatting_refuses_a_file_that_does_not_parse(lsp: LspSession, tmp_path: Path) -> None:
    address = lsp.open(tmp_path / "p.sentra", POLICY.replace("allow risk 5", "allow risk"))
    assert lsp.formatting(address) is None
    lsp.pump(0.2)
    assert any("not formatted: it does not parse" in log for log in lsp.logs)
    suite = lsp.open(tmp_path / "s.sentra-test", SUITE)
    assert lsp.formatting(suite) is None


# ----------------------------------------------------------------------------- completion

def labels(items: list[types.CompletionItem]) -> set[str]:
    return {item.label for item in items}


def test_completion_of_keywords_fields_and_lets(lsp: LspSession, tmp_path: Path) -> None:
    write(tmp_path, {"lib/shared.sentra": LIBRARY})
    text = IMPORTING.replace("  when verified_tenant", "  when ver")
    address = lsp.open(tmp_path / "tenants.sentra", text)
    line, character = at(text, "when ver", shift=len("when ver"))
    items = lsp.completion(address, line, character)
    assert {"verified_tenant", "context.verified", "context.tenant", "when", "allow",
            "exists"} <= labels(items)
    item = next(i for i in items if i.label == "verified_tenant")
    assert item.kind == types.CompletionItemKind.Variable
    assert isinstance(item.text_edit, types.TextEdit)
    assert span(types.Diagnostic(item.text_edit.range, "")) == (
        (line, character - 3), (line, character))


def test_completion_after_context_dot_offers_the_rest_of_the_path(lsp: LspSession,
                                                                  tmp_path: Path) -> None:
    write(tmp_path, {"lib/shared.sentra": LIBRARY})
    address = lsp.open(tmp_path / "tenants.sentra", IMPORTING)
    assert lsp.diagnostics(address, version=1) == []
    typed = IMPORTING.replace("when verified_tenant", "when context.")
    version = lsp.change(address, typed)          # no longer parses: the last index is used
    assert lsp.diagnostics(address, version=version)
    line, character = at(typed, "context.", shift=len("context."))
    items = lsp.completion(address, line, character)
    assert labels(items) == {"tenant", "verified"}
    assert all(isinstance(i.text_edit, types.TextEdit)
               and i.text_edit.range.start.character == character for i in items)


def test_completion_offers_the_agents_state_in_conditions(lsp: LspSession,
                                                         tmp_path: Path) -> None:
    """`agent.` completes to the state a condition may read (docs/language.md, "Agent state in
    conditions"), and a condition's names include it."""
    address = lsp.open(tmp_path / "p.sentra", POLICY)
    typed = POLICY.replace("otherwise block", "action NEW {\n  when agent.\n\notherwise block")
    version = lsp.change(address, typed)
    assert lsp.diagnostics(address, version=version)
    items = lsp.completion(address, *at(typed, "when agent.", shift=len("when agent.")))
    assert labels(items) == {"group", "cumulative_risk", "blocked_attempts"}
    typed = POLICY.replace("otherwise block", "action NEW {\n  when \n\notherwise block")
    version = lsp.change(address, typed)
    items = lsp.completion(address, *at(typed, "when \n", shift=5))
    assert {"agent.group", "agent.blocked_attempts", "amount"} <= labels(items)


def test_a_file_that_no_longer_parses_keeps_its_names(lsp: LspSession, tmp_path: Path) -> None:
    """One broken line: the rest still hovers; an unclosed block: completion falls back to the
    names of the last version that parsed."""
    address = lsp.open(tmp_path / "p.sentra", POLICY)
    assert lsp.diagnostics(address, version=1) == []
    broken_line = POLICY.replace("risk 5 as PAYMENT_OK", "risk as PAYMENT_OK")
    version = lsp.change(address, broken_line)
    assert [d.code for d in lsp.diagnostics(address, version=version)] == ["SL001"]
    assert "**field** `amount`" in hover_text(lsp, address, at(broken_line, "amount > 10"))
    unclosed = POLICY.replace("otherwise block", "action NEW {\n  when \n\notherwise block")
    version = lsp.change(address, unclosed)
    assert lsp.diagnostics(address, version=version)
    items = lsp.completion(address, *at(unclosed, "when \n", shift=5))
    assert {"amount", "note", "when", "allow"} <= labels(items)


def test_completion_inside_a_reason_offers_fields_after_a_brace(lsp: LspSession,
                                                                tmp_path: Path) -> None:
    text = POLICY.replace('"paid 💸 {amount}"', '"paid 💸 {am')
    address = lsp.open(tmp_path / "p.sentra", text)
    line, character = at(text, "{am", shift=3)
    assert {"amount", "note"} == labels(lsp.completion(address, line, character))
    assert lsp.completion(address, *at(text, "unknown action")) == []


def test_completion_in_suites_offers_rule_ids_actions_and_fields(lsp: LspSession,
                                                                tmp_path: Path) -> None:
    write(tmp_path, {"payments.sentra": POLICY})
    text = SUITE.replace("rule BIG_EMOJI_PAYMENT", "rule ")
    address = lsp.open(tmp_path / "payments.sentra-test", text)
    rules = lsp.completion(address, *at(text, "rule \n", shift=5))
    assert {"BIG_EMOJI_PAYMENT", "PAYMENT_OK", "UNKNOWN", "RISK_THRESHOLD_EXCEEDED"} <= \
        labels(rules)
    assert next(i for i in rules if i.label == "PAYMENT_OK").detail == "allow, risk 5"
    fields = lsp.completion(address, *at(text, "amount: 3"))
    assert labels(fields) == {"amount", "note"}
    actions = lsp.completion(address, *at(text, "PAY {"))
    assert labels(actions) == {"PAY"}
    keywords = lsp.completion(address, *at(text, "  agent", shift=2))
    assert {"agent", "reset", "state", "defaults"} <= labels(keywords)
