"""The private Redis server of the tests: `durachat.localservices.redis`.

Re-exported here so the suites keep importing `tests.redis_server`; the one
implementation lives in the package because `durachat bench` starts it too.
"""

from __future__ import annotations

from durachat.localservices.redis import PrivateRedis, find_binary, free_port

__all__ = ["PrivateRedis", "find_binary", "free_port"]
