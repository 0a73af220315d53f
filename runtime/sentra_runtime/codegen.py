"""Turn a validated table into one generated, compiled Python module: the policy's matcher.

At load time the table becomes Python source, as template engines do, and the source is
compiled once; ``Matcher.source`` (``sentra-lang compile --emit python``) is exactly the text
that runs. Its ``match(action, fields) -> (code, payload, action)``:

1. normalises the action type and finds the action's block through a dict;
2. reads and checks the input. Ordinary input (plain values of the declared types, in plain
   dicts) is read by straight-line code specialised to the policy's declarations; anything
   else (a flat dotted key, a value of another class, an absent required field, an undeclared
   key the policy refuses, ...) goes to ``_by_definition``, which reads the whole input with
   :meth:`sentra_runtime.inputs.InputSchema.read`, the one definition of input semantics. The
   tests check that both give the same answer on arbitrary input;
3. calls the block's function with the tuple of values (it reads the ones its rows test),
   which returns the first matching row. Rows are ``if`` statements in order, except runs of
   rows that a dict or a bisection decides at once (:func:`_runs`): ``MIN_RUN`` or more
   consecutive rows that each test one field for equality or membership become one dict
   lookup from each value to its first candidate row; rows that each compare one numeric field
   with constants become a bisection over the cells those constants cut the number line into.
   Both give exactly the row order's first match.

The result: ``code >= 0`` is the index of the matching row in :attr:`Matcher.rows` and the
payload the tuple of field values in declared order (``None`` for an absent field);
``NO_MATCH`` (no row of the block matched and there is no ``otherwise``), ``UNKNOWN_ACTION`` (no
block names the action and there is no ``otherwise``), ``INVALID_INPUT`` (payload: the
:class:`~sentra_runtime.inputs.Problem`) or ``ARITHMETIC_ERROR`` (payload: the values; a row
none of whose tests was false had an arithmetic test that could not be computed, which
:func:`sentra_runtime.policy.row_holds` names). The matcher is pure: it reads no agent state.

An arithmetic test (:mod:`sentra_runtime.arith`) is code too: its fields' presence, then the
comparison of the two sides, each side's final value checked to be finite inline (so is a divisor
that is itself computed: ``x / inf`` would hide an overflow); a ``number`` field is
``float(...)`` in it (``arith.operand``). Python raises ``ZeroDivisionError`` and
``OverflowError`` itself. A row's arithmetic tests come after its other tests, so a false
ordinary test decides first; two or more go through ``_all_or_fail``, which tries them all
before raising (the row semantics of ``row_holds``). When a computation fails, the block is
decided again by the definition (``_by_rows``: ``policy.first_match``), since another row of
the same rule may hold; a computation that does not fail never changes the first match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sentra_runtime import arith
from sentra_runtime.inputs import MISSING, InputSchema, Problem, normalizer
from sentra_runtime.policy import (
    InputSpec,
    Policy,
    RowFailure,
    RowSpec,
    TestSpec,
    first_match,
    test_holds,
)

NO_MATCH = -1
UNKNOWN_ACTION = -2
INVALID_INPUT = -3
ARITHMETIC_ERROR = -4
NEEDS_STATE = -5
"""The input is read and the action has a block, whose rows read the agent's state: the
payload is ``(block, values)``, and the block (through :attr:`Matcher.finish` when rows
compute) decides the row once the state step has appended the agent's state to the values
(inside the store's lock)."""
MIN_RUN = 4
"""The shortest run of rows compiled to a dict lookup or a bisection; shorter runs stay ``if``
statements, which are as fast."""

_NORMALIZE_CALLS = {"trim": ".strip()", "lower": ".lower()", "upper": ".upper()"}
_KEYED_TYPES = frozenset({"string", "enum", "int", "number"})
_NUMERIC = frozenset({"int", "number"})
_RANGE_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">="})

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
    match_by_definition: MatchFunction
    """``match`` reading every input with :meth:`InputSchema.read` (for the tests' laws)."""
    rows: tuple[RowRef, ...]
    schema: InputSchema
    block_of: Mapping[str, int]
    normalize_action: Callable[[str], str]
    source: str
    fields: tuple[InputSpec, ...]
    """What the values of a payload are, in order: the declared inputs, then the agent's state
    fields for a policy that reads them (``Policy.value_specs``)."""
    finish: Callable[[Any, tuple[Any, ...]], int] | None = None
    """For a policy whose rows read the agent's state and compute: the row code of a
    ``NEEDS_STATE`` payload's block for the full values (inputs, then the state), an arithmetic
    failure decided by the definition; ``None`` otherwise (the block itself gives the row)."""


