"""Password hashing with argon2id (argon2-cffi). Passwords are never logged."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from durachat.errors import BadRequest

_HASHER = PasswordHasher()
MIN_LENGTH = 8


def check_rules(password: str) -> None:
    """Raise `BadRequest` with a clear message if the password is not acceptable."""
    if len(password) < MIN_LENGTH:
        raise BadRequest(f"the password needs at least {MIN_LENGTH} characters")
    if len(password) > 1024:
        raise BadRequest("the password is longer than 1024 characters")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
