"""Semantic diff of two policy versions: which inputs of which actions change their decision.

For every action type either version names (and for "any other action"), the two versions'
rows are evaluated first-match over the cells of one space built from the tests of both
(`sentra_lang.space`, `sentra_lang.regions.cross`): every pair (rule in the old version, rule
in the new version) that shares some input is found, with a witness. A pair whose decisions
differ (outcome, rule id, attempted risk or threat) is a changed region. Its witness is given
to both versions' runtimes (`sentra_runtime.Engine`, a fresh agent each), and their decisions
are what the report shows, so every change replays.

Settings (`risk_threshold`, `strikes`, `risk_decay`, `undeclared_fields`, `action_type
normalize`, `review_timeout`, groups, limits and review rules' ticket times) are compared too; a
change of threshold, strikes, decay or limits only shows over a sequence of actions, so
`counterexample` searches the states an agent can reach under both versions, at the times that
tell the settings apart, for the first action they decide differently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sentra_runtime import Decision, Engine, MemoryStore, load_policy
from sentra_runtime.inputs import normalize
from sentra_runtime.policy import DEFAULT_REVIEW_TIMEOUT, Policy, duration_text
from sentra_runtime.policy import RiskDecay as AgentDecay

from sentra_lang.agent_state import assigned_id, distinct_ids, state_view
from sentra_lang.arithmetic import computed_rule, exact_view
from sentra_lang.checker import BlockInfo, Model, RuleInfo, first_line
from sentra_lang.compiler import Compilation
from sentra_lang.keywords import FIXED_TIME
from sentra_lang.regions import Row, TooManyPieces, engine_for
from sentra_lang.source import Span
from sentra_lang.space import NotExact, SpaceTooLarge, build_space
from sentra_lang.spellings import crossing_spellings
from sentra_lang.table import ActionBlock, InputField, RiskDecay, Table

INVALID = -1
"""Label of the inputs a version rejects by a declared field's value (`INVALID_INPUT`)."""
UNDECLARED = -2
"""Label of the inputs a version rejects by a key it does not declare (`UNDECLARED_FIELD`)."""
OTHER_ACTION = "any other action"


@dataclass(frozen=True)
class Verdict:
    """What a version decides for a region of inputs, for an agent with a clean record."""

    outcome: str
    rule: str
    risk: int
    threat: str | None
    expires: int | None = None
    """For a `review`: how long (seconds) its ticket waits for an operator before it expires
    (the rule's `expires`, else the policy's `review_timeout`), which decides what an
    operator's verdict at a later time does; ``None`` for other outcomes."""

    def describe(self) -> str:
        text = f"{self.outcome} `{self.rule}`"
        if self.risk:
            text += f" risk {self.risk}"
        if self.threat:
            text += f" threat \"{self.threat}\""
        if self.expires is not None:
            text += f" expires {duration_text(self.expires)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "rule": self.rule, "risk": self.risk,
                "threat": self.threat, "expires": self.expires}


SPECIAL = {
    "INVALID_INPUT": Verdict("block", "INVALID_INPUT", 0, "Invalid Input"),
    "UNDECLARED_FIELD": Verdict("block", "UNDECLARED_FIELD", 0, "Invalid Input"),
    "UNKNOWN_ACTION": Verdict("block", "UNKNOWN_ACTION", 0, "Unknown Behavior"),
    "NO_RULE_MATCHED": Verdict("block", "NO_RULE_MATCHED", 0, "Unknown Behavior"),
}


def _verdict(rule: RuleInfo, table: Table) -> Verdict:
    return Verdict(rule.outcome, rule.id, rule.risk, rule.threat,
                   _lifetime(rule.expires, table) if rule.outcome == "review" else None)


def _lifetime(expires: int | None, table: Table) -> int:
    """How long a ticket of a `review` rule with this `expires` waits for an operator."""
    if expires is not None:
        return expires
    timeout = table.settings.review_timeout
    return DEFAULT_REVIEW_TIMEOUT if timeout is None else timeout


@dataclass
class Region:
    """One region of an action's inputs: its decision in each version, and a witness."""

    action: str
    before: Verdict
    after: Verdict
    witness: dict[str, Any]
    old: Decision | None = None
    new: Decision | None = None
    """The runtimes' decisions for the witness (a fresh agent each)."""
    span: Span | None = None
    """Where the new version decides the region (its rule, block or header)."""
    raw: str = ""
    """The action type the witness is given with (a name no block has, for other actions)."""

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "action_type": self.raw, "before": self.before.to_dict(),
                "after": self.after.to_dict(), "witness": self.witness,
                "old_decision": _decision_dict(self.old), "new_decision": _decision_dict(self.new),
                "location": _location(self.span)}


