"""Command line of the local demo stack: `python -m demo serve|run`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .proxy import RoundRobinProxy
from .runner import run_demo
from .stack import Stack, StackError, raise_keyboard_interrupt_on_sigterm

logger = logging.getLogger("demo")

DEFAULT_PORT = 8000
DEFAULT_LOG_DIR = Path(".demo") / "logs"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="start Redis, the workers and a round-robin proxy, until Ctrl-C"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="proxy port on 127.0.0.1; 0 picks a free one (default 8000)",
    )
    serve.add_argument(
        "--workers", type=int, default=3, help="number of uvicorn worker processes (default 3)"
    )
    serve.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop by itself after this many seconds (default: run until Ctrl-C)",
    )

    run = commands.add_parser(
        "run", help="run the multi-worker demo scenarios and print the table of limits"
    )
    run.add_argument(
        "--workers", type=int, default=3, help="number of uvicorn worker processes (default 3)"
    )
    run.add_argument(
        "--log-dir",
        type=Path,
        default=DEFAULT_LOG_DIR,
        help=f"directory for the workers' logs (default {DEFAULT_LOG_DIR})",
    )
    return parser.parse_args(argv)


async def serve_proxy(upstream_ports: list[int], port: int, duration: float | None) -> None:
    """Run the round-robin proxy on 127.0.0.1:port for duration seconds, or for ever."""
    proxy = RoundRobinProxy([("127.0.0.1", upstream_port) for upstream_port in upstream_ports])
    server = await proxy.start("127.0.0.1", port)
    # Port 0 requests a free port from the system, so print the port actually bound.
    bound_port = server.sockets[0].getsockname()[1]
    async with server:
        print(
            f"\nOpen http://127.0.0.1:{bound_port}/ (round-robin over the workers). Ctrl-C stops."
        )
        if duration is None:
            await server.serve_forever()
        else:
            await asyncio.sleep(duration)


def serve(port: int, workers: int, duration: float | None) -> int:
    """Start the stack and the proxy in front of it, and stop both on exit.

    The workers are separate uvicorn processes on their own ports behind a small
    Python proxy, not one `uvicorn --workers 3`. So each worker can also be reached
    directly, as the demo scenarios need to aim at one worker at a time. The proxy
    appends X-Forwarded-For as nginx does in docker-compose.yml.
    """
    raise_keyboard_interrupt_on_sigterm()
    try:
        with Stack(workers=workers) as stack:
            print(f"Redis: {stack.redis_url}")
            for worker in stack.started:
                print(f"{worker.name}: {worker.url}/ (pid {worker.process.pid})")
            asyncio.run(serve_proxy([worker.port for worker in stack.started], port, duration))
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{port}: {exc}; pass --port", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand named on the command line and return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "serve":
        return serve(args.port, args.workers, args.duration)

    return run(args.workers, args.log_dir)


def run(workers: int, log_dir: Path) -> int:
    """Run the demo scenarios; every process started is stopped, also on Ctrl-C."""
    raise_keyboard_interrupt_on_sigterm()
    try:
        return run_demo(workers, log_dir)
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
