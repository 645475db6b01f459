"""Private PostgreSQL and Redis servers started from the installed binaries.

`PrivatePostgres` (`postgres.py`) and `PrivateRedis` (`redis.py`) each run one
throwaway server in a temporary directory on a free loopback port, and delete it
at `stop()`; a server whose owning process died is reaped by the next `start()`.
The tests (`tests/pg.py`, `tests/redis_server.py`) and `durachat bench
throughput-2nodes` use them. They must never touch the machine's own services nor
listen on 5432 or 6379.
"""