def _decision_dict(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {"label": decision.label, "outcome": decision.outcome, "rule_id": decision.rule_id,
            "threat": decision.threat, "attempted_risk": decision.attempted_risk,
            "applied_risk": decision.applied_risk, "reason": decision.reason,
            "expires_at": decision.expires_at}


def _location(span: Span | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {"file": span.path, "line": span.line, "column": span.column,
            "end_line": span.end_line, "end_column": span.end_column}


@dataclass
class ActionDiff:
    """One action type (or every action type no block names) in both versions."""

    action: str
    status: str
    """`added`, `removed`, `changed`, `unchanged` (the block exists in both), or `other`."""
    changes: list[Region] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    """Every region (changed or not): a representative input for each pair of rules."""
    skipped: str | None = None
    """Why the action could not be compared exactly (too large a space)."""
    raw: str = ""
    """The action type the witnesses are replayed with."""

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "status": self.status, "skipped": self.skipped,
                "changes": [c.to_dict() for c in self.changes]}


@dataclass
class SettingChange:
    name: str
    before: Any
    after: Any
    meaning: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "before": self.before, "after": self.after,
                "meaning": self.meaning}


@dataclass
class Step:
    action: str
    fields: dict[str, Any]
    old: Decision
    new: Decision
    after: int = 0
    """Seconds that pass before this step (a counterexample of a `risk_decay` change)."""


@dataclass
class Counterexample:
    """Actions of one agent, from a clean record, whose last step the versions decide
    differently (each step replayed through both runtimes)."""

    steps: list[Step]
    agent: str | None = None
    """The agent's id, when a version puts it in a group (its settings are the group's)."""
    assigned: str | None = None
    """The group an operator assigns the agent to first, if any."""

    def to_dict(self) -> dict[str, Any]:
        agent = {} if self.agent is None else {"agent": self.agent,
                                               "assigned_group": self.assigned}
        return {**agent,
                "steps": [{"action": s.action, "fields": s.fields,
                           **({"after_seconds": s.after} if s.after else {}),
                           "old_decision": _decision_dict(s.old),
                           "new_decision": _decision_dict(s.new)} for s in self.steps]}


@dataclass
class PolicyDiff:
    old: Compilation
    new: Compilation
    settings: list[SettingChange] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    """Declarations of input fields that differ, in words."""
    approximate: list[str] = field(default_factory=list)
    """Fields whose normalisation differs: the regions compared there are not exhaustive."""
    actions: list[ActionDiff] = field(default_factory=list)
    agent_ids: dict[str, str] | None = None
    """For policies that read the agent's state: an agent id per group (witnesses' `agent`)."""
    same_groups: bool = True
    """Whether both versions put every agent in the same group."""
    policies: tuple[Policy, ...] = ()
    """The two versions' tables as the runtime loads them (old, new)."""

    @property
    def changes(self) -> list[Region]:
        return [c for a in self.actions for c in a.changes]

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.settings or any(a.skipped for a in self.actions))

    def counterexample(self) -> Counterexample | None:
        """The shortest evidence that the versions differ, or None when they are equivalent."""
        if self.changes:
            first = self.changes[0]
            assert first.old is not None and first.new is not None
            return Counterexample([Step(first.raw, first.witness, first.old, first.new)])
        return _SettingsProbe(self).search()

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "old": _policy_info(self.old), "new": _policy_info(self.new),
            "changed": self.changed,
            "settings": [s.to_dict() for s in self.settings],
            "inputs": self.inputs,
            "approximate": self.approximate,
            "actions": [a.to_dict() for a in self.actions if a.changes or a.skipped
                        or a.status in ("added", "removed")],
            "summary": {"changed_regions": len(self.changes),
                        "changed_actions": sum(1 for a in self.actions if a.changes)},
        }


def _observed(decision: Decision) -> tuple[Any, ...]:
    """What a decision shows an agent and its operator (its reason text aside), with the rule
    that matched (a shutdown after the last strike names no rule, its explanation does)."""
    trace = decision.trace
    return (decision.outcome, decision.rule_id, decision.attempted_risk, decision.threat,
            trace.matched_rule if trace is not None else None, decision.decayed,
            decision.expires_at)


