"""Load a compiled decision table: validate its shape, verify its hash, refuse future schemas.

The table's schema is written once, as pydantic models in ``sentra_lang/table.py``; this module
is the small hand-written validator that follows those models, so the runtime needs nothing
beyond the standard library. Every error names the path of the offending value
(``rules[3].risk: expected integer, got string``).
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from sentra_runtime import arith, jsontext
from sentra_runtime.inputs import (
    IGNORE,
    REFUSE,
    TYPE_CHECKS,
    UNDECLARED_MODES,
    InputSchema,
    is_int,
    is_number,
    json_type,
    normalizer,
)

SCHEMA_VERSION = 4
"""The newest table schema this runtime reads. Version 2 added ``settings.undeclared_fields``;
a version-1 table has no such setting and ignores undeclared fields, as runtimes did then.
Version 3 added arithmetic tests (``left``/``right`` expression trees), the reason
placeholders ``{action}`` and ``{agent_id}``, and ``settings.risk_decay``; the compiler writes 3
only for a table that uses one of them, so older runtimes keep loading every other table.
Version 4 added rate limits (a rule's ``limit``, a block's and a group's ``limits``) and the
``review`` outcome (a rule's ``expires``, ``settings.review_timeout``)."""
LIMITS_VERSION = 4
"""The first schema version with rate limits."""
ARITHMETIC_VERSION = 3
"""The first schema version with arithmetic tests and the ``{action}``/``{agent_id}``
placeholders."""
REVIEW_VERSION = 4
"""The first schema version with the ``review`` outcome."""
DEFAULT_REVIEW_TIMEOUT = 86_400
"""How long a ``review`` ticket waits for an operator when neither its rule (``expires``) nor
the policy (``review_timeout``) says: 24 hours."""
UNDECLARED_DEFAULT = {1: IGNORE, 2: REFUSE, 3: REFUSE, 4: REFUSE}
"""What a table that does not say ``undeclared_fields`` does, by schema version."""

FIELD_TYPES = frozenset({"bool", "int", "number", "string", "enum", "set"})
NORMALIZATIONS = frozenset({"lower", "upper", "trim"})
OUTCOMES = frozenset({"allow", "block", "shutdown", "review"})
OPERATORS = frozenset(
    {"==", "!=", "<", "<=", ">", ">=", "in", "exists", "starts_with", "ends_with", "contains"}
)
ORDERING_OPERATORS = frozenset({"<", "<=", ">", ">="})
STRING_OPERATORS = frozenset({"starts_with", "ends_with"})
ARITHMETIC_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">="})
"""The comparisons an arithmetic test makes."""


class PolicyLoadError(ValueError):
    """The table cannot be used: malformed, tampered with, or from a future schema version."""


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str
    optional: bool
    has_default: bool
    default: Any
    normalize: tuple[str, ...]
    values: tuple[str, ...] | None


STATE_FIELDS: tuple[InputSpec, ...] = (
    InputSpec("agent.group", "string", False, False, None, (), None),
    InputSpec("agent.cumulative_risk", "int", False, False, None, (), None),
    InputSpec("agent.blocked_attempts", "int", False, False, None, (), None),
)
"""What a condition may read of the agent's own state (schema version 3): its group (``""``
for none), cumulative risk and blocked attempts before the decision, after decay. They are
never read from the action's input: the state step fills them in (docs/table.md, "Agent
state")."""
STATE_NAMES = frozenset(spec.name for spec in STATE_FIELDS)


@dataclass(frozen=True)
class TestSpec:
    field: str
    op: str
    value: Any
    other: str | None
    negate: bool
    left: arith.Expr | None = None
    """An arithmetic test's left side (``field`` is then ``""``, ``value`` and ``other`` None)."""
    right: arith.Expr | None = None


class TestLike(Protocol):
    """A test as :func:`test_result` reads it: a :class:`TestSpec`, or the compiler's model of
    one (``sentra_lang.table.Test``)."""

    @property
    def field(self) -> str: ...
    @property
    def op(self) -> str: ...
    @property
    def value(self) -> Any: ...
    @property
    def other(self) -> str | None: ...
    @property
    def negate(self) -> bool: ...
    @property
    def left(self) -> Any:
        """An arithmetic test's left side (an ``arith.Expr`` or its JSON), else ``None``."""
    @property
    def right(self) -> Any: ...


def test_holds(test: TestLike, values: Mapping[str, Any]) -> bool:
    """One test on the values the policy read (``None`` when absent): :func:`test_result`, or
    for an arithmetic test :func:`sentra_runtime.arith.compare` (which raises
    :class:`~sentra_runtime.arith.ArithmeticFailure` when a side cannot be computed)."""
    if test.left is not None:
        result = arith.compare(test.op, arith.as_expr(test.left), arith.as_expr(test.right),
                               values)
        return not result if test.negate else result
    return test_result(test, values.get(test.field),
                       values.get(test.other) if test.other is not None else None)


class RowLike(Protocol):
    """A row as :func:`first_match` reads it (a :class:`RowSpec` or the compiler's ``Row``)."""

    @property
    def rule(self) -> str: ...
    @property
    def tests(self) -> Sequence[Any]: ...


