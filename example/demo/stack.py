"""Start and stop the multi-worker layout of docker-compose.yml as local processes.

A `Stack` runs Redis (a private `redis-server` unless REDIS_URL is set), migrates
one sqlite file once, and starts several uvicorn processes, each a separate OS
process on its own 127.0.0.1 port. Every worker gets the same environment as the
web services in docker-compose.yml; tests/example/test_compose.py compares the
two through the constants below.

Use it as a context manager so that everything started is stopped again, also
after an error or Ctrl-C:

    with Stack(workers=3) as stack:
        print(stack.worker_urls)
"""

from __future__ import annotations

import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)

EXAMPLE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = EXAMPLE_DIR.parent

ASGI_TARGET = "exampleproject.asgi:application"

# Workers sit behind exactly one proxy that appends the client address to
# X-Forwarded-For, as nginx does in docker-compose.yml.
TRUSTED_PROXY_HOPS = 1

# Variables that every web worker gets, here and in docker-compose.yml.
WORKER_ENV_KEYS = (
    "REDIS_URL",
    "DJUST_TRUSTED_PROXIES",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
)

ALLOWED_HOSTS = "127.0.0.1,localhost,[::1]"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A part of the stack failed to start. The message names the part and the fix."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_command(port: int) -> list[str]:
    """Return the command line of one uvicorn worker listening on 127.0.0.1:port.

    `--no-proxy-headers` leaves X-Forwarded-For to djust_dist, which resolves the
    client IP from DJUST_TRUSTED_PROXIES; uvicorn would otherwise rewrite the
    client address itself for requests from 127.0.0.1. `--lifespan on` lets the
    app close its Redis connections when the worker stops.
    """
    return [
        sys.executable,
        "-m",
        "uvicorn",
        ASGI_TARGET,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
        "--no-proxy-headers",
        "--no-access-log",
    ]


