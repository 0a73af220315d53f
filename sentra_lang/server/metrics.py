"""``/metrics`` in the Prometheus text exposition format (version 0.0.4).

Counters and the latency histogram count what this server instance decided since it started:
with ``serve --workers N`` they are **summed over the instance's worker processes** (each worker
writes its counts to a folder the workers share every :data:`SHARE_SECONDS`, and the worker that
answers a scrape adds up the others' with its own, so a scrape counts the other workers' work up
to a second late; a worker that died keeps its counts in the sum, so counters never go back).
Several instances are several scrape targets: sum them in the query. The agent gauges and the
audit head are read from the store at scrape time, so they are the same on every instance and
right across restarts; ``sentra_store_up`` says whether that read succeeded.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sentra_runtime.stores import SharedStore

from sentra_lang.server.faults import UNAVAILABLE, FaultTally
from sentra_lang.server.gate import Gate

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SHARE_SECONDS = 1.0


class Counts:
    """One process's counters (what it adds to the instance's sums)."""

    def __init__(self) -> None:
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.records: Counter[str] = Counter()
        self.reload_failures = 0
        self.buckets = [0] * len(BUCKETS)
        self.seconds_sum = 0.0
        self.seconds_count = 0
        self.unavailable = 0

    def add(self, other: Counts) -> None:
        self.decisions.update(other.decisions)
        self.records.update(other.records)
        self.reload_failures += other.reload_failures
        self.buckets = [mine + theirs for mine, theirs in zip(self.buckets, other.buckets)]
        self.seconds_sum += other.seconds_sum
        self.seconds_count += other.seconds_count
        self.unavailable += other.unavailable

    def to_json(self) -> dict[str, Any]:
        return {"decisions": [[label, rule, count] for (label, rule), count
                              in self.decisions.items()],
                "records": dict(self.records), "reload_failures": self.reload_failures,
                "buckets": self.buckets, "seconds_sum": self.seconds_sum,
                "seconds_count": self.seconds_count, "unavailable": self.unavailable}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Counts:
        counts = cls()
        counts.decisions = Counter({(label, rule): count
                                    for label, rule, count in data["decisions"]})
        counts.records = Counter(data["records"])
        counts.reload_failures = data["reload_failures"]
        counts.buckets = list(data["buckets"])
        counts.seconds_sum = data["seconds_sum"]
        counts.seconds_count = data["seconds_count"]
        counts.unavailable = data["unavailable"]
        return counts


class Metrics:
    """Counts decisions (by outcome label and rule), resets, policy loads and decision time.

    Created with the gate it counts for, whose policy is then loaded: that load counts.
    ``shared`` is the folder the workers of one instance share (``None``: one process)."""

    def __init__(self, gate: Gate, faults: FaultTally | None = None,
                 shared: str | os.PathLike[str] | None = None) -> None:
        self.gate = gate
        self.faults = faults or FaultTally()
        self._lock = threading.Lock()
        self.counts = Counts()
        self.counts.records["policy_load"] = 1   # the gate loaded its policy before anyone listened
        self.shared = None if shared is None else Path(shared)
        self._stopping = threading.Event()
        self._sharing: threading.Thread | None = None
        gate.listeners.append(self._written)

    def _written(self, record: dict[str, Any], seconds: float) -> None:
        with self._lock:
            counts = self.counts
            counts.records[record["kind"]] += 1
            if record["kind"] != "decision":
                return
            decision = record["decision"]
            counts.decisions[(decision["label"], decision["rule_id"])] += 1
            counts.seconds_sum += seconds
            counts.seconds_count += 1
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts.buckets[index] += 1

    def reload_failed(self) -> None:
        with self._lock:
            self.counts.reload_failures += 1

    # -- the workers' shared folder -----------------------------------------------------------

    def start(self) -> None:
        """Write this process's counts to the shared folder every second (with workers)."""
        if self.shared is not None and self._sharing is None:
            self._share()
            self._sharing = threading.Thread(target=self._keep_sharing, daemon=True,
                                             name="sentra metrics")
            self._sharing.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sharing is not None:
            self._sharing.join(timeout=5)
            self._share()

    def _keep_sharing(self) -> None:
        while not self._stopping.wait(SHARE_SECONDS):
            self._share()

    def _share(self) -> None:
        assert self.shared is not None
        path = self.shared / f"{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._own().to_json()), encoding="utf-8")
        os.replace(temporary, path)

    def _own(self) -> Counts:
        with self._lock:
            own = Counts()
            own.add(self.counts)
        own.unavailable = self.faults.count
        return own

    def totals(self) -> tuple[Counts, int]:
        """This process's counts plus the other workers' (as they last wrote them), and how
        many processes that is."""
        totals = self._own()
        processes = 1
        for other in self._others():
            totals.add(other)
            processes += 1
        return totals, processes

    def _others(self) -> Iterable[Counts]:
        if self.shared is None:
            return
        mine = f"{os.getpid()}.json"
        for path in sorted(self.shared.glob("*.json")):
            if path.name == mine:
                continue
            try:
                yield Counts.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                continue   # being replaced right now: the next scrape reads it

    # -- the exposition -----------------------------------------------------------------------

    def render(self) -> str:
        """The exposition text."""
        totals, processes = self.totals()
        policy = self.gate.policy
        lines: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")

        family("sentra_decisions_total", "counter", "Decisions made by this instance.")
        for (label, rule), count in sorted(totals.decisions.items()):
            lines.append(f'sentra_decisions_total{{decision="{_escape(label)}",'
                         f'rule="{_escape(rule)}"}} {count}')
        family("sentra_decision_seconds", "histogram",
               "Time to decide and record one action (policy, state, audit commit).")
        for bound, count in zip(BUCKETS, totals.buckets):
            lines.append(f'sentra_decision_seconds_bucket{{le="{bound}"}} {count}')
        lines.append(f'sentra_decision_seconds_bucket{{le="+Inf"}} {totals.seconds_count}')
        lines.append(f"sentra_decision_seconds_sum {totals.seconds_sum:.6f}")
        lines.append(f"sentra_decision_seconds_count {totals.seconds_count}")
        family("sentra_resets_total", "counter", "Operator resets made by this instance.")
        lines.append(f"sentra_resets_total {totals.records['reset']}")
        family("sentra_policy_loads_total", "counter",
               "Policies loaded: the one at start and each successful reload (by each process "
               "of this instance), and each policy adopted from another process's load.")
        lines.append(f"sentra_policy_loads_total {totals.records['policy_load']}")
        family("sentra_policy_reload_failures_total", "counter",
               "Reloads refused because the policy did not compile.")
        lines.append(f"sentra_policy_reload_failures_total {totals.reload_failures}")
        family("sentra_store_unavailable_total", "counter",
               "Requests answered 503 because the state database was unavailable.")
        lines.append(f"sentra_store_unavailable_total {totals.unavailable}")
        family("sentra_processes", "gauge", "Server processes whose counts this scrape sums.")
        lines.append(f"sentra_processes {processes}")
        lines.extend(self._store_lines(family))
        family("sentra_policy_info", "gauge", "The policy being served.")
        lines.append(f'sentra_policy_info{{name="{_escape(policy.name)}",'
                     f'version="{_escape(policy.version)}",hash="{policy.hash}"}} 1')
        family("sentra_risk_threshold", "gauge", "The policy's risk threshold.")
        lines.append(f"sentra_risk_threshold {policy.risk_threshold}")
        if policy.groups:
            family("sentra_group_risk_threshold", "gauge",
                   "The risk threshold of each agent group (its own, else the policy's).")
            lines.extend(f'sentra_group_risk_threshold{{group="{_escape(group.name)}"}} '
                         f"{policy.group_settings(group).risk_threshold}"
                         for group in policy.groups)
        return "\n".join(lines) + "\n"

    def _store_lines(self, family: Any) -> list[str]:
        """The gauges read from the store; only ``sentra_store_up 0`` when it is unavailable."""
        lines: list[str] = []
        family("sentra_store_up", "gauge", "Whether the state database answered this scrape.")
        try:
            active, shut_down = agent_counts(self.gate)
            head = self.gate.reader.head()
        except UNAVAILABLE:
            lines.append("sentra_store_up 0")
            return lines
        lines.append("sentra_store_up 1")
        family("sentra_agents", "gauge", "Agents known to the store, by status.")
        lines.append(f'sentra_agents{{status="active"}} {active}')
        lines.append(f'sentra_agents{{status="shut_down"}} {shut_down}')
        family("sentra_audit_head_seq", "gauge", "Sequence number of the last audit record.")
        lines.append(f"sentra_audit_head_seq {head}")
        return lines


def agent_counts(gate: Gate) -> tuple[int, int]:
    """How many agents the store knows, active and shut down (one query on a shared store)."""
    store = gate.store
    if isinstance(store, SharedStore):
        return store.count_agents()
    statuses = Counter(store.state(agent).status for agent in store.agents())
    return statuses["active"], statuses["shut_down"]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
