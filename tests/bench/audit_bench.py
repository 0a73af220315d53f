"""`sentra-lang audit verify` over a large log: time and peak memory, against the verifier it
replaced, measured in the same run.

    python tests/bench/audit_bench.py [--records 100000] [--baseline 5000,10000,20000]
                                      [--postgres | --postgres-url URL]

It builds a log of ``--records`` records (decisions of 500 agents over the Sentra policy, a
reset every 500th record) in a SQLite store file, exports it as JSON Lines, and times
`sentra-lang audit verify` on both, each in a process of its own (peak memory: that process's
maximum resident set). With ``--postgres`` (a throwaway cluster, tests/pg_cluster.py) or
``--postgres-url`` it loads the same log into PostgreSQL and verifies it there too.

The baseline is the verifier before this change (``verify_records`` copied the rest of the log
for every record: quadratic), read from git at BASELINE_COMMIT, on the first 5,000, 10,000 and
20,000 records, beside the new verifier on the same prefixes; the floor is merely reading the
records (parsing their JSON) without checking anything.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
BASELINE_COMMIT = "b5c1902"
"""main before `audit verify` streamed (issue 11: 100,000 records took 293 s and 492 MB)."""
ACTIONS = [("FILE_READ", {}), ("DELETE_RECORD", {}), ("CHANGE_PERMISSION", {}),
           ("EXPORT_DATA", {"destination_type": "external", "data_classification": "sensitive"}),
           ("APPROVE_TRANSACTION", {"amount": 900, "context": {"max_approval_amount": 100}}),
           ("SEND_NOTIFICATION", {"notification_type": "approval"})]


def build(path: Path, count: int) -> None:
    """A store file with ``count`` records, written as a server writes them (one engine)."""
    from sentra_runtime import Engine, SQLiteStore

    rng = random.Random(7)
    store = SQLiteStore(path)
    store._connection.execute("PRAGMA synchronous = OFF")   # building only: no fsyncs
    engine = Engine(ROOT / "tests" / "runtime" / "fixtures" / "sentra_table.json", store)
    written = 1
    while written < count:
        if written % 500 == 499:
            engine.reset(f"agent-{rng.randrange(500)}", operator="bench")
        else:
            action, fields = rng.choice(ACTIONS)
            engine.evaluate(f"agent-{rng.randrange(500)}", action, fields)
        written += 1
    engine.close()


MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    started = time.perf_counter()
    {body}
    print(json.dumps({{"seconds": time.perf_counter() - started, "result": str(result),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
""")