def compile_matcher(policy: Policy, *, min_run: int = MIN_RUN) -> Matcher:
    """Generate, compile and return the matcher of ``policy``; ``min_run`` is the shortest run
    of rows compiled to a dict lookup or a bisection."""
    schema = policy.input_schema
    generator = _Generator(policy, schema, min_run)
    source = generator.source()
    namespace: dict[str, Any] = {"_read": schema.read, "_check": schema.check,
                                 "_Problem": Problem, "_not_finite": _not_finite,
                                 "_all_or_fail": _all_or_fail, "_ARITHMETIC": _FAILURES}
    namespace["_by_rows"] = _rows_decider(policy, generator.bases, generator.otherwise_row)
    exec(compile(source, f"<sentra-policy {policy.name} {policy.hash[:19]}>", "exec"), namespace)
    return Matcher(
        match=namespace["match"],
        match_by_definition=namespace["match_by_definition"],
        rows=tuple(generator.rows),
        schema=schema,
        block_of={name: index for index, action in enumerate(policy.actions)
                  for name in action.names},
        normalize_action=normalizer(policy.action_normalize),
        source=source,
        fields=policy.value_specs,
        finish=namespace.get("finish"),
    )


class _Generator:
    def __init__(self, policy: Policy, schema: InputSchema, min_run: int) -> None:
        self.policy = policy
        self.schema = schema
        self.min_run = max(1, min_run)
        self.variables = {spec.name: f"v{index}" for index, spec in enumerate(policy.value_specs)}
        self.types = {spec.name: spec.type for spec in policy.value_specs}
        self.positions = {spec.name: index for index, spec in enumerate(policy.value_specs)}
        self.used: set[int] = set()
        """The values the row function being written reads (see :meth:`_var`)."""
        self.rows: list[RowRef] = []
        self.constants: list[str] = []
        """Module-level definitions (sets, dicts, residual tests) the functions refer to."""
        self.arithmetic = any(test.left is not None for action in policy.actions
                              for row in action.rows for test in row.tests)
        """Whether a row has an arithmetic test (the block calls then catch its failures)."""
        self.computed = 0
        """How many computed values the code names (``_n0``, ``_n1``, ...)."""
        self.bases: list[int] = []
        """Per block, the index in :attr:`rows` of its first row."""
        self.otherwise_row: int | None = None
        if policy.otherwise is not None:
            self.rows.append(RowRef(rule=policy.otherwise, block=None, index=0))
            self.otherwise_row = 0

    # -- the module ------------------------------------------------------------------------------

    def source(self) -> str:
        blocks = [self._block_function(index) for index in range(len(self.policy.actions))]
        policy = self.policy
        header = [
            f"# The matcher of policy {policy.name!r} version {policy.version!r} "
            f"({policy.hash!r}),",
            "# generated by sentra_runtime.codegen when the table was loaded; this is the code "
            "that runs.",
            "# Bound before it runs: _read and _check (the policy's "
            "sentra_runtime.inputs.InputSchema.read",
            "# and .check: the definition of input semantics) and _Problem (what they return "
            "for bad input).",
            "",
            "from bisect import bisect_left as _bisect_left",
        ]
        functions = [self._tables(), self._by_definition(), self._match_by_definition(),
                     self._match()]
        if policy.reads_state and self.arithmetic:
            functions.append(self._finish())
        return "\n\n\n".join(["\n".join(header), *self.constants, *blocks, *functions]) + "\n"

    def _values(self) -> str:
        names = list(self.variables.values())[:len(self.policy.inputs)]
        return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"

    def _literal(self, value: Any) -> str:
        """Source text for a constant value (strings, numbers, booleans, frozensets)."""
        if isinstance(value, frozenset):
            return f"frozenset({_members(value)})" if value else "frozenset()"
        return repr(value)

    def _constant(self, prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(self.constants)}"
        self.constants.append(f"{name} = {self._literal(value)}")
        return name

    def _tables(self) -> str:
        blocks = [f"_block_{index}" for index in range(len(self.policy.actions))]
        dispatch = "\n".join(f"    {name!r}: _block_{index},"
                             for index, action in enumerate(self.policy.actions)
                             for name in action.names)
        lines = [f"_DISPATCH = {{\n{dispatch}\n}}" if dispatch else "_DISPATCH = {}",
                 "_dispatch_get = _DISPATCH.get"]
        if self.arithmetic:
            lines += ["_BLOCK_INDEX = {" + ", ".join(f"{name}: {i}" for i, name in enumerate(blocks))
                      + "}"]
        if self.policy.action_normalize:
            fixed = normalizer(self.policy.action_normalize)
            exact = [f"    {name!r}: _block_{index}," for index, action in
                     enumerate(self.policy.actions) for name in action.names if fixed(name) == name]
            lines += ["# action types spelled exactly as a block names them need no "
                      "normalisation",
                      "_exact_get = {\n" + "\n".join(exact) + "\n}.get" if exact
                      else "_exact_get = {}.get"]
        if self._empty_input():
            defaults = ", ".join(self._literal(value) for value in self.schema.defaults)
            comma = "," if len(self.schema.defaults) == 1 else ""
            otherwise = "" if self.otherwise_row is None else f"None: {self.otherwise_row}, "
            lines += ["# every field's value when the input is empty, and each block's answer "
                      "to it",
                      f"_DEFAULTS = ({defaults}{comma})",
                      f"_EMPTY_INPUT = {{{otherwise}**{{block: block(_DEFAULTS) for block in "
                      f"({', '.join(blocks)}{',' if len(blocks) == 1 else ''})}}}}"]
        return "\n".join(lines)

    def _required(self) -> bool:
        return any(value is MISSING for value in self.schema.defaults)

    def _empty_input(self) -> bool:
        """Whether empty input is answered from a table made at load time (not when a field is
        required, nor when a row computes: that is decided per call)."""
        return not self._required() and not self.arithmetic and not self.policy.reads_state

    def _finish(self) -> str:
        """``finish(block, values)``: the block's row for the values with the agent's state."""
        return "\n".join(["def finish(block, values):",
                          "    # the values end with the agent's state (the state step adds it)",
                          *[line.replace(", values, action", "")
                            for line in self._call_block("    ", state_known=True)]])

    def _call_block(self, indent: str, *, state_known: bool = False) -> list[str]:
        """Return the block's row for ``values``; an arithmetic failure is ARITHMETIC_ERROR.
        Under a policy whose rows read the agent's state, the row waits for it
        (``NEEDS_STATE``)."""
        if self.policy.reads_state and not state_known:
            return [f"{indent}return {NEEDS_STATE}, (block, values), action"]
        if not self.arithmetic:
            return [f"{indent}return block(values), values, action"]
        return [f"{indent}try:", f"{indent}    return block(values), values, action",
                f"{indent}except _ARITHMETIC:",
                f"{indent}    # a computation failed: the definition decides the block "
                "(sentra_runtime.policy.first_match)",
                f"{indent}    return _by_rows(_BLOCK_INDEX[block], values), values, action"]

    def _dispatch_lines(self) -> list[str]:
        normalize = "".join(_NORMALIZE_CALLS[step] for step in self.policy.action_normalize)
        if normalize:
            lines = ["    block = _exact_get(action)", "    if block is None:",
                     f"        action = action{normalize}", "        block = _dispatch_get(action)"]
        else:
            lines = ["    block = _dispatch_get(action)"]
        if self.otherwise_row is None:
            lines += ["    if block is None:", f"        return {UNKNOWN_ACTION}, None, action"]
        return lines

    def _by_definition(self) -> str:
        lines = ["def _by_definition(block, action, fields):",
                 '    """Read the whole input with the definition (sentra_runtime.inputs)."""',
                 "    values = _read(fields)",
                 "    if values.__class__ is _Problem:",
                 f"        return {INVALID_INPUT}, values, action"]
        if self.otherwise_row is not None:
            lines += ["    if block is None:", f"        return {self.otherwise_row}, values, action"]
        lines += self._call_block("    ")
        return "\n".join(lines)

    def _match_by_definition(self) -> str:
        return "\n".join(["def match_by_definition(action, fields):", *self._dispatch_lines(),
                          "    return _by_definition(block, action, fields)"])

    def _match(self) -> str:
        lines = ["def match(action, fields):", *self._dispatch_lines()]
        if self._empty_input():
            lines += ["    if not fields:", "        return _EMPTY_INPUT[block], _DEFAULTS, action"]
        lines += self._unusual_keys()
        lines += self._read_object("", "fields", "    ")
        lines += [f"    values = {self._values()}"]
        if self.otherwise_row is not None:
            lines += ["    if block is None:", f"        return {self.otherwise_row}, values, action"]
        lines += self._call_block("    ")
        return "\n".join(lines)

    # -- input -----------------------------------------------------------------------------------

    def _unusual_keys(self) -> list[str]:
        """Keys the straight-line reading does not handle go to the definition: flat dotted
        keys, and undeclared keys when the policy refuses them."""
        if self.schema.undeclared == "refuse":
            keys = self._constant("KEYS", frozenset(self.schema.members[""]))
            return [f"    if not {keys}.issuperset(fields):", f"        {_DEFINITION}"]
        flat = frozenset(name for name in self.schema.names if "." in name)
        if not flat:
            return []
        keys = self._constant("FLAT", flat)
        return [f"    if not {keys}.isdisjoint(fields):", f"        {_DEFINITION}"]

    def _read_object(self, path: str, container: str, indent: str) -> list[str]:
        """Read the fields under the object at ``path`` (``""``: the input) from the variable
        ``container``, a dict."""
        lines: list[str] = []
        for key in sorted(self.schema.members[path]):
            inner = f"{path}.{key}" if path else key
            if inner in self.schema.objects:
                lines += self._read_parent(inner, key, container, indent)
            else:
                variable = self.variables[inner]
                lines += [f"{indent}{variable} = {container}.get({key!r})"]
                lines += self._check(inner, variable, indent)
        return lines

    def _read_parent(self, path: str, key: str, container: str, indent: str) -> list[str]:
        variable = f"p{len([name for name in self.schema.objects if name < path])}"
        lines = [f"{indent}{variable} = {container}.get({key!r})",
                 f"{indent}if {variable} is None:"]
        leaves = [name for name in self.variables if name.startswith(path + ".")]
        if any(self.schema.defaults[self._index(name)] is MISSING for name in leaves):
            lines += [f"{indent}    {_DEFINITION}"]
        else:
            lines += [f"{indent}    {self.variables[name]} = "
                      f"{self._literal(self.schema.defaults[self._index(name)])}"
                      for name in leaves]
        lines += [f"{indent}elif {variable}.__class__ is dict:"]
        if self.schema.undeclared == "refuse":
            keys = self._constant("KEYS", self.schema.members[path])
            lines += [f"{indent}    if not {keys}.issuperset({variable}):",
                      f"{indent}        {_DEFINITION}"]
        lines += self._read_object(path, variable, indent + "    ")
        return lines + [f"{indent}else:", f"{indent}    {_DEFINITION}"]

    def _index(self, name: str) -> int:
        return list(self.variables).index(name)

    def _check(self, name: str, v: str, indent: str) -> list[str]:
        """The value's checks and normalisation for a value of the expected class; any other
        value goes to the definition."""
        index = self._index(name)
        spec = self.policy.inputs[index]
        default = self.schema.defaults[index]
        lines = [f"{indent}if {v} is None:"]
        if default is MISSING:
            lines += [f"{indent}    {_DEFINITION}"]
        elif default is None:
            lines += [f"{indent}    pass"]
        else:
            lines += [f"{indent}    {v} = {self._literal(default)}"]
        norm = "".join(_NORMALIZE_CALLS[step] for step in spec.normalize)
        if spec.type == "bool":
            lines += [f"{indent}elif {v} is not True and {v} is not False:"]
        elif spec.type == "int":
            lines += [f"{indent}elif {v}.__class__ is not int:"]
        elif spec.type == "number":
            lines += [f"{indent}elif {v}.__class__ is not int and "
                      f"({v}.__class__ is not float or {v} - {v} != 0):"]
        elif spec.type in ("string", "enum"):
            lines += [f"{indent}elif {v}.__class__ is str:"]
            if norm:
                lines += [f"{indent}    {v} = {v}{norm}"]
            if spec.type == "enum":
                lines += [f"{indent}    if {v} not in {_members(frozenset(spec.values or ()))}:",
                          f"{indent}        {_DEFINITION}"]
            elif not norm:
                lines += [f"{indent}    pass"]
            lines += [f"{indent}else:"]
        else:
            lines += [f"{indent}else:", f"{indent}    {v} = _check({index}, {v})",
                      f"{indent}    if {v}.__class__ is _Problem:"]
            return lines + [f"{indent}        {_DEFINITION}"]
        return lines + [f"{indent}    {_DEFINITION}"]

    # -- rows ------------------------------------------------------------------------------------

    def _block_function(self, block: int) -> str:
        """The block's rows in order (runs compiled to a dict or a bisection); no match falls
        to ``otherwise`` (or NO_MATCH)."""
        action = self.policy.actions[block]
        base = len(self.rows)
        self.bases.append(base)
        self.rows += [RowRef(rule=row.rule, block=block, index=index)
                      for index, row in enumerate(action.rows)]
        comment = f"action {', '.join(repr(name) for name in action.names)}"
        lines: list[str] = []
        for run in _runs(action.rows, self.types, self.min_run):
            if not action.rows[run.start].tests:
                lines += [f"    return {base + run.start}  # {action.rows[run.start].rule!r}"]
                return self._function(f"_block_{block}", lines, comment)
            if run.kind == "keyed":
                lines += self._keyed(action.rows, run, base)
            elif run.kind == "range":
                lines += self._range(action.rows, run, base)
            else:
                row = action.rows[run.start]
                lines += [f"    if {self._condition(row.tests)}:",
                          f"        return {base + run.start}  # {row.rule!r}"]
        fallback = NO_MATCH if self.otherwise_row is None else self.otherwise_row
        return self._function(f"_block_{block}", lines + [f"    return {fallback}"], comment)

    def _function(self, name: str, body: list[str], comment: str | None = None) -> str:
        """A function of the values tuple whose body is ``body``; its first lines take the
        values the body uses (:meth:`_var`), and forget them."""
        names = list(self.variables)
        reads = [f"    v{index} = values[{index}]  # {names[index]!r}"
                 for index in sorted(self.used)]
        self.used = set()
        heading = [f"def {name}(values):"] + ([f"    # {comment}"] if comment else [])
        return "\n".join([*heading, *reads, *body])

    def _var(self, field: str) -> str:
        """The variable of ``field`` in a row function, noting that the function reads it."""
        index = self.positions[field]
        self.used.add(index)
        return f"v{index}"

    def _keyed(self, rows: Sequence[RowSpec], run: _Run, base: int) -> list[str]:
        """Rows that each test ``run.field`` for equality or membership (and maybe more): a
        dict from each value to its first row, or to the rows to try in order when rows
        have other tests too (the residual)."""
        field = run.field
        candidates: dict[Any, list[tuple[int, str | None]]] = {}
        for position in range(run.start, run.end):
            row = rows[position]
            keys, residual = _keyed_split(row.tests, field)
            holds = self._residual_function(base + position, residual) if residual else None
            for key in sorted(keys, key=_sort_key):
                found = candidates.setdefault(key, [])
                if not found or found[-1][1] is not None:
                    found.append((base + position, holds))
        simple = all(len(found) == 1 and found[0][1] is None for found in candidates.values())
        entries = []
        for key, found in candidates.items():
            if found[0][1] is None:
                entries.append(f"    {key!r}: {found[0][0]},")
            else:
                pairs = ", ".join(f"({row}, {holds})" for row, holds in found)
                entries.append(f"    {key!r}: ({pairs},),")
        name = f"_B{base + run.start}"
        self.constants.append(f"{name} = {{\n" + "\n".join(entries) + "\n}")
        v = self._var(field)
        lines = [f"    # rows {base + run.start}-{base + run.end - 1} test {field!r} for equality: "
                 "a dict gives each value's first row",
                 f"    found = {name}.get({v})", "    if found is not None:"]
        if simple:
            return lines + ["        return found"]
        return lines + ["        if found.__class__ is int:", "            return found",
                        "        for row, holds in found:",
                        "            if holds is None or holds(values):",
                        "                return row"]

    def _residual_function(self, row: int, tests: Sequence[TestSpec]) -> str:
        name = f"_row_{row}"
        outer, self.used = self.used, set()
        self.constants.append(self._function(name, [f"    return {self._condition(tests)}"]))
        self.used = outer
        return name

    def _range(self, rows: Sequence[RowSpec], run: _Run, base: int) -> list[str]:
        """Rows that each compare one numeric field with constants: the constants cut the
        number line into cells (each constant, and the open intervals around them) on which
        every test is constant, so each cell has one first matching row, found here with the
        tests' own semantics (``policy.test_holds``) on a value of the cell."""
        field = run.field
        bounds = sorted({test.value for row in rows[run.start:run.end] for test in row.tests
                         if test.op != "exists"}, key=Fraction)
        cells = [self._first_row(rows, run, base, value) for value in _representatives(bounds)]
        missing = self._first_row(rows, run, base, None)
        bounds_name = self._constant("BOUNDS", tuple(bounds))
        cells_name = self._constant("CELLS", tuple(cells))
        v = self._var(field)
        lines = [f"    # rows {base + run.start}-{base + run.end - 1} compare {field!r} with "
                 "constants: the cell of its value (below, at or above each bound) gives the "
                 "first row",
                 f"    if {v} is not None:",
                 f"        at = _bisect_left({bounds_name}, {v})",
                 f"        found = {cells_name}[2 * at + (at < {len(bounds)} and "
                 f"{bounds_name}[at] == {v})]",
                 "        if found >= 0:",
                 "            return found"]
        if missing >= 0:
            lines += ["    else:", f"        return {missing}"]
        return lines

    def _first_row(self, rows: Sequence[RowSpec], run: _Run, base: int, value: Any) -> int:
        values = {run.field: value}
        for position in range(run.start, run.end):
            if all(test_holds(test, values) for test in rows[position].tests):
                return base + position
        return -1

    def _condition(self, tests: Sequence[TestSpec]) -> str:
        plain = [f"({self._test(test)})" for test in tests if test.left is None]
        computed = [self._test(test) for test in tests if test.left is not None]
        if len(computed) > 1:
            thunks = ", ".join(f"lambda: {text}" for text in computed)
            computed = [f"_all_or_fail({thunks})"]
        return " and ".join(plain + [f"({text})" for text in computed])

    def _test(self, test: TestSpec) -> str:
        expression = self._positive_test(test)
        return f"not ({expression})" if test.negate else expression

    def _positive_test(self, test: TestSpec) -> str:
        if test.left is not None and test.right is not None:
            return self._arithmetic_test(test.op, test.left, test.right)
        v = self._var(test.field)
        if test.op == "exists":
            return f"{v} is not None"
        if test.other is not None:
            w = self._var(test.other)
            return f"{v} is not None and {w} is not None and {v} {test.op} {w}"
        value = test.value
        if test.op == "in":
            return f"{v} in {_members(frozenset(value))}"
        if test.op == "starts_with":
            return f"{v} is not None and {v}.startswith({value!r})"
        if test.op == "ends_with":
            return f"{v} is not None and {v}.endswith({value!r})"
        if test.op == "contains":
            return f"{v} is not None and {value!r} in {v}"
        if isinstance(value, bool):
            return f"{v} is {value!r}" if test.op == "==" else \
                f"{v} is not None and {v} is not {value!r}"
        literal = (self._constant("SET", frozenset(value)) if isinstance(value, list)
                   else repr(value))
        if test.op == "==":
            return f"{v} == {literal}"
        return f"{v} is not None and {v} {test.op} {literal}"


    def _arithmetic_test(self, op: str, left: arith.Expr, right: arith.Expr) -> str:
        """The comparison of two computed sides: false when a field is missing, else the sides
        compared, each checked finite (:meth:`_side`) when it is a computed number."""
        names = dict.fromkeys([*arith.fields(left), *arith.fields(right)])
        present = " and ".join(f"{self._var(name)} is not None" for name in names)
        comparison = f"{self._side(left)} {op} {self._side(right)}"
        return f"{present} and {comparison}" if present else comparison

    def _side(self, expr: arith.Expr) -> str:
        """``expr``'s value, checked finite inline when it may not be (``x - x`` is 0 for a
        finite int or float, NaN for an infinity or NaN; ``_not_finite()`` raises)."""
        text = self._expression(expr)
        if not self._may_overflow(expr):
            return text
        name = f"_n{self.computed}"
        self.computed += 1
        return f"({name} if ({name} := {text}) - {name} == 0 else _not_finite())"

    def _may_overflow(self, expr: arith.Expr) -> bool:
        """Whether ``expr`` computes a number that may not be finite (int arithmetic is exact)."""
        return (isinstance(expr, (arith.BinOp, arith.Neg))
                and arith.result_type(expr, self.types) == "number")

    def _expression(self, expr: arith.Expr) -> str:
        """Python for ``expr``, parenthesised throughout (Python's operators and precedence are
        the language's); a computed divisor is checked finite."""
        if isinstance(expr, arith.Field):
            # a `number` field sent as an int computes as a float (arith.operand); float()
            # of an int too large to be one raises OverflowError, a failure like any other
            return f"float({self._var(expr.name)})" if expr.number else self._var(expr.name)
        if isinstance(expr, arith.Const):
            return repr(expr.value)
        if isinstance(expr, arith.Neg):
            return f"(-{self._expression(expr.operand)})"
        right = (self._side(expr.right) if expr.op == "/" else self._expression(expr.right))
        return f"({self._expression(expr.left)} {expr.op} {right})"


