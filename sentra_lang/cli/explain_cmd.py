"""`sentra-lang explain POLICY ACTION --field k=v ...`: evaluate one action and show why.

POLICY is a compiled table (`.json`) or a `.sentra` file (compiled first). The agent starts from
`--state risk,strikes` (default `0,0`). Exit codes: 0 when the evaluation ran, whatever the
decision (the decision is the output, not a failure); 1 when a `.sentra` policy has errors;
2 for usage errors (unreadable or invalid policy, malformed `--field` or `--state`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentra_lang.cli import EXIT_FAILURE, EXIT_OK, UsageError, require_text
from sentra_lang.cli.color import add_color_option, use_color
from sentra_lang.cli.paths import add_root_option, root_of
from sentra_lang.keywords import FIXED_TIME

if TYPE_CHECKING:
    from sentra_runtime import Decision, Engine, Policy


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain", help="evaluate one action and show the reasoning",
        description="Evaluate one action against a policy and print the decision with its "
        "explanation: the rules tried, the test that failed for each, the match and the risk "
        "arithmetic. Exit 0 whenever the evaluation ran, whatever the decision.")
    parser.add_argument("policy", metavar="POLICY", help="compiled table (.json) or .sentra file")
    parser.add_argument("action", metavar="ACTION", help="the action type, e.g. EXPORT_DATA")
    parser.add_argument("--field", "-f", action="append", default=[], metavar="K=V",
                        help="an input field; V is parsed as JSON when it parses, else a string; "
                        "dotted names (context.x) nest; repeatable")
    parser.add_argument("--agent", default="agent", metavar="ID", help="the agent id")
    parser.add_argument("--state", metavar="RISK,STRIKES", default="0,0",
                        help="the agent's cumulative risk and blocked attempts before the action")
    parser.add_argument("--group", metavar="NAME",
                        help="decide as if an operator had assigned the agent to this group "
                             "(one the policy declares), whatever its id's patterns say")
    parser.add_argument("--after", metavar="DURATION",
                        help="for a policy with `risk_decay`: the time since the agent's risk "
                             "was raised from 0 (its decay anchor), so that the --state risk "
                             "decays first, e.g. 2h")
    parser.add_argument("--format", choices=["human", "json"], default="human")
    add_root_option(parser)
    add_color_option(parser)
    parser.set_defaults(run=run)


def parse_fields(items: list[str]) -> dict[str, Any]:
    from sentra_runtime import jsontext

    fields: dict[str, Any] = {}
    for item in items:
        name, separator, raw = item.partition("=")
        if not separator or not name.strip():
            raise UsageError(f"--field expects NAME=VALUE, got `{item}`")
        try:
            value: Any = jsontext.loads(raw)
        except jsontext.JSONTextError:   # not JSON Python reads: the text as it is
            value = raw
        fields[name.strip()] = value
    return fields


def parse_state(text: str) -> tuple[int, int]:
    parts = text.split(",")
    try:
        risk, strikes = (int(part) for part in parts)
    except ValueError:
        raise UsageError(f"--state expects RISK,STRIKES (two integers), got `{text}`") from None
    if risk < 0 or strikes < 0:
        raise UsageError("--state values must not be negative")
    return risk, strikes


def load(path_text: str, root: Path | None = None, *, color: bool = False) -> Policy | None:
    """The policy at ``path_text``; ``None`` after printing diagnostics of a broken .sentra file."""
    from sentra_lang.loader import FileUnreadable
    from sentra_lang.policy_file import load_policy_file

    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"no such policy file: {path_text}")
    try:
        loaded = load_policy_file(path, root=root, color=color)
    except FileUnreadable as error:
        raise UsageError(str(error)) from None
    if loaded.compilation is None and not loaded.ok:
        raise UsageError(loaded.problems[0])
    for problem in loaded.problems:
        print(problem, file=sys.stderr)
    return loaded.policy


def typed_actuals(decision: Decision, policy: Policy) -> list[Any]:
    """Each trial's actual value with its JSON type (`null` when the field is missing).

    The runtime's `RuleTrial.actual` is display text (`"20"`, `"none"`); the typed value is
    read from the decision's trace: the field of the trial's failed test, in the normalised
    input the rules saw; for a comparison that computes, an object of the fields it reads.
    """
    from sentra_runtime import arith
    from sentra_runtime.explain import describe_test

    trace = decision.trace
    trials = decision.explanation.trials
    if trace is None or trace.block is None:
        return [None for _ in trials]
    rows = {row.row: row for row in trace.rows}
    specs = policy.actions[trace.block].rows
    actuals: list[Any] = []
    for trial in trials:
        tried = rows.get(trial.row)
        failing = None if trial.matched or tried is None else next(
            (test for test in specs[trial.row].tests
             if describe_test(test) == trial.failed_test), None)
        if failing is not None and failing.left is not None and failing.right is not None:
            names = dict.fromkeys([*arith.fields(failing.left), *arith.fields(failing.right)])
            actuals.append({name: trace.values.get(name) for name in names})
            continue
        value = None if failing is None else trace.values.get(failing.field)
        actuals.append(sorted(value) if isinstance(value, (set, frozenset)) else value)
    return actuals


def to_json(decision: Decision, policy: Policy) -> str:
    """The decision, its explanation (with a one-line summary) and typed actual values."""
    data = decision.to_dict(explanation=True)
    data["explanation"]["summary"] = decision.explanation.summary()
    for trial, actual in zip(data["explanation"]["trials"], typed_actuals(decision, policy)):
        trial["actual"] = actual
    return json.dumps(data, indent=2, ensure_ascii=False)


EXPLAINED_AT = FIXED_TIME
"""The time of the explained decision (the tools' fixed time, a suite's too): `--after` puts the
agent's decay anchor that long before it."""


