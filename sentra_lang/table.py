"""The compiled decision table: the single written schema of the compiler's output.

The table is the contract between the toolchain and ``sentra_runtime``. These pydantic models
are the one place its shape is written down; ``docs/table.schema.json`` is exported from them
and the runtime checks tables with a small hand-written validator that follows them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer
from sentra_runtime.policy import ARITHMETIC_VERSION as ARITHMETIC_SCHEMA_VERSION
from sentra_runtime.policy import LIMITS_VERSION as LIMITS_SCHEMA_VERSION
from sentra_runtime.policy import REVIEW_VERSION as REVIEW_SCHEMA_VERSION
from sentra_runtime.policy import SCHEMA_VERSION, canonical_json, content_hash

__all__ = ["ARITHMETIC_SCHEMA_VERSION", "LIMITS_SCHEMA_VERSION", "PLAIN_SCHEMA_VERSION", "REVIEW_SCHEMA_VERSION", "GroupLimit", "Limit", "SCHEMA_VERSION", "ActionBlock", "InputField", "PolicyInfo",
           "Group", "RiskDecay", "Row", "Rule", "Settings", "SourceSpan", "Table", "Test", "canonical_json", "content_hash",
           "dump_table", "json_schema", "seal"]

Scalar = bool | int | float | str
FieldType = Literal["bool", "int", "number", "string", "enum", "set"]
Normalization = Literal["lower", "upper", "trim"]
Outcome = Literal["allow", "block", "shutdown", "review"]
UndeclaredFields = Literal["refuse", "ignore"]
Operator = Literal[
    "==", "!=", "<", "<=", ">", ">=", "in", "exists", "starts_with", "ends_with", "contains"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    optional_keys: ClassVar[tuple[str, ...]] = ()
    """Keys left out of the model's JSON when absent (``None`` or an empty list), so that a
    table which uses no newer feature is written as before it and older runtimes load it."""

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        for key in self.optional_keys:
            if key in data and data[key] in (None, []):
                del data[key]
        return data


class SourceSpan(_Model):
    """Where a rule came from: file (relative to the policy's folder), 1-based line and column."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int


class PolicyInfo(_Model):
    name: str
    version: str
    description: str | None = None


PLAIN_SCHEMA_VERSION = 2
"""The version of a table that uses no version-3 feature (``risk_decay``): written so that
runtimes of version 2 still load it."""


class RiskDecay(_Model):
    """``risk_decay AMOUNT per DURATION``: cumulative risk goes down by ``amount`` for every whole
    ``period`` since the agent's decay anchor. New in schema version 3."""

    amount: int = Field(ge=1)
    period: int = Field(ge=1, description="The period in whole seconds.")


class Limit(_Model):
    """``limit COUNT per PERIOD``: at most ``count`` allowed decisions of an agent in any window
    of ``period`` seconds (sliding: the ``count`` counted decisions in ``(now - period, now]``
    block the next). New in schema version 4."""

    count: int = Field(ge=1)
    period: int = Field(ge=1, description="The window in whole seconds.")


class GroupLimit(_Model):
    """A group's limit: on one ``action`` type, or on every action when it has none. New in
    schema version 4."""

    action: str | None = Field(default=None, description="The normalised action type; "
                                                          "absent: every action.")
    count: int = Field(ge=1)
    period: int = Field(ge=1, description="The window in whole seconds.")

    optional_keys = ("action",)


class Settings(_Model):
    risk_threshold: int = 100
    strikes: int = 3
    action_normalize: list[Normalization] = Field(
        default_factory=list,
        description="Normalisation applied to the action type before dispatch, in order.",
    )
    undeclared_fields: UndeclaredFields = Field(
        default="refuse",
        description="What an input key the policy does not declare does: `refuse` blocks the "
                    "action (rule id UNDECLARED_FIELD), `ignore` reads past it. New in schema "
                    "version 2; a version-1 table ignores.",
    )
    risk_decay: RiskDecay | None = Field(
        default=None,
        description="How cumulative risk decays over time; absent: it does not. New in schema "
                    "version 3.",
    )

    review_timeout: int | None = Field(
        default=None, ge=1,
        description="How long (whole seconds) a `review` ticket waits for an operator when its "
                    "rule gives no `expires`; absent: 86400 (24h). New in schema version 4.",
    )

    optional_keys = ("risk_decay", "review_timeout")


class InputField(_Model):
    """A declared input field. ``name`` is a dotted path (``context.eligibility_verified``)."""

    name: str
    type: FieldType
    optional: bool = False
    default: Scalar | list[str] | None = None
    has_default: bool = False
    normalize: list[Normalization] = Field(default_factory=list)
    values: list[str] | None = Field(default=None, description="The closed set of an enum.")


class Test(_Model):
    """One atomic test on a field, or an arithmetic test (schema version 3).

    The test is false when ``field`` (or ``other``) is missing; ``negate`` then flips the
    result, so ``not (x == 1)`` holds for a missing ``x``. Exactly one of ``value`` and
    ``other`` is set, except for ``exists`` which has neither. An arithmetic test has ``op``
    (a comparison), ``left`` and ``right`` (expression trees) and maybe ``negate``, and no
    ``field``, ``value`` or ``other``.
    """

    field: str = ""
    op: Operator
    value: Scalar | list[str] | None = None
    other: str | None = Field(default=None, description="Compare with this field, not a literal.")
    negate: bool = False
    left: dict[str, Any] | None = Field(
        default=None, description="An arithmetic test's left side: `{\"field\": name}`, "
        "`{\"const\": number}` or `{\"op\": \"+\" | \"-\" | \"*\" | \"/\" | \"neg\", "
        "\"args\": [expression, ...]}`.")
    right: dict[str, Any] | None = Field(default=None,
                                         description="An arithmetic test's right side.")

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An ordinary test has no ``left``/``right`` keys (so tables without arithmetic are
        what they were); an arithmetic test has no ``field``/``value``/``other``."""
        data: dict[str, Any] = handler(self)
        unused = ("field", "value", "other") if self.left is not None else ("left", "right")
        for key in unused:
            data.pop(key, None)
        return data


class Row(_Model):
    """A conjunction of tests; the row matches when every test holds (an empty row always)."""

    rule: str
    tests: list[Test] = Field(default_factory=list)


class Rule(_Model):
    id: str
    outcome: Outcome
    risk: int = 0
    threat: str | None = None
    reason: str = ""
    description: str | None = None
    condition: str | None = Field(
        default=None, description="The rule's `when`, as `fmt` prints it (one line, no comments).")
    generated_id: bool = False
    span: SourceSpan
    limit: Limit | None = Field(default=None, description="The rule's rate limit (its allowed "
                                                          "decisions); absent: none. New in "
                                                          "schema version 4.")
    expires: int | None = Field(
        default=None, ge=1,
        description="A `review` rule's `expires`: how long (whole seconds) its ticket waits for "
                    "an operator; absent: the policy's `review_timeout`. New in schema version 4.")

    optional_keys = ("limit", "expires")


class ActionBlock(_Model):
    """Rows for one or more action types, tried in order; the first matching row decides."""

    names: list[str]
    rows: list[Row]
    limits: list[Limit] = Field(default_factory=list,
                                description="Rate limits on the block's actions, counted "
                                            "together; absent: none. New in schema version 4.")

    optional_keys = ("limits",)


class Group(_Model):
    """A ``group``: the agents it holds and the settings it overrides (absent: the header's).
    An agent belongs to the first group, in order, one of whose patterns matches its id. New in
    schema version 3."""

    name: str
    agents: list[str] = Field(description="Exact agent ids; a pattern ending in `*` holds "
                                          "every id that starts with what comes before it.")
    risk_threshold: int | None = Field(default=None, ge=1)
    strikes: int | None = Field(default=None, ge=1)
    risk_decay: RiskDecay | None = None
    limits: list[GroupLimit] = Field(default_factory=list,
                                     description="Rate limits for each agent of the group; "
                                                 "absent: none. New in schema version 4.")

    optional_keys = ("risk_threshold", "strikes", "risk_decay", "limits")
    """A setting the group does not override has no key, nor do absent limits."""


class Table(_Model):
    schema_version: int = SCHEMA_VERSION
    policy: PolicyInfo
    settings: Settings
    input: list[InputField]
    rules: list[Rule] = Field(description="Every rule by id, in source order.")
    actions: list[ActionBlock]
    otherwise: str | None = Field(
        default=None, description="Rule id for action types no block names; none: fail closed."
    )
    groups: list[Group] = Field(
        default_factory=list,
        description="The agent groups, in declaration order; absent: none. New in schema "
                    "version 3.",
    )
    hash: str = Field(default="", description="sha256 of the canonical JSON without this key.")

    optional_keys = ("groups",)


def seal(table: Table) -> Table:
    """Return the table with its content hash filled in."""
    data = table.model_dump(mode="json")
    return table.model_copy(update={"hash": content_hash(data)})


def dump_table(table: Table) -> str:
    """Canonical JSON text of a sealed table, newline-terminated, byte-identical per source."""
    return canonical_json(table.model_dump(mode="json")) + "\n"


def json_schema() -> dict[str, Any]:
    schema = Table.model_json_schema()
    schema["$id"] = f"https://sentra-lang.dev/schema/table-v{SCHEMA_VERSION}.json"
    schema["title"] = "sentra-lang compiled decision table"
    return schema
