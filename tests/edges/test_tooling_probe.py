"""Adversarial probe of the tools a policy author touches: `check`, `compile`, `fmt`, `diff`,
`explain`, `test`, `docs` and the language server, fed what a careless user or an attacker who
controls a policy file, a suite file or an editor buffer can give them.

Each test pins a claim of the docs (docs/cli.md, docs/language.md, docs/testing.md,
docs/editors.md) that an earlier version broke.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sentra_lang.docgen import build_site, policy_docs, write_markdown
from sentra_lang.docgen.collect import compile_policies
from tests.edges.probe_helpers import cli
from tests.playwright_fixtures import Pages

# ------------------------------------------------------------------------------- docs (HTML)

HOSTILE_POLICY = """\
policy p version "v {onmouseover=alert(11) style=position:fixed;width:100%;height:100%}" {
  description "see [here](javascript:alert(2)) {onclick=alert(10)} <b>x</b>"
}

input {
  s: string = ""
}

action "a {onfocus=alert(12) autofocus tabindex=1}", "[x](javascript:alert(13))" {
  when s == "x" block as R threat "[t](javascript:alert(6))" "[r](javascript:alert(7))"
    description "<iframe src=javascript:alert(8)>"
  allow as OK
}

otherwise block as O "[x](javascript:alert(9))"
"""


class _ActiveMarkup(HTMLParser):
    """Every event-handler attribute and every `javascript:` URL of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def active_markup(html: str) -> list[str]:
    parser = _ActiveMarkup()
    parser.feed(html)
    return parser.found


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("hostile-docs")
    policy = work / "hostile.sentra"
    policy.write_text(HOSTILE_POLICY, "utf-8")
    compilations = compile_policies([policy])
    assert all(c.table is not None for c in compilations)
    config = write_markdown(policy_docs(compilations, None), work / "markdown")
    build_site(config, work / "site")
    return work / "site"


@pytest.mark.parametrize("page", ["policies/p.html", "index.html", "source/p.html"])
def test_docs_policy_text_never_becomes_markup(hostile_site: Path, page: str) -> None:
    """A version, description or action name is text: Markdown's attribute lists (`{onclick=..}`)
    and links (`[x](javascript:..)`) in it are shown, never made into attributes or links."""
    html = (hostile_site / page).read_text("utf-8")
    assert active_markup(html) == []
    if page == "policies/p.html":
        assert "{onmouseover=alert(11)" in html
        assert "[here](javascript:alert(2))" in html


@pytest.mark.slow
def test_docs_hostile_page_runs_no_script_in_a_browser(hostile_site: Path, pages: Pages) -> None:
    """In Chromium: loading, moving over, clicking and tabbing through the page calls no
    `alert`."""
    page = pages.open((hostile_site / "policies" / "p.html").as_uri(), width=1200, height=900)
    page.add_init_script("window.__alerts = []; "
                         "window.alert = (m) => window.__alerts.push(String(m))")
    page.reload()
    for x, y in ((10, 10), (600, 100), (600, 450), (300, 700)):
        page.mouse.move(x, y)
        page.mouse.click(x, y)
    for _ in range(30):
        page.keyboard.press("Tab")
    for heading in page.locator("h1, h2, h3, p").all()[:20]:
        heading.hover()
    assert page.evaluate("window.__alerts") == []
    assert page.evaluate("document.querySelectorAll('[onmouseover], [onclick], [onfocus], "
                         "[href^=javascript], [src^=javascript]').length") == 0


# ------------------------------------------------------------------------- terminal output

