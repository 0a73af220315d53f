"""Several `sentra-lang serve` instances on one PostgreSQL database, as real processes: their
decisions are one serial history, an instance killed mid-load loses no decision it answered
while the others carry on, a database outage is answered 503 (the SDK fails closed) and the
instances recover without a restart, and every instance shows and serves what any of them did
(live stream, dashboard, policy reload)."""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sentra_runtime.client import Sentra
from sentra_runtime.stores import open_store

from tests.pg.helpers import POLICY, TOKEN, Answer, Instance, Persistent, decide_body
from tests.pg_cluster import Cluster
from tests.server.test_concurrency import ACTIONS
from tests.stores.helpers import replay

pytestmark = pytest.mark.slow

AGENTS = [f"agent-{number}" for number in range(6)]


@pytest.fixture
def instances(postgres_url: str) -> Iterator[list[Instance]]:
    """Two instances on one fresh PostgreSQL schema."""
    running = [Instance(POLICY, postgres_url, name=name) for name in ("A", "B")]
    try:
        for instance in running:
            instance.start()
        yield running
    finally:
        for instance in running:
            instance.stop()


def logged(url: str) -> list[dict[str, Any]]:
    """The log, after checking it: the chain and states verify, and a serial replay of it
    gives every recorded decision and every stored state."""
    store = open_store(url)
    try:
        result = store.verify_audit()
        assert result.ok and result.end == "stored head", str(result)
        records = list(store.audit_records())
        replayed = replay(records, store.policy_table)
        for agent in store.agents():
            assert store.state(agent) == replayed.state(agent), agent
    finally:
        store.close()
    return records


def assert_the_rules_held(records: list[dict[str, Any]]) -> None:
    """No cumulative risk above the threshold; exactly the third block shuts an agent down,
    and nothing it tries afterwards is decided until a reset."""
    blocks: Counter[str] = Counter()
    down: set[str] = set()
    for record in records:
        if record["kind"] == "reset":
            for agent in record["agents"]:
                blocks[agent] = 0
                down.discard(agent)
            continue
        if record["kind"] != "decision":
            continue
        agent, decision = record["agent"], record["decision"]
        assert decision["cumulative_risk"] <= 100, record
        if agent in down:
            assert decision["rule_id"] == "AGENT_ALREADY_SHUT_DOWN", record
        elif decision["label"] != "Allowed":
            blocks[agent] += 1
            shut = decision["label"] == "Agent Shut Down"
            assert shut == (blocks[agent] == 3), record
            if shut:
                assert decision["rule_id"] == "AGENT_SHUTDOWN_AFTER_REPEATED_BLOCKS"
                down.add(agent)


def assert_answers_logged(answers: list[Answer], records: list[dict[str, Any]]) -> None:
    """Every decision answered 200 by `/v1/decide` is the record at its seq."""
    by_seq = {record["seq"]: record for record in records}
    for answer in answers:
        decision = answer.body["decision"]
        record = by_seq[answer.body["seq"]]
        assert (record["agent"], record["decision"]["rule_id"],
                record["decision"]["cumulative_risk"]) == (
            decision["agent_id"], decision["rule_id"], decision["cumulative_risk"])


def test_two_instances_and_eight_clients_are_one_serial_history(
        instances: list[Instance], postgres_url: str) -> None:
    """8 clients on the same agents through both instances, both APIs, with resets: replaying
    the log serially gives the same decisions and states; the rules held for every agent."""
    sentra_answers: list[dict[str, Any]] = []
    decided: list[Answer] = []
    problems: list[str] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        rng = random.Random(number)
        connections = [Persistent(instance.port) for instance in instances]
        for index in range(60):
            connection = rng.choice(connections)
            agent = rng.choice(AGENTS)
            if index % 25 == 24:
                answer = rng.choice(instances).post(f"/v1/agents/{agent}/reset", None,
                                                    token=TOKEN)
            elif number % 2:
                answer = connection.post("/agent-action",
                                         {"agent_id": agent, **rng.choice(ACTIONS)})
            else:
                answer = connection.post("/v1/decide", decide_body(agent, rng.choice(ACTIONS)))
            with lock:
                if answer.status != 200:
                    problems.append(f"{answer.status} {answer.body}")
                elif number % 2 and index % 25 != 24:
                    sentra_answers.append(answer.body)
                elif "seq" in answer.body and "decision" in answer.body:
                    decided.append(answer)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    records = logged(postgres_url)
    assert_the_rules_held(records)
    assert_answers_logged(decided, records)
    sentra_records = [record for record in records if record["kind"] == "decision"
                      and record["server"]["api"] == "sentra"]
    assert Counter((answer["agent_id"], answer["policy_triggered"], answer["cumulative_risk"])
                   for answer in sentra_answers) == Counter(
        (record["agent"], record["decision"]["rule_id"],
         f"{record['decision']['cumulative_risk']}/100") for record in sentra_records)
    assert Counter(record["kind"] for record in records)["decision"] == 8 * 60 - 8 * 2


