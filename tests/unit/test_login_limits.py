"""The login rate limiter and the trusted-proxy rules, without a server."""

from __future__ import annotations

import pytest

from durachat.auth.network import Proxies, is_loopback
from durachat.auth.ratelimit import LoginLimiter
from durachat.auth.sessions import session_secret
from durachat.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_failures_per_account_and_address_then_429_until_the_window_moves() -> None:
    clock = Clock()
    limiter = LoginLimiter(900, 10, 30, clock)
    for _ in range(10):
        limiter.check("alice", "a")
        limiter.failed("Alice", "a")
        clock.now += 1
    with pytest.raises(RateLimited) as limited:
        limiter.check("alice", "a")
    assert limited.value.retry_after_s == pytest.approx(890)
    limiter.check("alice", "b")  # another address
    limiter.check("bob", "a")  # another account
    clock.now += 891
    limiter.check("alice", "a")


def test_thirty_failures_per_address_in_all() -> None:
    limiter = LoginLimiter(900, 10, 30, Clock())
    for n in range(30):
        limiter.failed(f"user{n}", "a")
    with pytest.raises(RateLimited):
        limiter.check("someone", "a")
    limiter.check("someone", "b")


def test_success_clears_the_account_count() -> None:
    limiter = LoginLimiter(900, 2, 30, Clock())
    limiter.failed("alice", "a")
    limiter.succeeded("alice", "a")
    limiter.failed("alice", "a")
    limiter.check("alice", "a")


def test_forwarded_headers_only_from_trusted_proxies() -> None:
    proxies = Proxies(["10.0.0.0/8", "::1"], "")
    forwarded = {"x-forwarded-for": "203.0.113.7, 10.1.1.1", "x-forwarded-proto": "https"}
    assert proxies.client_address("10.0.0.2", forwarded) == "203.0.113.7"
    assert proxies.client_address("198.51.100.4", forwarded) == "198.51.100.4"
    assert proxies.is_https("10.0.0.2", "http", forwarded)
    assert not proxies.is_https("198.51.100.4", "http", forwarded)
    assert Proxies([], "https://chat.example").is_https("1.2.3.4", "http", {})
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("10.0.0.1")
    assert not is_loopback("testclient")


def test_session_cookie_parsing() -> None:
    assert session_secret({"cookie": "a=b; durachat_session=xyz"}) == "xyz"
    assert session_secret({"cookie": "durachat_session="}) is None
    assert session_secret({}) is None
