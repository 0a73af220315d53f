"""Hypothesis strategies shared by the test suite.

`policies()` draws random *valid* policy texts (they compile without errors; warnings and
notes are fine) that use every declaration and condition form, in a loose layout with comments,
so the same texts serve the formatter, compiler and runtime laws. `inputs_for(...)` draws input
dicts for a compiled table, biased towards the constants its rules test.

The text is written here by hand, never by the formatter, so the formatter's tests stay honest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from sentra_lang.table import InputField, Table

Draw = st.DrawFn

WORDS = ("approval", "rejection", "internal", "external", "sensitive", "vip", "alpha", "beta",
         "x", "claims")
TYPES = ("bool", "int", "number", "string", "enum", "set")
PREFIXES = ("", "", "ctx.", "context.")
THREATS = ("Policy Violation", "Data \"Exfiltration\"", "back\\slash", "tab\there", "two\nlines")
MAX_ROWS = 48  # keep every condition's disjunctive normal form small, in both polarities


# ------------------------------------------------------------------------------- helpers

def quote(text: str) -> str:
    """A `.sentra` string literal for `text`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def _apply_case(word: str, case: str) -> str:
    return {"lower": word.lower(), "upper": word.upper(), "mixed": word.capitalize()}[case]


@dataclass
class _Field:
    name: str
    type: str
    optional: bool = False
    default: str | None = None  # as source text
    normalize: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # enum values, or literals that fit

    @property
    def textual(self) -> bool:
        return self.type in ("string", "enum")

    def declaration(self) -> str:
        text = f"{self.name}: "
        if self.type == "enum":
            text += "enum {" + ", ".join(quote(w) for w in self.words) + "}"
        elif self.type == "set":
            text += "set<string>"
        else:
            text += self.type
        text += "?" if self.optional else ""
        if self.normalize:
            text += " normalize " + ", ".join(self.normalize)
        if self.default is not None:
            text += " = " + self.default
        return text


@dataclass
class _Cond:
    """Condition text with its binding strength and DNF sizes (positive, negated)."""

    text: str
    precedence: int  # 1 or, 2 and, 3 not, 4 atom
    rows: int
    negated_rows: int


@dataclass
class _Scope:
    fields: list[_Field]
    sets: dict[str, _Field] = field(default_factory=dict)  # named set -> the field it fits
    conditions: dict[str, _Cond] = field(default_factory=dict)
    ids: int = 0

    def of_type(self, *types: str) -> list[_Field]:
        return [f for f in self.fields if f.type in types]


# -------------------------------------------------------------------------------- fields

def _draw_field(draw: Draw, type_name: str, index: int) -> _Field:
    name = draw(st.sampled_from(PREFIXES)) + {"bool": "flag", "int": "count", "number": "amount",
                                             "string": "kind", "enum": "level",
                                             "set": "tags"}[type_name] + f"_{index}"
    result = _Field(name, type_name)
    if type_name in ("string", "enum", "set"):
        case = draw(st.sampled_from(("lower", "lower", "upper", "mixed")))
        pool = draw(st.lists(st.sampled_from(WORDS), min_size=2, max_size=4, unique=True))
        result.words = [_apply_case(word, case) for word in pool]
        steps = [] if case == "mixed" or type_name == "enum" else [case]
        if draw(st.booleans()):
            steps.append("trim")
        result.normalize = draw(st.permutations(steps)) if steps else []
    presence = draw(st.sampled_from(("required", "optional", "default")))
    result.optional = presence == "optional"
    if presence == "default":
        result.default = _draw_default(draw, result)
    return result


def _draw_default(draw: Draw, target: _Field) -> str:
    if target.type == "bool":
        return draw(st.sampled_from(("true", "false")))
    if target.type == "int":
        return str(draw(st.integers(-5, 100)))
    if target.type == "number":
        return draw(st.sampled_from(("0", "1.5", "100", "-2.25")))
    if target.type == "set":
        items = draw(st.lists(st.sampled_from(target.words), max_size=2, unique=True))
        return "{" + ", ".join(quote(item) for item in items) + "}"
    return quote(draw(st.sampled_from(target.words)))


def _draw_fields(draw: Draw) -> list[_Field]:
    fields: list[_Field] = []
    for type_name in TYPES:
        for _ in range(draw(st.integers(1, 2))):
            fields.append(_draw_field(draw, type_name, len(fields)))
    return fields