def measure(body: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``body`` (which sets ``result``) in a fresh Python; its time and peak memory."""
    done = subprocess.run([sys.executable, "-c", MEASURE.format(body=body)], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    measured: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def verify_cli(target: str) -> dict[str, object]:
    return measure(f"from sentra_lang.cli import main\n"
                   f"result = main(['audit', 'verify', {target!r}])")


def prefix(source: Path, destination: Path, count: int) -> None:
    """The first ``count`` records of a store file and their head (the states stay those of the
    whole log: the new verifier reports them, after checking the chain and the head)."""
    destination.unlink(missing_ok=True)
    with sqlite3.connect(source) as connection:
        connection.execute(f"VACUUM INTO '{destination}'")
    with sqlite3.connect(destination) as connection:
        connection.execute("DELETE FROM audit WHERE seq > ?", (count,))
        connection.execute("UPDATE head SET seq = ?, hash = (SELECT hash FROM audit WHERE "
                           "seq = ?)", (count, count))


def report(name: str, measured: dict[str, object]) -> None:
    print(f"  {name:<58} {measured['seconds']:8.2f} s   peak {measured['peak_mb']:6.0f} MB")


def load_postgres(url: str, source: Path) -> None:
    """The same log in a PostgreSQL schema: the store's schema, then rows copied as they are."""
    import psycopg
    from sentra_runtime.stores.postgres import PostgresStore

    PostgresStore(url).close()
    with sqlite3.connect(source) as lite, psycopg.connect(url) as connection:
        with connection.cursor().copy("COPY sentra_audit (seq, hash, body, kind, agent, label) "
                                      "FROM STDIN") as copy:
            for seq, digest, body in lite.execute("SELECT seq, hash, body FROM audit"):
                record = json.loads(body)
                decision = record.get("decision")
                agent = record.get("agent")
                copy.write_row((seq, digest, body, record["kind"],
                                None if agent is None else agent.encode(),
                                decision.get("label") if isinstance(decision, dict) else None))
        with connection.cursor().copy("COPY sentra_agents FROM STDIN") as copy:
            for agent, risk, blocked, down in lite.execute("SELECT * FROM agents"):
                copy.write_row((agent.encode(), risk, blocked, bool(down)))
        head = lite.execute("SELECT seq, hash FROM head").fetchone()
        connection.execute("UPDATE sentra_head SET seq = %s, hash = %s", head)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--baseline", default="5000,10000,20000",
                        help="prefix sizes for the old verifier (empty: none)")
    parser.add_argument("--postgres", action="store_true",
                        help="also verify the log in a throwaway PostgreSQL cluster")
    parser.add_argument("--postgres-url", help="also verify it in this PostgreSQL server")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sentra-audit-bench-"))
    database, export = folder / "store.db", folder / "store.jsonl"
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; building {args.records:,} records ...")
    build(database, args.records)
    subprocess.run([sys.executable, "-m", "sentra_lang", "audit", "export", str(database), "-o",
                    str(export)], cwd=ROOT, check=True, capture_output=True)
    print(f"log: {args.records:,} records, {database.stat().st_size / 1e6:.0f} MB in SQLite, "
          f"{export.stat().st_size / 1e6:.0f} MB exported")
    print(f"sentra-lang audit verify, {args.records:,} records:")
    report("SQLite store file", verify_cli(str(database)))
    report("JSON Lines export", verify_cli(str(export)))
    report("floor: reading and parsing the records only", measure(
        f"from sentra_runtime.stores.sqlite import read_audit\n"
        f"result = sum(1 for _ in read_audit({str(database)!r}))"))
    if args.postgres or args.postgres_url:
        verify_postgres(args, database)
    sizes = [int(size) for size in args.baseline.split(",") if size]
    if sizes:
        compare_with_baseline(database, folder, sizes)
    return 0


def verify_postgres(args: argparse.Namespace, database: Path) -> None:
    import psycopg

    from tests.pg_cluster import Cluster
    from tests.pg_fixtures import with_schema

    cluster = None if args.postgres_url else Cluster().start()
    server = args.postgres_url or cluster.url   # type: ignore[union-attr]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        url = with_schema(server, schema)
        load_postgres(url, database)
        report("PostgreSQL database", verify_cli(url))
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        if cluster is not None:
            cluster.stop()


def compare_with_baseline(database: Path, folder: Path, sizes: list[int]) -> None:
    old = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:runtime/sentra_runtime/audit.py"],
                         cwd=ROOT, capture_output=True, text=True)
    if old.returncode != 0:
        print(f"baseline: skipped (no git history with {BASELINE_COMMIT})")
        return
    (folder / "old_audit.py").write_text(old.stdout)
    env = {**os.environ, "PYTHONPATH": f"{folder}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    print(f"the verifier before (git {BASELINE_COMMIT}) and now, on prefixes of the log:")
    for size in sizes:
        part = folder / f"prefix-{size}.db"
        prefix(database, part, size)
        report(f"{size:>7,} records, before (the whole chain, list in memory)", measure(
            f"from old_audit import verify_records\n"
            f"from sentra_runtime.stores.sqlite import read_audit\n"
            f"result = verify_records(list(read_audit({str(part)!r})))", env))
        report(f"{size:>7,} records, now (chain, head and states)", verify_cli(str(part)))


if __name__ == "__main__":
    raise SystemExit(main())
