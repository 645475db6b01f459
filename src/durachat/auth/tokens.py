"""API tokens: random secrets shown once, stored only as a SHA-256 hash.

A token is looked up by its hash, and the stored hash is compared again in
constant time, so neither the database nor timing reveals a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "dct_"


def new_token() -> tuple[str, str]:
    """A new token and the hash to store."""
    token = PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