ESC = "\x1b"
TERMINAL_POLICY = f"""\
policy p version "1{ESC}]0;title\x07" {{
  description "d{ESC}[2J"
}}

input {{
  s: string = ""
}}

action "A{ESC}[2J", B {{
  when s == "x{ESC}[1m" block as R threat "t{ESC}[8m" "reason {{s}} \u202e{ESC}[5m"
  allow as OK "ok \u2066"
}}

otherwise block as O  # comment {ESC}[41m
"""
CHANGED_POLICY = TERMINAL_POLICY.replace('when s == "x', 'when s == "y')
TERMINAL_SUITE = f"""\
suite "s{ESC}[31m" for "policy.sentra"

scenario "sc {ESC}[2J" {{
  agent "a{ESC}[1m" "A{ESC}[2J" {{ s: "x{ESC}[1m" }} -> allowed reason "no {ESC}[7m"
}}
"""
ACTS_ON_A_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture()
def terminal_files(tmp_path: Path) -> Path:
    (tmp_path / "policy.sentra").write_text(TERMINAL_POLICY, "utf-8")
    (tmp_path / "changed.sentra").write_text(CHANGED_POLICY, "utf-8")
    (tmp_path / "suite.sentra-test").write_text(TERMINAL_SUITE, "utf-8")
    (tmp_path / f"named{ESC}[2J.sentra").write_text(TERMINAL_POLICY, "utf-8")
    return tmp_path


TERMINAL_COMMANDS = {
    "explain": ["explain", "{d}/policy.sentra", f"A{ESC}[2J", "--field", f"s=x{ESC}[1m"],
    "explain-unknown": ["explain", "{d}/policy.sentra", f"Z{ESC}[2J", "--agent", f"a{ESC}[3m"],
    "test": ["test", "{d}/suite.sentra-test"],
    "test-verbose": ["test", "-v", "{d}/suite.sentra-test"],
    "test-github": ["test", "--format", "github", "{d}/suite.sentra-test"],
    "diff": ["diff", "{d}/policy.sentra", "{d}/changed.sentra"],
    "diff-markdown": ["diff", "--format", "markdown", "{d}/policy.sentra", "{d}/changed.sentra"],
    "diff-github": ["diff", "--format", "github", "{d}/policy.sentra", "{d}/changed.sentra"],
    "diff-equivalent": ["diff", "--equivalent", "{d}/policy.sentra", "{d}/changed.sentra"],
    "fmt-diff": ["fmt", "--diff", "{d}/policy.sentra"],
    "fmt-check": ["fmt", "--check", f"{{d}}/named{ESC}[2J.sentra"],
    "fmt": ["fmt", f"{{d}}/named{ESC}[2J.sentra"],
}


@pytest.mark.parametrize("command", sorted(TERMINAL_COMMANDS))
def test_commands_never_print_terminal_controls_raw(terminal_files: Path, command: str) -> None:
    """Ids, reasons, versions, field values, comments and names from a policy, a suite or the
    command line are printed with their control characters and bidirectional overrides
    escaped (`\\x1b`, `\\u202e`), as `check` prints them: the terminal never acts on them."""
    args = [arg.replace("{d}", str(terminal_files)) for arg in TERMINAL_COMMANDS[command]]
    done = cli(*args, env={"NO_COLOR": "1"})
    assert done.returncode in (0, 1), done.stderr
    output = done.stdout + done.stderr
    assert not ACTS_ON_A_TERMINAL.findall(output), output
    assert "\\x1b" in output or "\\u001b" in output, output


# ---------------------------------------------------------------------------- line breaks

