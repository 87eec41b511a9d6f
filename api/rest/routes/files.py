"""Finished files, served only from under the output root, to whoever may see their run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse

from api.rest.auth import Viewer
from api.rest.routes.runs import ERRORS
from api.rest.services import Services, services
from blocks import storage
from blocks.catalog import Principal, get_video
from blocks.errors import StageError, TransientError
from blocks.settings import get_settings
from blocks.storage import media_type
from spec.service import Problem

router = APIRouter(prefix="/api/v1", tags=["files"])
Svc = Annotated[Services, Depends(services)]


def resolve_under(root: Path, file_path: str) -> Path | None:
    """The real file `file_path` names inside `root`, or None: absolute paths, `..`, NUL and
    symlinks that lead out of the root all come back None."""
    if not file_path or "\x00" in file_path or "\\" in file_path:
        return None
    pure = PurePosixPath(file_path)
    if pure.is_absolute() or any(part in ("..", ".") for part in pure.parts):
        return None
    try:
        real = Path(os.path.realpath(root / pure))
        if not real.is_relative_to(root) or not real.is_file():
            return None
    except OSError:  # a name too long for the file system, a loop of links: not a file
        return None
    return real


async def _check_owner(top: str, who: Principal, svc: Services) -> None:
    """A file belongs to the run whose folder holds it; only its owner (or an admin) sees it."""
    if who.role == "admin":
        return
    try:
        task_id = UUID(top)
    except ValueError:
        raise HTTPException(404, "no such file") from None
    async with svc.pool.connection() as conn:
        row = await get_video(conn, task_id)
    if row is None or row.owner != who.owner:
        raise HTTPException(404, "no such file")


async def _file(file_path: str, who: Principal, svc: Services) -> Path:
    real = resolve_under(svc.output_root, file_path)
    if real is None:
        raise HTTPException(404, "no such file")
    await _check_owner(real.relative_to(svc.output_root).parts[0], who, svc)
    return real


async def _object(file_path: str, who: Principal | None, svc: Services) -> tuple[str, dict]:
    """The object key a request names, with the same rules as for files: no absolute path,
    no `..`, no NUL or backslash; it must exist."""
    relative = storage.safe_key(file_path)
    if relative is None:
        raise HTTPException(404, "no such file")
    if who is not None:
        await _check_owner(relative.split("/", 1)[0], who, svc)
    key = storage.location().key(relative)
    info = await run_in_threadpool(_head, key)
    if info is None:
        raise HTTPException(404, "no such file")
    return key, info


def _head(key: str) -> dict | None:
    try:
        return storage.head(key)
    except TransientError as exc:
        raise HTTPException(503, f"{exc}; try again later") from None
    except StageError as exc:
        raise HTTPException(502, str(exc)) from None


async def _from_storage(found: tuple[str, dict], request: Request, download: bool) -> Response:
    """A redirect to a presigned URL (the object store serves Range itself), or the object
    streamed through with MPT_STORAGE__PROXY. HEAD is answered from the object's HEAD."""
    key, info = found
    name = PurePosixPath(key).name
    media = media_type(name)
    disposition = f'{"attachment" if download else "inline"}; filename="{name}"'
    if request.method == "HEAD":
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(info["ContentLength"])}
        return Response(
            status_code=200,
            media_type=media,
            headers=headers | {"Content-Disposition": disposition},
        )
    if not get_settings().storage.proxy:
        ttl = get_settings().api.signed_url_ttl_s
        url = storage.presign(key, ttl, filename=name if download else None, media_type=media)
        return RedirectResponse(url, status_code=307)
    try:
        obj, chunks = await run_in_threadpool(
            storage.iter_object, key, request.headers.get("range")
        )
    except TransientError as exc:
        raise HTTPException(503, f"{exc}; try again later") from None
    except StageError as exc:
        if "InvalidRange" in str(exc):
            raise HTTPException(416, "range not satisfiable") from None
        raise HTTPException(502, str(exc)) from None
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(obj["ContentLength"])}
    if obj.get("ContentRange"):
        headers["Content-Range"] = obj["ContentRange"]
    headers["Content-Disposition"] = disposition

    def body() -> Iterator[bytes]:
        try:
            yield from chunks
        finally:  # the client went away, or all was sent: the connection goes back
            obj["Body"].close()

    status = 206 if obj.get("ContentRange") else 200
    return StreamingResponse(body(), status_code=status, media_type=media, headers=headers)


@router.get("/stream/{file_path:path}", responses=ERRORS | {416: {"description": "Bad range"}})
@router.head("/stream/{file_path:path}", include_in_schema=False)
async def stream(file_path: str, who: Viewer, svc: Svc, request: Request) -> Response:
    """A published file, inline, with HTTP Range (206 partial content, 416 out of range);
    with S3 storage, a redirect to the object's presigned URL."""
    if storage.enabled():
        return await _from_storage(await _object(file_path, who, svc), request, download=False)
    real = await _file(file_path, who, svc)
    return FileResponse(real, media_type=media_type(real), content_disposition_type="inline")


@router.get(
    "/signed/{file_path:path}", responses={403: {"model": Problem}, 404: {"model": Problem}}
)
@router.head("/signed/{file_path:path}", include_in_schema=False)
async def signed(
    file_path: str,
    svc: Svc,
    expires: Annotated[int, Query(description="Unix time the link ends.")],
    signature: Annotated[str, Query(max_length=100)],
    request: Request,
    download: Annotated[bool, Query(description="As an attachment, with its name.")] = False,
) -> Response:
    """A published file through a signed link (from a run's `signed_urls`), no key needed:
    Range works; an expired or altered link answers 403."""
    if not svc.signer.valid(file_path, expires, signature):
        raise HTTPException(403, "this link has expired or was altered")
    if storage.enabled():
        return await _from_storage(await _object(file_path, None, svc), request, download=download)
    real = resolve_under(svc.output_root, file_path)
    if real is None:
        raise HTTPException(404, "no such file")
    if download:
        return FileResponse(real, media_type=media_type(real), filename=real.name)
    return FileResponse(real, media_type=media_type(real), content_disposition_type="inline")


@router.get("/download/{file_path:path}", responses=ERRORS)
@router.head("/download/{file_path:path}", include_in_schema=False)
async def download(file_path: str, who: Viewer, svc: Svc, request: Request) -> Response:
    """A published file as an attachment (Content-Disposition with its name)."""
    if storage.enabled():
        return await _from_storage(await _object(file_path, who, svc), request, download=True)
    real = await _file(file_path, who, svc)
    return FileResponse(real, media_type=media_type(real), filename=real.name)
