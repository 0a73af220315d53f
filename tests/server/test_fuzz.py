"""The server fuzzer (seeded, bounded): hostile requests to every POST endpoint never answer 500
or hang, every answer is JSON with a documented status, and exactly the answered decisions and
resets are in the audit log, whose hash chain stays intact (docs/threat-model.md)."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sentra_runtime.audit import verify_records
from sentra_runtime.stores.sqlite import read_audit

from tests.server.conftest import POLICY, TOKEN, Response, Server, read_answer
from tests.server.fuzz import DECISIONS, OPERATOR, RELOAD, FuzzRequest, encode, fuzz_request

ALLOWED = {200, 400, 401, 403, 404, 405, 413, 415, 422}
ROUTES = (*DECISIONS, *OPERATOR)
"""Every POST route but the reload, which gets its share of each (it compiles the policy)."""
PER_ROUTE = 20_000
"""At least this many fuzzed requests to each route of ROUTES."""
UVICORN_400 = (400, "Invalid HTTP request received.")
REQUESTS = len(ROUTES) * (PER_ROUTE + 200)
"""Requests through the real server (uvicorn, httptools, the whole application): the routes in
turn, a few of each turned into reloads."""
CLIENTS = 4
TIME_LIMIT = 1200.0


def check(request: FuzzRequest, answer: Response, statuses: Counter[int]) -> None:
    statuses[answer.status] += 1
    assert answer.status in ALLOWED, (request, answer.status, answer.text[:300])
    if (answer.status, answer.text) == UVICORN_400:
        return   # not HTTP (e.g. a raw non-ASCII path): uvicorn refuses it before the application
    try:
        json.loads(answer.text)
    except ValueError:
        raise AssertionError(f"not JSON: {answer.status} {answer.text[:200]!r} for {request}") \
            from None


def written(db: Path, statuses: dict[str, Counter[int]]) -> None:
    """The log holds exactly the answered decisions and resets, chained."""
    records = list(read_audit(db))
    kinds = Counter(record["kind"] for record in records)
    decided = sum(statuses[path][200] for path in DECISIONS)
    resets = sum(statuses[path][200] for path in OPERATOR)
    assert kinds["decision"] == decided
    assert kinds["reset"] == resets
    assert kinds["policy_load"] == 1 + statuses[RELOAD][200]
    assert verify_records(records).ok


@pytest.mark.slow
def test_fuzzed_requests_over_http_never_answer_500(tmp_path: Path) -> None:
    running = Server(POLICY, tmp_path / "http.db", TOKEN)
    statuses: dict[str, Counter[int]] = {path: Counter() for path in {*ROUTES, RELOAD}}
    failures: list[BaseException] = []
    deadline = time.monotonic() + TIME_LIMIT
    lock = threading.Lock()

    def client(seed: int, count: int) -> None:
        chooser = random.Random(seed)
        connection: socket.socket | None = None
        try:
            for number in range(count):
                if time.monotonic() > deadline:
                    raise AssertionError("the fuzzer ran out of time")
                route = ROUTES[(seed + number) % len(ROUTES)]
                request = fuzz_request(chooser, (route,))
                if connection is None:
                    connection = socket.create_connection(("127.0.0.1", running.port), timeout=30)
                connection.sendall(encode(request, running.port))
                answer = read_answer(connection)
                with lock:
                    check(request, answer, statuses[_route(request.path)])
                if answer.headers.get("connection") == "close":
                    connection.close()
                    connection = None
        except BaseException as error:   # reported by the test thread
            failures.append(error)
        finally:
            if connection is not None:
                connection.close()

    threads = [threading.Thread(target=client, args=(seed, REQUESTS // CLIENTS))
               for seed in range(CLIENTS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[0]
        assert running.get("/health").status == 200
    finally:
        running.stop()
    assert sum(sum(counter.values()) for counter in statuses.values()) == REQUESTS
    assert all(statuses[path][200] > 0 for path in (*DECISIONS, *OPERATOR, RELOAD)), statuses
    assert all(sum(statuses[path].values()) >= PER_ROUTE for path in ROUTES), statuses
    written(tmp_path / "http.db", statuses)


def _route(path: str) -> str:
    if path.startswith("/v1/agents/"):
        return "/v1/agents/{agent}/reset"
    return path.split("?", 1)[0]
