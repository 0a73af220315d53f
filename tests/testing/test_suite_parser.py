"""The suite parser's fast path agrees with the Lark grammar (the reference) on every input it
accepts, spans and diagnostics included, and gives up (Lark then parses) on everything else."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path

import pytest

from sentra_lang.source import Source, Span
from sentra_lang.testing import suite_parser as sp

ROOT = Path(__file__).resolve().parents[2]

EVERY_CONSTRUCT = r'''# every construct of the suite format
suite "sample \"quoted\" \q" for "small.sentra"
defaults { a: 1, b.c: "x" d: true, e: [ "a", "b", ], f: none, g: -2.5 }
defaults {}
scenario "s1" tags [strikes, all, rule, x_1,] {
  defaults { h: [] }
  agent "a" FOO -> allowed rule R1 reason "r" reason contains "c\n" threat none threat "T"
    risk 1 applied 2 projected 3 cumulative 4.5 strikes 5 status active
  agent "b" "quoted action" { k: "v" l: 1 } -> blocked   # a comment
  agent"c"BAR{m:false}->shutdown status shut_down
  reset "a"
  reset all
  state "a" -> cumulative 0 strikes 0 status active
}
scenario "empty" {}
cases "c1" EXPORT tags [export] {
  with destination_type, data.classification
  agent "z"
  defaults { q: 1 }
  "external", none -> allowed rule X risk 80
  true, [1, 2] -> blocked
  -1, 2.0 -> shutdown
}
cases "c2" "weird" {}
property "p1" EXPORT_DATA where destination_type == "external"
  and data_classification in {"sensitive", "restricted",} -> never rule ALLOW
property "p2" sequence A, "B", C tags [t] examples 30 -> always blocked
property "p3" A where not (a or b) and ((c)) or not d.e -> never allowed
property "p4" A where x not in SET or y starts_with "a" or z ends_with "b" or w contains "c"
  -> never shutdown
property "p5" A where exists a.b and n >= 3 and m != y.z and k < -1.5 and b == true and v <= 2
  and u > 0 -> never blocked
property "p6" A where (a) -> never blocked
property "p7" A where not not (a) and (b or c) -> never blocked
property "p8" A where a in {} -> never blocked
'''


def _samples() -> dict[str, str]:
    samples = {"every construct": EVERY_CONSTRUCT}
    for path in sorted((ROOT / "policies").glob("*.sentra-test")):
        samples[path.name] = path.read_text("utf-8")
    return samples


def dump(value: object) -> object:
    """A comparable form of a parse result: every field, spans (as positions) included."""
    if isinstance(value, Span):
        return ("Span", value.line, value.column, value.end_line, value.end_column, value.start,
                value.end)
    if isinstance(value, Source):
        return "Source"
    if dataclasses.is_dataclass(value):
        return (type(value).__name__,
                tuple((f.name, dump(getattr(value, f.name))) for f in dataclasses.fields(value)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(dump(v) for v in value))
    return (type(value).__name__, value)


def both(text: str) -> tuple[object | None, object]:
    """(fast result or None when it gives up, Lark result when the fast path did not), each
    dumped (the reference parse runs only when there is something to compare it with)."""
    source = Source("t.sentra-test", text)
    try:
        fast = sp._FastParser(source)
        result = dump((fast.suite(), fast.builder.diagnostics))
    except sp._GiveUp:
        return None, None
    return result, dump(sp._parse_with_lark(source))


@pytest.mark.parametrize("name", sorted(_samples()))
def test_fast_path_takes_and_matches_real_suites(name: str) -> None:
    fast, reference = both(_samples()[name])
    assert fast is not None, "the fast path gave up on a well-formed suite"
    assert fast == reference


def _tokens(text: str) -> list[str]:
    """The suite's tokens as the mutants move them; a duration (`30m`: a number and a name
    written together) stays one token, as Lark reads it."""
    tokens: list[str] = []
    glued, end = False, 0
    for m in sp._token_pattern().finditer(text):
        if not m.lastgroup:
            continue
        if glued and m.lastgroup == "w" and m.start(m.lastgroup) == end:
            tokens[-1] += m.group(m.lastgroup)
            glued = False
            continue
        tokens.append(m.group())
        glued, end = m.lastgroup == "n", m.end()
    return tokens


WORDS = sorted(sp._KEYWORDS) + ["FOO", "x", "agents", "ruleX", "tagsy", "1a", "-", "=", "@",
                                 '"', '"s"', "1.", ".5", "->", "{", "}", "[", "]", "(", ")", ","]


def _mutants(text: str, count: int, seed: int) -> list[str]:
    tokens = _tokens(text)
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        toks = list(tokens)
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(toks))
            op = rng.randrange(5)
            if op == 0:
                del toks[i]
            elif op == 1:
                toks[i] = rng.choice(WORDS)
            elif op == 2:
                toks.insert(i, rng.choice(WORDS))
            elif op == 3:
                toks.insert(i, toks[rng.randrange(len(toks))])
            else:
                toks[i] = toks[i] + "#c\n"
        seps = [rng.choice([" ", "\n", "  ", "\t"]) if rng.random() > 0.01 else "" for _ in toks]
        out.append("".join(t + sep for t, sep in zip(toks, seps)))
    return out


@pytest.mark.parametrize("name", sorted(_samples()))
def test_fast_path_never_disagrees_with_lark_on_mutants(name: str) -> None:
    agreed = 0
    for text in _mutants(_samples()[name], 150, seed=len(name)):
        fast, reference = both(text)
        if fast is not None:
            assert fast == reference, text
            agreed += 1
    assert agreed > 0


def test_names_that_are_keywords() -> None:
    # Lark's contextual lexer reads some keywords as names where only a name fits: the fast
    # path takes those it knows are names and gives up on the others, never guessing.
    for word in sorted(sp._KEYWORDS):
        for template in ['suite "s" for "p" scenario "x" tags [{w}] {{}}',
                         'suite "s" for "p" scenario "x" {{ agent "a" A -> allowed rule {w} }}',
                         'suite "s" for "p" scenario "x" {{ agent "a" A -> allowed status {w} }}',
                         'suite "s" for "p" scenario "x" {{ agent "a" {w} -> allowed }}',
                         'suite "s" for "p" defaults {{ {w}: 1 }}',
                         'suite "s" for "p" defaults {{ a: 1, {w}: 1 }}',
                         'suite "s" for "p" defaults {{ a: 1 {w}: 1 }}',
                         'suite "s" for "p" defaults {{ a.{w}: 1 }}',
                         'suite "s" for "p" cases "c" A {{ with a, {w} }}',
                         'suite "s" for "p" property "p" A where {w} -> never allowed',
                         'suite "s" for "p" property "p" A where a in {w} -> never allowed',
                         'suite "s" for "p" property "p" A where a == {w} -> never allowed',
                         'suite "s" for "p" property "p" A, {w} -> never allowed',
                         'suite "s" for "p" property "p" A -> never rule {w}']:
            text = template.format(w=word)
            fast, reference = both(text)
            if fast is not None:
                assert fast == reference, text


def test_large_generated_suite_matches() -> None:
    lines = ['suite "big" for "p.sentra"']
    for n in range(200):
        lines.append(f'scenario "s{n}" tags [t{n % 7}] {{')
        lines.append(f'  agent "a{n}" EXPORT_DATA {{ destination_type: "external", n: {n} }}')
        lines.append("    -> allowed rule R cumulative 80")
        lines.append('  agent "a" "X" -> blocked reason contains "y" strikes 1')
        lines.append("}")
    fast, reference = both("\n".join(lines) + "\n")
    assert fast is not None and fast == reference


def test_keywords_are_the_grammars() -> None:
    # the fast path must know every word suite.lark reserves, or it could take one for a name
    words: set[str] = set()
    for terminal in sp._lark().terminals:
        pattern = terminal.pattern
        if pattern.type == "str" and re.fullmatch(r"[a-z_]+", pattern.value):
            words.add(pattern.value)
        elif pattern.type == "re" and terminal.name not in {"NAME", "STRING", "NUMBER", "DURATION",
                                                                 "COMMENT"}:
            words.update(re.findall(r"[a-z_]+", pattern.value.split("(?!")[0]))
    assert words == sp._KEYWORDS


# ------------------------------------------------------------- total fallback (issue 11, 15)

MINIMAL = 'suite "s" for "p.sentra"\nscenario "x" {\n  agent "a" A -> allowed\n}\n'


def test_a_byte_order_mark_is_a_diagnostic_not_a_crash() -> None:
    """A UTF-8 BOM crashed `sentra-lang test` with `_GiveUp` (the fast path's constructor
    raised outside the fallback)."""
    suite, diagnostics = sp.parse_suite("\ufeff" + MINIMAL)
    assert suite is None and [(d.code, d.span.line, d.span.column) for d in diagnostics] == [
        ("SL002", 1, 1)]


@pytest.mark.parametrize("char", ["@", "$", "%", "^", "&", "*", ";", "!", "?", "'", "`", "~",
                                  "|", "\\", "\x00", "\x07", "\u00e9", "\u200b", "\ufeff",
                                  "\U0001f600", "+", "/"])
def test_any_unexpected_character_is_a_diagnostic(char: str) -> None:
    for where in (0, len('suite "s" for "p.sentra"\n'), MINIMAL.index("->"), len(MINIMAL)):
        text = MINIMAL[:where] + char + MINIMAL[where:]
        suite, diagnostics = sp.parse_suite(text)
        assert diagnostics, repr(text)
        assert all(d.code.startswith("SL0") for d in diagnostics)


def test_every_character_anywhere_never_raises() -> None:
    # every ASCII character, every fifth code point up to 0x250 and a few beyond, at every
    # seventh place of a small suite: a suite or a diagnostic, never an exception
    text = MINIMAL + 'property "p" A where a and not (b == "x") -> never allowed\n'
    places = range(0, len(text) + 1, 7)
    for code in [*range(0x80), *range(0x80, 0x250, 5), 0x2028, 0xFEFF, 0x1F600]:
        for where in places:
            suite, diagnostics = sp.parse_suite(text[:where] + chr(code) + text[where:])
            assert suite is not None or diagnostics, (code, where)


def test_suite_files_are_read_like_policies(tmp_path: Path) -> None:
    """One reader (`parser.read_source`) for policies and suites: the same limit, the same
    SL005 and SL006, a byte order mark dropped."""
    from sentra_lang.testing.policies import PolicyCache
    from sentra_lang.testing.runner import load_suite

    (tmp_path / "p.sentra").write_text('policy p version "1" {}\notherwise allow as O\n')
    cases = {"bom.sentra-test": b"\xef\xbb\xbf" + MINIMAL.encode(),
             "binary.sentra-test": MINIMAL.encode() + b"\xff\x00",
             "huge.sentra-test": b"#" * (9 * 1024 * 1024)}
    codes = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        loaded, diagnostics = load_suite(tmp_path / name, PolicyCache())
        codes[name] = [d.code for d in diagnostics if d.severity.value == "error"]
    assert codes == {"bom.sentra-test": [], "binary.sentra-test": ["SL005"],
                     "huge.sentra-test": ["SL006"]}


def test_conditions_are_the_policy_grammars_rules() -> None:
    """suite.lark imports the condition rules of grammar.lark instead of keeping a copy."""
    grammar = (ROOT / "sentra_lang" / "testing" / "suite.lark").read_text("utf-8")
    defined = set(re.findall(r"^[?!]?([a-z_]+)\s*:", grammar, re.MULTILINE))
    shared = {"condition", "or_cond", "and_cond", "not_cond", "comparison", "membership",
              "string_test", "exists", "sum", "product", "neg", "path", "set_literal",
              "literal", "string", "number", "boolean"}
    assert not defined & shared
    imported = set(re.findall(r"\w+", " ".join(re.findall(r"%import grammar \(([^)]*)\)", grammar))))
    assert shared <= imported
    # `neg` is an alias, not a rule; `literal` only serves settings and defaults
    assert {r.origin.name for r in sp._lark().rules} >= shared - {"condition", "neg", "literal"}


def test_the_fast_path_parses_arithmetic_as_lark_does() -> None:
    for where in ("a -1 > b", "a * (b - -2) / 3 >= -c", "-a > 0 and b - 1 < 2"):
        text = f'suite "s" for "p"\nproperty "p" A where {where} -> never allowed\n'
        fast, reference = both(text)
        assert fast is None or fast == reference, where
        assert "Diagnostic" not in repr(reference), where  # Lark reads it without an error


def test_the_fast_path_parses_conditions_with_the_policy_grammar() -> None:
    text = 'suite "s" for "p"\nproperty "p" A where not (a and b) or c.d >= 2 -> never allowed\n'
    fast, reference = both(text)
    assert fast is not None and fast == reference