def parse_after(text: str | None) -> int | None:
    """`--after DURATION` in seconds (``None`` when not given); a bad duration is a usage
    error saying why."""
    if text is None:
        return None
    from sentra_lang.checker import duration_problem, duration_seconds

    problem, hint = duration_problem(text)
    if problem is not None:
        raise UsageError(f"--after: {problem}" + (f" ({hint})" if hint else ""))
    return duration_seconds(text)


def to_human(decision: Decision, policy: Policy, agent: str) -> str:
    """The decision, the agent's state after it, and the explanation, as text (its ids,
    reasons and values raw: the caller escapes them for the terminal)."""
    settings = policy.settings_of(agent, decision.group)
    lines = [f"{decision.label} ({decision.rule_id})", f"reason: {decision.reason}"]
    if decision.threat:
        lines.append(f"threat: {decision.threat}")
    if policy.groups:
        lines.append(f"group: {settings.group or '(none)'}")
    lines.append(f"risk: attempted {decision.attempted_risk}, applied {decision.applied_risk}, "
                 f"projected {decision.projected_risk}, cumulative {decision.cumulative_risk}/"
                 f"{settings.risk_threshold}; blocked attempts {decision.blocked_attempts}/"
                 f"{settings.strikes}; status {decision.status}"
                 + (f"; risk decay took off {decision.decayed}" if decision.decayed else ""))
    lines += [f"policy: {policy.name} {policy.version} ({policy.hash})", "",
              str(decision.explanation)]
    return "\n".join(lines)


def assign_group(engine: Engine, agent: str, group: str) -> None:
    """Put the agent in ``group`` as an operator would (`--group`); a group the policy does
    not declare is a usage error naming the nearest declared one."""
    try:
        engine.assign_group(agent, group, operator="sentra-lang explain")
    except ValueError as error:
        raise UsageError(f"--group: {error}") from None


def run(args: argparse.Namespace) -> int:
    for value, what in ((args.action, "ACTION"), (args.agent, "--agent"),
                        *(((args.group, "--group"),) if args.group is not None else ()),
                        *((item, "--field") for item in args.field)):
        require_text(value, what)
    fields = parse_fields(args.field)
    risk, strikes = parse_state(args.state)
    after = parse_after(args.after)
    policy = load(args.policy, root_of(args), color=use_color(args.color, sys.stderr))
    if policy is None:
        return EXIT_FAILURE
    from sentra_runtime import Engine, MemoryStore

    store = MemoryStore(audit=False)
    engine = Engine(policy, store, clock=lambda: EXPLAINED_AT)
    store.set_state(args.agent, risk, strikes,
                    decay_anchor=None if after is None else EXPLAINED_AT - after)
    if args.group is not None:
        assign_group(engine, args.agent, args.group)
    decision = engine.evaluate(args.agent, args.action, fields)
    if args.format == "json":
        print(to_json(decision, policy))
    else:
        from sentra_lang.diagnostics import visible_lines

        print(visible_lines(to_human(decision, policy, args.agent)))
    return EXIT_OK
