"""API keys: `X-API-Key: <key>` or `Authorization: Bearer <key>`, and the role each route needs.

No key or an unknown one → 401; a key whose role is too low → 403. Ownership (another
owner's run → 404) is checked where the run is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.rest.services import Services, services
from blocks.catalog import Principal, Role, principal_for

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key.")
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token.")


async def current_principal(
    svc: Annotated[Services, Depends(services)],
    api_key: Annotated[str | None, Security(_api_key)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Principal:
    key = api_key or (bearer.credentials if bearer else None)
    if not key:
        raise HTTPException(
            401, "an API key is required (X-API-Key header)", {"WWW-Authenticate": "Bearer"}
        )
    if len(key) > 200:  # keys are ~60 characters; anything longer is not one of ours
        raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    async with svc.pool.connection() as conn:
        principal = await principal_for(conn, key)
    if principal is None:
        raise HTTPException(401, "invalid API key", {"WWW-Authenticate": "Bearer"})
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.may(role):
            raise HTTPException(403, f"this needs the {role} role; the key is {principal.role}")
        return principal

    return check


Viewer = Annotated[Principal, Depends(require("viewer"))]
Creator = Annotated[Principal, Depends(require("creator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
