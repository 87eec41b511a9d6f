"""Finished files, served only from under the output root, to whoever may see their task."""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path, PurePosixPath
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse

from api.auth import Viewer
from api.routes.tasks import ERRORS
from api.schemas import Problem
from api.services import Services, services
from blocks.catalog import Principal, get_video

router = APIRouter(prefix="/api/v1", tags=["files"])
Svc = Annotated[Services, Depends(services)]
mimetypes.add_type("application/x-subrip", ".srt")
mimetypes.add_type("text/x-ssa", ".ass")


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


async def _file(file_path: str, who: Principal, svc: Services) -> Path:
    real = resolve_under(svc.output_root, file_path)
    if real is None:
        raise HTTPException(404, "no such file")
    if who.role != "admin":
        # A file belongs to the task whose folder holds it.
        top = real.relative_to(svc.output_root).parts[0]
        try:
            task_id = UUID(top)
        except ValueError:
            raise HTTPException(404, "no such file") from None
        async with svc.pool.connection() as conn:
            row = await get_video(conn, task_id)
        if row is None or row.owner != who.owner:
            raise HTTPException(404, "no such file")
    return real


def _media_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@router.get("/stream/{file_path:path}", responses=ERRORS | {416: {"description": "Bad range"}})
@router.head("/stream/{file_path:path}", include_in_schema=False)
async def stream(file_path: str, who: Viewer, svc: Svc) -> FileResponse:
    """A published file, inline, with HTTP Range (206 partial content, 416 out of range)."""
    real = await _file(file_path, who, svc)
    return FileResponse(real, media_type=_media_type(real), content_disposition_type="inline")


@router.get(
    "/signed/{file_path:path}", responses={403: {"model": Problem}, 404: {"model": Problem}}
)
@router.head("/signed/{file_path:path}", include_in_schema=False)
async def signed(
    file_path: str,
    svc: Svc,
    expires: Annotated[int, Query(description="Unix time the link ends.")],
    signature: Annotated[str, Query(max_length=100)],
    download: Annotated[bool, Query(description="As an attachment, with its name.")] = False,
) -> FileResponse:
    """A published file through a signed link (from a task's `signed_urls`), no key needed:
    Range works; an expired or altered link answers 403."""
    if not svc.signer.valid(file_path, expires, signature):
        raise HTTPException(403, "this link has expired or was altered")
    real = resolve_under(svc.output_root, file_path)
    if real is None:
        raise HTTPException(404, "no such file")
    if download:
        return FileResponse(real, media_type=_media_type(real), filename=real.name)
    return FileResponse(real, media_type=_media_type(real), content_disposition_type="inline")


@router.get("/download/{file_path:path}", responses=ERRORS)
@router.head("/download/{file_path:path}", include_in_schema=False)
async def download(file_path: str, who: Viewer, svc: Svc) -> FileResponse:
    """A published file as an attachment (Content-Disposition with its name)."""
    real = await _file(file_path, who, svc)
    return FileResponse(real, media_type=_media_type(real), filename=real.name)
