"""Policies over small domains, for comparing the analysis with brute-force enumeration.

Each generated policy declares at most three fields drawn from a menu whose domains are small
enough to enumerate: booleans, an enum, ints and numbers around a few constants, a set over
three members, and short strings. `brute_domain` lists, for each field, raw values an
independent enumeration tries; for every type but `string` the list meets every region the
tests of these policies can tell apart (constants, the values between and beyond them, with
room for two fields in one gap, and numbers reaching past the ints at both ends, so that a number
can lie beyond any int), so the enumeration is complete there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any

from hypothesis import strategies as st

Draw = st.DrawFn

INT_CONSTANTS = (0, 1, 2, 4)
NUMBER_CONSTANTS = (0, 1, 2.5, 4)
TEXTS = ("a", "ab", "b", "a b", "ba")
MEMBERS = ("a", "b", "c")
ENUM = ("low", "mid", "high")
ABSENT = object()


@dataclass
class SmallField:
    name: str
    type: str
    presence: str  # required | optional | default
    normalize: tuple[str, ...] = ()
    default: str = ""

    def declaration(self) -> str:
        kind = {"set": "set<string>", "enum": "enum {" + ", ".join(f'"{v}"' for v in ENUM) + "}"}
        text = f"{self.name}: {kind.get(self.type, self.type)}"
        text += "?" if self.presence == "optional" else ""
        if self.normalize:
            text += " normalize " + ", ".join(self.normalize)
        if self.presence == "default":
            text += f" = {self.default}"
        return text


@dataclass
class SmallPolicy:
    source: str
    fields: list[SmallField]
    actions: list[str] = field(default_factory=list)


_DEFAULTS = {"bool": "false", "int": "1", "number": "2.5", "string": '"ab"', "enum": '"mid"',
             "set": '{"a"}'}


def _field(draw: Draw, type_name: str, index: int) -> SmallField:
    name = ("ctx." if draw(st.booleans()) else "") + f"{type_name}_{index}"
    presence = draw(st.sampled_from(("required", "optional", "default")))
    steps: tuple[str, ...] = ()
    if type_name in ("string", "set"):
        steps = draw(st.sampled_from(((), ("lower",), ("trim",), ("lower", "trim"),
                                      ("trim", "lower"))))
    return SmallField(name, type_name, presence, steps, _DEFAULTS[type_name])


def _text(draw: Draw, target: SmallField, *, affix: str = "") -> str:
    choices = [t for t in TEXTS if "trim" not in target.normalize or affix == "contains"
               or t == t.strip()]
    word = draw(st.sampled_from(choices))
    if affix == "starts_with" and "trim" in target.normalize:
        word = draw(st.sampled_from(("a", "ab", "a ", "b")))
    if affix == "ends_with" and "trim" in target.normalize:
        word = draw(st.sampled_from(("b", "ab", " b", "a")))
    return f'"{word}"'


def _atom(draw: Draw, fields: list[SmallField]) -> str:
    target = draw(st.sampled_from(fields))
    kinds = ["exists"] if target.presence == "optional" else []
    if target.type == "bool":
        kinds += ["flag", "flag_not"]
    elif target.type in ("int", "number"):
        kinds += ["compare"]
    elif target.type == "enum":
        kinds += ["equal", "member"]
    elif target.type == "string":
        kinds += ["equal", "member", "starts_with", "ends_with", "contains"]
    else:
        kinds += ["set_contains"]
    partners = [f for f in fields if f is not target and _comparable(f, target)]
    if partners:
        kinds.append("fields")
    kind = draw(st.sampled_from(kinds))
    name = target.name
    if kind == "exists":
        return f"exists {name}"
    if kind == "flag":
        return name
    if kind == "flag_not":
        return f"{name} == false"
    if kind == "compare":
        op = draw(st.sampled_from(("==", "!=", "<", "<=", ">", ">=")))
        pool = INT_CONSTANTS if target.type == "int" else NUMBER_CONSTANTS
        if target.type == "int" and draw(st.booleans()):  # computed, and exact for the analysis
            scale, shift = draw(st.sampled_from((2, 3))), draw(st.sampled_from((-1, 0, 1)))
            return f"{name} * {scale} + {shift} {op} {draw(st.sampled_from(pool))}"
        return f"{name} {op} {draw(st.sampled_from(pool))}"
    if kind == "equal":
        op = draw(st.sampled_from(("==", "!=")))
        value = f'"{draw(st.sampled_from(ENUM))}"' if target.type == "enum" else _text(draw, target)
        return f"{name} {op} {value}"
    if kind == "member":
        word = draw(st.sampled_from(("in", "not in")))
        pool = ENUM if target.type == "enum" else tuple(t for t in TEXTS if t == t.strip())
        items = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))
        return f"{name} {word} {{{', '.join(chr(34) + i + chr(34) for i in items)}}}"
    if kind in ("starts_with", "ends_with", "contains"):
        return f"{name} {kind} {_text(draw, target, affix=kind)}"
    if kind == "set_contains":
        return f'{name} contains "{draw(st.sampled_from(MEMBERS))}"'
    other = draw(st.sampled_from(partners))
    ops = ("==", "!=", "<", "<=", ">", ">=") if target.type in ("int", "number") else ("==", "!=")
    return f"{name} {draw(st.sampled_from(ops))} {other.name}"


def _comparable(a: SmallField, b: SmallField) -> bool:
    numeric = {"int", "number"}
    if a.type in numeric and b.type in numeric:
        return True
    return a.type == b.type == "bool" or {a.type, b.type} <= {"string", "enum"}


def _condition(draw: Draw, fields: list[SmallField], depth: int) -> str:
    shape = draw(st.sampled_from(("atom", "atom", "and", "or", "not"))) if depth else "atom"
    if shape == "atom":
        return _atom(draw, fields)
    if shape == "not":
        return f"not ({_condition(draw, fields, depth - 1)})"
    parts = [_condition(draw, fields, depth - 1) for _ in range(2)]
    return f" {shape} ".join(f"({p})" for p in parts)


def _blocks(draw: Draw, fields: list[SmallField], names: list[str]) -> list[str]:
    lines = []
    ids = 0
    for action in names:
        lines.append(f"action {action} {{")
        count = draw(st.integers(1, 5))
        for index in range(count):
            ids += 1
            outcome = draw(st.sampled_from(("allow", "allow risk 5", "block", "block risk 5")))
            if index < count - 1 or draw(st.booleans()):
                lines.append(f"  when {_condition(draw, fields, 2)} {outcome} as R{ids}")
            else:
                lines.append(f"  {outcome} as R{ids}")
        lines.append("}")
    return lines


def _text_of(fields: list[SmallField], blocks: list[str], *, strikes: int, threshold: int,
             otherwise: str) -> str:
    lines = ['policy small version "1" {', f"  strikes {strikes}", f"  risk_threshold {threshold}",
             "}", "input {", *("  " + f.declaration() for f in fields), "}", *blocks, otherwise]
    return "\n".join(lines) + "\n"


def _fields(draw: Draw) -> list[SmallField]:
    types = draw(st.lists(st.sampled_from(("bool", "int", "number", "string", "enum", "set")),
                          min_size=1, max_size=3).filter(_small_enough))
    return [_field(draw, t, i) for i, t in enumerate(types)]


@st.composite
def small_policies(draw: Draw) -> SmallPolicy:
    fields = _fields(draw)
    actions = [f"ACT_{n}" for n in range(draw(st.integers(1, 2)))]
    source = _text_of(fields, _blocks(draw, fields, actions),
                      strikes=draw(st.sampled_from((1, 3))), threshold=100,
                      otherwise="otherwise block as OTHER")
    return SmallPolicy(source, fields, actions)


@st.composite
def policy_pairs(draw: Draw) -> tuple[SmallPolicy, SmallPolicy]:
    """Two versions over the same field names and types: the second keeps, mutates or redraws
    the rules, and may change the settings, the `otherwise`, the actions, and how present each
    field must be."""
    fields = _fields(draw)
    names = [f"ACT_{n}" for n in range(draw(st.integers(1, 2)))]
    blocks = _blocks(draw, fields, names)
    settings = dict(strikes=draw(st.sampled_from((1, 3))), threshold=draw(st.sampled_from((5, 10))),
                    otherwise="otherwise block as OTHER")
    first = SmallPolicy(_text_of(fields, blocks, **settings), fields, names)  # type: ignore[arg-type]
    change = draw(st.sampled_from(("same", "rules", "mutate", "settings", "presence", "actions")))
    fields2, blocks2, settings2, names2 = list(fields), list(blocks), dict(settings), list(names)
    if change == "rules":
        blocks2 = _blocks(draw, fields, names)
    elif change == "mutate":
        rows = [i for i, line in enumerate(blocks) if " as R" in line]
        line = blocks[draw(st.sampled_from(rows))]
        swapped = (line.replace(" allow", " block", 1) if " allow" in line
                   else line.replace(" block", " allow", 1))
        blocks2 = [swapped if b == line else b for b in blocks]
    elif change == "settings":
        settings2.update(strikes=draw(st.sampled_from((1, 2, 3))),
                         threshold=draw(st.sampled_from((5, 9, 10))),
                         otherwise=draw(st.sampled_from(("otherwise block as OTHER",
                                                         "otherwise allow risk 5 as OTHER2", ""))))
    elif change == "presence":
        index = draw(st.integers(0, len(fields) - 1))
        presence = draw(st.sampled_from(("required", "optional", "default")))
        fields2[index] = SmallField(fields[index].name, fields[index].type, presence,
                                    fields[index].normalize, fields[index].default)
    elif change == "actions":
        names2 = names[:1] + ["ACT_9"]
        blocks2 = _blocks(draw, fields, names2)
    second = SmallPolicy(_text_of(fields2, blocks2, **settings2), fields2, names2)  # type: ignore[arg-type]
    return first, second


def _strings() -> list[str]:
    alphabet = ("a", "A", "b", " ")
    out = [""] + list(alphabet) + ["".join(p) for p in product(alphabet, repeat=2)]
    return out + ["aba", "bab", " ab ", "a b", "b a", "AB", " ba", "ab ", *ENUM, "MID", " low "]


_SIZES = {"bool": 3, "int": 10, "number": 42, "string": 34, "enum": 4, "set": 33}


def _small_enough(types: list[str]) -> bool:
    size = 1
    for name in types:
        size *= _SIZES[name]
    return size <= 3000


def brute_domain(target: SmallField) -> list[Any]:
    """Raw values to try for one field (ABSENT: leave it out of the input)."""
    values: list[Any]
    if target.type == "bool":
        values = [False, True]
    elif target.type == "int":
        values = list(range(-2, 7))
    elif target.type == "number":   # one past the ints at each end: `i > 4 and n > i`
        values = [x / 4 for x in range(-12, 29)]
    elif target.type == "enum":
        values = list(ENUM)
    elif target.type == "string":
        values = _strings()
    else:
        universe = ("a", "b", "c", "A", "z")
        values = [[m for m, keep in zip(universe, bits) if keep]
                  for bits in product((False, True), repeat=len(universe))]
    return values + [ABSENT]


def complete(policy: SmallPolicy) -> bool:
    """Whether `brute_domain` meets every region (no string field)."""
    return all(f.type != "string" for f in policy.fields)


def brute_inputs(policy: SmallPolicy) -> list[dict[str, Any]]:
    domains = [brute_domain(f) for f in policy.fields]
    out = []
    for values in product(*domains):
        out.append({f.name: v for f, v in zip(policy.fields, values) if v is not ABSENT})
    return out


# ------------------------------------------------------------------- focused generators

PIECES = ("a", "b", "ab", "ba", "aa", "A", "a ", " b", "bab")


@st.composite
def string_policies(draw: Draw) -> SmallPolicy:
    """One string field, every kind of test on it, many of them per rule."""
    steps = draw(st.sampled_from(((), ("lower",), ("trim",), ("trim", "lower"), ("upper",))))
    target = SmallField("s", "string", draw(st.sampled_from(("required", "optional"))), steps)

    def fits(text: str, op: str) -> bool:
        inner = text.lower() if "lower" in steps else text.upper() if "upper" in steps else text
        if op == "==":
            return inner.strip() == text if "trim" in steps else inner == text
        return inner == text

    def atom() -> st.SearchStrategy[str]:
        op = st.sampled_from(("==", "starts_with", "ends_with", "contains", "in"))
        return st.tuples(op, st.sampled_from(PIECES), st.booleans()).filter(
            lambda t: fits(t[1], "==" if t[0] in ("==", "in") else t[0])).map(
            lambda t: ("not " if t[2] else "") + (
                f's in {{"{t[1]}"}}' if t[0] == "in" else f's {t[0]} "{t[1]}"'))

    rules = []
    for index in range(draw(st.integers(2, 6))):
        atoms = draw(st.lists(atom(), min_size=1, max_size=3))
        outcome = draw(st.sampled_from(("allow", "block", "allow risk 3")))
        rules.append(f"  when {' and '.join(atoms)} {outcome} as R{index}")
    source = ('policy strings version "1" {}\ninput {\n  ' + target.declaration() +
              "\n}\naction A {\n" + "\n".join(rules) + "\n}\notherwise block as OTHER\n")
    return SmallPolicy(source, [target], ["A"])


def string_inputs(target: SmallField) -> list[dict[str, Any]]:
    """Every string over a, b, A, x and space up to length 5 (and no string at all)."""
    alphabet = ("a", "b", "A", "x", " ")
    words = [""]
    layer = [""]
    for _ in range(5):
        layer = [w + c for w in layer for c in alphabet]
        words += layer
    inputs: list[dict[str, Any]] = [{target.name: w} for w in words]
    return inputs + ([{}] if target.presence == "optional" else [])


@st.composite
def set_policies(draw: Draw) -> SmallPolicy:
    """One set field and up to seven members tested, in every combination."""
    members = ("a", "b", "c", "d", "e", "f", "g")
    steps = draw(st.sampled_from(((), ("trim",), ("lower",))))
    target = SmallField("tags", "set", draw(st.sampled_from(("required", "optional", "default"))),
                        steps, '{"a", "b"}')
    rules = []
    for index in range(draw(st.integers(2, 6))):
        chosen = draw(st.lists(st.sampled_from(members + (" a",)), min_size=1, max_size=4,
                               unique=True))
        atoms = [("not " if draw(st.booleans()) else "") + f'tags contains "{m}"' for m in chosen]
        outcome = draw(st.sampled_from(("allow", "block", "allow risk 3")))
        rules.append(f"  when {' and '.join(atoms)} {outcome} as R{index}")
    source = ('policy sets version "1" {}\ninput {\n  ' + target.declaration() +
              "\n}\naction A {\n" + "\n".join(rules) + "\n}\notherwise block as OTHER\n")
    return SmallPolicy(source, [target], ["A"])


def set_inputs(target: SmallField) -> list[dict[str, Any]]:
    universe = ("a", "b", "c", "d", "e", "f", "g", " a", "z")
    subsets = [[m for m, keep in zip(universe, bits) if keep]
               for bits in product((False, True), repeat=len(universe))]
    return [{target.name: s} for s in subsets] + ([{}] if target.presence != "required" else [])


@st.composite
def chain_policies(draw: Draw) -> SmallPolicy:
    """Three numeric fields (int and number) compared with each other and with constants."""
    kinds = draw(st.lists(st.sampled_from(("int", "number")), min_size=3, max_size=3))
    fields = [SmallField(f"n{i}", kind, draw(st.sampled_from(("required", "optional"))))
              for i, kind in enumerate(kinds)]
    names = [f.name for f in fields]

    def atom() -> st.SearchStrategy[str]:
        op = st.sampled_from(("==", "!=", "<", "<=", ">", ">="))
        with_field = st.tuples(st.sampled_from(names), op, st.sampled_from(names)).filter(
            lambda t: t[0] != t[2]).map(" ".join)
        with_constant = st.tuples(st.sampled_from(names), op,
                                  st.sampled_from(("0", "1", "2.5", "4"))).map(" ".join)
        return with_field | with_constant

    rules = []
    for index in range(draw(st.integers(2, 5))):
        atoms = draw(st.lists(atom(), min_size=1, max_size=3))
        outcome = draw(st.sampled_from(("allow", "block", "allow risk 3")))
        rules.append(f"  when {' and '.join(atoms)} {outcome} as R{index}")
    source = ('policy chains version "1" {}\ninput {\n' +
              "\n".join("  " + f.declaration() for f in fields) +
              "\n}\naction A {\n" + "\n".join(rules) + "\n}\notherwise block as OTHER\n")
    return SmallPolicy(source, fields, ["A"])


def chain_inputs(policy: SmallPolicy) -> list[dict[str, Any]]:
    """Every combination of -3 to 7 in steps of a quarter (whole numbers for ints): each gap
    between and beyond the constants 0, 1, 2.5 and 4 holds at least three of each kind."""
    domains = []
    for target in policy.fields:
        values: list[Any] = [x / 4 for x in range(-12, 29)]
        if target.type == "int":
            values = [int(v) for v in values if float(v).is_integer()]
        domains.append(values + ([ABSENT] if target.presence == "optional" else []))
    return [{f.name: v for f, v in zip(policy.fields, combo) if v is not ABSENT}
            for combo in product(*domains)]