def _policy_info(comp: Compilation) -> dict[str, Any]:
    table = comp.table
    assert table is not None
    return {"file": comp.program.main.display, "name": table.policy.name,
            "version": table.policy.version, "hash": table.hash}


# ---------------------------------------------------------------------------------- diff

def diff_policies(old: Compilation, new: Compilation, *,
                  progress: Callable[[str], None] | None = None) -> PolicyDiff:
    """Compare two compiled policies (both must have compiled without errors)."""
    assert old.table is not None and new.table is not None
    assert old.model is not None and new.model is not None
    result = PolicyDiff(old, new)
    result.settings = _settings(old.table, new.table)
    result.inputs = _inputs(old.table, new.table)
    result.policies = (load_policy(old.table.model_dump(mode="json")),
                       load_policy(new.table.model_dump(mode="json")))
    engines = (Engine(result.policies[0], clock=_decided_at),
               Engine(result.policies[1], clock=_decided_at))
    result.same_groups = _membership(old.table) == _membership(new.table)
    # one `agent.group` dimension for both (actions reading it are skipped when it differs)
    views = (state_view(exact_view(old.table), new.table.groups),
             state_view(exact_view(new.table), new.table.groups))
    side = (_Side(views[0][0], old.model), _Side(views[1][0], new.model))
    result.agent_ids = views[1][1] or views[0][1]
    pairs = _dispatch_pairs(side[0], side[1])
    for number, ((old_block, new_block), raw) in enumerate(pairs.items(), start=1):
        action = OTHER_ACTION if (old_block, new_block) == (None, None) else raw
        if progress is not None:
            progress(f"comparing `{action}` ({number} of {len(pairs)})")
        diff = _compare(side, old_block, new_block, action, result)
        diff.raw = raw
        _replay(diff, engines)
        result.actions.append(diff)
    result.approximate = sorted(set(result.approximate))
    return result


def _decided_at() -> float:
    """The time witnesses are decided at: the time `sentra-lang explain` decides at, so that
    a witness given to `explain` gets the same decision (its review ticket expires at the same
    time)."""
    return FIXED_TIME


@dataclass
class _Side:
    table: Table
    model: Model

    def blocks(self) -> list[tuple[BlockInfo, ActionBlock]]:
        return list(zip([b for b in self.model.blocks if b.names], self.table.actions))

    def dispatch(self, action: str) -> int | None:
        normalized = normalize(action, self.table.settings.action_normalize)
        for index, block in enumerate(self.table.actions):
            if normalized in block.names:
                return index
        return None

    def fallthrough(self, block: int | None) -> tuple[Verdict, RuleInfo | None]:
        if self.model.otherwise is not None:
            return _verdict(self.model.otherwise, self.table), self.model.otherwise
        return SPECIAL["UNKNOWN_ACTION" if block is None else "NO_RULE_MATCHED"], None


def _dispatch_pairs(old: _Side, new: _Side) -> dict[tuple[int | None, int | None], str]:
    """Every (old block, new block) some action type reaches, with a name that reaches it."""
    names = [n for side in (new, old) for b in side.table.actions for n in b.names]
    spellings = [v for name in names for v in
                 (name, name.lower(), name.upper(), f" {name} ", name.strip())]
    fresh = "OTHER_ACTION"
    while any(side.dispatch(v) is not None for side in (old, new)
              for v in (fresh, fresh.lower(), f" {fresh} ")):
        fresh += "_"
    pairs: dict[tuple[int | None, int | None], str] = {(None, None): fresh}
    spellings += crossing_spellings(
        [n for b in old.table.actions for n in b.names], old.table.settings.action_normalize,
        [n for b in new.table.actions for n in b.names], new.table.settings.action_normalize,
        (old.dispatch, new.dispatch))
    for raw in dict.fromkeys(spellings):
        pairs.setdefault((old.dispatch(raw), new.dispatch(raw)), raw)
    return pairs


