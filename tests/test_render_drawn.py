"""Procedural backgrounds are drawn inside the render's own graph: nothing lost for it.

They used to be encoded to files by the materials stage (8 s of the demo's 38) and decoded
again by the render. Drawing them where they are used must give the same picture and the
same sound as rendering the same backgrounds from files, frame by frame.
"""

from __future__ import annotations

import numpy as np
import pytest

from spec.options import Transition
from spec.subtitles import SubtitleStyle
from tasks.materials import Materials, generate_procedural
from tasks.narration import synthesize
from tasks.render import RenderOptions, render_video
from tasks.script import make_script
from tasks.subtitles import make_subtitles, resolve_font

from .conftest import ffmpeg, frame_at, integrated_lufs, media

SIZE = (360, 640)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize("transition", [Transition.none, Transition.fade])
@pytest.mark.parametrize("streamed", [False, True])
def test_drawn_backgrounds_match_the_same_backgrounds_from_files(
    tmp_path, transition, streamed, settings_env
):
    settings_env(MPT_RENDER_MAX_INPUTS="0" if streamed else "8")
    script = make_script("", "Coffee grows near the equator. Roasting brings out the flavour.")
    narration = synthesize(script, "piper:en_US-joe-medium", 1.0, 0.3, tmp_path / "n", seed=1)
    style = SubtitleStyle(size=60)
    subtitles = make_subtitles(
        narration, style, resolve_font(style.font, script.text), SIZE, tmp_path
    )
    # One background of each kind: gradients (linear, radial), mandelbrot, life, cellauto.
    kinds: dict[str, object] = {}
    for i in range(200):
        clip = generate_procedural(f"term {i}", i, SIZE, 0.8)
        assert clip.recipe
        kinds.setdefault(clip.recipe.split("=")[0] + ("r" if "radial" in clip.recipe else ""), clip)
    drawn = list(kinds.values())
    assert len(drawn) == 5
    files = []
    for clip in drawn:
        path = tmp_path / f"{clip.path.name}.mkv"  # lossless: exactly what the recipe draws
        ffmpeg(
            "-f", "lavfi", "-t", str(clip.duration_s), "-i", clip.recipe, "-c:v", "ffv1", str(path)
        )
        files.append(clip.model_copy(update={"path": path, "recipe": None}))
    music = tmp_path / "music.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=f=220:d=3", "-c:a", "aac", str(music))
    opts = RenderOptions(
        size=SIZE, fps=30, clip_duration=1.0, transition=transition, preset="ultrafast", crf=12
    )
    order = [list(range(len(drawn)))]
    a = render_video(
        Materials.sequence(drawn, order),
        0,
        narration,
        subtitles,
        music,
        opts,
        3,
        tmp_path / "drawn.mp4",
    )
    b = render_video(
        Materials.sequence(files, order),
        0,
        narration,
        subtitles,
        music,
        opts,
        3,
        tmp_path / "files.mp4",
    )
    assert a.streamed == b.streamed == streamed
    assert media(a.video) == media(b.video)
    for t in np.arange(0.1, a.duration_s - 0.1, 0.7):
        assert _psnr(frame_at(a.video, t), frame_at(b.video, t)) > 40, t
    assert integrated_lufs(a.video) == pytest.approx(integrated_lufs(b.video), abs=0.05)