class _NotFinite(ArithmeticError):
    """A computed number that is not finite (generated code raises it through
    :func:`_not_finite`)."""


_FAILURES = (ZeroDivisionError, OverflowError, _NotFinite)


def _rows_decider(policy: Policy, bases: Sequence[int],
                  otherwise_row: int | None) -> Callable[[int, tuple[Any, ...]], int]:
    """The row code of a block for a values tuple by the definition
    (:func:`sentra_runtime.policy.first_match`): what the generated code falls back to when a
    computation fails, since a later row of the same rule may still hold."""
    names = [spec.name for spec in policy.value_specs]

    def by_rows(block: int, values: tuple[Any, ...]) -> int:
        try:
            found = first_match(policy.actions[block].rows, dict(zip(names, values)))
        except RowFailure:
            return ARITHMETIC_ERROR
        if found is None:
            return NO_MATCH if otherwise_row is None else otherwise_row
        return bases[block] + found

    return by_rows


def _not_finite() -> Any:
    """Raise :class:`_NotFinite` (the generated code calls it for a value ``x`` with
    ``x - x != 0``)."""
    raise _NotFinite


def _all_or_fail(*tests: Callable[[], bool]) -> bool:
    """A row's arithmetic tests: false when one is false, else the first failure raised, else
    true (``policy.row_holds``)."""
    failed: BaseException | None = None
    for test in tests:
        try:
            if not test():
                return False
        except _FAILURES as failure:
            failed = failed or failure
    if failed is not None:
        raise failed
    return True


