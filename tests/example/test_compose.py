"""docker-compose.yml, deploy/nginx.conf and the local stack describe one layout.

No Docker engine is needed: the files are parsed and compared with the
constants of example/demo/stack.py, so the two layouts cannot drift apart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from demo import stack

REPO_DIR = Path(__file__).resolve().parents[2]
UVICORN_COMMAND = f"uvicorn {stack.ASGI_TARGET}"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())
    return dict(compose["services"])


@pytest.fixture(scope="module")
def web_services(services: dict[str, Any]) -> dict[str, Any]:
    return {name: service for name, service in services.items() if name.startswith("web")}


@pytest.fixture(scope="module")
def nginx_conf() -> str:
    return (REPO_DIR / "deploy" / "nginx.conf").read_text()


def command_text(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_compose_has_three_web_workers(web_services: dict[str, Any]) -> None:
    assert len(web_services) >= 3
    for name, service in web_services.items():
        assert UVICORN_COMMAND in command_text(service), name


def test_compose_has_redis_and_proxy(services: dict[str, Any]) -> None:
    assert services["redis"]["image"].startswith("redis:7")
    assert services["proxy"]["image"].startswith("nginx")


def test_proxy_published_on_loopback(services: dict[str, Any]) -> None:
    assert services["proxy"]["ports"] == ["127.0.0.1:8000:80"]


def test_web_env_matches_stack(web_services: dict[str, Any]) -> None:
    for name, service in web_services.items():
        environment = service["environment"]
        for key in stack.WORKER_ENV_KEYS:
            assert key in environment, f"{name} lacks {key}"
        assert environment["REDIS_URL"].startswith("redis://redis:")
        assert str(environment["DJUST_TRUSTED_PROXIES"]) == str(stack.TRUSTED_PROXY_HOPS)


def test_web_command_skips_uvicorn_proxy_headers(web_services: dict[str, Any]) -> None:
    # djust_dist resolves the client IP itself; uvicorn must not rewrite it first.
    for name, service in web_services.items():
        assert "--no-proxy-headers" in command_text(service), name
    assert "--no-proxy-headers" in stack.worker_command(8000)


def test_nginx_balances_over_every_web(nginx_conf: str, web_services: dict[str, Any]) -> None:
    for name in web_services:
        assert re.search(rf"server\s+{name}:8000;", nginx_conf), name


def test_nginx_appends_forwarded_for(nginx_conf: str) -> None:
    assert re.search(
        r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for;", nginx_conf
    )


def test_nginx_forwards_websocket_upgrade(nginx_conf: str) -> None:
    assert re.search(r"proxy_http_version\s+1\.1;", nginx_conf)
    assert re.search(r"proxy_set_header\s+Upgrade\s+\$http_upgrade;", nginx_conf)
    assert re.search(r"proxy_set_header\s+Connection\s+\$connection_upgrade;", nginx_conf)
    assert re.search(r"map\s+\$http_upgrade\s+\$connection_upgrade", nginx_conf)


def test_stack_worker_command_runs_asgi_target() -> None:
    command = stack.worker_command(8123)
    assert command[1:4] == ["-m", "uvicorn", stack.ASGI_TARGET]
    assert command[command.index("--port") + 1] == "8123"
    assert command[command.index("--host") + 1] == "127.0.0.1"


def test_stack_worker_env_sets_shared_keys(tmp_path: Path) -> None:
    env = stack.worker_env(
        redis_url="redis://127.0.0.1:6399/0",
        db_path=tmp_path / "db.sqlite3",
        secret_key="shared-secret",
        key_prefix="djust_demo:test",
        base={},
    )
    for key in stack.WORKER_ENV_KEYS:
        assert key in env, key
    assert env["REDIS_URL"] == "redis://127.0.0.1:6399/0"
    assert env["DJUST_TRUSTED_PROXIES"] == str(stack.TRUSTED_PROXY_HOPS)
    assert env["DJANGO_SECRET_KEY"] == "shared-secret"
    assert env["DJUST_DB_PATH"] == str(tmp_path / "db.sqlite3")


def test_dockerfile_installs_package_and_example() -> None:
    dockerfile = (REPO_DIR / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert re.search(r"pip install \.", dockerfile)
    assert "COPY example" in dockerfile