# ---------------------------------------------------------------------------- conditions

def _atom(text: str) -> _Cond:
    return _Cond(text, 4, 1, 1)


def _literal_number(draw: Draw, target: _Field) -> str:
    if target.type == "number" and draw(st.booleans()):
        return draw(st.sampled_from(("0.5", "99.75", "-1.5", "10.0")))
    return str(draw(st.integers(-3, 120)))


def _draw_atom(draw: Draw, scope: _Scope) -> _Cond:
    kinds = ["bool", "compare_number", "compare_text", "membership", "string_test", "contains",
             "field_compare"]
    if any(f.optional for f in scope.fields):
        kinds.append("exists")
    if scope.conditions:
        kinds.append("named")
    kind = draw(st.sampled_from(kinds))
    if kind == "bool":
        flag = draw(st.sampled_from(scope.of_type("bool")))
        form = draw(st.sampled_from(("{0}", "{0} == true", "{0} != false", "{0} == false")))
        return _atom(form.format(flag.name))
    if kind == "compare_number":
        number = draw(st.sampled_from(scope.of_type("int", "number")))
        op = draw(st.sampled_from(("==", "!=", "<", "<=", ">", ">=")))
        if number.type == "int" and draw(st.integers(0, 3)) == 0:  # exact for the analysis
            scale, shift = draw(st.sampled_from((-3, -2, 2, 3))), draw(st.integers(-5, 5))
            return _atom(f"{number.name} * {scale} + {shift} {op} {_literal_number(draw, number)}")
        return _atom(f"{number.name} {op} {_literal_number(draw, number)}")
    if kind == "compare_text":
        text = draw(st.sampled_from(scope.of_type("string", "enum")))
        op = draw(st.sampled_from(("==", "!=")))
        return _atom(f"{text.name} {op} {quote(draw(st.sampled_from(text.words)))}")
    if kind == "membership":
        return _atom(_draw_membership(draw, scope))
    if kind == "string_test":
        text = draw(st.sampled_from(scope.of_type("string")))
        word = draw(st.sampled_from(text.words))
        op = draw(st.sampled_from(("starts_with", "ends_with", "contains")))
        cut = draw(st.integers(1, len(word)))
        part = word[:cut] if op == "starts_with" else word[-cut:] if op == "ends_with" else word[cut - 1:cut]
        return _atom(f"{text.name} {op} {quote(part)}")
    if kind == "contains":
        tags = draw(st.sampled_from(scope.of_type("set")))
        return _atom(f"{tags.name} contains {quote(draw(st.sampled_from(tags.words)))}")
    if kind == "field_compare":
        return _atom(_draw_field_compare(draw, scope))
    if kind == "exists":
        optional = draw(st.sampled_from([f for f in scope.fields if f.optional]))
        return _atom(f"exists {optional.name}")
    name = draw(st.sampled_from(sorted(scope.conditions)))
    named = scope.conditions[name]
    return _Cond(name, 4, named.rows, named.negated_rows)


def _draw_membership(draw: Draw, scope: _Scope) -> str:
    text = draw(st.sampled_from(scope.of_type("string", "enum")))
    word = draw(st.sampled_from(("in", "not in")))
    named = [name for name, owner in scope.sets.items() if owner is text]
    use_named = draw(st.booleans())
    if named and use_named:
        return f"{text.name} {word} {draw(st.sampled_from(named))}"
    items = draw(st.lists(st.sampled_from(text.words), min_size=1, max_size=3, unique=True))
    return f"{text.name} {word} {{{', '.join(quote(item) for item in items)}}}"


def _draw_field_compare(draw: Draw, scope: _Scope) -> str:
    type_name = draw(st.sampled_from(("bool", "int", "number", "string", "enum")))
    left, right = draw(st.sampled_from(scope.of_type(type_name))), draw(st.sampled_from(scope.of_type(type_name)))
    ops = ("==", "!=", "<", "<=", ">", ">=") if type_name in ("int", "number") else ("==", "!=")
    return f"{left.name} {draw(st.sampled_from(ops))} {right.name}"


def _wrap(draw: Draw, cond: _Cond, tighter_than: int) -> str:
    """Parenthesise when the grammar needs it, and now and then when it does not."""
    if cond.precedence <= tighter_than or draw(st.integers(0, 5)) == 0:
        return f"({cond.text})"
    return cond.text