def first_match(rows: Sequence[RowLike], values: Mapping[str, Any]) -> int | None:
    """The index of the row that decides among ``rows`` (a block's), or ``None`` when no rule's
    condition holds: the one definition of a block (docs/table.md, "Rows").

    The consecutive rows of one rule are its condition (its disjunctive normal form), so the
    rule's condition holds when one of them holds (the first such row is returned). When none
    holds but one cannot be computed, the rule's condition is undetermined and
    :class:`RowFailure` is raised: the decision is ``ARITHMETIC_ERROR``, never a later rule.
    This is three-valued logic: an arithmetic failure matters only when the rest of the
    condition does not decide it (``false and ...`` is false, ``true or ...`` true).
    """
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and rows[end].rule == rows[start].rule:
            end += 1
        failed: RowFailure | None = None
        for position in range(start, end):
            try:
                if row_holds(rows[position].tests, values):
                    return position
            except RowFailure as failure:
                failed = failed or failure
        if failed is not None:
            raise failed
        start = end
    return None


class RowFailure(Exception):
    """A row none of whose tests is false, and one of whose arithmetic tests cannot be computed:
    the decision is ``ARITHMETIC_ERROR`` (:func:`row_holds`)."""

    def __init__(self, test: TestLike, failure: arith.ArithmeticFailure) -> None:
        super().__init__(str(failure))
        self.test = test
        self.failure = failure


def row_holds(tests: Sequence[TestLike], values: Mapping[str, Any]) -> bool:
    """Whether every test of a row holds: the one definition of a row (docs/table.md, "Rows").

    A false test makes the row false whatever the others do; otherwise an arithmetic test that
    cannot be computed raises :class:`RowFailure` for the first such test. So the order of a
    row's tests never changes its result, and a guard such as ``count > 0 and total / count >
    10`` keeps ``total / count`` from failing when ``count`` is 0.
    """
    failed: RowFailure | None = None
    for test in tests:
        try:
            if not test_holds(test, values):
                return False
        except arith.ArithmeticFailure as failure:
            failed = failed or RowFailure(test, failure)
    if failed is not None:
        raise failed
    return True


def test_result(test: TestLike, field: Any, other: Any = None) -> bool:
    """What one test means (docs/table.md, "Tests"), the one definition the explanations, the
    compiler's analysis and the generated code's range dispatch use: the test on its field's
    value and, for a field-to-field test, the other field's value (``None`` when absent); false
    when one is absent, then ``negate`` flips it."""
    if test.op == "exists":
        result = field is not None
    elif field is None:
        result = False
    elif test.other is not None:
        result = other is not None and COMPARISONS[test.op](field, other)
    elif test.op == "in":
        result = field in test.value
    elif test.op == "starts_with":
        result = field.startswith(test.value)
    elif test.op == "ends_with":
        result = field.endswith(test.value)
    elif test.op == "contains":
        result = test.value in field
    else:
        value = frozenset(test.value) if isinstance(test.value, list) else test.value
        if isinstance(value, bool) or isinstance(field, bool):
            result = (field is value) == (test.op == "==")
        else:
            result = COMPARISONS[test.op](field, value)
    return not result if test.negate else result


