"""Loading and calling the limiter's Lua scripts.

Each script is one ``.lua`` file, read once per process. Calls use EVALSHA. When
Redis replies NOSCRIPT (after a restart, a failover or SCRIPT FLUSH), the call is
repeated once with EVAL, which also puts the script back in the server's cache.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

SCRIPT_NAMES = ("consume", "admit", "release", "renew", "cooldown", "heartbeat", "refund")

# An editable install has no djust_dist/lua folder; the scripts then come from
# the repository's top-level lua/ folder.
_REPOSITORY_LUA_DIR = Path(__file__).resolve().parents[2] / "lua"


@dataclass(frozen=True, slots=True)
class Script:
    """One Lua script: its name, source text and SHA-1 digest."""

    name: str
    source: str
    sha: str

    async def run(
        self, client: Redis | RedisCluster, keys: list[str], args: list[str | int | float]
    ) -> Any:
        """Call the script with EVALSHA, or with EVAL when Redis does not have it."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL runs the source and caches it in one command, so a SCRIPT FLUSH
            # from another client cannot slip in between a load and the call.
            return await client.eval(self.source, len(keys), *keys, *args)


def read_source(name: str) -> str:
    """Read a script from the installed package data, else from the repository."""
    packaged = importlib.resources.files("djust_dist").joinpath("lua", f"{name}.lua")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")

    local = _REPOSITORY_LUA_DIR / f"{name}.lua"
    if local.is_file():
        return local.read_text(encoding="utf-8")

    raise FileNotFoundError(
        f"Lua script {name!r} not found in the djust_dist package or in {_REPOSITORY_LUA_DIR}; "
        f"reinstall djust_dist"
    )


@cache
def get_script(name: str) -> Script:
    """Return the script called ``name``, reading its file on the first call only."""
    if name not in SCRIPT_NAMES:
        raise ValueError(f"unknown Lua script {name!r}, expected one of {SCRIPT_NAMES}")

    source = read_source(name)
    sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()
    return Script(name=name, source=source, sha=sha)


def script_versions() -> dict[str, str]:
    """Map each script name to the SHA-1 digest that EVALSHA calls it by."""
    return {name: get_script(name).sha for name in SCRIPT_NAMES}