def _draw_condition(draw: Draw, scope: _Scope, depth: int) -> _Cond:
    shape = draw(st.sampled_from(("atom", "atom", "and", "or", "not"))) if depth > 0 else "atom"
    if shape == "atom":
        return _draw_atom(draw, scope)
    if shape == "not":
        operand = _draw_condition(draw, scope, depth - 1)
        return _Cond("not " + _wrap(draw, operand, 2), 3, operand.negated_rows, operand.rows)
    operands = [_draw_condition(draw, scope, depth - 1) for _ in range(draw(st.integers(2, 3)))]
    precedence = 2 if shape == "and" else 1
    text = f" {shape} ".join(_wrap(draw, operand, precedence) for operand in operands)
    products, sums = 1, 0
    for operand in operands:
        products *= operand.rows if shape == "and" else operand.negated_rows
        sums += operand.negated_rows if shape == "and" else operand.rows
    rows, negated_rows = (products, sums) if shape == "and" else (sums, products)
    if max(rows, negated_rows) > MAX_ROWS:
        return operands[0]
    return _Cond(text, precedence, rows, negated_rows)


# ------------------------------------------------------------------------------ outcomes

def _draw_reason(draw: Draw, scope: _Scope) -> str:
    parts = draw(st.lists(st.sampled_from(("text", "field", "braces", "quote")), min_size=1, max_size=3))
    pieces = []
    for part in parts:
        if part == "field":
            pieces.append("{" + draw(st.sampled_from(scope.fields)).name + "}")
        elif part == "braces":
            pieces.append("{{literal}}")
        elif part == "quote":
            pieces.append(draw(st.sampled_from(('"quoted"', "back\\slash", "tab\t", "new\nline"))))
        else:
            pieces.append(draw(st.sampled_from(("Decision taken.", "Amount", "for review", "é ok"))))
    return " ".join(pieces)


def _draw_outcome(draw: Draw, scope: _Scope, threshold: int) -> str:
    kind = draw(st.sampled_from(("allow", "allow", "block", "shutdown")))
    scope.ids += 1
    clauses = [("id", f"as RULE_{scope.ids}")]
    if kind != "shutdown" and draw(st.booleans()):
        clauses.insert(0, ("risk", f"risk {draw(st.integers(0, threshold))}"))
    if draw(st.booleans()):
        clauses.append(("threat", "threat " + quote(draw(st.sampled_from(THREATS)))))
    if draw(st.integers(0, 4)) > 0:
        clauses.append(("reason", quote(_draw_reason(draw, scope))))
    if draw(st.integers(0, 4)) == 0:
        clauses.append(("description", "description " + quote("Why: " + _draw_reason(draw, scope))))
    if draw(st.integers(0, 5)) == 0:
        clauses = draw(st.permutations(clauses))
    separator = draw(st.sampled_from((" ", " ", "\n      ")))
    return kind + " " + separator.join(text for _, text in clauses)


# -------------------------------------------------------------------------------- layout

def _line_end(draw: Draw, note: str) -> str:
    """A newline, sometimes after a trailing comment."""
    return f"  # {note}\n" if draw(st.integers(0, 5)) == 0 else "\n"


def _comment_line(draw: Draw, indent: str, note: str) -> str:
    return f"{indent}# {note}\n" if draw(st.integers(0, 6)) == 0 else ""


def _header(draw: Draw, threshold: int, strikes: int) -> str:
    settings = []
    if draw(st.booleans()):
        settings.append("description " + quote("Generated \"policy\"."))
    if threshold != 100 or draw(st.booleans()):
        settings.append(f"risk_threshold {threshold}")
    if strikes != 3 or draw(st.booleans()):
        settings.append(f"strikes {strikes}")
    if draw(st.booleans()):
        settings.append("action_type normalize trim, upper")
    undeclared = draw(st.sampled_from((None, None, "refuse", "ignore")))
    if undeclared is not None:
        settings.append(f"undeclared_fields {undeclared}")
    version = f" version {quote(draw(st.sampled_from(('1', '1.0', '2.3.4'))))}" if draw(st.integers(0, 4)) else ""
    body = "".join(f"  {setting}{_line_end(draw, 'setting')}" for setting in settings)
    return f"policy generated{version} {{{_line_end(draw, 'header')}{body}}}\n"


def _input_block(draw: Draw, fields: list[_Field]) -> str:
    order = draw(st.permutations(fields))
    lines = "".join(_comment_line(draw, "  ", "field") + "  " + f.declaration() + _line_end(draw, "field")
                    for f in order)
    return "input {\n" + lines + "}\n"


