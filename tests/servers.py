"""Private Redis Cluster and Sentinel deployments on free 127.0.0.1 ports, for tests.

Every process runs in its own directory under the given work directory.
``stop()`` kills all of them, and the fixtures call it after the tests, also
when one fails.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

CLUSTER_MASTERS = 3
READY_TIMEOUT = 20.0
POLL_INTERVAL = 0.1


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: object, what: str, timeout: float = READY_TIMEOUT) -> None:
    """Call ``check`` every POLL_INTERVAL seconds until it returns True, else raise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(POLL_INTERVAL)
    raise RuntimeError(f"{what} not reached within {timeout} s")


@dataclass
class ServerGroup:
    """redis-server processes started together and stopped together."""

    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, port: int, *args: str) -> None:
        """Start one redis-server (or sentinel, with ``--sentinel`` in ``args``) on ``port``."""
        directory = self.workdir / str(port)
        directory.mkdir()
        self.processes.append(
            subprocess.Popen(
                [
                    "redis-server",
                    *args,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(directory),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_until(lambda: _ping(port), f"PING on {port}")

    def stop(self) -> None:
        """Kill every process of the group and wait for it."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait(timeout=10)
        self.processes.clear()


@dataclass
class LocalCluster:
    """A Redis Cluster of CLUSTER_MASTERS masters without replicas."""

    ports: list[int]
    group: ServerGroup

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    @classmethod
    def start(cls, workdir: Path) -> LocalCluster:
        """Start the masters, assign the slots and wait for ``cluster_state:ok``."""
        group = ServerGroup(workdir)
        ports = [free_port() for _ in range(CLUSTER_MASTERS)]
        try:
            for port in ports:
                group.spawn(
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    f"nodes-{port}.conf",
                    "--cluster-node-timeout",
                    "2000",
                    # The default bus port is port + 10000, which may be taken or
                    # above 65535, so the bus gets a free port of its own.
                    "--cluster-port",
                    str(free_port()),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                )
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=READY_TIMEOUT,
            )
            for port in ports:
                wait_until(lambda port=port: _cluster_ok(port), f"cluster_state:ok on {port}")
        except BaseException:
            group.stop()
            raise
        return cls(ports, group)

    def stop(self) -> None:
        self.group.stop()


def _ping(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()


def _cluster_ok(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        info = client.execute_command("CLUSTER INFO")
    finally:
        client.close()
    return info.get("cluster_state") == "ok"


@dataclass
class LocalSentinel:
    """A master, one replica and one sentinel that watches them as ``mymaster``."""

    master_port: int
    replica_port: int
    sentinel_port: int
    group: ServerGroup

    service = "mymaster"

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/{self.service}/0"

    @classmethod
    def start(cls, workdir: Path) -> LocalSentinel:
        """Start master, replica and sentinel, and wait until the replica is in sync."""
        group = ServerGroup(workdir)
        master, replica, sentinel = free_port(), free_port(), free_port()
        persistence = ("--save", "", "--appendonly", "no")
        try:
            group.spawn(master, *persistence)
            group.spawn(replica, *persistence, "--replicaof", "127.0.0.1", str(master))
            wait_until(lambda: _replica_synced(replica), f"replica on {replica} in sync")

            config = workdir / "sentinel.conf"
            config.write_text(
                f"sentinel monitor {cls.service} 127.0.0.1 {master} 1\n"
                f"sentinel down-after-milliseconds {cls.service} 1000\n"
                f"sentinel failover-timeout {cls.service} 3000\n",
                encoding="utf-8",
            )
            group.spawn(sentinel, str(config), "--sentinel")
            wait_until(lambda: _sentinel_sees_replica(sentinel), "sentinel discovering the replica")
        except BaseException:
            group.stop()
            raise
        return cls(master, replica, sentinel, group)

    def kill_master(self) -> None:
        """Kill the first master with SIGKILL, so the sentinel fails over to the replica."""
        master = self.group.processes[0]
        master.kill()
        master.wait(timeout=10)

    def stop(self) -> None:
        self.group.stop()


def _replica_synced(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        info = client.info("replication")
    finally:
        client.close()
    return info.get("master_link_status") == "up"


def _sentinel_sees_replica(port: int) -> bool:
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        replicas = client.execute_command("SENTINEL REPLICAS", LocalSentinel.service)
    finally:
        client.close()
    return bool(replicas)
