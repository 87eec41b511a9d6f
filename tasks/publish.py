"""Publish stage: the finished files, copied into the output folder under their final names."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from blocks import storage
from tasks.files import copy_atomic, sha256_file, write_text_atomic
from tasks.render import RenderResult
from tasks.script import Script
from tasks.stage import stage
from tasks.subtitles import Subtitles
from tasks.timings import Narration

log = logging.getLogger(__name__)


class Published(BaseModel):
    out_dir: Path
    videos: list[Path]
    subtitles_srt: Path
    subtitles_ass: Path
    script_txt: Path
    # Another run may publish into the same folder; a cached result is only good while the
    # files there are still the ones it wrote.
    digests: dict[str, str]

    def files(self) -> list[Path]:
        return [*self.videos, self.subtitles_srt, self.subtitles_ass, self.script_txt]

    def intact(self) -> bool:
        return all(p.is_file() and sha256_file(p) == self.digests.get(p.name) for p in self.files())


def video_name(index: int) -> str:
    return "video.mp4" if index == 0 else f"video-{index + 1}.mp4"


def publish(
    renders: list[RenderResult], subtitles: Subtitles, script: Script, out_dir: Path
) -> Published:
    out_dir.mkdir(parents=True, exist_ok=True)
    videos = [copy_atomic(r.video, out_dir / video_name(i)) for i, r in enumerate(renders)]
    srt = copy_atomic(subtitles.srt, out_dir / "subtitles.srt")
    ass = copy_atomic(subtitles.ass, out_dir / "subtitles.ass")
    script_txt = write_text_atomic(out_dir / "script.txt", _script_text(script))
    files = [*videos, srt, ass, script_txt]
    log.info("published %s into %s", ", ".join(p.name for p in files), out_dir)
    return Published(
        out_dir=out_dir,
        videos=videos,
        subtitles_srt=srt,
        subtitles_ass=ass,
        script_txt=script_txt,
        digests={p.name: sha256_file(p) for p in files},
    )


class PublishedNarration(BaseModel):
    """A narration-only run's files: the voice track, its subtitles when asked for, the text."""

    out_dir: Path
    audio: Path
    subtitles_srt: Path | None
    subtitles_ass: Path | None
    script_txt: Path
    digests: dict[str, str]

    def files(self) -> list[Path]:
        subs = [p for p in (self.subtitles_srt, self.subtitles_ass) if p is not None]
        return [self.audio, *subs, self.script_txt]

    def intact(self) -> bool:
        return all(p.is_file() and sha256_file(p) == self.digests.get(p.name) for p in self.files())


def publish_narration(
    narration: Narration, subtitles: Subtitles | None, script: Script, out_dir: Path
) -> PublishedNarration:
    out_dir.mkdir(parents=True, exist_ok=True)
    audio = copy_atomic(narration.audio, out_dir / f"narration{narration.audio.suffix}")
    srt = copy_atomic(subtitles.srt, out_dir / "subtitles.srt") if subtitles else None
    ass = copy_atomic(subtitles.ass, out_dir / "subtitles.ass") if subtitles else None
    script_txt = write_text_atomic(out_dir / "script.txt", _script_text(script))
    published = PublishedNarration(
        out_dir=out_dir,
        audio=audio,
        subtitles_srt=srt,
        subtitles_ass=ass,
        script_txt=script_txt,
        digests={},
    )
    published.digests = {p.name: sha256_file(p) for p in published.files()}
    log.info("published %s into %s", ", ".join(p.name for p in published.files()), out_dir)
    return published


def _script_text(script: Script) -> str:
    text = script.text if script.language[:2] in {"zh", "ja"} else "\n".join(script.sentences)
    return text + "\n"


def write_manifest(out_dir: Path, manifest: BaseModel) -> Path:
    """Written after every run, cached or not: it records this run's id and stage states."""
    data = manifest.model_dump(mode="json")
    return write_text_atomic(
        out_dir / "manifest.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    )


def upload_published(files: list[Path], out_dir: Path) -> dict[str, str]:
    """With S3 storage, the published files go up under `<prefix>/<path under the output
    root>` (a service run's folder is its task id); returns each file's s3:// URL by path.
    Each object appears only once whole, and the caller names them nowhere before this
    returns."""
    if not storage.enabled():
        return {}
    urls = {}
    for path in files:
        key = storage.output_key(path) or storage.location().key(out_dir.name, path.name)
        storage.upload(path, key, storage.media_type(path))
        urls[str(path)] = storage.url_of(key)
    log.info("uploaded %d published file(s) to %s", len(urls), storage.location().bucket)
    return urls


@stage("upload", cache_policy=NO_CACHE, persist_result=False)
def upload_stage(files: list[str], out_dir: str) -> dict[str, str]:
    # Not cached: the objects are checked by their upload, not by a record of it.
    return upload_published([Path(f) for f in files], Path(out_dir))


@stage("publish")
def publish_stage(
    renders: list[RenderResult], subtitles: Subtitles, script: Script, out_dir: str
) -> Published:
    # out_dir is a string on purpose: as a Path to an existing folder it would be keyed by
    # its contents, which this very stage changes.
    return publish(renders, subtitles, script, Path(out_dir))


@stage("publish-narration")
def publish_narration_stage(
    narration: Narration, subtitles: Subtitles | None, script: Script, out_dir: str
) -> PublishedNarration:
    return publish_narration(narration, subtitles, script, Path(out_dir))
