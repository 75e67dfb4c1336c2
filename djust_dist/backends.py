"""Public import path of the limiter backends (no Django imports)."""

from djust_dist.engine.base import Backend
from djust_dist.engine.memory import MemoryBackend
from djust_dist.engine.redis import RedisBackend
from djust_dist.engine.types import Admission, Bucket, Decision

__all__ = ["Admission", "Backend", "Bucket", "Decision", "MemoryBackend", "RedisBackend"]
