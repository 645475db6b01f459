"""`/api/auth/...`: first-run setup, login, logout, the current user, password
change and the caller's API tokens.

Login answers 200 with an HttpOnly, SameSite=Lax session cookie (Secure when the
client came over HTTPS), 401 on wrong credentials, 429 with Retry-After past the
limits of SPEC.md section 4. Every login makes a new session (the id rotates).
Failures are logged with the username and address, never the password.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from durachat.api.deps import PrincipalDep, Services, ServicesDep, UserDep, end_sockets
from durachat.auth.network import is_loopback
from durachat.auth.passwords import check_rules, hash_password, verify_password
from durachat.auth.sessions import COOKIE_NAME, expiry_iso, new_session
from durachat.auth.tokens import new_token
from durachat.auth.usernames import check_username
from durachat.domain import User
from durachat.errors import BadRequest, Conflict, Forbidden, Unauthorized

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])
_SETUP_LOCK = asyncio.Lock()
CLOSE_UNAUTHORIZED = 4401
_DUMMY_HASH = hash_password("not a real password, only spends the time of a check")


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=4096)


class SetupBody(Credentials):
    setup_token: str | None = Field(None, alias="setupToken", max_length=200)


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    current_password: str = Field(alias="currentPassword", max_length=4096)
    new_password: str = Field(alias="newPassword", max_length=4096)


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("token", min_length=1, max_length=100)


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "isAdmin": user.is_admin,
        "disabled": user.disabled,
        "createdAt": user.created_at,
    }


def _peer(request: Request) -> str:
    return request.client.host if request.client else ""


def client_address(services: Services, request: Request) -> str:
    return services.proxies.client_address(_peer(request), request.headers)


def _require_accounts(services: Services, request: Request) -> None:
    if not services.identity.auth_enabled:
        raise BadRequest("accounts are off (DURACHAT_AUTH=off)")
    if not services.identity.origin_allowed(request.headers):
        raise Forbidden("cross-site request refused (Origin not allowed)")


async def _start_session(
    services: Services, request: Request, response: Response, user: User
) -> None:
    secret, id_hash = new_session()
    ttl = services.settings.session_ttl_s
    await services.store.create_session(user.id, id_hash, expiry_iso(ttl))
    secure = services.proxies.is_https(_peer(request), request.url.scheme, request.headers)
    response.set_cookie(
        COOKIE_NAME, secret, max_age=ttl, path="/", httponly=True, samesite="lax", secure=secure
    )


@router.get("/status")
async def status(services: ServicesDep, request: Request) -> dict[str, Any]:
    """What the web app needs before anyone signs in: whether accounts are on,
    whether the first-run setup is still to do (and may be done from this address
    without the setup token), and the signed-in user or null."""
    identity = services.identity
    try:
        user: dict[str, Any] | None = user_json((await identity.authenticate(request.headers)).user)
    except (Unauthorized, Forbidden):
        user = None
    # The setup token exists only while no user did at start; once an admin exists
    # one always does (the last admin cannot be removed), so this is a cheap check.
    setup_needed = (
        identity.auth_enabled
        and services.setup_token is not None
        and not await services.store.list_users()
    )
    return {
        "authEnabled": identity.auth_enabled,
        "setupNeeded": setup_needed,
        "setupNeedsToken": setup_needed and not is_loopback(client_address(services, request)),
        "user": user,
    }


@router.post("/setup", status_code=201)
async def setup(
    services: ServicesDep, request: Request, response: Response, body: SetupBody
) -> dict[str, Any]:
    """Create the first user, as admin, and sign them in. Only while no user exists;
    from loopback, or from elsewhere with the setup token printed in the server log."""
    _require_accounts(services, request)
    address = client_address(services, request)
    token = services.setup_token
    allowed = is_loopback(address) or (
        token is not None
        and body.setup_token is not None
        and hmac.compare_digest(token.encode(), body.setup_token.encode())
    )
    if not allowed:
        raise Forbidden("setup from another machine needs the setup token from the server log")
    username = check_username(body.username)
    check_rules(body.password)
    async with _SETUP_LOCK:
        if await services.store.list_users():
            raise Conflict("setup is done: an account exists already")
        user = await services.store.create_user(username, hash_password(body.password), True)
    services.setup_token = None
    log.info("first admin %r created from %s", username, address)
    await _start_session(services, request, response, user)
    return {"user": user_json(user)}


@router.post("/login")
async def login(
    services: ServicesDep, request: Request, response: Response, body: Credentials
) -> dict[str, Any]:
    """Sign in with a username and password; sets the session cookie."""
    _require_accounts(services, request)
    address = client_address(services, request)
    services.limiter.check(body.username, address)
    found = await services.store.find_user(body.username)
    password_hash = found[1] if found is not None else _DUMMY_HASH
    valid = await asyncio.to_thread(verify_password, password_hash, body.password)
    if found is None or not valid or found[0].disabled:
        services.limiter.failed(body.username, address)
        log.warning("failed login for %r from %s", body.username, address)
        raise Unauthorized("wrong username or password")
    services.limiter.succeeded(body.username, address)
    await _start_session(services, request, response, found[0])
    return {"user": user_json(found[0])}


@router.post("/logout", status_code=204)
async def logout(services: ServicesDep, principal: PrincipalDep, response: Response) -> None:
    """End this session and clear its cookie."""
    if principal.session_hash is not None:
        await services.store.revoke_session(principal.session_hash)
        await end_sockets(
            services, principal.user.id, CLOSE_UNAUTHORIZED, "signed out", principal.session_hash
        )
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")


@router.get("/me")
async def me(user: UserDep) -> dict[str, Any]:
    """The signed-in user."""
    return {"user": user_json(user)}


@router.post("/password", status_code=204)
async def change_password(
    services: ServicesDep,
    principal: PrincipalDep,
    request: Request,
    response: Response,
    body: PasswordBody,
) -> None:
    """Change the caller's password; every session ends, this one is renewed."""
    found = await services.store.find_user(principal.user.username)
    if found is None or not verify_password(found[1], body.current_password):
        raise BadRequest("the current password is wrong")
    check_rules(body.new_password)
    await services.store.set_password(principal.user.id, hash_password(body.new_password))
    if principal.via == "session":
        await _start_session(services, request, response, principal.user)


@router.get("/tokens")
async def list_tokens(services: ServicesDep, user: UserDep) -> dict[str, Any]:
    """The caller's API tokens (never the secrets)."""
    tokens = await services.store.list_api_tokens(user.id)
    return {"tokens": [{"id": t.id, "name": t.name, "createdAt": t.created_at} for t in tokens]}


@router.post("/tokens", status_code=201)
async def create_token(services: ServicesDep, user: UserDep, body: TokenBody) -> dict[str, Any]:
    """A new API token; the answer is the only time the token is shown."""
    token, token_hash = new_token()
    token_id = await services.store.create_api_token(user.id, body.name, token_hash)
    return {"id": token_id, "name": body.name, "token": token}


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(services: ServicesDep, user: UserDep, token_id: str) -> None:
    """Revoke one of the caller's tokens (closing sockets opened with it, 4401);
    another user's answers 404."""
    token_hash = await services.store.revoke_api_token(user.id, token_id)
    await end_sockets(services, user.id, CLOSE_UNAUTHORIZED, "API token revoked", token_hash)