def _lets(draw: Draw, scope: _Scope) -> str:
    text = ""
    for index in range(draw(st.integers(0, 2))):
        owner = draw(st.sampled_from(scope.of_type("string", "enum")))
        items = draw(st.lists(st.sampled_from(owner.words), min_size=1, max_size=3, unique=True))
        name = f"SET_{index}"
        scope.sets[name] = owner
        text += f"let {name} = {{{', '.join(quote(item) for item in items)}}}{_line_end(draw, 'set')}"
    for index in range(draw(st.integers(0, 2))):
        cond = _draw_condition(draw, scope, 2)
        name = f"named_{index}"
        text += _comment_line(draw, "", "named condition")
        text += f"let {name} = {cond.text}{_line_end(draw, 'condition')}"
        scope.conditions[name] = cond
    return text


def _action_names(draw: Draw, block: int) -> list[str]:
    count = draw(st.integers(1, 2))
    return [quote(f"act-{block}-{n}") if draw(st.integers(0, 4)) == 0 else f"ACT_{block}_{n}"
            for n in range(count)]


def _action_block(draw: Draw, scope: _Scope, block: int, threshold: int) -> str:
    rules = []
    count = draw(st.integers(1, 5))
    for index in range(count):
        conditional = index < count - 1 or draw(st.booleans())
        outcome = _draw_outcome(draw, scope, threshold)
        comment = _comment_line(draw, "  ", "rule")
        if conditional:
            cond = _draw_condition(draw, scope, 2)
            between = draw(st.sampled_from((" ", " ", "\n    ")))
            rules.append(f"{comment}  when {cond.text}{between}{outcome}{_line_end(draw, 'rule')}")
        else:
            rules.append(f"{comment}  {outcome}{_line_end(draw, 'rule')}")
    names = ", ".join(_action_names(draw, block))
    return f"action {names} {{\n" + "".join(rules) + "}\n"


@st.composite
def policies(draw: Draw) -> str:
    """A random valid policy text (compiles without errors) using every language form."""
    threshold = draw(st.integers(1, 200))
    strikes = draw(st.integers(1, 5))
    scope = _Scope(_draw_fields(draw))
    parts = [_comment_line(draw, "", "generated policy"), _header(draw, threshold, strikes),
             _input_block(draw, scope.fields), _lets(draw, scope)]
    for block in range(draw(st.integers(1, 4))):
        parts.append(_action_block(draw, scope, block, threshold))
    if draw(st.booleans()):
        parts.append("otherwise " + _draw_outcome(draw, scope, threshold) + "\n")
    parts.append(_comment_line(draw, "", "the end"))
    separator = draw(st.sampled_from(("\n", "", "\n\n")))
    return separator.join(part for part in parts if part)


# -------------------------------------------------------------------------------- inputs

def _fields_of(table_or_fields: Table | Sequence[InputField] | Mapping[str, Any]) -> list[InputField]:
    if isinstance(table_or_fields, Table):
        return list(table_or_fields.input)
    if isinstance(table_or_fields, Mapping):
        return [InputField.model_validate(item) for item in table_or_fields["input"]]
    return [f if isinstance(f, InputField) else InputField.model_validate(f) for f in table_or_fields]


def _constants(table_or_fields: Any) -> tuple[dict[str, list[Any]], list[tuple[str, str]]]:
    """The literals each field is tested against, and the pairs of fields compared."""
    constants: dict[str, list[Any]] = {}
    pairs: list[tuple[str, str]] = []
    if isinstance(table_or_fields, Mapping):
        table_or_fields = Table.model_validate(table_or_fields)
    if not isinstance(table_or_fields, Table):
        return constants, pairs
    for block in table_or_fields.actions:
        for row in block.rows:
            for test in row.tests:
                if test.other is not None:
                    pairs.append((test.field, test.other))
                values = test.value if isinstance(test.value, list) else [test.value]
                constants.setdefault(test.field, []).extend(v for v in values if v is not None)
    return constants, pairs


_WRONG = st.sampled_from([None, "1", 1, 2.5, True, ["a"], {"k": "v"}, ""])