def worker_env(
    redis_url: str,
    db_path: Path,
    secret_key: str,
    key_prefix: str,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Build the environment of a worker process and of `manage.py migrate`."""
    env = dict(os.environ if base is None else base)
    python_path = [str(EXAMPLE_DIR), str(REPO_DIR)]
    if env.get("PYTHONPATH"):
        python_path.append(env["PYTHONPATH"])

    env.update(
        {
            "PYTHONPATH": os.pathsep.join(python_path),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "exampleproject.settings",
            "REDIS_URL": redis_url,
            "DJUST_TRUSTED_PROXIES": str(TRUSTED_PROXY_HOPS),
            "DJANGO_SECRET_KEY": secret_key,
            "DJANGO_ALLOWED_HOSTS": env.get("DJANGO_ALLOWED_HOSTS", ALLOWED_HOSTS),
            "DJUST_DB_PATH": str(db_path),
            "DJUST_KEY_PREFIX": key_prefix,
        }
    )
    return env


def stop_process(
    process: subprocess.Popen[bytes], name: str, timeout: float = STOP_TIMEOUT
) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it outlives timeout seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=max(timeout, 0.0))
    except subprocess.TimeoutExpired:
        logger.warning("%s (pid %s) ignored SIGTERM, killing it", name, process.pid)
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


def http_ready(url: str) -> bool:
    """Return True when url responds to an HTTP GET with a status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (urllib.error.URLError, OSError):
        return False


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM to this child when the launching thread exits.

    Runs in the child between fork and exec, so workers do not outlive a launcher
    killed with SIGKILL. Other systems lack prctl and rely on stop() alone.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for_redis(process: subprocess.Popen[bytes], port: int) -> None:
    """Poll the redis-server on port with PING until it replies, or raise StackError."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(
                f"redis-server exited with code {process.returncode} "
                f"before it answered on port {port}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(POLL_INTERVAL)
    raise StackError(f"redis-server on port {port} did not reply to PING within {READY_TIMEOUT} s")


@dataclass
class Worker:
    """One uvicorn process of the stack."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """Redis plus `workers` uvicorn processes serving the example project.

    `log_dir=None` lets the workers write to this process's terminal; otherwise
    each one writes to `<log_dir>/<name>.log`. `use_redis=False` starts the
    workers without REDIS_URL, so each one limits with its own in-process
    MemoryBackend. `key_prefix` defaults to a fresh prefix per stack, and
    `extra_env` (for example DJUST_* overrides) is added to every worker's
    environment last, so it wins over the defaults.
    """

    workers: int = 3
    log_dir: Path | None = None
    redis_url: str | None = None
    use_redis: bool = True
    key_prefix: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    started: list[Worker] = field(default_factory=list, init=False)
    _redis_process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _workdir: Path | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def worker_urls(self) -> list[str]:
        return [worker.url for worker in self.started]

    def start(self) -> None:
        """Start Redis, migrate the database and start the workers; stop all on failure."""
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        workdir = Path(tempfile.mkdtemp(prefix="djust-demo-"))
        self._workdir = workdir
        try:
            redis_url = ""
            if self.use_redis:
                redis_url = (
                    self.redis_url or os.environ.get("REDIS_URL") or self._start_redis(workdir)
                )
                self.redis_url = redis_url
            else:
                self.redis_url = None
            env = worker_env(
                # An empty REDIS_URL means no Redis, also when this process has one set.
                redis_url=redis_url,
                db_path=workdir / "db.sqlite3",
                # Shared by every worker, so a token signed by one verifies on all.
                secret_key=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(40),
                # A prefix per run keeps this run's keys apart in a shared Redis.
                key_prefix=self.key_prefix or f"djust_demo:{secrets.token_hex(4)}",
            )
            env.update(self.extra_env)
            self._migrate(env)
            for index in range(1, self.workers + 1):
                self.started.append(self._start_worker(f"web{index}", env))
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process this stack started and remove its scratch directory."""
        # Signal every worker first, so they share one STOP_TIMEOUT grace period
        # instead of waiting one after the other.
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in self.started:
            if worker.process.poll() is None:
                worker.process.terminate()
        for worker in self.started:
            stop_process(worker.process, worker.name, timeout=deadline - time.monotonic())
        self.started.clear()

        if self._redis_process is not None:
            stop_process(self._redis_process, "redis-server")
            self._redis_process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def kill_worker(self, index: int) -> None:
        """Kill one worker with SIGKILL, as a crash would, and wait until it is gone.

        The worker gets no chance to run cleanup code, so it never releases the
        connection leases it holds. stop() skips it later.
        """
        worker = self.started[index]
        worker.process.kill()
        worker.process.wait(timeout=STOP_TIMEOUT)
        logger.info("killed %s (pid %s) with SIGKILL", worker.name, worker.process.pid)

    def _start_redis(self, workdir: Path) -> str:
        """Start a private, non-persistent redis-server and return its URL."""
        executable = shutil.which("redis-server")
        if executable is None:
            raise StackError(
                "redis-server was not found on PATH: install it (apt-get install redis-server) "
                "or set REDIS_URL to a running Redis"
            )

        port = free_port()
        process = subprocess.Popen(
            [
                executable,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        self._redis_process = process
        wait_for_redis(process, port)
        logger.info("started redis-server on 127.0.0.1:%s (pid %s)", port, process.pid)
        return f"redis://127.0.0.1:{port}/0"

    def _migrate(self, env: dict[str, str]) -> None:
        """Run `manage.py migrate` once, before any worker opens the database."""
        result = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=EXAMPLE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"manage.py migrate failed:\n{result.stderr.strip()}")

    def _start_worker(self, name: str, env: dict[str, str]) -> Worker:
        port = free_port()
        log_path = None if self.log_dir is None else self.log_dir / f"{name}.log"
        if log_path is None:
            output = None
        else:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            output = log_path.open("wb")
        try:
            process = subprocess.Popen(
                worker_command(port),
                cwd=EXAMPLE_DIR,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                # Ctrl-C in the terminal reaches this process only, and stop()
                # then shuts the workers down one by one.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        finally:
            if output is not None:
                output.close()
        logger.info("started %s on 127.0.0.1:%s (pid %s)", name, port, process.pid)
        return Worker(name=name, port=port, process=process, log_path=log_path)

    def _wait_ready(self) -> None:
        """Poll every worker over HTTP until it responds, or raise after READY_TIMEOUT."""
        deadline = time.monotonic() + READY_TIMEOUT
        waiting = list(self.started)
        while waiting:
            for worker in list(waiting):
                if worker.process.poll() is not None:
                    raise StackError(self._exit_message(worker))
                if http_ready(worker.url + "/"):
                    waiting.remove(worker)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(worker.name for worker in waiting)
                raise StackError(f"workers not ready after {READY_TIMEOUT} s: {names}")
            if waiting:
                time.sleep(POLL_INTERVAL)

    @staticmethod
    def _exit_message(worker: Worker) -> str:
        where = f"; see {worker.log_path}" if worker.log_path else "; see its output above"
        return f"{worker.name} exited with code {worker.process.returncode} during startup{where}"


def raise_keyboard_interrupt_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so `kill` stops the stack as Ctrl-C does."""

    def handle(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handle)
