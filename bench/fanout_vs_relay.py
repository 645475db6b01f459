"""Moved: the relay comparison is now `durachat bench throughput fanout`.

The scenarios of this script (`streams`, now `throughput`, and `fanout`) and the
relay (`durachat.bench.relay`) live in the package; this shim runs them so old
notes keep working:

    .venv/bin/python bench/fanout_vs_relay.py [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import sys

from durachat.cli.main import app

if __name__ == "__main__":
    app(["bench", "throughput", "fanout", *sys.argv[1:]])
