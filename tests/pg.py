"""The private PostgreSQL server of the tests: `durachat.localservices.postgres`.

Re-exported here so the suites keep importing `tests.pg`; the one implementation
lives in the package because `durachat bench` starts it too.
"""

from __future__ import annotations

from durachat.localservices.postgres import PrivatePostgres, find_bin_dir, free_port

__all__ = ["PrivatePostgres", "find_bin_dir", "free_port"]
