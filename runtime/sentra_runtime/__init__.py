"""sentra_runtime: evaluate compiled sentra-lang policies in-process. Standard library only.

>>> engine = Engine("policy.json")                       # doctest: +SKIP
>>> decision = engine.evaluate("agent-7", "EXPORT_DATA", {"destination_type": "external"})
>>> decision.allowed, decision.rule_id, decision.explanation

Callers who keep agent state themselves use the pure decision function:

>>> decider = Decider("policy.json")                    # doctest: +SKIP
>>> decision, state = decider.decide("EXPORT_DATA", {"destination_type": "external"}, FRESH)
"""

from sentra_runtime.audit import VerifyResult, read_jsonl, verify_records
from sentra_runtime.decider import FRESH, Decider, State
from sentra_runtime.decision import Decision, Explanation, RuleTrial
from sentra_runtime.engine import Engine
from sentra_runtime.guard import ActionDenied, ReviewPending
from sentra_runtime.policy import (
    SCHEMA_VERSION,
    Policy,
    PolicyLoadError,
    content_hash,
    load_policy,
)
from sentra_runtime.review import Ticket, TicketClosed, TicketError, UnknownTicket
from sentra_runtime.stores import AgentState, MemoryStore, PostgresStore, SQLiteStore, Store

__version__ = "0.1.0"

__all__ = [
    "FRESH", "SCHEMA_VERSION", "ActionDenied", "AgentState", "Decider", "Decision", "Engine",
    "Explanation", "MemoryStore", "Policy", "PolicyLoadError", "PostgresStore", "ReviewPending",
    "RuleTrial", "SQLiteStore", "State", "Store", "Ticket", "TicketClosed", "TicketError",
    "UnknownTicket", "VerifyResult", "content_hash", "load_policy", "read_jsonl",
    "verify_records",
]