def _value(spec: InputField, constants: list[Any]) -> st.SearchStrategy[Any]:
    texts = [c for c in constants if isinstance(c, str)] + list(spec.values or []) + list(WORDS[:3])
    numbers = [c for c in constants if isinstance(c, (int, float)) and not isinstance(c, bool)]
    if spec.type == "bool":
        return st.booleans()
    if spec.type in ("int", "number"):
        near = st.sampled_from(numbers or [0]).flatmap(lambda n: st.sampled_from([n, n - 1, n + 1]))
        if spec.type == "int":
            return near.map(int) | st.integers(-10, 150)
        return near | st.integers(-10, 150) | st.floats(-10, 150, allow_nan=False, allow_infinity=False)
    variants = st.sampled_from(texts).flatmap(
        lambda text: st.sampled_from([text, text, text.upper(), text.capitalize(), f" {text} "]))
    if spec.type == "set":
        return st.lists(variants, max_size=3)
    return variants | st.text(alphabet="abXY -", max_size=4)


def _put(target: dict[str, Any], name: str, value: Any) -> None:
    """Set the dotted field `name` inside nested objects (made as needed)."""
    *parents, leaf = name.split(".")
    for part in parents:
        if not isinstance(target.get(part), dict):
            target[part] = {}
        target = target[part]
    target[leaf] = value


def _objects(names: Sequence[str]) -> list[str]:
    """The objects dotted names live in (`ctx` for `ctx.kind_1`), outermost first."""
    found = {".".join(name.split(".")[:depth]) for name in names
             for depth in range(1, name.count(".") + 1)}
    return sorted(found, key=lambda path: (path.count("."), path))


@st.composite
def _spread(draw: Draw, values: dict[str, Any], names: Sequence[str],
            odd: bool) -> dict[str, Any]:
    """The input for field values: each dotted field inside its objects or as a flat dotted
    key, chosen field by field (so both styles mix in one input); an object none of whose
    fields is given sometimes `null`. With `odd`, now and then something the runtime refuses
    (docs/table.md, "Input"): a field given both ways, or a key the policy does not declare (a
    typo of a field, at the top or inside its object)."""
    result: dict[str, Any] = {}
    for name, value in values.items():
        if "." in name and draw(st.integers(0, 3)) == 0:
            result[name] = value
        else:
            _put(result, name, value)
    for path in _objects(names):
        if path.count(".") == 0 and path not in result and draw(st.integers(0, 3)) == 0:
            result[path] = None
    if not odd or draw(st.integers(0, 8)) != 0:
        return result
    dotted = [name for name in values if "." in name and values[name] is not None]
    if dotted and draw(st.booleans()):
        name = draw(st.sampled_from(dotted))
        if name in result:
            _put(result, name, values[name])
        else:
            result[name] = values[name]
        return result
    name = draw(st.sampled_from(list(names) or ["field"]))
    typo = name[:-1] if len(name.rsplit(".", 1)[-1]) > 1 else name + "x"
    if "." in typo and isinstance(result.get(typo.split(".")[0]), dict):
        _put(result, typo, draw(st.sampled_from([True, 1, "x"])))
    else:
        result[typo] = draw(st.sampled_from([True, 1, "x"]))
    return result


def inputs_for(table_or_fields: Table | Sequence[InputField] | Mapping[str, Any], *,
               wrong_types: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Input dicts for a table (or its declared fields): values of the declared types, often
    equal to the constants the rules test, optional and defaulted fields sometimes missing or
    `null`, required ones rarely missing. Dotted fields are nested objects
    (`{"ctx": {"kind": ...}}`) or flat dotted keys, mixed in one input. Unless
    `wrong_types=False`, now and then a value of a wrong type, a field given both nested and
    flat, or a key the policy does not declare.
    """
    specs = _fields_of(table_or_fields)
    constants, pairs = _constants(table_or_fields)
    names = [spec.name for spec in specs]

    @st.composite
    def draw_input(draw: Draw) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for spec in specs:
            chance_missing = 3 if spec.optional or spec.has_default else 20
            if draw(st.integers(0, chance_missing)) == 0:
                if (spec.optional or spec.has_default) and draw(st.booleans()):
                    values[spec.name] = None
                continue
            if wrong_types and draw(st.integers(0, 25)) == 0:
                values[spec.name] = draw(_WRONG)
            else:
                values[spec.name] = draw(_value(spec, constants.get(spec.name, [])))
        for left, right in pairs:
            if left in values and draw(st.integers(0, 2)) == 0:
                values[right] = values[left]
        return draw(_spread(values, names, wrong_types))

    return draw_input()