def _check(tmp_path: Path, text: str, *args: str) -> str:
    policy = tmp_path / "policy.sentra"
    policy.write_bytes(text.encode("utf-8"))
    done = cli("check", str(policy), *args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


UNDECLARED = 'policy p {}NLinput { a: number }NLotherwise allow as A "{b}"NL'


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_check_counts_lines_as_an_editor_does(tmp_path: Path, newline: str) -> None:
    """`\\n`, `\\r\\n` and a lone `\\r` each end a line (as in editors and LSP): the error is
    at line 3, its snippet is line 3 and the carets are under `{b}`."""
    output = _check(tmp_path, UNDECLARED.replace("NL", newline))
    assert "policy.sentra:3:23: error[SL101]" in output, output
    assert '3 | otherwise allow as A "{b}"\n  |                       ^^^\n' in output, output


def test_a_comment_ends_at_a_lone_carriage_return(tmp_path: Path) -> None:
    """What an editor shows on the next line is code, not the rest of the comment: the rule
    after `# note\\r` exists (here it reads an undeclared field, so check finds it)."""
    text = 'policy p {}\r# note\rotherwise allow as A "{b}"\r'
    output = _check(tmp_path, text)
    assert "policy.sentra:3:23: error[SL101]: undeclared field `b`" in output, output


def test_a_raw_carriage_return_ends_a_string(tmp_path: Path) -> None:
    """A string is written on one line: a raw `\\r` inside quotes is a line break, so the
    string is unterminated (write `\\r` for the character)."""
    output = _check(tmp_path, 'policy p {}\notherwise allow as A "a\rb"\n')
    assert "policy.sentra:2:22: error[SL003]: unterminated string" in output, output


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x0c", "\x0b", "\x85", "\x1c"])
def test_other_separators_break_no_line(tmp_path: Path, separator: str) -> None:
    """U+2028, a form feed and the other breaks `str.splitlines` knows are not line breaks of
    the language (nor of LSP): a comment holding one leaves the line numbers and snippets
    right, and the snippet shows it escaped."""
    output = _check(tmp_path, "policy p {}  # a" + separator + "b\n"
                    + UNDECLARED.replace("NL", "\n").removeprefix("policy p {}\n"))
    assert "policy.sentra:3:23: error[SL101]" in output, output
    assert '3 | otherwise allow as A "{b}"\n  |                       ^^^\n' in output, output
    assert "policy.sentra:2:9: warning[SL107]" in output and "2 | input { a: number }" in output


def test_the_position_of_a_bad_byte_counts_lone_carriage_returns(tmp_path: Path) -> None:
    policy = tmp_path / "policy.sentra"
    policy.write_bytes(b"policy p {}\r# x\r  \xff\r")
    done = cli("check", str(policy))
    assert "policy.sentra:3:3: error[SL005]" in done.stdout, done.stdout


# ------------------------------------------------------------------ the policy a suite names

SECRET = "TOPSECRET=hunter2\nroot:x:0:0:root:/root:/bin/sh\n"


def _suite_for(tmp_path: Path, target: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "hostile.sentra-test"
    suite.write_text(f'suite "s" for "{target}"\n\nscenario "x" {{\n'
                     '  agent "a" A -> allowed\n}\n', "utf-8")
    return cli("test", str(suite))


@pytest.mark.parametrize("target", ["secret.txt", "link.sentra", "../outside/secret.txt"])
def test_a_suite_cannot_make_test_print_another_file(tmp_path: Path, target: str) -> None:
    """A suite from a pull request names its policy; a path that is not a `.sentra` file
    (after links are followed) is refused and nothing of it is read or shown."""
    work = tmp_path / "work"
    (tmp_path / "outside").mkdir()
    work.mkdir()
    for folder in (work, tmp_path / "outside"):
        (folder / "secret.txt").write_text(SECRET, "utf-8")
    (work / "link.sentra").symlink_to(work / "secret.txt")
    done = _suite_for(work, target)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error[SL501]: policy `" in done.stdout and "refused: it is not a `.sentra` file" \
        in done.stdout, done.stdout
    assert "TOPSECRET" not in done.stdout + done.stderr
    assert "root:x" not in done.stdout + done.stderr


def test_a_suite_naming_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.sentra")
    done = _suite_for(tmp_path, "pipe.sentra")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused: it is a FIFO, not a regular file" in done.stdout, done.stdout


# ------------------------------------------------------------------- fmt keeps the meaning

ROOT = Path(__file__).resolve().parents[2]
DOC_BLOCK = re.compile(r"```sentra\n(.*?)```", re.S)


def _shipped_sources() -> list[tuple[str, str, Path]]:
    """Every shipped policy and library, and every `sentra` example of the docs (a fragment
    given a header), with the folder its imports resolve from."""
    found = [(str(path.relative_to(ROOT)), path.read_text("utf-8"), path.parent)
             for path in sorted((ROOT / "policies").rglob("*.sentra"))]
    for page in sorted((ROOT / "docs").glob("*.md")):
        for index, match in enumerate(DOC_BLOCK.finditer(page.read_text("utf-8"))):
            source = match.group(1)
            if "policy " not in source and ("action " in source or "otherwise " in source):
                source = 'policy fragment version "1" {}\n' + source
            found.append((f"{page.name}#{index}", source, ROOT / "policies"))
    return found


def _meaning(source: str, folder: Path) -> object:
    """The compiled table without its spans and hash (which the layout moves), or the sorted
    diagnostic codes when it does not compile."""
    from sentra_lang.compiler import compile_source

    result = compile_source(source, str(folder / "probe.sentra"), analyse=False)
    if result.table is None:
        return sorted(d.code for d in result.diagnostics)
    return _without_positions(result.table.model_dump(mode="json"))


def _without_positions(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_positions(v) for k, v in value.items() if k not in ("span", "hash")}
    if isinstance(value, list):
        return [_without_positions(v) for v in value]
    return value


SHIPPED = _shipped_sources()


@pytest.mark.parametrize(("name", "source", "folder"), SHIPPED, ids=[s[0] for s in SHIPPED])
def test_fmt_is_idempotent_and_keeps_the_table_of_every_shipped_source(
        name: str, source: str, folder: Path) -> None:
    from sentra_lang.formatter import format_source

    once, problems = format_source(source, name)
    if once is None:    # an example of a syntax error (docs/diagnostics.md): left alone
        assert any(d.severity.value == "error" for d in problems), name
        return
    twice, _ = format_source(once, name)
    assert twice == once
    assert _meaning(once, folder) == _meaning(source, folder)


def test_the_table_shows_a_condition_without_its_comments() -> None:
    """A comment inside a multi-line condition is not part of the condition the table (and so
    `docs`, `explain` and the server) shows, where it read as if it commented out the rest;
    a string keeps its spaces."""
    from sentra_lang.compiler import compile_source

    source = ('policy p {}\ninput {\n  amount: number\n  ok: bool = false\n  s: string = ""\n}\n'
              'action A {\n  when amount > 10000   # large\n    and not ok and s == "a  b"\n'
              '    block as BIG\n  allow as OK\n}\notherwise block as O\n')
    table = compile_source(source).table
    assert table is not None
    assert table.rules[0].condition == 'amount > 10000 and not ok and s == "a  b"'


# ------------------------------------------------------------------------- long lines

def test_a_snippet_of_a_long_line_shows_the_span_not_the_whole_line(tmp_path: Path) -> None:
    """A diagnostic on a line of a megabyte prints a window of the line around its span,
    carets under the span, instead of the megabyte (once per diagnostic)."""
    text = 'policy p { description "' + "x" * 1_000_000 + '" strikez 3 }\notherwise block as O\n'
    output = _check(tmp_path, text)
    assert len(output) < 2000, len(output)
    lines = output.splitlines()
    source = next(line for line in lines if line.startswith("1 | "))
    carets = lines[lines.index(source) + 1]
    start = carets.index("^")
    assert source[start:start + len("strikez")] == "strikez"
    assert carets[start:].rstrip() == "^" * len("strikez")
    assert source.startswith("1 | …") and source.endswith("strikez 3 }")


@pytest.mark.parametrize(("terms", "errors"), [(101, 0), (102, 1)])
def test_a_sum_nests_one_level_per_operation(tmp_path: Path, terms: int, errors: int) -> None:
    """docs/language.md, Limits: `a + b + c` is `(a + b) + c`; 100 operations are allowed."""
    text = ("policy p {}\ninput { a: number }\naction A { when " + " + ".join(["a"] * terms)
            + " > 1 block as X\n allow as Y }\notherwise block as O\n")
    output = _check(tmp_path, text)
    assert output.count("error[SL013]") == errors, output[:500]


# ----------------------------------------------------------------------- symbolic link loops

LOOPING_IMPORT = 'import "loop.sentra"\n\npolicy p {}\n\notherwise allow as A\n'


@pytest.fixture()
def link_loop(tmp_path: Path) -> Path:
    (tmp_path / "loop.sentra").symlink_to(tmp_path / "loop.sentra")
    return tmp_path


def test_an_import_of_a_link_loop_is_a_diagnostic(link_loop: Path) -> None:
    (link_loop / "policy.sentra").write_text(LOOPING_IMPORT, "utf-8")
    done = cli("check", str(link_loop / "policy.sentra"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "policy.sentra:1:8: error[SL111]: cannot import `loop.sentra`" in done.stdout


def test_a_suite_naming_a_link_loop_is_a_diagnostic(link_loop: Path) -> None:
    done = _suite_for(link_loop, "loop.sentra")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "error[SL501]: cannot read policy `loop.sentra`" in done.stdout, done.stdout


@pytest.mark.parametrize("command", ["check", "fmt", "compile"])
def test_a_link_loop_given_on_the_command_line_says_what_it_is(link_loop: Path,
                                                                command: str) -> None:
    done = cli(command, str(link_loop / "loop.sentra"))
    assert done.returncode == 2, done.stderr
    assert "Too many levels of symbolic links" in done.stderr, done.stderr


def test_the_language_server_reports_an_import_of_a_link_loop(link_loop: Path) -> None:
    pytest.importorskip("pygls", reason="the language server needs the `lsp` extra")
    from tests.editors.lsp_client import LspSession

    session = LspSession()
    try:
        address = session.open(link_loop / "policy.sentra", LOOPING_IMPORT)
        codes = [d.code for d in session.diagnostics(address, version=1)]
        assert "SL111" in codes, codes
        assert session.hover(address, 0, 10) is not None
        session.definition(address, 0, 10)     # no file to open: answered, never a failure
        assert not [log for log in session.logs if "failed" in log], session.logs
    finally:
        assert session.close() == 0
    assert "Traceback" not in "".join(session.stderr), "".join(session.stderr)[-2000:]


@pytest.mark.parametrize("where", ["output", "policy", "coverage"])
def test_docs_reports_a_link_loop_as_a_usage_error(link_loop: Path, where: str) -> None:
    policy = link_loop / "policy.sentra"
    policy.write_text("policy p {}\n\notherwise allow as A\n", "utf-8")
    loop = str(link_loop / "loop.sentra")
    args = {"output": [str(policy), "-o", loop],
            "policy": [loop, "-o", str(link_loop / "site")],
            "coverage": [str(policy), "--coverage", loop, "-o", str(link_loop / "site")]}[where]
    done = cli("docs", *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "loop" in done.stderr


# ------------------------------------------------------------------- file names not UTF-8

@pytest.mark.parametrize("output", ["human", "json", "sarif", "github"])
def test_a_file_name_that_is_not_utf8_never_breaks_check(tmp_path: Path, output: str) -> None:
    """A file name's bytes need not be UTF-8 (a checkout can hold any): every format reports
    the file, on a strict UTF-8 output too (as in a UTF-8 locale), as an escape (`\\udcff`);
    SARIF percent-encodes the byte (`%FF`)."""
    name = os.fsdecode(b"bad\xff.sentra")
    (tmp_path / name).write_text('policy p {}\n\notherwise allow as A "{b}"\n', "utf-8")
    done = subprocess.run([sys.executable, "-m", "sentra_lang", "check", "--format", output,
                           "."], cwd=tmp_path, capture_output=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    assert done.returncode == 1, done.stderr.decode("utf-8", "replace")[-2000:]
    assert b"SL101" in done.stdout
    if output == "sarif":
        assert b'"uri": "bad%FF.sentra"' in done.stdout


def test_the_junit_report_stays_well_formed_xml(terminal_files: Path) -> None:
    """Scenario names, reasons and values holding control characters (XML 1.0 forbids them)
    are written as escapes, so CI can read the report."""
    import xml.etree.ElementTree as ET

    report = terminal_files / "junit.xml"
    done = cli("test", str(terminal_files / "suite.sentra-test"), "--junit-xml", str(report))
    assert done.returncode == 1, done.stderr
    root = ET.parse(report).getroot()
    [case] = root.iter("testcase")
    assert case.get("name") == "sc \\x1b[2J"


# ------------------------------------------------------------------------- hover Markdown

HOVER_POLICY = """\
policy p {}

input {
  s: string = "`[f](https://evil.example)`"
}

action "`[a](https://evil.example)`\\n# H" {
  when s == "x" block as R threat "[t](https://evil.example)"
  allow as OK
}

otherwise block as O
"""


def test_hover_shows_policy_text_as_code_never_as_markdown(tmp_path: Path) -> None:
    """Hovers are Markdown: a threat, a default, an action name or a file name from the policy
    is a code span it cannot leave, so it adds no link (or heading) to the editor's hover."""
    pytest.importorskip("pygls", reason="the language server needs the `lsp` extra")
    markdown = pytest.importorskip("markdown")
    from tests.editors.lsp_client import LspSession

    lines = HOVER_POLICY.split("\n")
    positions = [(3, 3), (6, 9), (7, lines[7].index("as R") + 3), (8, 3)]
    session = LspSession()
    try:
        address = session.open(tmp_path / "policy.sentra", HOVER_POLICY)
        session.diagnostics(address, version=1)
        for line, character in positions:
            hover = session.hover(address, line, character)
            assert hover is not None, (line, character)
            html = markdown.markdown(hover.contents.value, extensions=["fenced_code"])
            assert "<a " not in html and "<h1" not in html, hover.contents.value
    finally:
        assert session.close() == 0


def test_an_action_hover_writes_the_block_as_the_source_does(tmp_path: Path) -> None:
    """The block's names are written as `fmt` writes them: a quoted name stays quoted, even
    one that would be a name (a reserved word unquoted is not the same source)."""
    pytest.importorskip("pygls", reason="the language server needs the `lsp` extra")
    from tests.editors.lsp_client import LspSession

    source = ('policy p {}\n\naction "when", "PAY", "a b" {\n  allow as OK\n}\n\n'
              "otherwise block as O\n")
    session = LspSession()
    try:
        address = session.open(tmp_path / "policy.sentra", source)
        session.diagnostics(address, version=1)
        hover = session.hover(address, 2, source.split("\n")[2].index("PAY"))
        assert hover is not None
        assert '`action "when", "PAY", "a b"`' in hover.contents.value, hover.contents.value
    finally:
        assert session.close() == 0


# -------------------------------------------------------------- JSON nested without end

DEEP_JSON = "[" * 100_000 + "]" * 100_000


LONG_INTEGER_JSON = '{"n": ' + "9" * 5000 + "}"
"""JSON whose integer has more digits than Python converts (ValueError, not JSONDecodeError)."""


UNDECODABLE_JSON = {"nested too deeply": (DEEP_JSON, "nests too deeply"),
                    "too many digits": (LONG_INTEGER_JSON, "digits")}
"""JSON text Python's decoder refuses, and what the one-line error says of it."""


@pytest.mark.parametrize("case", UNDECODABLE_JSON)
@pytest.mark.parametrize("command", ["explain", "replay", "docs-coverage"])
def test_json_python_cannot_decode_is_a_usage_error(tmp_path: Path, command: str,
                                                     case: str) -> None:
    """A compiled table, an audit export or a coverage report nested deeper than Python's JSON
    decoder goes (RecursionError), or with an integer of more digits than it converts
    (ValueError), is refused with one line saying why: never a traceback, and never the file's
    text echoed back (a table that was not JSON was taken for a path)."""
    text, why = UNDECODABLE_JSON[case]
    bad = tmp_path / "bad.json"
    bad.write_text(text, "utf-8")
    policy = tmp_path / "policy.sentra"
    policy.write_text("policy p {}\n\notherwise allow as A\n", "utf-8")
    args = {"explain": ["explain", str(bad), "A"],
            "replay": ["replay", str(bad), "--policy", str(policy)],
            "docs-coverage": ["docs", str(policy), "--coverage", str(bad), "-o",
                              str(tmp_path / "site")]}[command]
    done = cli(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert why in done.stderr and len(done.stderr) < 500, done.stderr[:500]


@pytest.mark.parametrize("case", UNDECODABLE_JSON)
def test_audit_verify_of_an_export_python_cannot_decode(tmp_path: Path, case: str) -> None:
    """A line the JSON decoder refuses (too deep: RecursionError; an integer too long:
    ValueError) is an unreadable line of a tampered log, never a traceback."""
    deep = tmp_path / "deep.jsonl"
    deep.write_text(UNDECODABLE_JSON[case][0] + "\n", "utf-8")
    done = cli("audit", "verify", str(deep))
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 1, (done.stdout, done.stderr[-500:])


# ----------------------------------------------------------------------- writing through links

def test_fmt_writes_through_a_symbolic_link(tmp_path: Path) -> None:
    """`fmt link.sentra` formats the file the link names and keeps the link: it replaced the
    link with a formatted copy and left the policy itself unformatted."""
    real = tmp_path / "real.sentra"
    real.write_text("policy p {strikes 2}\notherwise block as NO\n", "utf-8")
    link = tmp_path / "link.sentra"
    link.symlink_to("real.sentra")
    done = cli("fmt", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_text("utf-8") == "policy p {\n  strikes 2\n}\n\notherwise block as NO\n"


DIFF_OLD = """\
policy p version "1 @octo-org/team" {}

input {
  s: string = "x`y"
}

action "A`[a](https://evil.example)`" {
  when s == "q`[l](https://evil.example)" block as R threat "![i](https://evil.example/p.png)"
  allow as OK
}

otherwise block as O
"""
DIFF_NEW = (DIFF_OLD.replace('"1 @', '"2 [v](https://evil.example) @')
            .replace('"x`y"', '"z`[d](https://evil.example)"').replace('"q`[l]', '"w`[l]'))


def test_diff_markdown_shows_policy_text_never_markup(tmp_path: Path) -> None:
    """`diff --format markdown` is posted as a pull-request comment: versions, names, values and
    threats of the policies are code spans or escaped, so they add no link, image, heading or
    mention to it."""
    markdown = pytest.importorskip("markdown")
    old, new = tmp_path / "old.sentra", tmp_path / "new.sentra"
    old.write_text(DIFF_OLD, "utf-8")
    new.write_text(DIFF_NEW, "utf-8")
    done = cli("diff", "--format", "markdown", str(old), str(new))
    assert done.returncode == 0, done.stderr
    html = markdown.markdown(done.stdout, extensions=["tables"])
    assert "<a " not in html and "<img" not in html, html
    assert "evil.example" in html and " @octo-org" not in done.stdout


def test_diff_markdown_shows_raw_html_in_policy_text_as_text(tmp_path: Path) -> None:
    """Raw HTML in a version (GitHub renders `<img>` and `<a>` in a comment) is shown as the
    text it is, and an entity as written, not as the character it names."""
    markdown = pytest.importorskip("markdown")
    old, new = tmp_path / "old.sentra", tmp_path / "new.sentra"
    old.write_text('policy p version "1 <img src=https://evil.example/t.png> &lt;" {}\n\n'
                   "otherwise allow as A\n", "utf-8")
    new.write_text('policy p version "2 <a href=https://evil.example>x</a>" {}\n\n'
                   "otherwise block as A\n", "utf-8")
    done = cli("diff", "--format", "markdown", str(old), str(new))
    assert done.returncode == 0, done.stderr
    html = markdown.markdown(done.stdout, extensions=["tables"])
    assert "<a " not in html and "<img" not in html, html
    assert "&lt;img src=https://evil.example/t.png&gt; &amp;lt;" in html, html


# ------------------------------------------------------------------- outputs over inputs

def test_compile_refuses_to_write_the_table_over_its_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.sentra"
    policy.write_text("policy p {}\n\notherwise allow as A\n", "utf-8")
    link = tmp_path / "table.json"
    link.symlink_to(policy)
    for output in (policy, link):
        done = cli("compile", str(policy), "-o", str(output))
        assert done.returncode == 2, done.stderr
        assert "an input of this command" in done.stderr
    assert policy.read_text("utf-8").startswith("policy p {}")


@pytest.mark.parametrize("report", ["--json", "--junit-xml"])
@pytest.mark.parametrize("target", ["suite.sentra-test", "policy.sentra"])
def test_test_refuses_to_write_a_report_over_a_file_it_read(terminal_files: Path, report: str,
                                                            target: str) -> None:
    before = (terminal_files / target).read_text("utf-8")
    done = cli("test", str(terminal_files / "suite.sentra-test"), report,
               str(terminal_files / target))
    assert done.returncode == 2, done.stderr
    assert "an input of this command" in done.stderr
    assert (terminal_files / target).read_text("utf-8") == before


def test_replay_refuses_to_write_the_suite_over_its_inputs(tmp_path: Path) -> None:
    from sentra_runtime import Engine, SQLiteStore

    from sentra_lang.testing.policies import load

    policy = tmp_path / "policy.sentra"
    policy.write_text("policy p {}\n\notherwise allow as A\n", "utf-8")
    compiled = load(policy).policy
    assert compiled is not None
    engine = Engine(compiled, SQLiteStore(tmp_path / "audit.db"))
    engine.evaluate("a", "X", {})
    log = tmp_path / "audit.jsonl"
    with open(log, "w", encoding="utf-8") as out:
        engine.store.export_audit(out)
    engine.close()
    for target in (policy, log):
        before = target.read_text("utf-8")
        done = cli("replay", str(log), "--policy", str(policy), "--to-suite", str(target))
        assert done.returncode == 2, done.stderr
        assert "an input of this command" in done.stderr
        assert target.read_text("utf-8") == before


# ------------------------------------------------------------------------- Trojan Source

def test_check_warns_about_raw_bidirectional_controls(tmp_path: Path) -> None:
    """A right-to-left override written as it is in a string or a comment makes editors and
    review tools show the rest of the line reordered: SL016 at each, shown escaped."""
    text = ('policy p {}\ninput { s: string = "" }\naction A {\n'
            '  when s == "x\u202e" block as R  # \u2066 note\n  allow as OK\n}\n'
            'otherwise block as O\n')
    output = _check(tmp_path, text)
    assert "policy.sentra:4:15: warning[SL016]: bidirectional control character `\\u202e`" \
        in output, output
    assert "policy.sentra:4:32: warning[SL016]" in output, output
    assert "\u202e" not in output and "\u2066" not in output


def test_a_suite_with_a_raw_bidirectional_control_is_warned_about(terminal_files: Path) -> None:
    done = cli("test", str(terminal_files / "suite.sentra-test"))
    assert "warning[SL016]" not in done.stdout     # the terminal suite has none
    suite = terminal_files / "bidi.sentra-test"
    suite.write_text('suite "s" for "policy.sentra"\n\nscenario "x\u2067" {\n'
                     '  agent "a" B -> allowed\n}\n', "utf-8")
    done = cli("test", str(suite))
    assert "bidi.sentra-test:3:12: warning[SL016]" in done.stdout, done.stdout


# ------------------------------------------------------------------- language server input

def test_the_language_server_refuses_a_message_too_large_to_read() -> None:
    """A `Content-Length` of 100 GB made pygls allocate it (MemoryError in its reader thread);
    the server logs that the message is over its limit and stops, without a traceback."""
    pytest.importorskip("pygls", reason="the language server needs the `lsp` extra")
    done = subprocess.run([sys.executable, "-m", "sentra_lang", "lsp"],
                          input=b"Content-Length: 99999999999\r\n\r\n{}", capture_output=True,
                          timeout=60, check=False)
    stderr = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr and "MemoryError" not in stderr, stderr[-2000:]
    assert "over the limit of 256 MiB" in stderr, stderr


@pytest.mark.parametrize("args", [["explain", "{p}", "A\udcff", "--format", "json"],
                                  ["explain", "{p}", "A", "--field", "s=\udcff"],
                                  ["docs", "{p}", "-o", "{d}/site", "--markdown-only",
                                   "--title", "T\udcff"]], ids=["action", "field", "title"])
def test_command_line_text_that_is_not_utf8_is_a_usage_error(tmp_path: Path,
                                                            args: list[str]) -> None:
    """Bytes on the command line that are not UTF-8 (an argument Python keeps as surrogates)
    reached a JSON output or a written page and failed there with UnicodeEncodeError."""
    policy = tmp_path / "policy.sentra"
    policy.write_text('policy p {}\n\ninput {\n  s: string = ""\n}\n\notherwise allow as A '
                      '"{s}"\n', "utf-8")
    argv = [os.fsencode(arg.replace("{p}", str(policy)).replace("{d}", str(tmp_path)))
            for arg in args]
    done = subprocess.run([os.fsencode(sys.executable), b"-m", b"sentra_lang", *argv],
                          capture_output=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and "Traceback" not in stderr, stderr[-2000:]
    assert "is not UTF-8 text" in stderr
