"""``/metrics`` in the Prometheus text exposition format (version 0.0.4).

Counters count what this process decided since it started; the agent gauges and the audit head
are read from the store at scrape time, so they are right across restarts and processes.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sentra_lang.server.gate import Gate

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counts decisions (by outcome label and rule), resets, policy loads and decision time.

    Created with the gate it counts for, whose policy is then loaded: that load counts."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self._lock = threading.Lock()
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.records: Counter[str] = Counter()
        self.records["policy_load"] = 1   # the gate loaded its policy before anyone listened
        self.reload_failures = 0
        self.buckets = [0] * len(BUCKETS)
        self.seconds_sum = 0.0
        self.seconds_count = 0
        gate.listeners.append(self._written)

    def _written(self, record: dict[str, Any], seconds: float) -> None:
        with self._lock:
            self.records[record["kind"]] += 1
            if record["kind"] != "decision":
                return
            decision = record["decision"]
            self.decisions[(decision["label"], decision["rule_id"])] += 1
            self.seconds_sum += seconds
            self.seconds_count += 1
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[index] += 1

    def reload_failed(self) -> None:
        with self._lock:
            self.reload_failures += 1

    def render(self) -> str:
        """The exposition text."""
        store = self.gate.store
        statuses: Counter[str] = Counter(store.state(agent).status for agent in store.agents())
        policy = self.gate.policy
        lines: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("sentra_decisions_total", "counter", "Decisions made by this process.")
            for (label, rule), count in sorted(self.decisions.items()):
                lines.append(f'sentra_decisions_total{{decision="{_escape(label)}",'
                             f'rule="{_escape(rule)}"}} {count}')
            family("sentra_decision_seconds", "histogram",
                   "Time to decide and record one action (policy, state, audit commit).")
            for bound, count in zip(BUCKETS, self.buckets):
                lines.append(f'sentra_decision_seconds_bucket{{le="{bound}"}} {count}')
            lines.append(f'sentra_decision_seconds_bucket{{le="+Inf"}} {self.seconds_count}')
            lines.append(f"sentra_decision_seconds_sum {self.seconds_sum:.6f}")
            lines.append(f"sentra_decision_seconds_count {self.seconds_count}")
            family("sentra_resets_total", "counter", "Operator resets made by this process.")
            lines.append(f"sentra_resets_total {self.records['reset']}")
            family("sentra_policy_loads_total", "counter",
                   "Policies loaded by this process: the one at start and each successful reload.")
            lines.append(f"sentra_policy_loads_total {self.records['policy_load']}")
            family("sentra_policy_reload_failures_total", "counter",
                   "Reloads refused because the policy did not compile.")
            lines.append(f"sentra_policy_reload_failures_total {self.reload_failures}")
        family("sentra_agents", "gauge", "Agents known to the store, by status.")
        for status in ("active", "shut_down"):
            lines.append(f'sentra_agents{{status="{status}"}} {statuses[status]}')
        family("sentra_audit_head_seq", "gauge", "Sequence number of the last audit record.")
        lines.append(f"sentra_audit_head_seq {self.gate.reader.head()}")
        family("sentra_policy_info", "gauge", "The policy being served.")
        lines.append(f'sentra_policy_info{{name="{_escape(policy.name)}",'
                     f'version="{_escape(policy.version)}",hash="{policy.hash}"}} 1')
        family("sentra_risk_threshold", "gauge", "The policy's risk threshold.")
        lines.append(f"sentra_risk_threshold {policy.risk_threshold}")
        return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