COMPARISONS: dict[str, Any] = {"==": operator.eq, "!=": operator.ne, "<": operator.lt,
                               "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class RowSpec:
    rule: str
    tests: tuple[TestSpec, ...]


@dataclass(frozen=True)
class LimitSpec:
    """A rate limit (docs/language.md, "Rate limits"): at most ``count`` allowed decisions of
    an agent in any window of ``period`` seconds. ``key`` names the limit's window in the
    agent's stored state; ``target`` is what it counts, as a reason names it. New in schema
    version 4."""

    key: str
    count: int
    period: int
    target: str
    action: str | None = None
    """A group limit's action (``None``: every action); unused by other limits."""

    def __str__(self) -> str:
        return f"{self.count} per {duration_text(self.period)}"


@dataclass(frozen=True)
class RuleSpec:
    id: str
    outcome: str
    risk: int
    threat: str | None
    reason: str
    description: str | None
    condition: str | None
    limit: LimitSpec | None = None
    """The rule's rate limit (its allowed decisions); ``None``: none."""
    expires: int | None = None
    """A ``review`` rule's ticket lifetime in seconds (``None``: the policy's
    ``review_timeout``)."""


@dataclass(frozen=True)
class ActionSpec:
    names: tuple[str, ...]
    rows: tuple[RowSpec, ...]
    limits: tuple[LimitSpec, ...] = ()
    """The block's rate limits (its actions' allowed decisions, counted together)."""


@dataclass(frozen=True)
class RiskDecay:
    """``risk_decay AMOUNT per PERIOD``: cumulative risk goes down by ``amount`` for every whole
    ``period`` (seconds) since the agent's decay anchor, never below 0."""

    amount: int
    period: int

    def __str__(self) -> str:
        return f"{self.amount} per {duration_text(self.period)}"


def limit_key(prefix: str, period: int) -> str:
    """A limit's window key: what it counts (the rule, the block or the group's target) and its
    period in seconds, so a limit whose count changes keeps its window (docs/runtime.md,
    "Rate-limit windows")."""
    return f"{prefix} per {period}"


def key_period(key: str) -> int | None:
    """The period (seconds) a window key names (:func:`limit_key`); ``None`` for a text that
    is no window key."""
    _, per, period = key.rpartition(" per ")
    if not per or not period.isdigit() or not period.isascii() or int(period) < 1:
        return None
    return int(period)


def pattern_holds(pattern: str, agent_id: str) -> bool:
    """Whether a group's agent pattern holds an agent id: the exact id, or, for a pattern
    ending in ``*``, every id that starts with what comes before it (``"*"`` holds all)."""
    if pattern.endswith("*"):
        return agent_id.startswith(pattern[:-1])
    return agent_id == pattern


@dataclass(frozen=True)
class GroupSpec:
    """A ``group`` of the policy: the agents it holds (exact ids; a trailing ``*`` is a
    prefix) and the settings it overrides (``None``: the header's). New in schema version 3."""

    name: str
    agents: tuple[str, ...]
    risk_threshold: int | None = None
    strikes: int | None = None
    risk_decay: RiskDecay | None = None
    limits: tuple[LimitSpec, ...] = ()
    """The group's rate limits, for each agent in it (on one action or every action)."""

    def holds(self, agent_id: str) -> bool:
        """Whether one of the group's patterns matches the agent's id."""
        return any(pattern_holds(pattern, agent_id) for pattern in self.agents)


@dataclass(frozen=True)
class AgentSettings:
    """The settings that apply to an agent: its group's, the header's where the group gives
    none (or for an agent in no group, whose ``group`` is ``""``)."""

    group: str
    risk_threshold: int
    strikes: int
    risk_decay: RiskDecay | None


DURATION_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
"""The units of a duration (``30m``, ``1h``, ``7d``), largest first, in seconds."""


def duration_text(seconds: int) -> str:
    """A whole number of seconds as the language writes it, in the largest unit that divides
    it exactly (``3600`` is ``1h``, ``5400`` is ``90m``)."""
    for unit, size in DURATION_UNITS:
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Policy:
    """A validated, hash-verified decision table, ready to be compiled by the engine."""

    schema_version: int
    name: str
    version: str
    description: str | None
    risk_threshold: int
    strikes: int
    action_normalize: tuple[str, ...]
    undeclared_fields: str
    """``refuse`` or ``ignore``: what a key of the input that the policy does not declare does."""
    risk_decay: RiskDecay | None
    """How cumulative risk decays over time; ``None``: it does not (the default)."""
    inputs: tuple[InputSpec, ...]
    rules: tuple[RuleSpec, ...]
    actions: tuple[ActionSpec, ...]
    otherwise: str | None
    hash: str
    rules_by_id: Mapping[str, RuleSpec]
    """The rules by id (what :meth:`rule` reads)."""
    inputs_by_name: Mapping[str, InputSpec]
    groups: tuple[GroupSpec, ...] = ()
    """The declared groups, in declaration order (docs/language.md, "Agent groups")."""
    reads_state: bool = False
    """Whether a test reads the agent's state (:data:`STATE_FIELDS`): the decision is then
    matched inside the store's per-agent lock or transaction."""
    review_timeout: int = DEFAULT_REVIEW_TIMEOUT
    """How long (seconds) a ``review`` ticket waits when its rule gives no ``expires``."""

    @cached_property
    def reviews(self) -> bool:
        """Whether a rule holds decisions for an operator (the ``review`` outcome)."""
        return any(rule.outcome == "review" for rule in self.rules)

    def review_lifetime(self, rule: RuleSpec) -> int:
        """How long (seconds) a ticket of this ``review`` rule waits for an operator."""
        return self.review_timeout if rule.expires is None else rule.expires

    @cached_property
    def value_specs(self) -> tuple[InputSpec, ...]:
        """The values a row reads, in order: the declared inputs, then the agent's state
        fields when the policy reads them."""
        return self.inputs + STATE_FIELDS if self.reads_state else self.inputs

    def group_of(self, agent_id: str) -> GroupSpec | None:
        """The agent's group: the first, in declaration order, one of whose patterns matches
        its id; ``None`` when none does (the header's settings apply)."""
        for group in self.groups:
            if group.holds(agent_id):
                return group
        return None

    def group_settings(self, group: GroupSpec | None) -> AgentSettings:
        """A group's settings, the header's where it gives none (``None``: the header's)."""
        if group is None:
            return AgentSettings("", self.risk_threshold, self.strikes, self.risk_decay)
        return AgentSettings(group.name, group.risk_threshold or self.risk_threshold,
                             group.strikes or self.strikes, group.risk_decay or self.risk_decay)

    def settings_of(self, agent_id: str, group: str | None = None) -> AgentSettings:
        """The settings that apply to this agent: its group's (:meth:`group_of`), or, given
        ``group`` (the group a decision names: an operator's assignment wins over patterns),
        that group's (``""``: none)."""
        if group is None:
            return self.group_settings(self.group_of(agent_id))
        found = self._settings_by_name.get(group)
        return found if found is not None else self.group_settings(None)

    @cached_property
    def _settings_by_name(self) -> dict[str, AgentSettings]:
        """Each declared group's settings by its name (every decision's explanation reads
        them)."""
        return {group.name: self.group_settings(group) for group in self.groups}

    def group_named(self, name: str) -> GroupSpec | None:
        """The declared group of this name; ``None`` when there is none."""
        return next((group for group in self.groups if group.name == name), None)

    def rule(self, rule_id: str) -> RuleSpec:
        """The rule with this id (``KeyError`` when there is none)."""
        return self.rules_by_id[rule_id]

    def input_field(self, name: str) -> InputSpec:
        """The declared field with this dotted name (``KeyError`` when there is none)."""
        return self.inputs_by_name[name]

    @cached_property
    def input_schema(self) -> InputSchema:
        """How this policy reads an action's input (made once, on first use)."""
        return InputSchema(self.inputs, self.undeclared_fields)


def canonical_json(data: Any) -> str:
    """The serialisation every hash uses (identical to ``sentra_lang.table.canonical_json``)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(table_data: Mapping[str, Any]) -> str:
    """``sha256:`` + hex SHA-256 of the canonical JSON of the table without its ``hash`` key."""
    body = {key: value for key, value in table_data.items() if key != "hash"}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def load_policy(source: Policy | Mapping[str, Any] | str | os.PathLike[str], *,
                verify_hash: bool = True) -> Policy:
    """Load a table from a parsed dict, JSON text, or a path to a JSON file.

    A string that starts with ``{`` (after white space) is JSON text; any other string is a path.
    """
    if isinstance(source, Policy):
        return source
    if isinstance(source, Mapping):
        return policy_from_dict(source, verify_hash=verify_hash)
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return policy_from_json(source, verify_hash=verify_hash)
    if isinstance(source, (str, os.PathLike)):
        return policy_from_file(source, verify_hash=verify_hash)
    raise PolicyLoadError(f"cannot load a policy from {type(source).__name__}")


def policy_from_file(path: str | os.PathLike[str], *, verify_hash: bool = True) -> Policy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyLoadError(f"cannot read policy table {os.fspath(path)!s}: {error}") from None
    return policy_from_json(text, verify_hash=verify_hash)


def policy_from_json(text: str, *, verify_hash: bool = True) -> Policy:
    try:
        data = jsontext.loads(text)
    except jsontext.JSONTextError as error:
        raise PolicyLoadError(f"policy table is not valid JSON: {error}") from None
    return policy_from_dict(data, verify_hash=verify_hash)


def policy_from_dict(data: Any, *, verify_hash: bool = True) -> Policy:
    if not isinstance(data, Mapping):
        raise PolicyLoadError(f"table: expected object, got {json_type(data)}")
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise PolicyLoadError(
            f"table schema_version {version} is newer than this runtime supports "
            f"({SCHEMA_VERSION}); upgrade sentra-runtime to load it"
        )
    policy = _Validator().table(data)
    if verify_hash:
        _verify_hash(data)
    return policy


def _verify_hash(data: Mapping[str, Any]) -> None:
    recorded = data.get("hash", "")
    if not recorded:
        raise PolicyLoadError("hash: the table has no content hash; compile it with sentra-lang")
    actual = content_hash(data)
    if recorded != actual:
        raise PolicyLoadError(
            f"hash: content hash mismatch (recorded {recorded}, computed {actual}); "
            "the table was modified after it was compiled"
        )


def _fail(path: str, message: str) -> PolicyLoadError:
    return PolicyLoadError(f"{path}: {message}")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (bool, str)) or is_number(value)


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


_SETTINGS = {
    1: frozenset({"risk_threshold", "strikes", "action_normalize"}),
    2: frozenset({"risk_threshold", "strikes", "action_normalize", "undeclared_fields"}),
    3: frozenset({"risk_threshold", "strikes", "action_normalize", "undeclared_fields",
                  "risk_decay"}),
    4: frozenset({"risk_threshold", "strikes", "action_normalize", "undeclared_fields",
                  "risk_decay", "review_timeout"}),
}
"""The keys of ``settings``, by schema version."""
_NONE: frozenset[str] = frozenset()
_TABLE = (frozenset({"policy", "settings", "input", "rules", "actions"}),
          frozenset({"schema_version", "otherwise", "hash", "groups"}))
_INFO = (frozenset({"name", "version"}), frozenset({"description"}))
_INPUT = (frozenset({"name", "type"}),
          frozenset({"optional", "default", "has_default", "normalize", "values"}))
_RULE = (frozenset({"id", "outcome", "span"}),
         frozenset({"risk", "threat", "reason", "description", "condition", "generated_id",
                    "limit", "expires"}))
_SPAN = (frozenset({"file", "line", "column", "end_line", "end_column"}), _NONE)
_ACTION = (frozenset({"names", "rows"}), frozenset({"limits"}))
_ROW = (frozenset({"rule"}), frozenset({"tests"}))
_TEST = (frozenset({"op"}), frozenset({"field", "value", "other", "negate", "left", "right"}))
_ARITHMETIC_TEST = (frozenset({"op", "left", "right"}), frozenset({"negate"}))
_DECAY = (frozenset({"amount", "period"}), _NONE)
_GROUP = (frozenset({"name", "agents"}), frozenset({"risk_threshold", "strikes", "risk_decay",
                                                    "limits"}))
_LIMIT = (frozenset({"count", "period"}), _NONE)
_GROUP_LIMIT = (frozenset({"count", "period"}), frozenset({"action"}))
GROUPS_VERSION = 3
"""The first table schema with ``groups``."""
"""Per object of the schema: its required and its optional keys."""


def _group_limit_target(group: str, data: Any) -> tuple[str, str]:
    """A group limit's window key prefix and what it counts (for one action, or all)."""
    action = data.get("action") if isinstance(data, Mapping) else None
    if isinstance(action, str):
        return f"group {group} {action}", f"`{action}` in group `{group}`"
    return f"group {group} *", f"all actions in group `{group}`"


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Validator:
    """Checks the table against the schema of ``sentra_lang/table.py`` and its references.

    Each check takes the path of the object and the key of the value; the full path is
    written out only in an error message (a large table has hundreds of thousands of values).
    """

    numbers: frozenset[str] = frozenset()
    """The input fields declared ``number`` (an expression's :attr:`arith.Field.number`)."""

    def table(self, data: Mapping[str, Any]) -> Policy:
        self._object("table", data, _TABLE)
        schema_version = self._int("", "schema_version",
                                   data.get("schema_version", SCHEMA_VERSION))
        if schema_version < 1:
            raise _fail("schema_version", f"unsupported schema version {schema_version}")
        info = self._object("policy", data["policy"], _INFO)
        settings = self._object("settings", data["settings"],
                                (_NONE, _SETTINGS[min(schema_version, SCHEMA_VERSION)]))
        inputs = tuple(self._input(f"input[{i}]", item)
                       for i, item in enumerate(self._list("", "input", data["input"])))
        self.schema_version = schema_version
        self.numbers = frozenset(spec.name for spec in inputs if spec.type == "number")
        rules = tuple(self._rule(f"rules[{i}]", item)
                      for i, item in enumerate(self._list("", "rules", data["rules"])))
        actions = tuple(self._action(f"actions[{i}]", item)
                        for i, item in enumerate(self._list("", "actions", data["actions"])))
        policy = Policy(
            schema_version=schema_version,
            name=self._str("policy", "name", info["name"]),
            version=self._str("policy", "version", info["version"]),
            description=self._optional_str("policy", "description", info.get("description")),
            risk_threshold=self._int("settings", "risk_threshold",
                                     settings.get("risk_threshold", 100)),
            strikes=self._int("settings", "strikes", settings.get("strikes", 3)),
            action_normalize=self._normalize_list(
                "settings", "action_normalize", settings.get("action_normalize", [])),
            undeclared_fields=self._choice(
                "settings", "undeclared_fields",
                settings.get("undeclared_fields", UNDECLARED_DEFAULT[schema_version]),
                frozenset(UNDECLARED_MODES)),
            risk_decay=self._decay("settings.risk_decay", settings.get("risk_decay")),
            inputs=inputs,
            rules=rules,
            actions=actions,
            otherwise=self._optional_str("", "otherwise", data.get("otherwise")),
            hash=self._str("", "hash", data.get("hash", "")),
            rules_by_id={rule.id: rule for rule in rules},
            inputs_by_name={spec.name: spec for spec in inputs},
            groups=self._groups(data.get("groups")),
            reads_state=self._reads_state(actions),
            review_timeout=self._positive("settings", "review_timeout",
                                          settings.get("review_timeout",
                                                       DEFAULT_REVIEW_TIMEOUT)),
        )
        _References(policy).check()
        return policy

    def _reads_state(self, actions: tuple[ActionSpec, ...]) -> bool:
        """Whether a test reads ``agent.*`` (refused below schema version 3, where it was an
        ordinary input field)."""
        if self.schema_version < GROUPS_VERSION:
            return False
        return any(name in STATE_NAMES for action in actions for row in action.rows
                   for test in row.tests for name in _test_fields(test))

    def _groups(self, data: Any) -> tuple[GroupSpec, ...]:
        if data is None:
            return ()
        if self.schema_version < GROUPS_VERSION:
            raise _fail("groups", f"groups need table schema version {GROUPS_VERSION}, the "
                                  f"table says {self.schema_version}")
        groups = tuple(self._group(f"groups[{i}]", item)
                       for i, item in enumerate(self._list("", "groups", data)))
        names = [group.name for group in groups]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise _fail(f"groups[{index}].name", f"group `{name}` is declared twice")
        return groups

    def _group(self, path: str, data: Any) -> GroupSpec:
        item = self._object(path, data, _GROUP)
        agents = item["agents"]
        if not _is_string_list(agents):
            raise _fail(f"{path}.agents", f"expected array of strings, got {json_type(agents)}")
        for index, pattern in enumerate(agents):
            if not pattern or "*" in pattern[:-1]:
                raise _fail(f"{path}.agents[{index}]", f"`{pattern}` is not an agent pattern "
                                                       "(an id, or a prefix ending in `*`)")
        limits: dict[str, int | None] = {}
        for key in ("risk_threshold", "strikes"):
            value = item.get(key)
            if value is not None:
                value = self._int(path, key, value)
                if value < 1:
                    raise _fail(f"{path}.{key}", f"expected a positive integer, got {value}")
            limits[key] = value
        name = self._str(path, "name", item["name"])
        rate_limits = tuple(
            self._limit(f"{path}.limits[{i}]", limit, _group_limit_target(name, limit))
            for i, limit in enumerate(self._list(path, "limits", item.get("limits", []))))
        return GroupSpec(name, tuple(agents), limits["risk_threshold"], limits["strikes"],
                         self._decay(f"{path}.risk_decay", item.get("risk_decay")), rate_limits)

    def _limit(self, path: str, data: Any, target: tuple[str, str]) -> LimitSpec:
        """A rate limit; ``target`` is its window's key prefix and what it counts."""
        if self.schema_version < LIMITS_VERSION:
            raise _fail(path, f"limits need table schema version {LIMITS_VERSION}, the table "
                              f"says {self.schema_version}")
        item = self._object(path, data, _GROUP_LIMIT if path.startswith("groups") else _LIMIT)
        if "action" in item:
            self._str(path, "action", item["action"])
        count, period = self._int(path, "count", item["count"]), \
            self._int(path, "period", item["period"])
        for key, value in (("count", count), ("period", period)):
            if value < 1:
                raise _fail(f"{path}.{key}", f"expected a positive integer, got {value}")
        action = item.get("action")
        return LimitSpec(limit_key(target[0], period), count, period, target[1], action)

    def _decay(self, path: str, data: Any) -> RiskDecay | None:
        if data is None:
            return None
        item = self._object(path, data, _DECAY)
        amount, period = self._int(path, "amount", item["amount"]), \
            self._int(path, "period", item["period"])
        for key, value in (("amount", amount), ("period", period)):
            if value < 1:
                raise _fail(f"{path}.{key}", f"expected a positive integer, got {value}")
        return RiskDecay(amount, period)

    def _input(self, path: str, data: Any) -> InputSpec:
        item = self._object(path, data, _INPUT)
        field_type = self._choice(path, "type", item["type"], FIELD_TYPES)
        values = item.get("values")
        if values is not None and not _is_string_list(values):
            raise _fail(f"{path}.values", f"expected array of strings, got {json_type(values)}")
        if field_type == "enum" and not values:
            raise _fail(f"{path}.values", "an enum field needs its closed set of values")
        default = item.get("default")
        if default is not None and not (_is_scalar(default) or _is_string_list(default)):
            raise _fail(f"{path}.default", f"expected scalar or array of strings, got "
                                           f"{json_type(default)}")
        return InputSpec(
            name=self._str(path, "name", item["name"]),
            type=field_type,
            optional=self._bool(path, "optional", item.get("optional", False)),
            has_default=self._bool(path, "has_default", item.get("has_default", False)),
            default=default,
            normalize=self._normalize_list(path, "normalize", item.get("normalize", [])),
            values=tuple(values) if values is not None else None,
        )

    def _positive(self, path: str, key: str, value: Any) -> int:
        number = self._int(path, key, value)
        if number < 1:
            raise _fail(_at(path, key), f"expected a positive integer, got {number}")
        return number

    def _rule(self, path: str, data: Any) -> RuleSpec:
        item = self._object(path, data, _RULE)
        self._span(f"{path}.span", item["span"])
        self._bool(path, "generated_id", item.get("generated_id", False))
        outcome = self._choice(path, "outcome", item["outcome"], OUTCOMES)
        if outcome == "review" and self.schema_version < REVIEW_VERSION:
            raise _fail(f"{path}.outcome", f"the `review` outcome needs table schema version "
                                           f"{REVIEW_VERSION}, the table says "
                                           f"{self.schema_version}")
        expires = item.get("expires")
        if expires is not None:
            if outcome != "review":
                raise _fail(f"{path}.expires", "only a `review` rule has an expiry")
            expires = self._positive(path, "expires", expires)
        return RuleSpec(
            id=self._str(path, "id", item["id"]),
            outcome=outcome,
            risk=self._int(path, "risk", item.get("risk", 0)),
            threat=self._optional_str(path, "threat", item.get("threat")),
            reason=self._str(path, "reason", item.get("reason", "")),
            description=self._optional_str(path, "description", item.get("description")),
            condition=self._optional_str(path, "condition", item.get("condition")),
            limit=None if item.get("limit") is None else self._limit(
                f"{path}.limit", item["limit"], (f"rule {item['id']}", f"`{item['id']}`")),
            expires=expires,
        )

    def _span(self, path: str, data: Any) -> None:
        span = self._object(path, data, _SPAN)
        self._str(path, "file", span["file"])
        for key in ("line", "column", "end_line", "end_column"):
            self._int(path, key, span[key])

    def _action(self, path: str, data: Any) -> ActionSpec:
        item = self._object(path, data, _ACTION)
        names = self._list(path, "names", item["names"])
        rows = self._list(path, "rows", item["rows"])
        action_names = tuple(self._str(path, f"names[{i}]", name)
                             for i, name in enumerate(names))
        target = (f"action {','.join(action_names)}",
                  ", ".join(f"`{name}`" for name in action_names))
        return ActionSpec(
            names=action_names,
            rows=tuple(self._row(f"{path}.rows[{i}]", row) for i, row in enumerate(rows)),
            limits=tuple(self._limit(f"{path}.limits[{i}]", limit, target)
                         for i, limit in enumerate(self._list(path, "limits",
                                                              item.get("limits", [])))),
        )

    def _row(self, path: str, data: Any) -> RowSpec:
        item = self._object(path, data, _ROW)
        tests = self._list(path, "tests", item.get("tests", []))
        return RowSpec(
            rule=self._str(path, "rule", item["rule"]),
            tests=tuple(self._test(f"{path}.tests[{i}]", test) for i, test in enumerate(tests)),
        )

    def _test(self, path: str, data: Any) -> TestSpec:
        item = self._object(path, data, _TEST)
        if "left" in item or "right" in item:
            return self._arithmetic_test(path, item)
        if "field" not in item:
            raise _fail(path, "missing required key `field`")
        value = item.get("value")
        if value is not None and not (_is_scalar(value) or _is_string_list(value)):
            raise _fail(f"{path}.value", f"expected scalar or array of strings, got "
                                         f"{json_type(value)}")
        return TestSpec(
            field=self._str(path, "field", item["field"]),
            op=self._choice(path, "op", item["op"], OPERATORS),
            value=value,
            other=self._optional_str(path, "other", item.get("other")),
            negate=self._bool(path, "negate", item.get("negate", False)),
        )

    def _arithmetic_test(self, path: str, data: Mapping[str, Any]) -> TestSpec:
        item = self._object(path, data, _ARITHMETIC_TEST)
        if self.schema_version < ARITHMETIC_VERSION:
            raise _fail(path, f"arithmetic tests need schema_version {ARITHMETIC_VERSION} "
                              f"(the table says {self.schema_version})")
        try:
            left = arith.from_json(item["left"], f"{path}.left", numbers=self.numbers)
            right = arith.from_json(item["right"], f"{path}.right", numbers=self.numbers)
        except arith.ExpressionError as error:
            raise PolicyLoadError(str(error)) from None
        return TestSpec(field="", op=self._choice(path, "op", item["op"], ARITHMETIC_OPERATORS),
                        value=None, other=None,
                        negate=self._bool(path, "negate", item.get("negate", False)),
                        left=left, right=right)

    def _object(self, path: str, data: Any,
                keys: tuple[frozenset[str], frozenset[str]]) -> Mapping[str, Any]:
        """``data`` is an object with every required key and no other than the optional ones."""
        if not isinstance(data, Mapping):
            raise _fail(path, f"expected object, got {json_type(data)}")
        required, optional = keys
        if not required <= data.keys():
            raise _fail(path, f"missing required key `{min(required - data.keys())}`")
        unknown = data.keys() - required - optional
        if unknown:
            raise _fail(path, f"unknown key `{min(unknown, key=str)}`")
        return data

    def _list(self, path: str, key: str, data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise _fail(_at(path, key), f"expected array, got {json_type(data)}")
        return data

    def _str(self, path: str, key: str, data: Any) -> str:
        if data.__class__ is not str and not isinstance(data, str):
            raise _fail(_at(path, key), f"expected string, got {json_type(data)}")
        return data

    def _optional_str(self, path: str, key: str, data: Any) -> str | None:
        return None if data is None else self._str(path, key, data)

    def _int(self, path: str, key: str, data: Any) -> int:
        if data.__class__ is not int and not is_int(data):
            raise _fail(_at(path, key), f"expected integer, got {json_type(data)}")
        return int(data)

    def _bool(self, path: str, key: str, data: Any) -> bool:
        if data is not True and data is not False:
            raise _fail(_at(path, key), f"expected boolean, got {json_type(data)}")
        return data

    def _choice(self, path: str, key: str, data: Any, choices: frozenset[str]) -> str:
        value = self._str(path, key, data)
        if value not in choices:
            allowed = ", ".join(f"`{choice}`" for choice in sorted(choices))
            raise _fail(_at(path, key), f"unknown value `{value}` (expected one of {allowed})")
        return value

    def _normalize_list(self, path: str, key: str, data: Any) -> tuple[str, ...]:
        items = self._list(path, key, data)
        return tuple(self._choice(path, f"{key}[{i}]", item, NORMALIZATIONS)
                     for i, item in enumerate(items))


def _test_fields(test: TestSpec) -> list[str]:
    """The fields a test reads."""
    if test.left is not None and test.right is not None:
        return [*arith.fields(test.left), *arith.fields(test.right)]
    return [test.field] if test.other is None else [test.field, test.other]


class _References:
    """Checks what the schema alone cannot: ids resolve, fields are declared, tests fit types."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.fields = {spec.name: spec for spec in policy.value_specs}
        self.rule_ids = {rule.id for rule in policy.rules}

    def check(self) -> None:
        self._unique("input", [spec.name for spec in self.policy.inputs], "field")
        self._unique("rules", [rule.id for rule in self.policy.rules], "rule id")
        for index, spec in enumerate(self.policy.inputs):
            self._default(f"input[{index}]", spec)
            self._readable(f"input[{index}].name", spec.name)
            if self.policy.reads_state and spec.name.split(".")[0] == "agent":
                raise _fail(f"input[{index}].name", f"field `{spec.name}`: `agent` is the "
                                                    "agent's state, which the tests read")
        seen: dict[str, int] = {}
        for a_index, action in enumerate(self.policy.actions):
            for n_index, name in enumerate(action.names):
                if name in seen:
                    raise _fail(f"actions[{a_index}].names[{n_index}]",
                                f"action `{name}` is already covered by actions[{seen[name]}]")
                seen[name] = a_index
            for r_index, row in enumerate(action.rows):
                path = f"actions[{a_index}].rows[{r_index}]"
                self._rule_ref(f"{path}.rule", row.rule)
                for t_index, test in enumerate(row.tests):
                    self._test(f"{path}.tests[{t_index}]", test)
        if self.policy.otherwise is not None:
            self._rule_ref("otherwise", self.policy.otherwise)

    def _readable(self, path: str, name: str) -> None:
        """A dotted name has no empty part, and no field is inside another (``a`` and ``a.b``:
        input could not give both)."""
        parts = name.split(".")
        if not all(parts):
            raise _fail(path, f"field `{name}` has an empty name part")
        for depth in range(1, len(parts)):
            if ".".join(parts[:depth]) in self.fields:
                raise _fail(path, f"field `{name}` is inside the declared field "
                                  f"`{'.'.join(parts[:depth])}`")

    def _unique(self, path: str, names: list[str], what: str) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                raise _fail(f"{path}[{index}]", f"duplicate {what} `{name}`")
            seen.add(name)

    def _rule_ref(self, path: str, rule_id: str) -> None:
        if rule_id not in self.rule_ids:
            raise _fail(path, f"unknown rule id `{rule_id}`")

    def _field(self, path: str, name: str) -> InputSpec:
        try:
            return self.fields[name]
        except KeyError:
            raise _fail(path, f"field `{name}` is not declared in the table's input") from None

    def _default(self, path: str, spec: InputSpec) -> None:
        if not spec.has_default:
            return
        if spec.default is None:
            raise _fail(f"{path}.default", "has_default is true but the default is null")
        if not TYPE_CHECKS[spec.type](spec.default):
            raise _fail(f"{path}.default", f"default does not fit type `{spec.type}`")
        if spec.type == "enum" and normalizer(spec.normalize)(spec.default) not in (spec.values or ()):
            raise _fail(f"{path}.default", f"default `{spec.default}` is not one of the enum's values")

    def _test(self, path: str, test: TestSpec) -> None:
        if test.left is not None and test.right is not None:
            for side, expr in (("left", test.left), ("right", test.right)):
                for name in arith.fields(expr):
                    spec = self._field(f"{path}.{side}", name)
                    if not _numeric(spec):
                        raise _fail(f"{path}.{side}", f"arithmetic takes numbers; `{name}` is "
                                                      f"{spec.type}")
            return
        spec = self._field(f"{path}.field", test.field)
        if test.op == "exists":
            if test.value is not None or test.other is not None:
                raise _fail(path, "an `exists` test takes neither `value` nor `other`")
            return
        if (test.value is None) == (test.other is None):
            raise _fail(path, "exactly one of `value` and `other` must be set")
        if test.other is not None:
            other = self._field(f"{path}.other", test.other)
            if test.op in ORDERING_OPERATORS and not (_numeric(spec) and _numeric(other)):
                raise _fail(path, f"`{test.op}` compares numbers; `{test.field}` is "
                                  f"{spec.type} and `{test.other}` is {other.type}")
            if test.op not in ORDERING_OPERATORS | {"==", "!="}:
                raise _fail(f"{path}.op", f"`{test.op}` cannot compare two fields")
            return
        self._literal(path, test, spec)

    def _literal(self, path: str, test: TestSpec, spec: InputSpec) -> None:
        value = test.value
        if test.op in ORDERING_OPERATORS:
            ok = _numeric(spec) and is_number(value)
            expected = "a number compared with a numeric field"
        elif test.op == "in":
            ok = _is_string_list(value) and spec.type in ("string", "enum")
            expected = "an array of strings tested against a string field"
        elif test.op in STRING_OPERATORS:
            ok = isinstance(value, str) and spec.type in ("string", "enum")
            expected = "a string tested against a string field"
        elif test.op == "contains":
            ok = isinstance(value, str) and spec.type in ("string", "enum", "set")
            expected = "a string tested against a string or set field"
        else:
            ok = TYPE_CHECKS[spec.type](value) or (_numeric(spec) and is_number(value))
            expected = f"a value of the field's type `{spec.type}`"
        if not ok:
            raise _fail(f"{path}.value", f"`{test.op}` on `{test.field}` needs {expected}")


def _numeric(spec: InputSpec) -> bool:
    return spec.type in ("int", "number")
