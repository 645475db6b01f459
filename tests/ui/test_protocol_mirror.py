"""`web/src/lib/protocol.ts` lists the same message types as `api/protocol.py`."""

from __future__ import annotations

import re
from pathlib import Path

from durachat.api.protocol import CLIENT_TYPES, SERVER_TYPES

PROTOCOL_TS = Path(__file__).resolve().parents[2] / "web" / "src" / "lib" / "protocol.ts"


def ts_list(name: str) -> tuple[str, ...]:
    source = PROTOCOL_TS.read_text()
    match = re.search(rf"export const {name} = \[(.*?)\] as const;", source, re.S)
    assert match, f"{name} not found in {PROTOCOL_TS}"
    return tuple(re.findall(r"'([a-z_]+)'", match.group(1)))


def test_client_types_match() -> None:
    assert ts_list("CLIENT_TYPES") == CLIENT_TYPES


def test_server_types_match() -> None:
    assert ts_list("SERVER_TYPES") == SERVER_TYPES
