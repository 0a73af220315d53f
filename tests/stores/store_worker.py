"""A writer process for the store tests: `python store_worker.py TARGET TABLE MODE SEED COUNT`.

TARGET is a SQLite file or a PostgreSQL URL (``open_store``).

MODE `hammer`: COUNT random decisions over a shared pool of agents.
MODE `ack`: decisions for agents ack-0, ack-1, ... (COUNT of them, or forever when 0), printing
each agent id to stdout, flushed, only after `evaluate` returned (the decision is acknowledged).
MODE `ack-group`: the same from SEED threads at once on a store with group commit (agents
ack-THREAD-0, ack-THREAD-1, ...).
MODE `ack-async`: the same from SEED tasks on one event loop (`Engine.evaluate_async`, group
commit, synchronous FULL: the loop decides, the store's commit thread commits).
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading

from sentra_runtime import Engine
from sentra_runtime.stores import open_store

ACTIONS = [
    ("FILE_READ", {}),
    ("EXPORT_DATA", {"destination_type": "external", "data_classification": "sensitive"}),
    ("DELETE_RECORD", {}),
    ("CHANGE_PERMISSION", {}),
    ("APPROVE_TRANSACTION", {"amount": 900, "context": {"max_approval_amount": 100}}),
    ("SOMETHING_NEW", {}),
    ("ACCESS_EXTERNAL_SERVICE", {"data_classification": "Restricted"}),
    ("APPROVE_TRANSACTION", {"amount": "oops"}),
]
AGENTS = [f"agent-{index}" for index in range(12)]


def hammer(engine: Engine, rng: random.Random, count: int) -> None:
    for _ in range(count):
        action, fields = rng.choice(ACTIONS)
        engine.evaluate(rng.choice(AGENTS), action, fields)


def acknowledge(engine: Engine, count: int) -> None:
    index = 0
    while count == 0 or index < count:
        agent = f"ack-{index}"
        engine.evaluate(agent, "DELETE_RECORD")
        sys.stdout.write(agent + "\n")
        sys.stdout.flush()
        index += 1


def acknowledge_in_threads(engine: Engine, threads: int) -> None:
    """``threads`` threads deciding forever, each acknowledging (printing, under a lock so lines
    stay whole) every decision `evaluate` returned."""
    printing = threading.Lock()

    def decide(number: int) -> None:
        index = 0
        while True:
            agent = f"ack-{number}-{index}"
            engine.evaluate(agent, "DELETE_RECORD")
            with printing:
                sys.stdout.write(agent + "\n")
                sys.stdout.flush()
            index += 1

    for number in range(threads):
        threading.Thread(target=decide, args=(number,), daemon=True).start()
    threading.Event().wait()


def acknowledge_in_tasks(engine: Engine, tasks: int) -> None:
    """``tasks`` tasks on one event loop deciding forever, each acknowledging (printing) every
    decision `evaluate_async` returned."""

    async def decide(number: int) -> None:
        index = 0
        while True:
            agent = f"ack-{number}-{index}"
            await engine.evaluate_async(agent, "DELETE_RECORD")
            sys.stdout.write(agent + "\n")
            sys.stdout.flush()
            index += 1

    async def main() -> None:
        await asyncio.gather(*(decide(number) for number in range(tasks)))

    asyncio.run(main())


def main(argv: list[str]) -> None:
    target, table, mode, seed, count = argv
    engine = Engine(table, open_store(target, group_commit=mode in ("ack-group", "ack-async"),
                                      synchronous="FULL" if mode == "ack-async" else "NORMAL"))
    if mode == "hammer":
        hammer(engine, random.Random(int(seed)), int(count))
    elif mode == "ack-group":
        acknowledge_in_threads(engine, int(seed))
    elif mode == "ack-async":
        acknowledge_in_tasks(engine, int(seed))
    else:
        acknowledge(engine, int(count))


if __name__ == "__main__":
    main(sys.argv[1:])
