"""Uploads: a user's own music, footage or narration, stored where a spec may name it."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.rest.auth import Creator
from api.rest.routes.runs import ERRORS
from api.rest.services import Services, services
from blocks.errors import StageError
from spec.service import UploadOut
from tasks.files import atomic_path
from tasks.media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES, probe

router = APIRouter(prefix="/api/v1", tags=["uploads"])
Svc = Annotated[Services, Depends(services)]
ALLOWED = sorted(AUDIO_SUFFIXES | VIDEO_SUFFIXES | IMAGE_SUFFIXES)


def owner_folder(svc: Services, owner: str) -> Path:
    """Each owner's uploads in a folder of their own, named by a hash of the owner."""
    name = hashlib.sha256(owner.encode()).hexdigest()[:16]
    return svc.settings.uploads_dir.expanduser().resolve() / name


def _store(data: bytes, name: str, folder: Path) -> tuple[Path, object]:
    suffix = Path(name).suffix.lower()
    stem = re.sub(r"[^\w.-]+", "-", Path(name).stem)[:60].strip("-.") or "upload"
    dest = folder / f"{uuid.uuid4().hex[:12]}-{stem}{suffix}"
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
        try:
            info = probe(tmp)  # refused unless ffmpeg reads it as what its name says
        except StageError as exc:
            raise HTTPException(422, f"{name} is not a readable media file") from exc
        expected = (
            "audio"
            if suffix in AUDIO_SUFFIXES
            else "image"
            if suffix in IMAGE_SUFFIXES
            else "video"
        )
        if info.kind != expected:
            raise HTTPException(422, f"{name} holds {info.kind}, not {expected}")
    return dest, info


@router.post("/uploads", status_code=201, response_model=UploadOut, responses=ERRORS)
async def upload(request: Request, who: Creator, svc: Svc) -> UploadOut:
    """A music, footage or narration file (multipart field `file`): checked by its type and
    probed, stored in the owner's upload folder (or the sub-folder `folder` of it, to upload
    footage together). Put the answer's `path` (or its folder) in a spec."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(422, "send the file as multipart/form-data, field 'file'")
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        raise HTTPException(422, "send the file as multipart/form-data, field 'file'")
    suffix = Path(file.filename).suffix.lower()
    if suffix not in ALLOWED:
        raise HTTPException(
            422, f"unsupported file type '{suffix or file.filename}'; allowed: {', '.join(ALLOWED)}"
        )
    folder = owner_folder(svc, who.owner)
    sub = str(form.get("folder") or "")
    if sub:  # files meant to be used together (footage: a materials folder)
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", sub):
            raise HTTPException(422, "folder: lower-case letters, digits, '-' and '_' only")
        folder = folder / sub
    data = await file.read()
    limit = svc.settings.api.max_upload_mb
    if len(data) > limit * 2**20:
        raise HTTPException(422, f"the file is larger than {limit:g} MB")
    if not data:
        raise HTTPException(422, "the file is empty")
    dest, info = await run_in_threadpool(_store, data, file.filename, folder)
    return UploadOut(
        path=str(dest),
        kind=info.kind,  # type: ignore[attr-defined]
        bytes=len(data),
        duration_s=info.duration_s,  # type: ignore[attr-defined]
        width=info.width,  # type: ignore[attr-defined]
        height=info.height,  # type: ignore[attr-defined]
    )
