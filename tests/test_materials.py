import json

import numpy as np

from spec.options import Concat
from tasks.materials import generate_procedural, scan_folder
from tasks.storyboard import pick_materials

from .conftest import ffmpeg, frame_at, make_image, make_video


def test_scan_probes_videos_and_images_and_skips_corrupt_files(tmp_path):
    make_video(tmp_path / "coffee_beans.mp4")
    make_image(tmp_path / "cup.png")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    (tmp_path / "notes.txt").write_text("ignored")
    warnings: list[str] = []
    clips = scan_folder(tmp_path, warnings)
    assert {c.path.name: c.kind for c in clips} == {"coffee_beans.mp4": "video", "cup.png": "image"}
    video = next(c for c in clips if c.kind == "video")
    assert (video.width, video.height) == (640, 360)
    assert abs(video.duration_s - 3) < 0.1
    assert len(warnings) == 1 and "broken.mp4" in warnings[0]


def test_relevant_clips_come_first_by_name_and_sidecar_tags(tmp_path):
    make_video(tmp_path / "aaa_city.mp4", seconds=5)
    make_video(tmp_path / "zzz_clip.mp4", seconds=5)
    (tmp_path / "zzz_clip.json").write_text(
        json.dumps({"tags": ["coffee", "beans"], "license_url": "https://example.org/l"})
    )
    m = pick_materials(["coffee beans"], 4.0, (540, 960), tmp_path, 4.0, Concat.sequential, 1, 1)
    first = m.clips[m.scenes[0].picks[0][0]]
    assert first.path.name == "zzz_clip.mp4"
    assert first.license_url == "https://example.org/l"


def test_no_clip_repeats_before_all_are_used(tmp_path):
    for i in range(4):
        make_video(tmp_path / f"clip{i}.mp4", seconds=2)
    m = pick_materials(["x"], 15.0, (540, 960), tmp_path, 2.0, Concat.random, 2, seed=3)
    picks = m.scenes[0].picks
    for timeline in picks:
        locals_ = [i for i in timeline if m.clips[i].source == "local"]
        first_round = locals_[:4]
        assert sorted(first_round) == sorted(set(first_round))
        assert len(timeline) == 8 and len(locals_) == 8  # their own clips, again, not drawn
    assert picks[0] != picks[1]  # variants differ, reproducibly
    again = pick_materials(["x"], 15.0, (540, 960), tmp_path, 2.0, Concat.random, 2, seed=3)
    assert again.scenes[0].picks == picks


def test_folder_of_only_corrupt_files_falls_back_to_procedural(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"garbage")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    m = pick_materials(["ocean"], 6.0, (540, 960), tmp_path, 3.0, Concat.random, 1, 5)
    assert m.clips and all(c.source == "procedural" for c in m.clips)
    assert any("no usable clips" in w for w in m.warnings)
    assert sum(1 for w in m.warnings if w.startswith("skipped")) == 2


def _drawn(clip, tmp_path):
    """The recipe drawn to a file, as the render draws it in its graph (and scales it)."""
    out = tmp_path / f"{clip.path.name}.mkv"
    ffmpeg(
        *("-f", "lavfi", "-t", str(clip.duration_s), "-i", clip.recipe),
        *("-vf", "scale=270:480", "-c:v", "ffv1", str(out)),
    )
    return out


def test_procedural_backgrounds_are_animated_varied_and_seeded(tmp_path):
    size = (540, 960)
    a = generate_procedural("ocean waves", 1, size, 2.0)
    b = generate_procedural("city lights", 2, size, 2.0)
    assert a.path != b.path and a.recipe and b.recipe
    fa0, fa1 = frame_at(_drawn(a, tmp_path), 0.1), frame_at(_drawn(a, tmp_path), 1.8)
    fb0 = frame_at(_drawn(b, tmp_path), 0.1)
    assert fa0.std() > 5  # not one flat colour
    assert np.abs(fa0.astype(int) - fa1.astype(int)).mean() > 1  # it moves
    assert np.abs(fa0.astype(int) - fb0.astype(int)).mean() > 5  # terms look different
    again = generate_procedural("ocean waves", 1, size, 2.0)
    assert again == a  # the same term and seed: the same recipe
