"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary folder, start it on a
free loopback port, stop it and remove the folder. It installs nothing: it needs PostgreSQL's
server binaries (Debian's `postgresql` package: /usr/lib/postgresql/*/bin), found on PATH, with
`pg_config --bindir`, or there. As root it runs the server as the `postgres` user (initdb
refuses root).

    python tests/pg_cluster.py start      # prints shell lines: export SENTRA_TEST_POSTGRES_URL=...
    python tests/pg_cluster.py stop DIR   # DIR: SENTRA_TEST_POSTGRES_DIR from `start`

The test session uses :class:`Cluster` directly when SENTRA_TEST_POSTGRES_URL is not set
(tests/pg_fixtures.py).
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

URL_VARIABLE = "SENTRA_TEST_POSTGRES_URL"
DIR_VARIABLE = "SENTRA_TEST_POSTGRES_DIR"
SERVER_USER = "postgres"
SETTINGS = ("-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300",
            "-c", "shared_buffers=64MB", "-c", "log_min_messages=warning")


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or the cluster would not start."""


def bin_dir() -> Path:
    """The folder of initdb, pg_ctl and postgres."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    config = shutil.which("pg_config")
    if config:
        folder = subprocess.run([config, "--bindir"], capture_output=True, text=True).stdout
        if folder.strip() and (Path(folder.strip()) / "initdb").exists():
            return Path(folder.strip())
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parts[-3]) if
                        Path(path).parts[-3].isdigit() else 0)
    if candidates:
        return Path(candidates[-1]).parent
    raise ClusterUnavailable("no PostgreSQL server binaries (initdb) on PATH or in "
                             "/usr/lib/postgresql/*/bin: install Debian's `postgresql` package")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One cluster in a temporary folder; ``url`` is its superuser's URL (trust, loopback)."""

    def __init__(self, folder: str | None = None, port: int | None = None) -> None:
        self.bin = bin_dir()
        self.folder = Path(folder or tempfile.mkdtemp(prefix="sentra-pg-"))
        self.data = self.folder / "data"
        self.port = port or free_port()
        self.user = SERVER_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / command[0]), *command[1:]]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=self.folder)
        if check and result.returncode != 0:
            raise ClusterUnavailable(f"{command[0]} failed: {result.stderr.strip()[-800:]}")
        return result

    def start(self) -> Cluster:
        if self.user is not None:
            shutil.chown(self.folder, self.user)
            os.chmod(self.folder, 0o700)
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "-E", "UTF8", "--locale=C")
        self.port = self.port or free_port()
        self.launch()
        return self

    def launch(self) -> None:
        """Start the server (again, after :meth:`halt`) on the same port and data."""
        options = " ".join(shlex.quote(part) for part in (
            *SETTINGS, "-p", str(self.port), "-k", str(self.folder)))
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        deadline = time.monotonic() + 30
        while self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port),
                        check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"the cluster in {self.folder} did not come up")
            time.sleep(0.1)

    def halt(self, mode: str = "fast") -> None:
        """Stop the server, keeping its data (``fast``: clients are disconnected)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def stop(self) -> None:
        """Stop the server and remove the folder."""
        self.halt("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["start"] and len(argv) == 1:
        try:
            cluster = Cluster().start()
        except ClusterUnavailable as error:
            print(f"pg_cluster: {error}", file=sys.stderr)
            return 1
        print(f"export {URL_VARIABLE}={shlex.quote(cluster.url)}")
        print(f"export {DIR_VARIABLE}={shlex.quote(str(cluster.folder))}")
        return 0
    if argv[:1] == ["stop"] and len(argv) == 2:
        folder = Path(argv[1])
        if (folder / "data").is_dir():
            Cluster(str(folder), port=0).stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
