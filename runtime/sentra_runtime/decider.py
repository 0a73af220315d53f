"""The pure decision function: ``Decider(policy).decide(action, fields, state)``.

A :class:`Decider` is a compiled policy. It keeps no state: given an action, its fields and the
agent's state ``(cumulative_risk, blocked_attempts, shut_down)``, it returns the decision and
the agent's new state, by the decision semantics of docs/runtime.md. The
engine and every store build on it: the engine runs :meth:`Decider.match` (which rule; pure, no
state) outside any lock, and the store runs :meth:`Decider.transition` (the state step) inside
its per-decision lock or transaction. :meth:`Decider.decide` is the two in one, for callers who
keep agent state themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from sentra_runtime.codegen import (
    ARITHMETIC_ERROR,
    INVALID_INPUT,
    NEEDS_STATE,
    NO_MATCH,
    UNKNOWN_ACTION,
    compile_matcher,
)
from sentra_runtime.decision import (
    ACTIVE,
    ALLOW,
    BLOCK,
    LABELS,
    REVIEW,
    SHUT_DOWN,
    SHUTDOWN,
    AgentState,
    Decision,
    EvaluatedDecision,
    Explanation,
    outcome_class,
)
from sentra_runtime.decision import _rebuild as rebuild_decision
from sentra_runtime.decision import new_decision as _new
from sentra_runtime.decision import set_varying as _set_varying
from sentra_runtime.explain import EvaluationContext, arithmetic_failure, jsonable, render_value
from sentra_runtime.inputs import UNDECLARED, Problem
from sentra_runtime.policy import (
    ARITHMETIC_VERSION,
    GroupSpec,
    LimitSpec,
    Policy,
    RiskDecay,
    RuleSpec,
    load_policy,
)
from sentra_runtime.review import new_ticket_id
from sentra_runtime.windows import (
    COUNTED_LIMITS,
    DROPPED_KEYS,
    MICROSECONDS,
    Window,
    Windows,
    counted,
    counted_in_window,
    dropped,
)

State = tuple[int, int, bool]
"""``(cumulative_risk, blocked_attempts, shut_down)``: an agent's state as the decider reads
and returns it. Under a policy with ``risk_decay``, an agent whose cumulative risk is above 0
has a fourth item, its decay anchor (whole microseconds since the epoch, UTC): see
:func:`decay`. Under a policy with rate limits, an agent with counted decisions has a fifth
item, its limit windows (:data:`Windows`), and the fourth is ``None`` when it has no anchor. An
agent an operator assigned to a group has a sixth, the group's name (the fourth and fifth
``None`` when it has no anchor or windows): see :meth:`Decider.grouped_transition`."""
FRESH: State = (0, 0, False)
"""The state of an agent never seen, or reset."""

ALREADY_SHUT_DOWN = "AGENT_ALREADY_SHUT_DOWN"
SHUTDOWN_AFTER_BLOCKS = "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"
THRESHOLD_EXCEEDED = "RISK_THRESHOLD_EXCEEDED"
INVALID_INPUT_ID = "INVALID_INPUT"
UNDECLARED_FIELD_ID = "UNDECLARED_FIELD"
UNKNOWN_ACTION_ID = "UNKNOWN_ACTION"
NO_RULE_MATCHED_ID = "NO_RULE_MATCHED"
ARITHMETIC_ERROR_ID = "ARITHMETIC_ERROR"
RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
BUILT_IN_BLOCKS = frozenset({THRESHOLD_EXCEEDED, INVALID_INPUT_ID, UNDECLARED_FIELD_ID,
                             UNKNOWN_ACTION_ID, NO_RULE_MATCHED_ID, ARITHMETIC_ERROR_ID,
                             RATE_LIMIT_EXCEEDED})
"""The rule ids of the blocks the runtime decides itself, no rule of the policy."""
BUILT_IN_SHUTDOWNS = frozenset({SHUTDOWN_AFTER_BLOCKS, ALREADY_SHUT_DOWN})
"""The rule ids of the shutdowns the runtime decides itself."""

_MEMBER_CACHE = 65_536
"""The most agent ids whose group a decider keeps at once (then it starts again)."""
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_NO_FIELDS: dict[str, Any] = {}
"""Shared empty input; the matcher only reads it."""


class Decider:
    """A compiled policy as a pure function of an action, its fields and the agent's state.

    ``policy`` is a loaded :class:`Policy`, a table dict, JSON text, or a path to a table file.
    """

    def __init__(self, policy: Policy | Mapping[str, Any] | str | os.PathLike[str]) -> None:
        self.policy = load_policy(policy)
        self.matcher = compile_matcher(self.policy)
        self.match = self.matcher.match
        """``match(action, fields) -> (code, payload, action)``: which row (see
        :mod:`sentra_runtime.codegen`); pure, reads no state."""
        self.context = EvaluationContext(self.policy, self.matcher)
        self._threshold = self.policy.risk_threshold
        self._strikes = self.policy.strikes
        self._finish = self.matcher.finish
        self.group = ""
        """The group whose settings this decider applies (``""``: the header's)."""
        self._positions = {spec.name: index for index, spec in enumerate(self.matcher.fields)}
        by_rule = {rule.id: _RuleOutcomes(self, rule) for rule in self.policy.rules}
        rows = [by_rule[row.rule] for row in self.matcher.rows]
        self._verdicts: dict[str, tuple[int, int]] = {}
        """A ``review`` rule's id to the codes of its approval and its denial: rows past the
        matcher's, which only :meth:`verdict` hands the state step."""
        for rule in self.policy.rules:
            if rule.outcome == REVIEW:
                self._verdicts[rule.id] = (len(rows), len(rows) + 1)
                rows += [_RuleOutcomes(self, dataclasses.replace(rule, outcome=outcome),
                                       given_reason=True) for outcome in (ALLOW, BLOCK)]
        self._rows = tuple(rows)
        self._specials = _SpecialOutcomes(self)
        decay = self.policy.risk_decay
        self._decay_amount, self._decay_period = decay_constants(decay)
        """The decay's amount and period in microseconds (unused without decay)."""
        self.decays = decay is not None or any(g.risk_decay is not None
                                               for g in self.policy.groups)
        """Whether any agent's risk decays (the header's or a group's ``risk_decay``)."""
        self._decaying = decay is not None
        """Whether this decider's own settings decay risk (a view's: its group's)."""
        self.step: Callable[..., tuple[Decision, State]] = self.transition
        """The state step the engine hands the stores: :meth:`transition`; for a policy with
        groups, :meth:`grouped_transition` (which takes the agent's group's)."""
        self._members: dict[str, Decider] = {}
        """Agent id to its group's decider (a cache: membership is a function of the id)."""
        self._limit_keys = frozenset(all_limits(self.policy))
        self.limited = bool(self._limit_keys)
        """Whether the policy has a rate limit (then :meth:`transition` checks and counts)."""
        self._group_limits: tuple[LimitSpec, ...] = ()
        self._limits_by_action = {name: action.limits for action in self.policy.actions
                                  for name in action.names}
        self._limit_classes: dict[tuple[str, str], type[EvaluatedDecision]] = {}
        if self.policy.groups:
            self._ungrouped = self._for_group(None)
            self._groups = tuple((group, self._for_group(group))
                                 for group in self.policy.groups)
            self._named = {group.name: view for group, view in self._groups}
            self.step = self.grouped_transition

    def _for_group(self, group: GroupSpec | None) -> Decider:
        """A view of this decider with a group's settings (the header's where the group gives
        none); it shares the compiled rows and decision classes."""
        view = copy.copy(self)
        settings = self.policy.group_settings(group)
        view.group, view._threshold, view._strikes = (settings.group, settings.risk_threshold,
                                                      settings.strikes)
        decay = settings.risk_decay
        view._decay_amount, view._decay_period = decay_constants(decay)
        view.decays = view._decaying = decay is not None
        view.step = view.transition
        view._group_limits = () if group is None else group.limits
        view._limit_classes = {}
        # the view's own decision classes, which carry its group as a constant
        view._rows = tuple(row.for_view(view) for row in self._rows)
        view._specials = _SpecialOutcomes(view)
        return view

    def member(self, agent_id: str, assigned: str | None = None) -> Decider:
        """The decider with the settings of the agent's group (docs/language.md, "Agent
        groups": the group an operator ``assigned`` when the policy declares it; else the first
        group, in declaration order, one of whose patterns matches the id; the header's
        settings for none); this decider itself for a policy without groups."""
        if not self.policy.groups:
            return self
        if assigned is not None and assigned in self._named:
            return self._named[assigned]
        found = self._members.get(agent_id)
        if found is None:
            found = next((view for group, view in self._groups if group.holds(agent_id)),
                         self._ungrouped)
            if len(self._members) >= _MEMBER_CACHE:
                self._members.clear()
            self._members[agent_id] = found
        return found

    def grouped_transition(self, state: State, agent_id: str, action: str, fields: Any,
                           code: int, payload: Any, seq: int | None = None,
                           now: float = 0.0) -> tuple[Decision, State]:
        """The state step of a policy with groups: the agent's group's step (its threshold,
        strikes, decay and limits); the decision's ``group`` names the group (``""`` for none).
        An operator's assignment (the state's sixth item) wins over the patterns while the
        policy declares its group, and is kept in the new state."""
        if len(state) > 5:
            assigned: str = state[5]
            view = self.member(agent_id, assigned)
            decision, after = view.transition(state, agent_id, action, fields, code, payload,
                                              seq, now)
            return decision, with_assignment(after, assigned)
        view = self._members.get(agent_id) or self.member(agent_id)
        return view.transition(state, agent_id, action, fields, code, payload, seq, now)

    def decide(self, action: str, fields: Mapping[str, Any] | None = None,
               state: State | AgentState = FRESH, *,
               agent_id: str = "", now: float | None = None) -> tuple[Decision, State]:
        """Decide one action for an agent in ``state``; return the decision and the agent's new
        state. Keeps nothing: the caller stores the new state (and the decision, if it keeps a
        log). ``agent_id`` is copied into the decision (and picks the agent's group under a policy
        with groups). The decision's ``seq`` is ``None``.
        ``now`` (seconds since the epoch, UTC; the current time when ``None``) is the
        decision's time, which only time-dependent settings (``risk_decay``, rate limits, a
        review ticket's expiry) read.
        """
        if (fields.__class__ is not dict or agent_id.__class__ is not str
                or action.__class__ is not str):
            fields = checked_fields(agent_id, action, fields)
        if isinstance(state, AgentState):
            state = as_state(state)
        code, payload, action = self.match(action, fields)
        return self.step(state, agent_id, action, fields, code, payload, None,
                         time.time() if now is None else now)

    def decayed_state(self, state: State, now: float, agent_id: str = "") -> State:
        """``state`` as it reads at ``now``: with the ``risk_decay`` of the agent's group or
        the policy applied (nothing is written); its limit windows and group assignment kept;
        ``state`` itself without decay."""
        view = self.member(agent_id, assignment(state))
        if not view.decays:
            return state
        _, cumulative, anchor = decay(state[0], state[3] if len(state) > 3 else None,
                                      round(now * MICROSECONDS), view._decay_amount,
                                      view._decay_period)
        windows = state[4] if len(state) > 4 else None
        return with_assignment((cumulative, state[1], state[2], anchor, windows),
                               assignment(state))

    def transition(self, state: State, agent_id: str, action: str, fields: Any, code: int,
                   payload: Any, seq: int | None = None,
                   now: float = 0.0) -> tuple[Decision, State]:
        """The state step of docs/runtime.md, for a matched action (``code``, ``payload``
        and the normalised ``action`` from :attr:`match`); what a store runs inside its lock
        or transaction. ``fields`` is the input as given: a decision on input the matcher
        rejected keeps a JSON-safe copy of it for the audit log. ``seq`` is the seq the store
        gives the decision's audit record, if it keeps one; ``now`` is the decision's time (the
        engine's clock; the record's ``time``).

        One step for every setting, in this order: the agent's risk decays to ``now`` (under
        ``risk_decay``: :func:`decay`; the decision's ``decayed`` is how much it took off), rows
        that read the agent's state match on it, then the outcome: an ``allow`` is checked
        against its rate limits (:func:`counted`), then the threshold. The new state keeps the
        decay anchor (set to ``now`` when the decision raises the risk from 0; none while the
        risk is 0) and the limit windows (:data:`State`).
        """
        decaying = self._decaying
        if len(state) == 3 and not decaying:
            cumulative, blocked, down = state
            windows = None
        else:   # a decay anchor, limit windows or an operator's group assignment may follow
            cumulative, blocked, down, anchor, windows = (
                state if len(state) == 5 else (*state, None, None)[:5])
            if decaying:
                now_us = round(now * MICROSECONDS)
                taken, cumulative, anchor = decay(cumulative, anchor, now_us, self._decay_amount,
                                                  self._decay_period)
            state = (cumulative, blocked, down)
        if code == NEEDS_STATE:   # the rows read the agent's state: match with it, here
            block, values = payload
            payload = (*values, self.group, cumulative, blocked)
            code = block(payload) if self._finish is None else self._finish(block, payload)
        # the outcome: ``decision`` and the agent's ``risk``, ``blocked``, ``down`` and
        # ``windows`` after it; a block or shutdown leaves ``decision`` None and sets ``cls``
        decision: Decision | None = None
        over = None
        reason: str | None
        risk = cumulative
        if down:
            decision = _new(self._specials.already)
            _set_varying(decision, (agent_id, action, cumulative, cumulative, blocked, None, seq,
                                    _kept(fields, code), code, payload, state))
        elif code >= 0:
            row = self._rows[code]
            projected = cumulative + row.risk
            if row.allows:
                after_windows = windows
                if self.limited:
                    limits = row.windows.get(action)
                    if limits is None:
                        limits = self.limits_of(code, action)
                    if limits:   # the decision would count in each limit that applies
                        if not decaying:
                            now_us = round(now * MICROSECONDS)
                        after_windows = counted(windows, limits, now_us, self._limit_keys)
                        if after_windows is None:
                            over = self._over_limit(limits, windows, now_us)
                if over is not None:
                    cls, reason = self._limit_class(row, over[0]), over[1]
                elif projected <= self._threshold:
                    decision = _new(row.allowed_class)
                    reason = None if row.render is None else row.render(payload, action,
                                                                         agent_id)
                    _set_varying(decision, (agent_id, action, projected, projected, blocked,
                                            reason, seq, None, code, payload, state))
                    if self.limited:   # what its audit record keeps (counting_fields)
                        kept = decision.__dict__
                        kept[COUNTED_LIMITS] = limits
                        if windows and limits and not self._limit_keys.issuperset(windows):
                            kept[DROPPED_KEYS] = dropped(windows, after_windows)
                    if not (decaying or after_windows):   # nothing else to keep
                        return decision, (state if projected == cumulative
                                          else (projected, blocked, False))
                    risk, windows = projected, after_windows
                else:
                    cls = row.threshold_class
                    reason = (f"Projected risk would reach {projected}/{self._threshold}. "
                              "Action blocked before execution.")
            elif row.reviews:   # held for an operator: no strike, the state unchanged
                decision = self._hold(row, state, agent_id, action, payload, code, seq, now)
            else:
                cls = row.ruled_class
                reason = None if row.render is None else row.render(payload, action, agent_id)
            strike_out = row.strike_out_class
        else:
            projected = cumulative
            cls, reason = self._specials.refused(code, action, payload)
            strike_out = self._specials.strike_out
        if decision is None:   # a block or shutdown: a strike
            blocked += 1
            down = cls.__dict__["outcome"] == SHUTDOWN
            if not down and blocked >= self._strikes:
                cls, down = strike_out, True
                reason = (f"Agent shut down after {blocked} blocked attempts. Cumulative risk "
                          f"remains {cumulative}/{self._threshold}.")
            decision = _new(cls)
            _set_varying(decision, (agent_id, action, projected, cumulative, blocked, reason,
                                    seq, _kept(fields, code), code, payload, state))
            if over is not None:
                decision.__dict__["limit"] = over[2]
        if not decaying:
            if windows:
                return decision, (risk, blocked, down, None, windows)  # type: ignore[return-value]
            return decision, (risk, blocked, down)
        kept = decision.__dict__   # the decision keeps what decay took off and the anchor
        kept["decayed"] = taken
        if risk == 0:
            anchor = None
        elif anchor is None:   # the risk was just raised from 0
            anchor = now_us
        kept["decay_anchor"] = anchor
        if windows:
            return decision, (risk, blocked, down, anchor, windows)  # type: ignore[return-value]
        if anchor is None:
            return decision, (risk, blocked, down)
        return decision, (risk, blocked, down, anchor)  # type: ignore[return-value]

    # -- rate limits ---------------------------------------------------------------------------

    def limits_of(self, code: int, action: str) -> tuple[Window, ...]:
        """The windows that count an allowed decision of row ``code`` on ``action`` for an
        agent of this view's group, in the order they are checked (docs/language.md, "Rate
        limits"): the rule's limit, the action block's, the group's on the action, the group's
        on all."""
        row = self._rows[code]
        found = row.windows.get(action)
        if found is None:
            rule_limit = row.rule.limit
            found = tuple((limit.key, limit.count, limit.period * MICROSECONDS, limit) for limit in (
                *(() if rule_limit is None else (rule_limit,)),
                *self._limits_by_action.get(action, ()),
                *(limit for limit in self._group_limits if limit.action == action),
                *(limit for limit in self._group_limits if limit.action is None)))
            if len(row.windows) >= _MEMBER_CACHE:
                row.windows.clear()
            row.windows[action] = found
        return found

    @staticmethod
    def _over_limit(limits: tuple[Window, ...], windows: Windows | None,
                    now_us: int) -> tuple[LimitSpec, str, dict[str, Any]]:
        """The first of ``limits`` the decision would go over (there is one: :func:`counted`
        said so), its reason and what the decision reports as its ``limit``."""
        for key, _, _, limit in limits:
            count = counted_in_window((windows or {}).get(key, ()), now_us, limit)
            if count >= limit.count:
                return (limit, f"Rate limit reached: {limit} for {limit.target}. Action "
                               "blocked before execution.",
                        {"limit": str(limit), "for": limit.target, "count": count})
        raise AssertionError("no limit is reached")

    def _limit_class(self, row: _RuleOutcomes, limit: LimitSpec) -> type[EvaluatedDecision]:
        rule = row.rule
        found = self._limit_classes.get((rule.id, limit.key))
        if found is None:
            found = self._limit_classes[(rule.id, limit.key)] = self.decision_class(
                BLOCK, RATE_LIMIT_EXCEEDED, rule.threat or "Rate Limit Exceeded",
                rule.description, rule.risk, 0, ACTIVE, limit_key=limit.key)
        return found

    def limit_usage(self, state: State, now: float,
                    agent_id: str = "") -> list[tuple[LimitSpec, int]]:
        """Every limit that applies to the agent (the rules', the blocks', its group's), each
        with how many counted decisions its window holds at ``now``."""
        view = self.member(agent_id, assignment(state))
        windows: Windows = (state[4] if len(state) > 4 else None) or {}
        limits = [*(rule.limit for rule in self.policy.rules if rule.limit is not None),
                  *(limit for action in self.policy.actions for limit in action.limits),
                  *view._group_limits]
        now_us = round(now * MICROSECONDS)
        return [(limit, counted_in_window(windows.get(limit.key, ()), now_us, limit))
                for limit in limits]

    def _hold(self, row: _RuleOutcomes, state: State, agent_id: str, action: str,
              payload: Any, code: int, seq: int | None,
              now: float) -> Decision:
        """A ``review`` rule's decision: ``Review Required`` with a new ticket that expires
        after the rule's (or the policy's) timeout (the agent's state stays as it is)."""
        cumulative, blocked = state[0], state[1]
        decision = _new(row.review_class)
        reason = None if row.render is None else row.render(payload, action, agent_id)
        _set_varying(decision, (agent_id, action, cumulative + row.risk, cumulative, blocked,
                                reason, seq, None, code, payload, state))
        kept = decision.__dict__
        kept["ticket"] = new_ticket_id()
        kept["expires_at"] = now + row.lifetime
        return decision

    def verdict(self, rule_id: str, approve: bool, reason: str, state: State, agent_id: str,
                action: str, seq: int | None, now: float) -> tuple[Decision, State]:
        """An operator's verdict on a ticket of the ``review`` rule ``rule_id``, at ``now``, for
        an agent in ``state`` (as stored: the agent's group, decay and threshold apply as for
        any decision). Approval is the rule's allow, its risk applied now (a shut-down agent
        stays shut down; a risk over the threshold is ``RISK_THRESHOLD_EXCEEDED``, a strike);
        denial is a block with the rule's id, a strike. ``reason`` is the decision's reason.
        ``KeyError`` when the policy has no such ``review`` rule."""
        approval, denial = self._verdicts[rule_id]
        decision, after = self.step(state, agent_id, action, None,
                                    approval if approve else denial, reason, seq, now)
        threshold = self.policy.settings_of(agent_id, decision.group).risk_threshold
        return _settled(decision, threshold, state, reason), after

    # -- what decisions are made of ------------------------------------------------------------

    def decision_class(self, outcome: str, rule_id: str, threat: str | None,
                       description: str | None, attempted: int, applied: int, status: str,
                       **more: Any) -> type[EvaluatedDecision]:
        """The Decision subclass carrying one outcome's constant fields."""
        constants = {"outcome": outcome, "label": LABELS[outcome], "allowed": outcome == ALLOW,
                     "rule_id": rule_id, "threat": threat, "description": description,
                     "attempted_risk": attempted, "applied_risk": applied, "status": status,
                     "policy_hash": self.policy.hash, **more}
        if self.policy.groups:   # the group is a constant of a group's view (see _for_group)
            constants["group"] = self.group
        return outcome_class(constants, self.context)

    def strike_out_class(self, attempted: int) -> type[EvaluatedDecision]:
        """The shutdown after repeated blocks, for a block that attempted ``attempted``."""
        return self.decision_class(SHUTDOWN, SHUTDOWN_AFTER_BLOCKS, "Agent Shutdown", None,
                                   attempted, 0, SHUT_DOWN)

    def reason_renderer(self, template: str) -> Callable[[tuple[Any, ...], str, str], str] | None:
        """Compile ``{field}`` interpolation, and from schema version 3 ``{action}`` (the
        normalised action type) and ``{agent_id}``; ``{{``/``}}`` are braces; unknown names stay
        as they are. ``None`` for a constant reason. The renderer takes the values, the action
        and the agent id."""
        if "{" not in template and "}" not in template:
            return None
        positions = self._positions
        built_ins = self.policy.schema_version >= ARITHMETIC_VERSION

        def render(values: tuple[Any, ...], action: str, agent_id: str) -> str:
            def substitute(match: re.Match[str]) -> str:
                text = match.group(0)
                if text in ("{{", "}}"):
                    return text[0]
                name = match.group(1)
                if built_ins and name == "action":
                    return action
                if built_ins and name == "agent_id":
                    return agent_id
                if name not in positions:
                    return text
                return render_value(values[positions[name]])

            return _PLACEHOLDER.sub(substitute, template)

        return render


class _RuleOutcomes:
    """What a matched rule leads to. Its decision classes are made when first needed (see
    :meth:`__getattr__`), so a table of many rules loads in time linear in its size."""

    __slots__ = ("decider", "rule", "allows", "reviews", "risk", "render", "lifetime", "windows",
                 "allowed_class", "threshold_class", "ruled_class", "strike_out_class",
                 "review_class")

    def __init__(self, decider: Decider, rule: RuleSpec, *, given_reason: bool = False) -> None:
        self.decider = decider
        self.rule = rule
        self.allows = rule.outcome == ALLOW
        self.reviews = rule.outcome == REVIEW
        self.risk = rule.risk
        self.lifetime = decider.policy.review_lifetime(rule) if self.reviews else 0
        """How long (seconds) a ``review`` rule's ticket waits for an operator."""
        self.render = (_given_reason if given_reason
                       else decider.reason_renderer(rule.reason))
        """Renders an interpolated reason; ``None`` when the reason is constant (a class
        field). A verdict's row (:meth:`Decider.verdict`) takes its reason as the payload."""
        self.windows: dict[str, tuple[Window, ...]] = {}
        """Per action, the windows that count the rule's allowed decision for an agent of the
        decider's group (a cache: see :meth:`Decider.limits_of`)."""

    allowed_class: type[EvaluatedDecision]
    threshold_class: type[EvaluatedDecision]
    ruled_class: type[EvaluatedDecision]
    """The rule's own block or shutdown decision."""
    strike_out_class: type[EvaluatedDecision]
    """The shutdown after repeated blocks, when this rule's block is the last strike."""
    review_class: type[EvaluatedDecision]
    """A ``review`` rule's decision (``Review Required``)."""

    def for_view(self, view: Decider) -> _RuleOutcomes:
        """The same rule's outcomes for a group's view of the decider (its decision classes
        carry the view's group)."""
        outcomes = _RuleOutcomes.__new__(_RuleOutcomes)
        for name in ("rule", "allows", "reviews", "risk", "render", "lifetime"):
            setattr(outcomes, name, getattr(self, name))
        outcomes.decider = view
        outcomes.windows = {}
        return outcomes

    def __getattr__(self, name: str) -> type[EvaluatedDecision]:
        """Make a decision class on first use (Python calls this only while its slot is
        empty), and keep it in its slot."""
        rule = self.rule
        reason = {} if self.render is not None else {"reason": rule.reason}
        made = self.decider.decision_class
        if name == "allowed_class":
            cls = made(ALLOW, rule.id, rule.threat, rule.description, rule.risk, rule.risk,
                       ACTIVE, **reason)
        elif name == "threshold_class":
            cls = made(BLOCK, THRESHOLD_EXCEEDED, rule.threat or "Risk Threshold Exceeded",
                       rule.description, rule.risk, 0, ACTIVE)
        elif name == "ruled_class":
            status = SHUT_DOWN if rule.outcome == SHUTDOWN else ACTIVE
            cls = made(rule.outcome, rule.id, rule.threat, rule.description, rule.risk, 0,
                       status, **reason)
        elif name == "strike_out_class":
            cls = self.decider.strike_out_class(rule.risk)
        elif name == "review_class":
            cls = made(REVIEW, rule.id, rule.threat, rule.description, rule.risk, 0, ACTIVE,
                       **reason)
        else:
            raise AttributeError(name)
        setattr(self, name, cls)
        return cls


class _SpecialOutcomes:
    """The decisions no rule of the policy makes: refused input, unknown actions, shut-down
    agents."""

    def __init__(self, decider: Decider) -> None:
        made = decider.decision_class
        self.already = made(SHUTDOWN, ALREADY_SHUT_DOWN, "Agent Shutdown", None, 0, 0,
                            SHUT_DOWN, reason="Agent is already shut down.")
        self.strike_out = decider.strike_out_class(0)
        self.invalid = made(BLOCK, INVALID_INPUT_ID, "Invalid Input", None, 0, 0, ACTIVE)
        self.undeclared = made(BLOCK, UNDECLARED_FIELD_ID, "Invalid Input", None, 0, 0, ACTIVE)
        self.unknown = made(BLOCK, UNKNOWN_ACTION_ID, "Unknown Behavior", None, 0, 0, ACTIVE)
        self.no_match = made(BLOCK, NO_RULE_MATCHED_ID, "Unknown Behavior", None, 0, 0, ACTIVE)
        self.arithmetic = made(BLOCK, ARITHMETIC_ERROR_ID, "Invalid Input", None, 0, 0, ACTIVE)
        self.context = decider.context

    def refused(self, code: int, action: str,
                payload: Any) -> tuple[type[EvaluatedDecision], str]:
        """The class and reason of a decision that no rule made (``code < 0``)."""
        if code == INVALID_INPUT:
            problem: Problem = payload
            return (self.undeclared if problem.kind == UNDECLARED else self.invalid,
                    problem.reason)
        if code == ARITHMETIC_ERROR:
            return self.arithmetic, arithmetic_failure(self.context, action, payload)
        if code == UNKNOWN_ACTION:
            return self.unknown, (f"Action type `{action}` is not covered by the policy and it "
                                  "has no `otherwise` rule.")
        return self.no_match, (f"No rule for action type `{action}` matched and the policy "
                               "has no `otherwise` rule.")


def _given_reason(payload: Any, action: str, agent_id: str) -> str:
    """The reason of a verdict's decision: given as its payload."""
    reason: str = payload
    return reason


def _settled(decision: Decision, threshold: int, before: State, reason: str) -> Decision:
    """A verdict's decision as a plain :class:`Decision` that explains itself (its row is no
    row of the matcher, so the matcher cannot explain it)."""
    data = decision.to_dict()
    kept = decision.__dict__
    steps = [f"agent `{decision.agent_id}`: action `{decision.action}`, state before the "
             f"verdict: cumulative risk {before[0]}/{threshold}, blocked attempts {before[1]}"
             f"{', shut down' if before[2] else ''}"]
    if kept.get("decayed"):
        steps.append(f"risk decay: {kept['decayed']} taken off since the last decision")
    steps.append(f"operator's verdict: {reason}")
    if decision.outcome == ALLOW:
        risk = (f"{decision.projected_risk - decision.applied_risk} + {decision.applied_risk} "
                f"= {decision.projected_risk} <= {threshold}")
    elif decision.rule_id == THRESHOLD_EXCEEDED:
        risk = (f"{decision.cumulative_risk} + {decision.attempted_risk} = "
                f"{decision.projected_risk} > {threshold}")
    else:
        risk = "no risk applied"
    steps += [f"risk: {risk}", f"=> {decision.label} ({decision.rule_id}): {decision.reason}"]
    explanation = Explanation(decision.action, None, (), decision.rule_id, risk, tuple(steps))
    plain = rebuild_decision(data, explanation, decision.seq)
    for name in ("decay_anchor", COUNTED_LIMITS, DROPPED_KEYS):   # what its record keeps
        if name in kept:
            plain.__dict__[name] = kept[name]
    return plain


def decay(risk: int, anchor: int | None, now_us: int, amount: int,
          period_us: int) -> tuple[int, int, int | None]:
    """Risk decay at ``now_us`` (docs/language.md, "Risk decay"): ``(taken, risk, anchor)``.

    With ``k`` whole periods since the anchor (``k = (now - anchor) // period``), the risk goes
    down by ``k * amount`` (never below 0) and the anchor moves by ``k * period``, keeping the
    remainder. A risk of 0 has no anchor (the decision that raises it sets one, at its time); a
    risk above 0 without one (raised before the policy had decay) starts decaying now. A clock
    that went back (``now`` before the anchor) decays nothing.
    """
    if risk <= 0:
        return 0, risk, None
    if anchor is None:
        return 0, risk, now_us
    periods = (now_us - anchor) // period_us
    if periods <= 0:
        return 0, risk, anchor
    taken = min(periods * amount, risk)
    risk -= taken
    return taken, risk, None if risk == 0 else anchor + periods * period_us


def decay_constants(setting: RiskDecay | None) -> tuple[int, int]:
    """A ``risk_decay``'s amount and period in microseconds, as :func:`decay` takes them
    (``(0, 1)`` without decay: never read)."""
    return (0, 1) if setting is None else (setting.amount, setting.period * MICROSECONDS)


def all_limits(policy: Policy) -> dict[str, LimitSpec]:
    """Every limit of the policy by its window's key (an agent's windows of other keys, left
    by an earlier policy, are dropped when it next counts)."""
    return {limit.key: limit for limit in (
        *(rule.limit for rule in policy.rules if rule.limit is not None),
        *(limit for action in policy.actions for limit in action.limits),
        *(limit for group in policy.groups for limit in group.limits))}


def assignment(state: tuple[Any, ...]) -> str | None:
    """The group an operator assigned the agent to (the state's sixth item), if any."""
    return state[5] if len(state) > 5 else None


def with_assignment(state: tuple[Any, ...], group: str | None) -> State:
    """``state`` with an operator's group assignment (``None``: without one)."""
    base = (*state[:5], *(None,) * (5 - len(state)))
    if group is None:
        return unassigned(base)
    return cast(State, (*base, group))


def unassigned(state: tuple[Any, ...]) -> State:
    """``state`` without an assignment, in its shortest form (no trailing ``None``)."""
    items = list(state[:5])
    while len(items) > 3 and (items[-1] is None or items[-1] == {}):
        items.pop()
    return cast(State, tuple(items))


def _kept(fields: Any, code: int) -> Any:
    """What a decision keeps of its input: a JSON-safe copy of input the matcher rejected or
    found no block for (the audit log records it), nothing otherwise."""
    return jsonable(fields) if code < NO_MATCH else None


def checked_fields(agent_id: Any, action: Any, fields: Any) -> dict[str, Any]:
    """The fields of a call as the matcher reads them (a dict; ``None`` is no fields), for a
    call whose arguments are not already a dict and two strings. Raises ``TypeError`` for ids
    that are not strings and fields that are not a mapping: programming errors, not agent
    input."""
    if not isinstance(agent_id, str):
        raise TypeError(f"agent_id must be a string, not {type(agent_id).__name__}")
    if not isinstance(action, str):
        raise TypeError(f"action must be a string, not {type(action).__name__}")
    if fields is None:
        return _NO_FIELDS
    if not isinstance(fields, Mapping):
        raise TypeError(f"fields must be a mapping, not {type(fields).__name__}")
    return dict(fields)


def as_state(state: AgentState) -> State:
    """An :class:`AgentState` as the decider's state tuple (without a decay anchor)."""
    return (state.cumulative_risk, state.blocked_attempts, state.status == SHUT_DOWN)