_DEFINITION = "return _by_definition(block, action, fields)"


def _members(values: frozenset[Any]) -> str:
    """A set display of constants, for ``in`` (Python makes it one frozenset constant);
    ``()`` when empty."""
    return "{" + ", ".join(repr(item) for item in sorted(values)) + "}" if values else "()"


# -- runs of rows ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Run:
    kind: str
    """``keyed`` (a dict lookup), ``range`` (a bisection) or ``row`` (one ``if``)."""
    start: int
    end: int
    field: str = ""


def _runs(rows: Sequence[RowSpec], types: Mapping[str, str], min_run: int) -> list[_Run]:
    """Split a block's rows into runs: at each row, the longest run of at least ``min_run``
    rows that one field's dict or bisection decides, else the row alone."""
    runs: list[_Run] = []
    start = 0
    if len(rows) < min_run:
        return [_Run("row", index, index + 1) for index in range(len(rows))]
    while start < len(rows):
        best = _Run("row", start, start + 1)
        for field in sorted({test.field for test in rows[start].tests if test.left is None}):
            for kind, fits in (("keyed", _keyed_fits), ("range", _range_fits)):
                end = start
                while end < len(rows) and rows[end].tests and fits(rows[end].tests, field,
                                                                   types):
                    end += 1
                if end - start >= min_run and end - start > best.end - best.start and (
                        kind == "range" or _keys_narrow(rows[start:end], field)):
                    best = _Run(kind, start, end, field)
        runs.append(best)
        start = best.end
    return runs


