"""A real Ray cluster on this machine: a head and worker nodes, each a process group of its own (`ray start
--block`), so that a node can be killed whole. `rag bench ingest --cluster local`, `make cluster` and the
tests use it; a real cluster is started with `ray start` on each machine (README, Ingest on a cluster)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from rag.errors import ClusterError
from ui.bench.common import free_port

START_S = 120.0  # for the head to answer and every node to join


class LocalCluster:
    """A Ray head with `head_cpus` CPUs (0: it only schedules) and one worker node per entry of `workers`
    (its CPUs), on a free port; `env` is added to the worker nodes' environment."""

    def __init__(self, workers: list[int], head_cpus: int = 0, env: dict[str, str] | None = None,
                 object_store_mb: int = 256) -> None:
        self.workers_cpus, self.head_cpus, self.env = workers, head_cpus, env or {}
        self.object_store = str(object_store_mb * 2**20)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="rag-ray-")
        self.head: subprocess.Popen[bytes] | None = None
        self.nodes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self.head = self._node(["--head", f"--port={self.port}", f"--num-cpus={self.head_cpus}",
                                "--include-dashboard=false", f"--temp-dir={self.temp}"], {})
        deadline = time.monotonic() + START_S
        while not _answers("127.0.0.1", self.port):
            if self.head.poll() is not None or time.monotonic() > deadline:
                raise ClusterError(f"the local Ray head on port {self.port} did not start; see {self.temp}")
            time.sleep(0.2)
        self.wait_for_nodes(1, deadline)
        for cpus in self.workers_cpus:  # one at a time: nodes starting together on one machine time out
            self.add_worker(cpus)
            self.wait_for_nodes(1 + len(self.nodes), deadline)

    def add_worker(self, cpus: int) -> subprocess.Popen[bytes]:
        node = self._node([f"--address={self.address}", f"--num-cpus={cpus}"], self.env)
        self.nodes.append(node)
        return node

    def wait_for_nodes(self, count: int, deadline: float | None = None) -> None:
        """Wait until `count` nodes are alive (head included)."""
        deadline = deadline or time.monotonic() + START_S
        while self.alive_nodes() < count:
            if time.monotonic() > deadline:
                raise ClusterError(f"the local Ray cluster at {self.address} has {self.alive_nodes()} of {count} "
                                   f"nodes after {START_S:g} s; see {self.temp}")
            time.sleep(0.5)

    def alive_nodes(self) -> int:
        out = subprocess.run([_ray(), "status", f"--address={self.address}"], capture_output=True, text=True,
                             timeout=60).stdout
        active = out.partition("Active:")[2].partition("Pending:")[0]
        return sum(int(line.split()[0]) for line in active.splitlines() if "node_" in line)

    def kill_worker(self, n: int = 0) -> None:
        """SIGKILL worker node `n` and every process of it (its raylet, its workers)."""
        _kill(self.nodes[n])

    def stop(self) -> None:
        for node in [*self.nodes, *([self.head] if self.head is not None else [])]:
            _kill(node)
        self.nodes, self.head = [], None

    def _node(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        name = f"worker-{len(self.nodes)}" if self.head is not None else "head"
        with open(Path(self.temp) / f"{name}.log", "ab") as log:
            return subprocess.Popen(
                [_ray(), "start", "--block", "--disable-usage-stats", f"--object-store-memory={self.object_store}",
                 *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **env}, start_new_session=True)


def _ray() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True
