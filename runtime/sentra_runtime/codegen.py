"""Turn a validated table into one generated, compiled Python matcher.

At load time the table becomes Python source, as template engines do: a function that
normalises the action type, reads and type-checks every declared field (straight-line code, one
paragraph per field), and dispatches through a dict to one function per action block whose body
is the block's rows as an ``if`` chain. The matcher is pure: it reads no agent state, so the
engine runs it outside any lock or transaction.

``match(action, fields) -> (code, payload, normalised_action)``:

* ``code >= 0``: index of the matching row in :attr:`Matcher.rows`; payload is the tuple of
  field values (``None`` for a missing field), in :attr:`Matcher.fields` order;
* ``NO_MATCH``: the action's block has no matching row and the policy has no ``otherwise``
  (with an ``otherwise``, such input gets the ``otherwise`` row's index);
* ``UNKNOWN_ACTION``: no block names the action and the policy has no ``otherwise``;
* ``INVALID_INPUT``: payload is ``(field_index, offending_value)``; the value is
  :data:`MISSING` for an absent required field, and a :class:`NotAnObject` when a parent of the
  dotted field is present and not ``null`` but not an object (``{"context": 5}`` for
  ``context.x``): such input is never read as an empty object.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sentra_runtime.policy import InputSpec, Policy, RowSpec, TestSpec, normalizer

NO_MATCH = -1
UNKNOWN_ACTION = -2
INVALID_INPUT = -3
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()
"""Payload value of an invalid-input result whose field is required but absent."""


@dataclass(frozen=True)
class NotAnObject:
    """Payload value of an invalid-input result whose field's parent is not an object."""

    path: str
    """The dotted path of the parent (``context`` for ``context.eligibility_verified``)."""
    value: Any
    """What the input has there."""


_NORMALIZE_CALLS = {"trim": ".strip()", "lower": ".lower()", "upper": ".upper()"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}

MatchFunction = Callable[[str, Mapping[str, Any]], tuple[int, Any, str]]


@dataclass(frozen=True)
class RowRef:
    """Where a row of the flattened row list came from."""

    rule: str
    block: int | None
    """Index into ``policy.actions``; ``None`` for the ``otherwise`` pseudo-row."""
    index: int
    """Row index within its block."""


@dataclass(frozen=True)
class Matcher:
    """The compiled form of a policy's rows and input declarations."""

    match: MatchFunction
    rows: tuple[RowRef, ...]
    fields: tuple[InputSpec, ...]
    block_of: Mapping[str, int]
    normalize_action: Callable[[str], str]
    source: str


def compile_matcher(policy: Policy) -> Matcher:
    """Generate, compile and return the matcher of ``policy``."""
    generator = _Generator(policy)
    source = generator.source()
    namespace = generator.namespace
    code = compile(source, f"<sentra-policy {policy.name} {policy.hash[:19]}>", "exec")
    exec(code, namespace)
    if "_DEFAULTS" in namespace:
        # the blocks are pure, so their answer to an empty input is known now
        defaults = namespace["_DEFAULTS"]
        block_functions = [namespace[f"_block_{index}"] for index in range(len(policy.actions))]
        namespace["_DEFAULT_CODE"] = {block: block(*defaults) for block in block_functions}
    blocks = {name: index for index, action in enumerate(policy.actions) for name in action.names}
    return Matcher(
        match=namespace["match"],
        rows=tuple(generator.rows),
        fields=policy.inputs,
        block_of=blocks,
        normalize_action=normalizer(policy.action_normalize),
        source=source,
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and value - value == 0)