def _keys_narrow(rows: Sequence[RowSpec], field: str) -> bool:
    """Whether a dict on ``field`` leaves at most half the run's rows to try for any value
    (otherwise the lookup saves nothing over trying the rows)."""
    admitting: dict[Any, int] = {}
    for row in rows:
        for key in _keyed_split(row.tests, field)[0]:
            admitting[key] = admitting.get(key, 0) + 1
    return max(admitting.values()) * 2 <= len(rows)


def _keyed_fits(tests: Sequence[TestSpec], field: str, types: Mapping[str, str]) -> bool:
    return types[field] in _KEYED_TYPES and bool(_keyed_split(tests, field)[0])


def _keyed_split(tests: Sequence[TestSpec], field: str) -> tuple[frozenset[Any], list[TestSpec]]:
    """The values of ``field`` the row's equality and membership tests on it admit (their
    intersection; empty when it has none), and its other tests."""
    keys: frozenset[Any] | None = None
    residual = []
    for test in tests:
        if test.field == field and not test.negate and test.other is None and \
                test.op in ("==", "in") and not isinstance(test.value, bool):
            admitted = frozenset([test.value] if test.op == "==" else test.value)
            keys = admitted if keys is None else keys & admitted
        else:
            residual.append(test)
    if keys is None:
        return frozenset(), list(tests)
    return keys, residual


def _range_fits(tests: Sequence[TestSpec], field: str, types: Mapping[str, str]) -> bool:
    return types[field] in _NUMERIC and all(
        test.field == field and test.other is None
        and (test.op == "exists" or test.op in _RANGE_OPERATORS) for test in tests)


def _representatives(bounds: Sequence[Any]) -> list[Any]:
    """A value of every cell the sorted constants cut the number line into: below the first,
    each constant, between each two, above the last (exact fractions: the comparisons with the
    constants are exact)."""
    if not bounds:
        return [0]
    values: list[Any] = [Fraction(bounds[0]) - 1]
    for low, high in zip(bounds, bounds[1:]):
        values += [low, (Fraction(low) + Fraction(high)) / 2]
    return values + [bounds[-1], Fraction(bounds[-1]) + 1]


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value) if not isinstance(value, (int, float)) \
        else ("number", Fraction(value))
