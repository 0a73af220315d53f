"""One-line helpers for the analysis tests: findings of a source, and witness replay.

Replay uses only the public runtime API (`Engine`), so a witness is judged by the code that
decides real actions, never by the analysis that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sentra_runtime import Decision, Engine, MemoryStore

from sentra_lang.analysis import AnalysisOptions
from sentra_lang.compiler import Compilation, compile_source
from sentra_lang.diagnostics import Diagnostic, Severity


@dataclass(frozen=True)
class Finding:
    code: str
    ids: tuple[str, ...]
    """The rule ids (or action names) the message names in backticks, in order."""
    witness: dict[str, Any] | None
    message: str


def compiled(src: str, options: AnalysisOptions | None = None) -> Compilation:
    result = compile_source(src, "t.sentra", analysis=options)
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert not errors, "\n".join(f"{d.code} {d.message}" for d in errors)
    return result


def backticked(text: str) -> tuple[str, ...]:
    return tuple(text.split("`")[1::2])


def finding(diag: Diagnostic) -> Finding:
    return Finding(diag.code, backticked(diag.message), diag.witness, diag.message)


def findings(src: str, *codes: str, options: AnalysisOptions | None = None) -> list[Finding]:
    """The analysis findings (SL4xx, or just `codes`) of a policy source, in source order."""
    wanted = set(codes) or {d for d in ("SL401", "SL402", "SL403", "SL404", "SL405", "SL406")}
    return [finding(d) for d in compiled(src, options).sorted_diagnostics() if d.code in wanted]


def engine_for(result: Compilation) -> Engine:
    assert result.table is not None
    return Engine(result.table.model_dump(mode="json"))


def replay(result: Compilation, action: str, witness: dict[str, Any]) -> Decision:
    """The real runtime's decision for the witness: for a fresh agent, or, when the witness
    has an `agent` part (a policy that reads the agent's state), for that agent with its state
    seeded (and assigned to its group when the part says `assigned`)."""
    assert result.table is not None
    fields = dict(witness)
    agent = fields.pop("agent", None)
    store = MemoryStore()
    agent_id = "witness"
    if agent is not None:
        agent_id = agent["id"]
        store.set_state(agent_id, agent["cumulative_risk"], agent["blocked_attempts"])
    engine = Engine(result.table.model_dump(mode="json"), store)
    if agent is not None and agent.get("assigned"):
        engine.assign_group(agent_id, agent["group"], operator="witness")
    return engine.evaluate(agent_id, action, fields)


def decided_by(result: Compilation, action: str, witness: dict[str, Any]) -> str | None:
    """The rule whose row the runtime matched for the witness (None: rejected input)."""
    decision = replay(result, action, witness)
    return decision.trace.matched_rule