def test_an_instance_killed_mid_load_loses_no_answered_decision(
        instances: list[Instance], postgres_url: str) -> None:
    """SIGKILL instance A at three points of the load (then start it again): every decision
    either instance answered 200 is in the log, the chain verifies, and B kept answering."""
    killed = instances[0]
    for round_number, kill_after in enumerate((20, 120, 300)):
        answers, failures = _kill_mid_load(instances, round_number, kill_after)
        assert all(answer.status == 200 for _, answer, _ in answers)
        assert {name for name, _ in failures} <= {"A"}   # the survivor never failed
        records = logged(postgres_url)
        assert_answers_logged([answer for _, answer, _ in answers], records)
        assert_the_rules_held(records)
        killed.start()


def _kill_mid_load(instances: list[Instance], round_number: int, kill_after: int,
                   ) -> tuple[list[tuple[str, Answer, float]], list[tuple[str, str]]]:
    """8 clients on both instances; SIGKILL A once ``kill_after`` decisions were answered;
    stop when B answered 100 more. The answers (instance, answer, when) and the failures."""
    killed = instances[0]
    answers: list[tuple[str, Answer, float]] = []
    failures: list[tuple[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        rng = random.Random(round_number * 100 + number)
        connections = {instance.name: Persistent(instance.port) for instance in instances}
        while not stop.is_set():
            name = rng.choice(list(connections))
            body = decide_body(rng.choice(AGENTS), rng.choice(ACTIONS))
            try:
                answer = connections[name].post("/v1/decide", body)
            except OSError as error:
                with lock:
                    failures.append((name, str(error)))
                time.sleep(0.01)
                continue
            with lock:
                answers.append((name, answer, time.monotonic()))

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    while len(answers) < kill_after:
        time.sleep(0.005)
    killed.kill()
    killed_at = time.monotonic()
    while sum(at > killed_at and name == "B" for name, _, at in list(answers)) < 100:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    return answers, failures


def test_a_database_outage_is_answered_503_and_the_instances_recover(
        own_cluster: Cluster) -> None:
    """Stop the database mid-load and start it again: meanwhile every request is answered 503
    (quickly) or decided, never 500, the SDK reports blocked, and both instances decide again
    afterwards, without a restart; every decision answered is in the log."""
    instances = [Instance(POLICY, own_cluster.url, name=name) for name in ("A", "B")]
    try:
        for instance in instances:
            instance.start()
        _outage(own_cluster, instances)
    finally:
        for instance in instances:
            instance.stop()


def _outage(cluster: Cluster, instances: list[Instance]) -> None:
    """Each answer is kept with when its request was sent and when its thread had the answer:
    one sent once the database was down (`halt` returned) and had before it was started again
    (`launch` called: the database may answer before `launch` returns) was answered in the
    outage, however late its thread got to note either time (a thread paused between noting
    the time and sending only makes `sent` earlier and `done` later)."""
    answers: list[tuple[str, Answer, float, float]] = []
    sdk_results: list[Any] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        rng = random.Random(number)
        connections = {instance.name: Persistent(instance.port) for instance in instances}
        while not stop.is_set():
            name = rng.choice(list(connections))
            sent = time.monotonic()
            answer = connections[name].post("/v1/decide", decide_body(rng.choice(AGENTS),
                                                                      {"action_type": "FILE_READ"}))
            done = time.monotonic()
            with lock:
                answers.append((name, answer, sent, done))
            time.sleep(0.005)

    def sdk_client() -> None:
        sentra = Sentra(instances[1].url, timeout=5)
        while not stop.is_set():
            sent = time.monotonic()
            result = sentra.evaluate("sdk-agent", "FILE_READ")
            with lock:
                sdk_results.append((result, sent, time.monotonic()))
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=sdk_client))
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    cluster.halt("fast")
    down_at = time.monotonic()
    time.sleep(3)
    launching = time.monotonic()   # the database may answer before `launch` sees it is up
    cluster.launch()
    up_at = time.monotonic()
    deadline = up_at + 30
    while time.monotonic() < deadline and not all(
            any(name == instance.name and answer.status == 200 and at > up_at
                for name, answer, at, _ in answers[-200:]) for instance in instances):
        time.sleep(0.1)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()

    statuses = Counter(answer.status for _, answer, _, _ in answers)
    assert set(statuses) <= {200, 503}, statuses
    during = [(answer, sent) for _, answer, sent, done in answers
              if down_at < sent and done < launching]
    assert during and all(answer.status == 503 for answer, _ in during)
    waits = sorted(answer.seconds for answer, _ in during)   # failed fast, not after a timeout
    assert waits[len(waits) * 9 // 10] < 1.0 and waits[-1] < 2.5, waits
    assert all("unavailable" in answer.body["detail"] for answer, _ in during)
    for instance in instances:   # both decide again, without a restart
        assert any(name == instance.name and answer.status == 200 and at > up_at
                   for name, answer, at, _ in answers)
    refused = [result for result, sent, done in sdk_results
               if down_at < sent and done < launching]
    assert refused and all(not result.allowed and result.reason.startswith("Fail closed")
                           for result in refused)
    assert any(result.allowed for result, sent, _ in sdk_results if sent > up_at)
    records = logged(cluster.url)
    assert_answers_logged([answer for _, answer, _, _ in answers if answer.status == 200],
                          records)


def test_every_instance_shows_what_any_instance_did(instances: list[Instance]) -> None:
    """The live stream of B shows A's decisions, and so do B's dashboard snapshot and agents."""
    first, second = instances
    stream = StreamReader(second.port)
    try:
        answer = first.post("/v1/decide", decide_body("seen-from-b", {"action_type": "FILE_READ"}))
        seq = answer.body["seq"]
        assert stream.wait_for(seq, timeout=10)["agent"] == "seen-from-b"
    finally:
        stream.close()
    snapshot = second.get("/v1/dashboard/snapshot").body
    assert any(event.get("agent") == "seen-from-b" for event in snapshot["events"])
    assert second.get("/v1/agents/seen-from-b").body["known"] is True


def test_a_reload_through_one_instance_reaches_the_others(tmp_path: Path,
                                                          postgres_url: str) -> None:
    """A reload through A reaches B: its /v1/policy names the new hash, adopted from the log,
    and its next decision records that hash; each instance's load is in the log."""
    policy = tmp_path / "policy.sentra"
    shutil.copy(POLICY, policy)
    instances = [Instance(policy, postgres_url, name=name) for name in ("A", "B")]
    try:
        for instance in instances:
            instance.start()
        first, second = instances
        before = second.get("/v1/policy").body
        assert before["origin"] == "file" and before["instance"] != first.get(
            "/v1/policy").body["instance"]
        policy.write_text(policy.read_text().replace("version \"", "version \"9.", 1))
        reloaded = first.post("/v1/policy/reload", None, token=TOKEN).body
        assert reloaded["changed"] is True
        deadline = time.monotonic() + 10
        while second.get("/v1/policy").body["hash"] != reloaded["hash"]:
            assert time.monotonic() < deadline, "the reload did not reach instance B"
            time.sleep(0.1)
        after = second.get("/v1/policy").body
        assert after["origin"] == "log" and after["version"].startswith("9.")
        decided = second.post("/v1/decide", decide_body("after-reload",
                                                         {"action_type": "FILE_READ"})).body
        assert decided["decision"]["policy_hash"] == reloaded["hash"]
        loads = [record for record in logged(postgres_url) if record["kind"] == "policy_load"]
        assert [load["policy_hash"] for load in loads][-2:] == [reloaded["hash"]] * 2
    finally:
        for instance in instances:
            instance.stop()


class StreamReader:
    """A client of `/v1/events/stream`, reading in a thread."""

    def __init__(self, port: int) -> None:
        import http.client
        import json

        self.events: dict[int, dict[str, Any]] = {}
        self.arrived = threading.Condition()
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.request("GET", "/v1/events/stream")
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        self._json = json
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        seq = None
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("data: ") and seq is not None:
                    with self.arrived:
                        self.events[seq] = self._json.loads(line[6:])
                        self.arrived.notify_all()
        except (OSError, ValueError):
            return

    def wait_for(self, seq: int, timeout: float) -> dict[str, Any]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: seq in self.events, timeout), \
                f"seq {seq} did not arrive on the stream"
            return self.events[seq]

    def close(self) -> None:
        self.connection.close()



def test_the_newest_policy_load_is_what_every_instance_serves(tmp_path: Path,
                                                               postgres_url: str) -> None:
    """An instance started with another policy file loads it, and the running ones follow it:
    the newest policy load in the shared log wins (docs/deployment.md)."""
    newer = tmp_path / "newer.sentra"
    newer.write_text(POLICY.read_text().replace('version "', 'version "2.', 1))
    first = Instance(POLICY, postgres_url, name="A").start()
    try:
        old_hash = first.get("/v1/policy").body["hash"]
        second = Instance(newer, postgres_url, name="B").start()
        try:
            new_hash = second.get("/v1/policy").body["hash"]
            assert new_hash != old_hash
            deadline = time.monotonic() + 10
            while first.get("/v1/policy").body["hash"] != new_hash:
                assert time.monotonic() < deadline, "instance A kept the older policy"
                time.sleep(0.1)
            assert first.get("/v1/policy").body["origin"] == "log"
        finally:
            second.stop()
    finally:
        first.stop()