def _compare(side: tuple[_Side, _Side], old_block: int | None, new_block: int | None,
             action: str, result: PolicyDiff) -> ActionDiff:
    status = ("other" if old_block is None and new_block is None else
              "added" if old_block is None else "removed" if new_block is None else "changed")
    diff = ActionDiff(action, status)
    blocks = [s.blocks()[b] if b is not None else None for s, b in zip(side, (old_block, new_block))]
    tests = [(version, t) for version, found in enumerate(blocks) if found is not None
             for row in found[1].rows for t in row.tests]
    if not result.same_groups and any("agent.group" in (t.field, t.other) for _, t in tests):
        diff.skipped = ("not compared exactly: the groups' membership changed and a rule reads "
                        "`agent.group`")
        return diff
    try:
        space = build_space([side[0].table.input, side[1].table.input], tests,
                            refuses=[s.table.settings.undeclared_fields == "refuse" for s in side])
        space.agent_ids = result.agent_ids
        rows = [_rows(space, version, found, side[version].model.otherwise is not None)
                for version, found in enumerate(blocks)]
        crossed = engine_for(space, rows[0] + rows[1]).cross(rows[0], rows[1])
    except NotExact:
        rules = [computed_rule(found[1].rows) for found in blocks if found is not None]
        diff.skipped = (f"not compared exactly: rule `{next(r for r in rules if r)}` compares "
                        "computed values (SL408)")
        return diff
    except (SpaceTooLarge, TooManyPieces) as error:
        diff.skipped = str(error) or "its cells split into too many pieces"
        return diff
    result.approximate += space.approximate
    for (before, after), cell in sorted(crossed.items(), key=_order):
        old_verdict = _label_verdict(side[0], old_block, blocks[0], before)
        new_verdict, span = _label_verdict_span(side[1], new_block, blocks[1], after)
        region = Region(action, old_verdict, new_verdict, space.witness(cell), span=span)
        diff.regions.append(region)
        if region.changed:
            diff.changes.append(region)
    if status == "changed" and not diff.changes:
        diff.status = "unchanged"
    return diff


def _order(item: tuple[tuple[int | None, int | None], Any]) -> tuple[int, int]:
    (before, after), _ = item
    return (10**9 if before is None else before, 10**9 if after is None else after)


def _rows(space: Any, version: int, found: tuple[BlockInfo, ActionBlock] | None,
          otherwise: bool) -> list[Row]:
    """A version's rows over the space: the inputs it refuses first (a key it does not declare,
    then a value that does not fit), then its block's rows. An action no block names and no
    `otherwise` covers is `UNKNOWN_ACTION` whatever its input: the runtime reads no input."""
    if found is None and not otherwise:
        return []
    rows: list[Row] = [(UNDECLARED, box) for box in space.undeclared[version]]
    rows += [(INVALID, box) for box in space.rejected[version]]
    if found is None:
        return rows
    info, block = found
    index = {rule.id: number for number, rule in enumerate(info.rules)}
    return rows + [(index[row.rule], space.row_box(version, row.tests)) for row in block.rows]


def _label_verdict(side: _Side, block: int | None,
                   found: tuple[BlockInfo, ActionBlock] | None, label: int | None) -> Verdict:
    return _label_verdict_span(side, block, found, label)[0]


def _label_verdict_span(side: _Side, block: int | None,
                        found: tuple[BlockInfo, ActionBlock] | None,
                        label: int | None) -> tuple[Verdict, Span | None]:
    if label == INVALID:
        return SPECIAL["INVALID_INPUT"], side.model.header_span
    if label == UNDECLARED:
        return SPECIAL["UNDECLARED_FIELD"], side.model.header_span
    if label is None:
        verdict, rule = side.fallthrough(block)
        if rule is not None:
            return verdict, first_line(rule.span)
        return verdict, found[0].span if found is not None else side.model.header_span
    assert found is not None
    rule = found[0].rules[label]
    return _verdict(rule, side.table), first_line(rule.span)


def _replay(diff: ActionDiff, engines: tuple[Engine, Engine]) -> None:
    """Each region's witness through both runtimes, as a fresh agent, or, for a witness with
    an `agent` part, as that agent with its state seeded (and put in its group by an operator
    when the witness says `assigned` and the version declares the group)."""
    for number, region in enumerate(diff.regions):
        fields, state = split_witness(region.witness)
        agent = f"diff-{diff.action}-{number}" if state is None else state["id"]
        region.raw = diff.raw
        for engine in engines:
            store = engine.store
            if state is not None and isinstance(store, MemoryStore):
                store.set_state(agent, state["cumulative_risk"], state["blocked_attempts"])
            if state is not None and state.get("assigned") and state["group"] in {
                    group.name for group in engine.policy.groups}:
                engine.assign_group(agent, state["group"], operator="sentra-lang diff")
        region.old = engines[0].evaluate(agent, diff.raw, dict(fields))
        region.new = engines[1].evaluate(agent, diff.raw, dict(fields))


