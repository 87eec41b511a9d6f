"""The storyboard a person sees and changes: each scene's time, words, terms, the clip it
shows (with a still of it) and the other candidates, as the Prefect UI's table artifact, as
`storyboard.json` in the run's folder, and in the manifest.

With `review_storyboard`, the run suspends once the footage is chosen (its worker slot is
free); `PUT /tasks/{id}/storyboard` (or the Prefect UI's form) resumes it with the changes,
and the render uses the storyboard made again with them (the stages before stay cached).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from prefect.artifacts import create_table_artifact
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from pydantic import Field

from blocks.settings import get_settings
from spec.scenes import SceneEdit, StoryboardClip, StoryboardScene
from tasks.files import atomic_path, write_text_atomic
from tasks.materials import Clip, Materials
from tasks.media import run_ffmpeg
from tasks.storyboard import SceneChoice

log = logging.getLogger(__name__)
FOLDER = "storyboard"  # in the run's output folder: storyboard.json and the stills
THUMB_WIDTH = 240


class StoryboardDecision(RunInput):
    """What a reviewer changes in the storyboard (nothing: render it as it is)."""

    scenes: list[SceneEdit] = Field(
        default_factory=list,
        description="Per scene: another candidate (its place in the list), a clip of your "
        "own (an upload's path), or new search terms.",
    )


def still(clip: Clip, dest: Path) -> Path | None:
    """A small still of the clip (a frame a second in, or its first for a drawn one)."""
    if dest.is_file():
        return dest
    source = ["-f", "lavfi", "-i", clip.recipe] if clip.recipe else []
    if not source:
        at = min(1.0, clip.duration_s / 2) if clip.kind == "video" else 0.0
        source = ["-ss", f"{at:.2f}", "-i", str(clip.path)]
    try:
        with atomic_path(dest) as tmp:
            run_ffmpeg(
                [
                    *source,
                    "-frames:v",
                    "1",
                    "-vf",
                    f"scale={THUMB_WIDTH}:-2",
                    "-update",
                    "1",
                    "-f",
                    "image2",
                    "-c:v",
                    "mjpeg",
                    str(tmp),
                ],
                timeout_s=60,
            )
    except Exception as exc:  # noqa: BLE001 - a missing still is not worth failing a run
        log.warning("no still of %s: %s", clip.path.name, exc)
        return None
    return dest


def _clip_view(clip: Clip, thumb: Path | None, root: Path) -> StoryboardClip:
    return StoryboardClip(
        name="drawn" if clip.recipe else clip.path.name,
        source=clip.source,
        kind=clip.kind,
        term=clip.term,
        author=clip.author,
        page_url=clip.page_url,
        license_url=clip.license_url,
        thumbnail=str(thumb.relative_to(root)) if thumb else None,
    )


def scenes_view(
    materials: Materials, out_dir: Path | None = None, root: Path | None = None
) -> list[StoryboardScene]:
    """The storyboard in the contract's words; with `out_dir`, each clip's still is made
    there and named by its path under `root` (the output root the facade serves)."""
    stills: dict[int, Path | None] = {}

    def view(k: int) -> StoryboardClip:
        clip = materials.clips[k]
        if out_dir is not None and root is not None and k not in stills:
            stills[k] = still(clip, out_dir / FOLDER / f"clip-{k}.jpg")
        return _clip_view(clip, stills.get(k), root or Path("/"))

    out = []
    for scene in materials.scenes:
        first = scene.picks[0][0]
        out.append(
            StoryboardScene(
                index=scene.index,
                start_s=round(scene.start_s, 3),
                end_s=round(scene.end_s, 3),
                text=scene.text,
                terms=scene.terms,
                clip=view(first),
                reason=scene.reason,
                candidates=[view(k) for k in scene.candidates],
            )
        )
    return out


def report_storyboard(materials: Materials) -> None:
    """The Prefect UI's table of the storyboard."""
    create_table_artifact(
        key="storyboard",
        description="Each scene, its words and the footage chosen for it",
        table=[
            {
                "scene": s.index + 1,
                "time": f"{s.start_s:.2f}–{s.end_s:.2f} s",
                "text": s.text,
                "terms": ", ".join(s.terms),
                "clip": "drawn background"
                if materials.clips[s.picks[0][0]].recipe
                else materials.clips[s.picks[0][0]].path.name,
                "source": materials.clips[s.picks[0][0]].source,
                "why": s.reason,
            }
            for s in materials.scenes
        ],
    )


def write_storyboard(materials: Materials, target: Path) -> dict[str, str]:
    """storyboard.json and the stills in the run's folder; the files the catalog names."""
    root = get_settings().output_root.resolve()
    scenes = scenes_view(materials, target, root)
    path = write_text_atomic(
        target / FOLDER / "storyboard.json",
        json.dumps([s.model_dump(mode="json") for s in scenes], ensure_ascii=False, indent=2),
    )
    return {"storyboard": str(path)}


def wait_for_storyboard(materials: Materials) -> list[SceneChoice]:
    """Suspend the run until the storyboard is reviewed (the first time); the changes (on
    resume). A change names a scene that exists: the facade checked it against the file."""
    hours = get_settings().review_timeout_h
    log.info("awaiting the storyboard's review: %d scenes", len(materials.scenes))
    decision = suspend_flow_run(
        wait_for_input=StoryboardDecision.with_initial_data(
            description=(
                "**Review the storyboard before the render.** Each scene's footage is in the "
                "run's `storyboard` artifact. Leave `scenes` empty to render it as it is, or "
                'change a scene: `{"index": 2, "candidate": 1}` (another candidate), '
                '`{"index": 2, "terms": ["ocean waves"]}` (search again).'
            ),
        ),
        timeout=round(hours * 3600),
        key="storyboard",
    )
    assert decision is not None  # with wait_for_input, a resume always carries it
    log.info("storyboard reviewed: %d scene(s) changed", len(decision.scenes))
    return [SceneChoice(**edit.model_dump()) for edit in decision.scenes]