class _Generator:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.variables = {spec.name: f"v{index}" for index, spec in enumerate(policy.inputs)}
        self.namespace: dict[str, Any] = {
            "_is_int": _is_int, "_is_number": _is_number, "_Mapping": Mapping,
            "_NotAnObject": NotAnObject,
            "_str": str, "_isinstance": isinstance, "_frozenset": frozenset,
            "_MISSING": MISSING, "_EMPTY": {}, "_SEQUENCES": (list, tuple, set, frozenset),
        }
        self.rows: list[RowRef] = []
        self.constants = 0

    def source(self) -> str:
        otherwise_row = self._otherwise_row()
        functions = [self._block_function(index, otherwise_row)
                     for index in range(len(self.policy.actions))]
        dispatch = ", ".join(
            f"{name!r}: _block_{index}"
            for index, action in enumerate(self.policy.actions) for name in action.names
        )
        normalize = "".join(_NORMALIZE_CALLS[step] for step in self.policy.action_normalize)
        lines = ["def match(action, fields):"]
        if normalize:
            # an action spelled exactly as a block names it needs no normalisation
            lines += ["    block = _exact_get(action)", "    if block is None:",
                      f"        action = action{normalize}", "        block = _dispatch_get(action)"]
        else:
            lines += ["    block = _dispatch_get(action)"]
        if otherwise_row is None:
            lines += ["    if block is None:", f"        return {UNKNOWN_ACTION}, None, action"]
        lines += self._empty_input(otherwise_row)
        dotted = sorted(spec.name for spec in self.policy.inputs if "." in spec.name)
        if dotted:
            self.namespace["_DOTTED"] = frozenset(dotted)
            lines += ["    flat = not _DOTTED.isdisjoint(fields)"]
        lines += self._read_fields()
        values = self._values_tuple()
        if otherwise_row is not None:
            lines += ["    if block is None:", f"        return {otherwise_row}, {values}, action"]
        lines += [f"    return block({self._arguments()}), {values}, action"]
        setup = [f"_dispatch_get = {{{dispatch}}}.get"]
        if normalize:
            fixed = normalizer(self.policy.action_normalize)
            exact = ", ".join(
                f"{name!r}: _block_{index}" for index, action in enumerate(self.policy.actions)
                for name in action.names if fixed(name) == name)
            setup.append(f"_exact_get = {{{exact}}}.get")
        return "\n\n".join(functions + ["\n".join(setup), "\n".join(lines)]) + "\n"

    def _arguments(self) -> str:
        return ", ".join(self.variables.values())

    def _values_tuple(self) -> str:
        if not self.variables:
            return "()"
        return "(" + ", ".join(self.variables.values()) + ",)"

    def _otherwise_row(self) -> int | None:
        if self.policy.otherwise is None:
            return None
        self.rows.append(RowRef(rule=self.policy.otherwise, block=None, index=0))
        return len(self.rows) - 1

    def _literal(self, value: Any) -> str:
        """Source text for a constant: a literal for scalars, a namespace name otherwise."""
        if value is None or isinstance(value, (bool, int, str)):
            return repr(value)
        if isinstance(value, float) and value - value == 0:
            return repr(value)
        return self._constant(value)

    def _constant(self, value: Any) -> str:
        name = f"_K{self.constants}"
        self.constants += 1
        self.namespace[name] = value
        return name

    # -- input ---------------------------------------------------------------------------------

    def _absent_values(self, specs: list[InputSpec]) -> tuple[Any, ...] | None:
        """What these fields read as when absent (defaults, normalised; ``None`` for optional
        ones); ``None`` when one of them is required."""
        if any(not spec.has_default and not spec.optional for spec in specs):
            return None
        return tuple(self._normalized_default(spec) if spec.has_default else None
                     for spec in specs)

    def _empty_input(self, otherwise_row: int | None) -> list[str]:
        """An empty input reads as every field's default: answered from a table made at load
        time (``_DEFAULT_CODE``), with no field read. Not when a field is required."""
        defaults = self._absent_values(list(self.policy.inputs))
        if defaults is None:
            return []
        self.namespace["_DEFAULTS"] = defaults
        lines = ["    if not fields:"]
        if otherwise_row is not None:
            lines += ["        if block is None:",
                      f"            return {otherwise_row}, _DEFAULTS, action"]
        return lines + ["        return _DEFAULT_CODE[block], _DEFAULTS, action"]

    def _read_fields(self) -> list[str]:
        """Read and check every declared field, in declared order.

        The fields under one top-level object (``context.a``, ``context.b``), when they are all
        declared together and none is required, take their defaults at once when the object is
        absent and the input has no flat dotted key.
        """
        lines: list[str] = []
        parents: dict[str, str] = {}
        inputs = list(enumerate(self.policy.inputs))
        under = Counter(spec.name.partition(".")[0] for spec in self.policy.inputs
                        if "." in spec.name)
        start = 0
        while start < len(inputs):
            root, dot, _ = inputs[start][1].name.partition(".")
            end = start + 1
            while dot and end < len(inputs) and inputs[end][1].name.startswith(root + "."):
                end += 1
            run = inputs[start:end]
            defaults = (self._absent_values([spec for _, spec in run])
                        if dot and len(run) == under[root] else None)
            body: list[str] = []
            if defaults is not None:
                variable = self._parent_variable(root, parents)
                lines += [f"    {variable} = fields.get({root!r})",
                          f"    if {variable} is None and not flat:"]
                lines += [f"        {self.variables[spec.name]} = {self._literal(value)}"
                          for (_, spec), value in zip(run, defaults)]
                lines += ["    else:"]
                body += self._parent_checks(run[0][0], root, variable)
            for index, spec in run:
                variable = self.variables[spec.name]
                body += self._lookup(index, spec.name, variable, parents)
                body += self._check(index, spec, variable)
            indent = "" if defaults is None else "    "
            lines += [indent + line for line in body]
            start = end
        return lines

    def _parent_variable(self, path: str, parents: dict[str, str]) -> str:
        variable = f"p{len(parents)}"
        assert path not in parents, path  # each object is looked up once, so names are unique
        parents[path] = variable
        return variable

    def _parent(self, index: int, path: str, parents: dict[str, str], lines: list[str]) -> str:
        """Emit the lookup of the nested object at ``path`` once; return its variable.

        ``null`` (or absence) reads as an empty object; any other value that is not a mapping
        makes the input invalid, reported against field ``index`` (the first one under it).
        """
        if path in parents:
            return parents[path]
        head, _, tail = path.rpartition(".")
        container = self._parent(index, head, parents, lines) if head else "fields"
        variable = self._parent_variable(path, parents)
        lines += [f"    {variable} = {container}.get({tail!r})"]
        lines += self._parent_checks(index, path, variable)
        return variable

    def _parent_checks(self, index: int, path: str, variable: str) -> list[str]:
        return [
            f"    if {variable}.__class__ is not dict:",
            f"        if {variable} is None:",
            f"            {variable} = _EMPTY",
            f"        elif not _isinstance({variable}, _Mapping):",
            f"            return {INVALID_INPUT}, ({index}, _NotAnObject({path!r}, {variable})), "
            "action",
        ]

    def _lookup(self, index: int, name: str, variable: str,
                parents: dict[str, str]) -> list[str]:
        head, _, tail = name.rpartition(".")
        if not head:
            return [f"    {variable} = fields.get({name!r})"]
        lines: list[str] = []
        parent = self._parent(index, head, parents, lines)
        return lines + [
            f"    {variable} = {parent}.get({tail!r})",
            f"    if {variable} is None and flat:",
            f"        {variable} = fields.get({name!r})",
        ]

    def _check(self, index: int, spec: InputSpec, v: str) -> list[str]:
        invalid = f"return {INVALID_INPUT}, ({index}, {v}), action"
        lines = [f"    if {v} is None:"]
        if spec.has_default:
            lines += [f"        {v} = {self._literal(self._normalized_default(spec))}"]
        elif spec.optional:
            lines += ["        pass"]
        else:
            lines += [f"        return {INVALID_INPUT}, ({index}, _MISSING), action"]
        norm = "".join(_NORMALIZE_CALLS[step] for step in spec.normalize)
        if spec.type == "bool":
            lines += [f"    elif {v} is not True and {v} is not False:", f"        {invalid}"]
        elif spec.type == "int":
            lines += [f"    elif {v}.__class__ is not int and not _is_int({v}):", f"        {invalid}"]
        elif spec.type == "number":
            lines += [f"    elif {v}.__class__ is int or ({v}.__class__ is float and {v} - {v} == 0):",
                      "        pass",
                      f"    elif not _is_number({v}):", f"        {invalid}"]
        elif spec.type in ("string", "enum"):
            lines += [f"    elif {v}.__class__ is str:", f"        {v} = {v}{norm}",
                      f"    elif _isinstance({v}, _str):", f"        {v} = _str({v}){norm}",
                      "    else:", f"        {invalid}"]
            if spec.type == "enum":
                values = self._constant(frozenset(spec.values or ()))
                lines += [f"    if {v} is not None and {v} not in {values}:", f"        {invalid}"]
        else:
            lines += [f"    elif _isinstance({v}, _SEQUENCES) and all(_isinstance(x, _str) for x in {v}):",
                      f"        {v} = _frozenset([_str(x){norm} for x in {v}])",
                      "    else:", f"        {invalid}"]
        return lines

    def _normalized_default(self, spec: InputSpec) -> Any:
        normalize = normalizer(spec.normalize)
        if spec.type in ("string", "enum"):
            return normalize(spec.default)
        if spec.type == "set":
            return frozenset(normalize(item) for item in spec.default)
        return spec.default

    # -- rows ----------------------------------------------------------------------------------

    def _block_function(self, block: int, otherwise_row: int | None) -> str:
        """The block's rows as an if chain; no match falls to ``otherwise`` (or NO_MATCH)."""
        lines = [f"def _block_{block}({self._arguments()}):"]
        for index, row in enumerate(self.policy.actions[block].rows):
            self.rows.append(RowRef(rule=row.rule, block=block, index=index))
            number = len(self.rows) - 1
            if not row.tests:
                lines += [f"    return {number}"]
                break
            lines += [f"    if {self._row_condition(row)}:", f"        return {number}"]
        else:
            lines += [f"    return {NO_MATCH if otherwise_row is None else otherwise_row}"]
        return "\n".join(lines)

    def _row_condition(self, row: RowSpec) -> str:
        return " and ".join(f"({self._test(test)})" for test in row.tests)

    def _test(self, test: TestSpec) -> str:
        expression = self._positive_test(test)
        return f"not ({expression})" if test.negate else expression

    def _positive_test(self, test: TestSpec) -> str:
        v = self.variables[test.field]
        field_type = self.policy.input_field(test.field).type
        if test.op == "exists":
            return f"{v} is not None"
        if test.other is not None:
            w = self.variables[test.other]
            return f"{v} is not None and {w} is not None and {v} {test.op} {w}"
        value = test.value
        if test.op == "in":
            return f"{v} in {self._constant(frozenset(value))}"
        if test.op == "starts_with":
            return f"{v} is not None and {v}.startswith({value!r})"
        if test.op == "ends_with":
            return f"{v} is not None and {v}.endswith({value!r})"
        if test.op == "contains":
            return f"{v} is not None and {value!r} in {v}"
        if field_type == "set" and isinstance(value, list):
            value = frozenset(value)
        if isinstance(value, bool):
            literal = repr(value)
            return f"{v} is {literal}" if test.op == "==" else f"{v} is not None and {v} is not {literal}"
        literal = repr(value) if isinstance(value, (str, int, float)) else self._constant(value)
        if test.op == "==":
            return f"{v} == {literal}"
        return f"{v} is not None and {v} {test.op} {literal}"