def split_witness(witness: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A witness's input, and its `agent` part (the state to seed; ``None`` when it has none)."""
    fields = {name: value for name, value in witness.items() if name != "agent"}
    return fields, witness.get("agent")


def _membership(table: Table) -> list[tuple[str, list[str]]]:
    """Which agents each group holds, in order (what decides an agent's `agent.group`)."""
    return [(group.name, list(group.agents)) for group in table.groups]


# ------------------------------------------------------------------------------ settings

def _settings(old: Table, new: Table) -> list[SettingChange]:
    out: list[SettingChange] = []
    a, b = old.settings, new.settings
    if a.risk_threshold != b.risk_threshold:
        direction = "sooner" if b.risk_threshold < a.risk_threshold else "later"
        out.append(SettingChange(
            "risk_threshold", a.risk_threshold, b.risk_threshold,
            f"an allowed action is blocked when it would bring the agent's cumulative risk above "
            f"{b.risk_threshold} (was {a.risk_threshold}): agents reach the limit {direction}"))
    if a.strikes != b.strikes:
        out.append(SettingChange(
            "strikes", a.strikes, b.strikes,
            f"an agent is shut down at its {_ordinal(b.strikes)} blocked action "
            f"(was its {_ordinal(a.strikes)})"))
    if a.risk_decay != b.risk_decay:
        def rate(decay: RiskDecay | None) -> str:
            return "none" if decay is None else f"{decay.amount} per {duration_text(decay.period)}"
        out.append(SettingChange(
            "risk_decay", rate(a.risk_decay), rate(b.risk_decay),
            f"cumulative risk decays over time by {rate(b.risk_decay)} (was "
            f"{rate(a.risk_decay)}): the same actions, made at other times, are decided "
            "differently (the decisions below are those of a fresh agent, at one time)"))
    if old.groups != new.groups:
        out.append(SettingChange(
            "groups", _groups_text(old), _groups_text(new),
            "agents are grouped differently or their groups' settings changed: an agent's "
            "threshold, strikes and decay are its group's, and rules that read `agent.group` "
            "see its new group"))
    if _limits(old) != _limits(new):
        out.append(SettingChange(
            "limits", "; ".join(_limits(old)) or "none", "; ".join(_limits(new)) or "none",
            "rate limits changed: an agent's allowed decisions are counted differently, so a "
            "sequence of the same actions is blocked sooner or later (`RATE_LIMIT_EXCEEDED`; "
            "the decisions below are those of a fresh agent)"))
    timeouts = (_lifetime(None, old), _lifetime(None, new))
    if timeouts[0] != timeouts[1]:
        used = any(rule.outcome == "review" and rule.expires is None
                   for table in (old, new) for rule in table.rules)
        out.append(SettingChange(
            "review_timeout", duration_text(timeouts[0]), duration_text(timeouts[1]),
            f"a review ticket whose rule gives no `expires` waits {duration_text(timeouts[1])} "
            f"for an operator (was {duration_text(timeouts[0])})" + (
                "; `expires` lists the rules it applies to" if used else
                ": no review rule uses it, so no decision changes")))
    if _expiries(old) != _expiries(new):
        out.append(SettingChange(
            "expires", "; ".join(_expiries(old)) or "none", "; ".join(_expiries(new)) or "none",
            "review tickets wait for an operator for another time: a verdict given between the "
            "two times is decided (approved: allowed; denied: blocked, a strike) in one version "
            "and finds the ticket expired (no strike) in the other; each review decision below "
            "shows its ticket's time"))
    if a.undeclared_fields != b.undeclared_fields:
        out.append(SettingChange(
            "undeclared_fields", a.undeclared_fields, b.undeclared_fields,
            "an input key the policy does not declare " + (
                "now blocks the action (`UNDECLARED_FIELD`)" if b.undeclared_fields == "refuse"
                else "is now read past (it blocked the action as `UNDECLARED_FIELD`)")))
    if a.action_normalize != b.action_normalize:
        def show(steps: list[str]) -> str:
            return ", ".join(steps) or "none"
        out.append(SettingChange(
            "action_type normalize", show(list(a.action_normalize)),
            show(list(b.action_normalize)),
            "action types are matched to blocks differently; the actions below show which "
            "spellings reach which block"))
    return out


def _limit_list(table: Table) -> list[tuple[str, int, int]]:
    """Every rate limit of a table: what it counts, its count and period, in table order
    (docs/language.md, "Rate limits")."""
    found = [(f"rule `{rule.id}`", rule.limit.count, rule.limit.period)
             for rule in table.rules if rule.limit is not None]
    found += [(", ".join(f"`{name}`" for name in block.names), limit.count, limit.period)
              for block in table.actions for limit in block.limits]
    found += [(f"group `{group.name}` "
               + ("all actions" if limit.action is None else f"`{limit.action}`"),
               limit.count, limit.period) for group in table.groups for limit in group.limits]
    return found


def _expiries(table: Table) -> list[str]:
    """How long each `review` rule's tickets wait for an operator, in words: the rule, the
    actions it decides, and the time (its own `expires`, or the policy's `review_timeout`)."""
    actions = {row.rule: ", ".join(f"`{name}`" for name in block.names)
               for block in table.actions for row in block.rows}
    if table.otherwise is not None:
        actions.setdefault(table.otherwise, "other actions")
    return [f"rule `{rule.id}` ({actions.get(rule.id, 'no action')}): "
            f"{duration_text(_lifetime(rule.expires, table))}"
            + (" (review_timeout)" if rule.expires is None else "")
            for rule in table.rules if rule.outcome == "review"]


def _limits(table: Table) -> list[str]:
    """Every rate limit of a table, in words."""
    return [f"{target}: {count} per {duration_text(period)}"
            for target, count, period in _limit_list(table)]


def _groups_text(table: Table) -> str:
    """The groups in order: name, patterns and the settings each gives."""
    if not table.groups:
        return "none"
    shown = []
    for group in table.groups:
        given = [f"{key} {value}" for key, value in (("risk_threshold", group.risk_threshold),
                                                     ("strikes", group.strikes))
                 if value is not None]
        if group.risk_decay is not None:
            given.append(f"risk_decay {group.risk_decay.amount} per "
                         f"{duration_text(group.risk_decay.period)}")
        parts = [", ".join(group.agents)] if group.agents else []
        shown.append(f"{group.name} ({'; '.join([*parts, *given]) or 'assigned only'})")
    return ", ".join(shown)


def _ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _inputs(old: Table, new: Table) -> list[str]:
    before = {f.name: f for f in old.input}
    after = {f.name: f for f in new.input}
    out = []
    for name in sorted(before.keys() | after.keys()):
        if name not in before:
            out.append(f"field `{name}` is new: {_describe(after[name])}")
        elif name not in after:
            out.append(f"field `{name}` is no longer declared (was {_describe(before[name])})")
        elif before[name] != after[name]:
            out.append(f"field `{name}`: {_describe(before[name])} -> {_describe(after[name])}")
    return out


def _describe(spec: InputField) -> str:
    text = spec.type + (" {" + ", ".join(spec.values) + "}" if spec.values else "")
    if spec.optional:
        text += " (optional)"
    if spec.has_default:
        text += f" = {spec.default!r}"
    if spec.normalize:
        text += " normalize " + ", ".join(spec.normalize)
    return text


# ------------------------------------------------------------- sequences of actions

_LIMIT_TRIES = 16
"""How many allowed regions the search for a rate-limit counterexample repeats at most."""


@dataclass(frozen=True)
class _ProbeAgent:
    """An agent a sequence counterexample is tried with."""

    id: str
    assigned: str | None
    """The group an operator puts it in (one both versions declare), or None."""


def _probe_agents(old: Table, new: Table) -> list[_ProbeAgent]:
    ids = ["sequence", *distinct_ids(old.groups, new.groups)]
    both = [g.name for g in new.groups if g.name in {h.name for h in old.groups}]
    return ([_ProbeAgent(agent, None) for agent in dict.fromkeys(ids)]
            + [_ProbeAgent(assigned_id(name, {}), name) for name in both])


class _SettingsProbe:
    """When every single decision agrees, the versions can still differ over a sequence, by
    their threshold or strikes. Before the first decision that differs, both versions have
    decided alike, so the agent's record (cumulative risk, blocked attempts) is the same in
    both; the search walks the records an agent can reach and asks, per region, whether the
    next decision differs (docs/language.md, "Decisions"). What it finds is replayed through
    both runtimes before it is returned."""

    def __init__(self, diff: PolicyDiff) -> None:
        self.diff = diff
        self.policies = diff.policies
        self.regions = [r for a in diff.actions for r in a.regions
                        if r.old is not None and r.new is not None]
        self._settle(_ProbeAgent("sequence", None))

    def _settle(self, agent: _ProbeAgent) -> None:
        """Search as `agent`, with the settings each version gives it (its group's, which
        `groups` names: all the search depends on of the agent)."""
        self.agent = agent
        given = [policy.settings_of(agent.id, agent.assigned) for policy in self.policies]
        self.groups = (given[0].group, given[1].group)
        self.thresholds = (given[0].risk_threshold, given[1].risk_threshold)
        self.strikes = (given[0].strikes, given[1].strikes)
        self.decays = (given[0].risk_decay, given[1].risk_decay)

    def search(self) -> Counterexample | None:
        """The first agent (the plain `sequence` first, then one per combination of groups the
        versions put agents in, by their ids or an operator's assignment) whose sequence of
        actions the versions decide differently."""
        seen: set[tuple[str, str]] = set()
        old, new = self.diff.old.table, self.diff.new.table
        assert old is not None and new is not None
        for agent in _probe_agents(old, new):
            self._settle(agent)
            if self.groups in seen:
                continue
            seen.add(self.groups)
            found = self._search_as_agent()
            if found is not None:
                return found
        return None

    def _search_as_agent(self) -> Counterexample | None:
        old, new = self.diff.old.table, self.diff.new.table
        assert old is not None and new is not None
        if _limits(old) != _limits(new):
            found = self._limit_search(old, new)
            if found is not None:
                return found
        if (self.thresholds[0] == self.thresholds[1] and self.strikes[0] == self.strikes[1]
                and self.decays[0] == self.decays[1]):
            return None
        for plan in (self._threshold_plan, self._strikes_plan, self._decay_plan):
            timed = plan()
            if timed is not None:
                found = self._replay(*timed)
                if found is not None:
                    return found
        return None

    def _decay_plan(self) -> tuple[list[Region], dict[int, int]] | None:
        """Raise the risk with one allowing region as far as the lower threshold lets it, wait
        the first time after which the versions' `risk_decay` take off different amounts, and
        take the region once more: its `decayed` differs (and so may its outcome)."""
        if self.decays[0] == self.decays[1]:
            return None
        allowing = sorted((r for r in self._allowing() if r.before.risk > 0),
                          key=lambda r: -r.before.risk)
        if not allowing:
            return None
        region, risk = allowing[0], allowing[0].before.risk
        climb = max(min(self.thresholds) // risk, 1)
        total = climb * risk

        def taken(decay: AgentDecay | None, wait: int) -> int:
            return 0 if decay is None else min(wait // decay.period * decay.amount, total)

        waits = sorted({decay.period * k for decay in self.decays if decay is not None
                        for k in range(1, total // decay.amount + 2)})
        for wait in waits:
            if taken(self.decays[0], wait) != taken(self.decays[1], wait):
                return [region] * (climb + 1), {climb: wait}
        return None

    def _allowing(self) -> list[Region]:
        return [r for r in self.regions if r.before.outcome == "allow"]

    def _limit_search(self, old: Table, new: Table) -> Counterexample | None:
        """Repeat an action both versions allow, at one time, one more time than the largest
        count of a limit: a limit that only one version has, or that counts less in it,
        blocks there first. Then, for each limit `N per D` of either version, take the action
        N times, wait D and take it once more: the first N have left the window of a limit of
        N per D, not that of a limit of N per a longer time (a period that differs alone).
        Actions of lower risk first (the threshold blocks them later)."""
        limits = sorted({(count, period) for _target, count, period in
                         (*_limit_list(old), *_limit_list(new))})
        repeat = max(count for count, _period in limits) + 1
        plans: list[tuple[dict[int, int], int]] = [({}, repeat)]
        plans += [({count: period}, count + 1) for count, period in limits]
        for region in sorted(self._allowing(), key=lambda r: r.before.risk)[:_LIMIT_TRIES]:
            for waits, steps in plans:
                found = self._replay([region] * steps, waits)
                if found is not None:
                    return found
        return None

    def _threshold_plan(self) -> tuple[list[Region], dict[int, int]] | None:
        """Reach a cumulative risk c with c + r between the two thresholds: by allowed
        actions (each keeping the risk at most the lower threshold) and, when both versions
        give the agent the same `risk_decay`, by waiting one period of it (which takes its
        amount off), so that the sums decay makes reachable are reached too."""
        low, high = sorted(self.thresholds)
        if low == high:
            return None
        risks = {r.before.risk: r for r in self._allowing() if r.before.risk > 0}
        decay = self.decays[0] if self.decays[0] == self.decays[1] else None
        wait = 0 if decay is None else -decay.amount
        reach: dict[int, list[int]] = {0: []}
        frontier = [0]
        while frontier:
            following = []
            for total in frontier:
                moves = [risk for risk in risks if total + risk <= low]
                moves += [wait] if wait and total > 0 else []
                for move in moves:
                    reached = max(total + move, 0)
                    if reached not in reach:
                        reach[reached] = reach[total] + [move]
                        following.append(reached)
            frontier = following
        for total in sorted(reach):
            for risk in sorted(risks):
                if low < total + risk <= high:
                    return self._timed([*reach[total], risk], risks, decay)
        return None

    @staticmethod
    def _timed(moves: list[int], risks: dict[int, Region],
               decay: AgentDecay | None) -> tuple[list[Region], dict[int, int]]:
        """A threshold plan's moves (a risk: take its region; a negative move: wait one
        decay period) as regions and the waits before them."""
        plan: list[Region] = []
        waits: dict[int, int] = {}
        for move in moves:
            if move > 0:
                plan.append(risks[move])
            else:
                assert decay is not None
                waits[len(plan)] = waits.get(len(plan), 0) + decay.period
        return plan, waits

    def _strikes_plan(self) -> tuple[list[Region], dict[int, int]] | None:
        """Block min(strikes) times: the lower setting shuts the agent down, the other not."""
        if self.strikes[0] == self.strikes[1]:
            return None
        blocking = [r for r in self.regions if r.before.outcome == "block"]
        blocking += self._rejected()
        if blocking:
            return [blocking[0]] * min(self.strikes), {}
        allowing = sorted(self._allowing(), key=lambda r: -r.before.risk)
        if not allowing or allowing[0].before.risk == 0:
            return None
        risk = allowing[0].before.risk
        climb = min(self.thresholds) // risk + 1  # the first one the threshold blocks
        return [allowing[0]] * (climb + min(self.strikes) - 1), {}

    def _rejected(self) -> list[Region]:
        """An input both versions reject: a value of the wrong type for a field both declare."""
        old, new = self.diff.old.table, self.diff.new.table
        assert old is not None and new is not None
        types = {f.name: f.type for f in new.input}
        for spec in old.input:
            if types.get(spec.name) == spec.type:
                wrong: Any = 1 if spec.type in ("string", "enum", "set") else "x"
                verdict = SPECIAL["INVALID_INPUT"]
                return [Region(OTHER_ACTION, verdict, verdict, {spec.name: wrong},
                               raw=self.regions[0].raw if self.regions else "")]
        return []

    def _replay(self, plan: Sequence[Region],
                waits: dict[int, int] | None = None) -> Counterexample | None:
        old, new = self.diff.old.table, self.diff.new.table
        assert old is not None and new is not None
        now = [FIXED_TIME]

        def clock() -> float:
            return now[0]

        engines = (Engine(self.policies[0], clock=clock), Engine(self.policies[1], clock=clock))
        if self.agent.assigned is not None:
            for engine in engines:
                engine.assign_group(self.agent.id, self.agent.assigned, operator="sentra-lang diff")
        steps = []
        for index, region in enumerate(plan):
            wait = (waits or {}).get(index, 0)
            now[0] += wait
            fields, _state = split_witness(region.witness)   # the steps make the state
            before = engines[0].evaluate(self.agent.id, region.raw, dict(fields))
            after = engines[1].evaluate(self.agent.id, region.raw, dict(fields))
            steps.append(Step(region.raw, region.witness, before, after, wait))
            if _observed(before) != _observed(after):
                return Counterexample(steps, self.agent.id if any(self.groups) else None,
                                      self.agent.assigned)
        return None
