"""`/api/admin/users`: administrators list, add, disable and remove accounts.

Disabling or removing a user ends their sessions and closes their sockets and
event streams at once (WebSockets with 4403). The last enabled admin can be
neither disabled nor removed (409 `conflict`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from durachat.api.auth import user_json
from durachat.api.deps import ServicesDep, current_user, end_sockets
from durachat.auth.passwords import check_rules, hash_password
from durachat.auth.usernames import check_username
from durachat.domain import User
from durachat.errors import Forbidden, NotFound

router = APIRouter(prefix="/api/admin", tags=["admin"])
CLOSE_FORBIDDEN = 4403


async def current_admin(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden("only an administrator may do this")
    return user


AdminDep = Annotated[User, Depends(current_admin)]


class NewUserBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(max_length=4096)
    is_admin: bool = Field(False, alias="isAdmin")


class UserPatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disabled: bool | None = None
    password: str | None = Field(None, max_length=4096)


@router.get("/users")
async def list_users(services: ServicesDep, admin: AdminDep) -> dict[str, Any]:
    """Every account."""
    return {"users": [user_json(u) for u in await services.store.list_users()]}


@router.post("/users", status_code=201)
async def add_user(services: ServicesDep, admin: AdminDep, body: NewUserBody) -> dict[str, Any]:
    """Add an account (409 if the username is taken)."""
    username = check_username(body.username)
    check_rules(body.password)
    user = await services.store.create_user(username, hash_password(body.password), body.is_admin)
    return {"user": user_json(user)}


@router.patch("/users/{user_id}")
async def update_user(
    services: ServicesDep, admin: AdminDep, user_id: str, body: UserPatchBody
) -> dict[str, Any]:
    """Disable or enable an account, or reset its password (ending its sessions)."""
    if body.password is not None:
        check_rules(body.password)
        await services.store.set_password(user_id, hash_password(body.password))
    if body.disabled is not None:
        await services.store.set_disabled(user_id, body.disabled)
        if body.disabled:
            await end_sockets(services, user_id, CLOSE_FORBIDDEN, "this account is disabled")
    user = await services.store.get_user(user_id)
    if user is None:
        raise NotFound("no such user")
    return {"user": user_json(user)}


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(services: ServicesDep, admin: AdminDep, user_id: str) -> None:
    """Remove an account and everything it owns."""
    await services.store.delete_user(user_id)
    await end_sockets(services, user_id, CLOSE_FORBIDDEN, "this account was removed")
