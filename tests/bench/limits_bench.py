"""Groups, rate limits and decay together: `python tests/bench/limits_bench.py`
(docs/benchmarks.md, "Groups, rate limits and decay").

A decision on a policy with agent groups (a threshold and strikes of their own, and group
limits on all actions and on one action), rate limits on rules and on an action block, and
`risk_decay`, next to the same decision on the same policy without any of them, in the same
run, on the in-memory store (its default bounded log) and on a SQLite file (one transaction per
decision). A clock moves 1 second per decision, so windows slide and risk decays; thresholds,
strikes and limits are set so that agents keep deciding (limits are counted, rarely reached).
Rounds alternate between the two policies; each figure is the median over rounds of the time
per decision. Targets (issue 15): at most 1.5x the plain decision in memory, 1.2x on SQLite.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


from sentra_lang.compiler import compile_source  # noqa: E402
from tests.bench.groups_bench import AGENTS, PLAIN, WORKLOAD  # noqa: E402
from tests.bench.pair import Step, run  # noqa: E402

FEATURES = """group trusted {
  agents "ops-*"
  risk_threshold 2000000000
  strikes 2000000000
  limit 1000 per 10m
  limit EXPORT_DATA 500 per 10m
}

group new {
  agents "new-*"
  risk_decay 5 per 1m
  limit 800 per 10m
}

"""


def tables(wide: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plain table (schema 2) and the one with groups, limits and decay (schema 4);
    ``wide``: every limit's period is 1h (each window holds about 70 times, not 6 to 12)."""
    featured = (PLAIN.replace("input {", FEATURES + "input {")
                .replace("  strikes 1000000000\n", "  strikes 1000000000\n  risk_decay 1 per 1m\n")
                .replace("action EXPORT_DATA {\n", "action EXPORT_DATA {\n  limit 600 per 10m\n")
                .replace('as EXPORT_OK "Export allowed."',
                         'as EXPORT_OK "Export allowed." limit 300 per 5m'))
    if wide:
        featured = featured.replace("per 10m", "per 1h").replace("per 5m", "per 1h")
    out = []
    for source in (PLAIN, featured):
        table = compile_source(source, "bench.sentra", analyse=False).table
        assert table is not None
        out.append(table.model_dump(mode="json"))
    assert out[1]["schema_version"] == 4 and out[1]["groups"][0]["limits"]
    return out[0], out[1]


class Clock:
    """One second per call."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def steps(count: int) -> list[Step]:
    """``count`` decisions of the workload, agents in turn."""
    return [(AGENTS[i % len(AGENTS)], *WORKLOAD[i % len(WORKLOAD)]) for i in range(count)]


def breakdown(count: int = 200_000) -> None:
    """Where the featured step's time goes, each part timed alone in the same run (best of 5):
    the plain policy's state step, the featured one (an agent of the group `trusted` deciding an
    allowed export counted in four limits, its windows holding 6 to 11 times), counting the four
    windows alone, and the decay arithmetic alone."""
    import timeit

    from sentra_runtime.decider import Decider, counted, decay

    plain, featured = (Decider(table) for table in tables())
    agent, action, fields, now = "ops-3", "EXPORT_DATA", {"amount": 10}, 1_700_000_000.0

    def settled(decider: Decider) -> tuple[Any, ...]:
        code, payload, matched = decider.match(action, fields)
        state: Any = (0, 0, False)
        for i in range(11):   # one decision every 51 s, as in the workload
            _, state = decider.step(state, agent, matched, fields, code, payload, 1, now + 51 * i)
        return (state, matched, code, payload)

    def best(call: Any) -> float:
        return min(timeit.repeat(call, number=count, repeat=5)) / count * 1e6

    def step_of(decider: Decider) -> float:
        state, matched, code, payload = settled(decider)
        step = decider.step
        return best(lambda: step(state, agent, matched, fields, code, payload, 1, now + 561))

    figures = {"plain step": step_of(plain), "featured step": step_of(featured)}
    state, matched, code, payload = settled(featured)
    view = featured.member(agent)
    limits = view.limits_of(code, matched)
    now_us = round((now + 561) * 1e6)
    keys = view._limit_keys
    figures[f"counting {len(limits)} windows"] = best(lambda: counted(state[4], limits, now_us,
                                                                      keys))
    figures["decay"] = best(lambda: decay(state[0], state[3], now_us, 1, 60_000_000))
    hand = hand_written(view, code, matched)
    made = [call(state, agent, matched, fields, code, payload, 1, now + 561)
            for call in (hand, featured.step)]
    assert [(decision.to_dict(), decision.decay_anchor, after) for decision, after in made] == [
        (made[1][0].to_dict(), made[1][0].decay_anchor, made[1][1])] * 2, "not the same step"
    figures["hand-written step"] = best(lambda: hand(state, agent, matched, fields, code,
                                                     payload, 1, now + 561))
    for name, micros in figures.items():
        print(f"{name:22} {micros:6.2f} us   {micros / figures['plain step']:5.2f}x the plain step")


def hand_written(view: Any, code: int, action: str) -> Any:
    """The featured step written by hand for the one case :func:`breakdown` times (an allowed
    decision of a group's agent whose risk decays, counted in that case's four windows): no
    dispatch on the row, the outcome or the settings, the limits and decay constants bound in
    advance; the same decision and state as the runtime's step. A floor for the general step,
    not a step the runtime could use."""
    from bisect import bisect_right

    from sentra_runtime.decision import new_decision, set_varying

    row = view._rows[code]
    cls, risk = row.allowed_class, row.risk
    limits = [(key, count, period) for key, count, period, _ in view.limits_of(code, action)]
    amount, period_us = view._decay_amount, view._decay_period

    def step(state: Any, agent_id: str, action: str, fields: Any, code: int, payload: Any,
             seq: int, now: float) -> Any:
        cumulative, blocked, down, anchor, windows = state
        now_us = round(now * 1_000_000)
        taken = 0
        if cumulative > 0:
            periods = (now_us - anchor) // period_us
            if periods > 0:
                taken = min(periods * amount, cumulative)
                cumulative -= taken
                anchor = None if cumulative == 0 else anchor + periods * period_us
        projected = cumulative + risk
        kept = windows.copy()
        for key, count, period in limits:
            times = kept[key]
            left = now_us - period
            if times[0] <= left:
                times = times[bisect_right(times, left):]
            if len(times) >= count:
                return None
            kept[key] = times + (now_us,)
        decision = new_decision(cls)
        set_varying(decision, (agent_id, action, projected, projected, blocked, None, seq, None,
                               code, payload, (cumulative, blocked, down)))
        extra = decision.__dict__
        extra["decayed"] = taken
        extra["decay_anchor"] = anchor or now_us
        return decision, (projected, blocked, False, anchor or now_us, kept)

    return step


if __name__ == "__main__":
    if "--breakdown" in sys.argv:
        breakdown()
    else:
        wide = "--wide" in sys.argv
        if wide:
            sys.argv.remove("--wide")
        run(__doc__.splitlines()[0], "groups+limits+decay", tables(wide), steps, clock=Clock)
