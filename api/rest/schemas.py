"""The facade's side of the contract: a VideoSpec within the service's limits and roots, and
a catalog row as the run the API answers (the wire models themselves are `spec.service`'s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import model_validator

from api.rest.signing import Signer
from blocks.catalog import VideoRow
from blocks.settings import get_settings
from spec.runs import RunState
from spec.service import RunOut
from spec.video import VideoSpec

SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


def readable_roots() -> list[Path]:
    """Folders a request may name files in: nothing else on the server can be read."""
    s = get_settings()
    roots = (s.output_root, s.music_dir, s.uploads_dir, *s.api.input_roots)
    return [p.expanduser().resolve() for p in roots]


def inside_roots(value: str, roots: list[Path] | tuple[Path, ...]) -> bool:
    try:
        path = Path(value).expanduser()
        if not path.is_absolute():
            return False
        real = path.resolve()  # symlinks followed: a link that points out is outside
    except (OSError, RuntimeError):  # a name the file system refuses, a loop of links
        return False
    return any(real.is_relative_to(root) for root in roots)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class VideoRequest(VideoSpec):
    """A VideoSpec as the service accepts it: within the service's limits, and naming files
    only inside the storage roots (checked before any file is looked at)."""

    @model_validator(mode="before")
    @classmethod
    def _service_limits(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if _has_nul(data):
            # PostgreSQL text cannot hold NUL, and no script or path needs one.
            raise ValueError("the request contains a NUL character (\\u0000)")
        limits = get_settings().api
        topic, script = data.get("topic"), data.get("script")
        if isinstance(topic, str) and len(topic) > limits.max_topic_chars:
            raise ValueError(
                f"topic is {len(topic)} characters; the limit is {limits.max_topic_chars}"
            )
        if isinstance(script, str) and len(script) > limits.max_script_chars:
            raise ValueError(
                f"script is {len(script)} characters; the limit is {limits.max_script_chars}"
            )
        count = data.get("video_count")
        if isinstance(count, int) and count > limits.max_video_count:
            raise ValueError(f"video_count is {count}; the limit is {limits.max_video_count}")
        roots = readable_roots()
        for name in ("audio", "materials_dir"):
            value = data.get(name)
            if isinstance(value, str) and value and not inside_roots(value, roots):
                raise ValueError(f"{name} must be a path inside the service's storage roots")
        scenes = data.get("scenes")
        for i, scene in enumerate(scenes if isinstance(scenes, list) else []):
            for name in ("clip", "image"):
                value = scene.get(name) if isinstance(scene, dict) else None
                if isinstance(value, str) and value and not inside_roots(value, roots):
                    raise ValueError(
                        f"scenes.{i}.{name} must be a path inside the service's storage roots"
                    )
        music = data.get("music")
        music = music.strip() if isinstance(music, str) else "none"
        if music not in ("none", "random", "") and not inside_roots(music, roots):
            raise ValueError("music must be 'none', 'random' or a file in the music folder")
        subtitles = data.get("subtitles")
        font = subtitles.get("font") if isinstance(subtitles, dict) else None
        is_path = isinstance(font, str) and ("/" in font or "\\" in font)
        if is_path and not inside_roots(font, (*roots, *SYSTEM_FONT_DIRS)):
            raise ValueError("subtitles.font must be a family name or an installed font file")
        return data


def run_out(
    row: VideoRow,
    prefix: str,
    state: RunState | None = None,
    signer: Signer | None = None,
    public: str = "",
) -> RunOut:
    """A catalog row as the API answers it: files as stream/download URLs (and signed ones)
    once done or awaiting review."""
    urls: dict[str, str] = {}
    signed: dict[str, str] = {}
    if row.state in ("completed", "awaiting_review"):
        for name, rel in row.paths.items():
            if not Path(rel).is_absolute():
                urls[name] = f"{prefix}/stream/{rel}"
                urls[f"{name}_download"] = f"{prefix}/download/{rel}"
                if signer is not None:
                    signed[name] = signer.url(public + prefix, rel)
    return RunOut(
        task_id=row.flow_run_id,
        kind=row.kind,
        state=state or row.state,
        progress=row.progress,
        stage=row.stage,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        urls=urls,
        signed_urls=signed,
        review_note=row.review_note,
        batch_id=row.batch_id,
        spec=row.spec,
    )
