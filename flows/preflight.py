"""The checks a request needs this machine for, run once where a run is created (the facade,
a batch's fan-out) or starts (`mpt make`, `mpt batch`): files that must exist, a voice this
machine has, a font that draws the script, weights to upscale with, an LLM when there is no
script. Shape (types, bounds, choices) is the spec's own; neither is checked again by the
worker, whose stages fail with their own reason if the machine differs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from blocks.errors import BadInput
from blocks.llm import configured_llm
from blocks.settings import get_settings
from flows.upscale import pool_online
from spec.runs import Kind
from spec.video import VideoSpec
from tasks.narration import check_voice
from tasks.render import pick_music
from tasks.script import make_script
from tasks.subtitles import resolve_font
from tasks.upscale import weight_files


def _found(path: Path, test: Callable[[Path], bool]) -> Path | None:
    """The path made absolute if the test holds; None also for a name the file system
    refuses (too long)."""
    try:
        path = path.expanduser()
        return path.resolve() if test(path) else None
    except OSError:
        return None


def preflight(spec: VideoSpec, output: Kind = "video", service: bool = False) -> VideoSpec:
    """The spec, its file paths made absolute, or BadInput with one line saying what is wrong.
    `service`: the run will be a deployment's (it may then wait for review)."""
    if (spec.review or spec.review_storyboard) and output == "video" and not service:
        raise BadInput("review: needs the service (create the video through the API or a batch)")
    update: dict[str, object] = {}
    if spec.music not in ("none", "random"):
        if (music := _found(Path(spec.music), Path.is_file)) is None:
            raise BadInput(f"music: music file not found: {spec.music}")
        update["music"] = str(music)
    if spec.audio is not None:
        if (audio := _found(spec.audio, Path.is_file)) is None:
            raise BadInput(f"audio: audio file not found: {spec.audio}")
        update["audio"] = audio
    if spec.materials_dir is not None:
        if (folder := _found(spec.materials_dir, Path.is_dir)) is None:
            raise BadInput(f"materials_dir: materials folder does not exist: {spec.materials_dir}")
        update["materials_dir"] = folder
    if spec.scenes:
        checked = []
        for i, scene in enumerate(spec.scenes):
            files = {}
            for name in ("clip", "image"):
                given = getattr(scene, name)
                if given is not None:
                    if (found := _found(given, Path.is_file)) is None:
                        raise BadInput(f"scenes.{i}.{name}: file not found: {given}")
                    files[name] = found
            checked.append(scene.model_copy(update=files))
        update["scenes"] = checked
    try:
        check_voice(spec.voice)
    except BadInput as exc:
        raise BadInput(f"voice: {exc}") from None
    spec = spec.model_copy(update=update)
    said = [scene.text for scene in spec.scenes] if spec.scenes else None
    if not spec.script and not spec.audio and not said and configured_llm() is None:
        raise BadInput("no script given and no LLM provider configured")
    if spec.script or said:  # word limit, speakable text, pauses written right
        make_script(spec.topic, spec.script, spec.language, scenes=said)
    pick_music(spec.music, spec.effective_seed())
    if output != "audio":
        resolve_font(spec.subtitles.font, spec.script or " ".join(said or []) or spec.topic)
    if spec.upscale not in ("none", "auto") and not pool_online(get_settings().upscale.pool):
        # Upscaled here: the weights must be here (a gpu worker checks its own folder).
        folder = get_settings().upscale.weights_dir
        if not (folder / spec.upscale).is_file():
            names = ", ".join(p.name for p in weight_files(folder)) or "none"
            raise BadInput(f"no weights file {spec.upscale!r} in {folder} (found: {names})")
    return spec
