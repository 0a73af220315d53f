"""`sentra-lang serve --workers N` on SQLite and on PostgreSQL, as real processes: the workers'
decisions are one serial history, every worker's live stream shows every worker's decisions,
/metrics sums the workers' counters, a killed worker is replaced, and stopping the supervisor
stops them all."""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg.helpers import POLICY, Answer, Instance, Persistent, decide_body
from tests.pg.test_instances import (
    ACTIONS,
    AGENTS,
    StreamReader,
    assert_answers_logged,
    assert_the_rules_held,
    logged,
)

pytestmark = pytest.mark.slow


def workers_of(pid: int) -> set[int]:
    children: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listing:
            children.update(int(child) for child in listing.read().split())
    return children


@pytest.fixture(params=["sqlite", "postgres"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Instance, str]]:
    db = str(tmp_path / "workers.db") if request.param == "sqlite" else str(
        request.getfixturevalue("postgres_url"))
    instance = Instance(POLICY, db, workers=2, name="workers").start()
    try:
        yield instance, db
    finally:
        instance.stop()


def test_workers_share_the_store_stream_and_metrics(served: tuple[Instance, str]) -> None:
    instance, db = served
    assert instance.process is not None
    deadline = time.monotonic() + 30
    while len(workers_of(instance.process.pid)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    streams = [StreamReader(instance.port) for _ in range(4)]   # spread over the workers
    answers: list[Answer] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        rng = random.Random(number)
        connection = Persistent(instance.port)
        for _ in range(40):
            answer = connection.post("/v1/decide", decide_body(rng.choice(AGENTS),
                                                               rng.choice(ACTIONS)))
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert all(answer.status == 200 for answer in answers)
        for stream in streams:   # whichever worker serves it, it shows every worker's decisions
            for answer in answers:
                assert stream.wait_for(answer.body["seq"], timeout=10)
    finally:
        for stream in streams:
            stream.close()
    records = logged(db)
    assert_answers_logged(answers, records)
    assert_the_rules_held(records)
    # Answered by both workers, each naming itself. Which worker accepts a connection is the
    # kernel's choice (a loaded machine may give 20 in a row to one), so ask until both answered.
    instances: set[str] = set()
    deadline = time.monotonic() + 30
    while len(instances) < 2 and time.monotonic() < deadline:
        instances.add(instance.get("/v1/policy").body["instance"])
    assert len(instances) == 2, instances
    time.sleep(1.5)   # each worker shares its counters every second
    metrics = instance.get("/metrics").body
    assert "sentra_processes 2" in metrics
    counted = sum(int(value) for value in re.findall(
        r"^sentra_decisions_total\{[^}]*\} (\d+)$", metrics, re.MULTILINE))
    assert counted == len(answers)


def test_a_killed_worker_is_replaced_and_stopping_stops_all(
        served: tuple[Instance, str]) -> None:
    instance, _ = served
    assert instance.process is not None
    supervisor = instance.process.pid
    deadline = time.monotonic() + 30
    while len(workers_of(supervisor)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first = workers_of(supervisor)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (len(workers_of(supervisor)) == 2 and victim not in workers_of(supervisor)):
        assert time.monotonic() < deadline, "the killed worker was not replaced"
        time.sleep(0.1)
    replaced = workers_of(supervisor)
    answer = instance.post("/v1/decide", decide_body("after-kill", {"action_type": "FILE_READ"}))
    assert answer.status == 200
    instance.stop()
    assert instance.process.returncode == 0
    for pid in replaced:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(
            f"/proc/{pid}/stat").read_text().split()[2]
