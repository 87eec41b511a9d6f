"""Neural upscaling on the CPU: models of each architecture built here, saved the ways real
weights come and loaded through spandrel; the streamed pipeline against the model applied
frame by frame; the stage inside the video flow; the gpu pool's deployment with a real
process worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the upscale extra (make test installs it)")

from blocks.errors import BadInput, StageError  # noqa: E402
from tasks.media import ffmpeg_exe  # noqa: E402
from tasks.upscale import list_models, load_model, probe_video, upscale_file  # noqa: E402

from .conftest import make_image, make_video, media  # noqa: E402
from .upscale_models import save  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CPU = torch.device("cpu")
KINDS = {
    "compact-x2": ("Compact", 2),
    "compact-x4": ("Compact", 4),
    "rrdb-x2": ("ESRGAN", 2),
    "rrdb-x4": ("ESRGAN", 4),
    "swinir-x2": ("SwinIR", 2),
}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("weights")
    for kind in KINDS:
        save(kind, folder)
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """The issue's clip: 2 s, 96×54, with sound."""
    return make_video(
        tmp_path_factory.mktemp("clip") / "small.mp4", size="96x54", seconds=2, audio=True
    )


def _frames(path: Path) -> np.ndarray:
    info = probe_video(path)
    raw = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode"]
        + ["passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, info.height, info.width, 3)


def _frame_count(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


# --- loading -----------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["plain", "params_ema", "safetensors"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_architecture_loads_as_user_weights_do(kind, how, tmp_path):
    path = save(kind, tmp_path, how)
    up = load_model(path, CPU)
    architecture, scale = KINDS[kind]
    assert (up.info.architecture, up.info.scale, up.info.precision) == (architecture, scale, "fp32")
    assert up.info.parameters > 0
    x = torch.randint(0, 256, (1, 20, 24, 3), dtype=torch.uint8)
    from tasks.upscale import run_batch

    assert run_batch(up, x).shape == (1, 20 * scale, 24 * scale, 3)


def test_precision_per_device_and_architecture(weights):
    from tasks.upscale import precision_for

    cuda = torch.device("cuda")
    compact = load_model(weights / "compact-x2.pth", CPU).descriptor
    swinir = load_model(weights / "swinir-x2.pth", CPU).descriptor
    assert precision_for(compact, CPU) == "fp32"
    assert precision_for(compact, cuda) == "fp16"
    assert precision_for(swinir, cuda) == "bf16"


def _evil(path: Path, marker: Path) -> Path:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"params": Payload()}, path)
    return path


def test_bad_weights_are_refused_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.pth").write_bytes(b"not a model" * 100)
    torch.save({"conv.weight": torch.randn(8, 3, 3, 3)}, bad / "unknown.pth")
    _evil(bad / "evil.pth", marker)
    expected = {
        "corrupt.pth": "corrupt.pth is not a readable weights file",
        "unknown.pth": "unknown.pth: unknown model architecture",
        "evil.pth": "evil.pth is refused: it carries code (posix.system)",
    }
    for name, start in expected.items():
        with pytest.raises(BadInput) as err:
            load_model(bad / name, CPU)
        assert str(err.value).startswith(start), str(err.value)
        assert "\n" not in str(err.value)
    assert not marker.exists(), "unpickling ran the file's code"
    # Listing the folder shows each refusal instead of failing.
    listed = list_models(bad)
    assert sorted(x.split(" ")[0].rstrip(":") for x in listed) == sorted(expected)


# --- the stream --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["compact-x2", "compact-x4"])
def test_clip_upscaled_keeps_frames_rate_and_sound(kind, weights, clip, tmp_path):
    scale = KINDS[kind][1]
    out = tmp_path / "out.mp4"
    stats = upscale_file(load_model(weights / f"{kind}.pth", CPU), clip, out)
    got, src = media(out), media(clip)
    assert (got["width"], got["height"]) == (96 * scale, 54 * scale)
    assert _frame_count(out) == _frame_count(clip) == stats.frames == 60
    assert probe_video(out).fps == probe_video(clip).fps == "30/1"
    assert got["audio_codec"] == "aac" and abs(got["duration"] - src["duration"]) < 0.05
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert not list(tmp_path.glob(".*part*"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("kind", ["compact-x2", "rrdb-x2", "swinir-x2"])
def test_stream_equals_the_model_frame_by_frame(kind, weights, clip, tmp_path):
    """Losslessly encoded, the streamed output is the model's own output on each decoded
    frame: nothing lost, reordered or torn between the pipes and the batches."""
    up = load_model(weights / f"{kind}.pth", CPU)
    out = tmp_path / "out.mkv"
    lossless = ["-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "rgb24"]
    upscale_file(up, clip, out, encoder=lossless, batch=4)
    inputs, outputs = _frames(clip), _frames(out)
    assert len(outputs) == len(inputs) == 60
    model = up.descriptor  # the model as spandrel runs it (with its padding to a multiple)
    with torch.inference_mode():
        for i in (0, 1, 29, 58, 59):
            x = torch.from_numpy(inputs[i].copy()).permute(2, 0, 1)[None].float() / 255
            ref = (model(x) * 255).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0)
            diff = np.abs(ref.numpy().astype(int) - outputs[i].astype(int)).max()
            assert diff <= 1, f"frame {i}: off by {diff}/255"


def test_tiles_match_whole_frames(weights, clip, tmp_path):
    up = load_model(weights / "compact-x2.pth", CPU)
    lossless = ["-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "rgb24"]
    upscale_file(up, clip, tmp_path / "whole.mkv", encoder=lossless)
    stats = upscale_file(up, clip, tmp_path / "tiled.mkv", encoder=lossless, tile=32)
    assert stats.tiled
    whole, tiled = _frames(tmp_path / "whole.mkv"), _frames(tmp_path / "tiled.mkv")
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


def test_an_image_upscales_to_a_png(weights, tmp_path):
    image = make_image(tmp_path / "still.png", size="40x30")
    out = tmp_path / "still-x4.png"
    upscale_file(load_model(weights / "compact-x4.pth", CPU), image, out)
    assert (media(out)["width"], media(out)["height"]) == (160, 120)


def test_a_file_that_is_no_video_fails_cleanly(weights, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(StageError) as err:
        upscale_file(load_model(weights / "compact-x2.pth", CPU), bad, tmp_path / "o.mp4")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "o.mp4").exists() and not list(tmp_path.glob(".*part*"))


def test_a_rotated_phone_clip_comes_out_upright(weights, clip, tmp_path):
    rotated = tmp_path / "phone.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(clip), "-c", "copy"]
        + [str(rotated)],
        check=True,
    )
    info = probe_video(rotated)
    assert (info.width, info.height) == (54, 96)  # as ffmpeg decodes it: turned upright
    out = tmp_path / "out.mp4"
    stats = upscale_file(load_model(weights / "compact-x2.pth", CPU), rotated, out)
    assert (media(out)["width"], media(out)["height"]) == (108, 192) and stats.frames == 60


def test_pcm_sound_is_encoded_where_mp4_cannot_copy_it(weights, tmp_path):
    src = tmp_path / "pcm.mov"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x36:r=10:d=1"]
        + ["-f", "lavfi", "-i", "sine=d=1", "-c:v", "libx264", "-c:a", "pcm_s16le"]
        + ["-shortest", str(src)],
        check=True,
    )
    out = tmp_path / "out.mp4"
    upscale_file(load_model(weights / "compact-x2.pth", CPU), src, out)
    assert media(out)["audio_codec"] == "aac" and media(out)["width"] == 128


def test_contain_upscales_only_what_does_not_fit_inside_the_frame(tmp_path):
    from tasks.materials import Clip, Materials
    from tasks.upscale_stage import plan

    wide = make_video(tmp_path / "wide.mp4", size="640x360", seconds=1)
    clips = [Clip(path=wide, kind="video", width=640, height=360, duration_s=1, source="local")]
    materials = Materials.sequence(clips, [[0]])
    assert [j.scale for j in plan(materials, (540, 540), "cover")] == [2]  # 360 → 540 high
    assert plan(materials, (540, 540), "contain") == []  # 640 wide already fills 540


# --- the command -------------------------------------------------------------------------


def _mpt(*args: str, weights: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"MPT_UPSCALE__WEIGHTS_DIR": str(weights)}
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mpt_upscale_lists_and_upscales(weights, clip, tmp_path):
    listed = _mpt("upscale", "--list", weights=weights)
    assert listed.returncode == 0, listed.stderr
    lines = sorted(listed.stdout.splitlines())
    assert lines[0].split("\t")[:4] == ["compact-x2.pth", "SRVGGNetCompact", "x2", "fp32"]
    assert any(line.startswith("rrdb-x4.pth\tReal-ESRGAN (RRDBNet)\tx4") for line in lines)
    assert any(line.startswith("swinir-x2.pth\tSwinIR\tx2") for line in lines)

    out = tmp_path / "big.mp4"
    made = _mpt("upscale", str(clip), str(out), "--model", "rrdb-x4.pth", "--json", weights=weights)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["size"] == "384x216" and media(out)["width"] == 384

    # auto on the CPU takes a compact model of the asked scale.
    auto = _mpt("upscale", str(clip), str(tmp_path / "a.mp4"), "--json", weights=weights)
    assert json.loads(auto.stdout)["model"] == "compact-x2.pth"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "missing.pth"], "error: no weights file 'missing.pth'"),
        (["--model", "evil.pth"], "error: evil.pth is refused: it carries code"),
        (["--scale", "3"], "error: --scale must be 2 or 4"),
    ],
)
def test_mpt_upscale_bad_input_is_one_line(args, message, weights, clip, tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    for p in weights.iterdir():
        (folder / p.name).symlink_to(p)
    _evil(folder / "evil.pth", tmp_path / "ran")
    out = tmp_path / "o.mp4"
    done = _mpt("upscale", str(clip), str(out), *args, weights=folder)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
    assert not out.exists() and not (tmp_path / "ran").exists()


# --- the stage in the video flow ---------------------------------------------------------

SCRIPT = "Small clips look soft when they are stretched."


def _spec(materials: Path, **over):
    from spec import VideoSpec

    fields = {
        "script": SCRIPT,
        "resolution": "540p",
        "aspect": "1:1",
        "fps": 15,
        "preset": "ultrafast",
        "materials_dir": str(materials),
        "clip_duration": 2.0,
        "seed": 3,
    }
    return VideoSpec(**(fields | over))


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    """One clip smaller than a 540×540 frame, one image larger than it."""
    folder = tmp_path_factory.mktemp("footage")
    make_video(folder / "small.mp4", size="96x54", seconds=2, audio=True)
    make_image(folder / "large.png", size="800x600")
    return folder


def test_auto_upscales_only_the_small_clip_and_reuses_it(footage, weights, settings_env, tmp_path):
    from flows.video import video_flow

    settings_env(MPT_UPSCALE__WEIGHTS_DIR=str(weights))
    result = video_flow(_spec(footage, upscale="auto"), out_dir=str(tmp_path / "a"))
    paths = {Path(m.path).name: Path(m.path) for m in result.materials}
    assert set(paths) == {"small-x4.mp4", "large.png"}
    small = paths["small-x4.mp4"]
    assert "stages/upscale" in str(small) and media(small)["width"] == 384
    assert paths["large.png"] == footage / "large.png"
    assert result.stages["upscale"].state == "Completed"
    assert result.upscaled.where == "in-process" and result.upscaled.device == "cpu"
    assert result.upscaled.models == ["compact-x4.pth"]  # the CPU takes a compact model
    assert any("upscaling on the CPU" in w and "about" in w for w in result.warnings)
    assert list(result.stages)[3:5] == ["materials", "upscale"]

    again = video_flow(_spec(footage, upscale="auto"), out_dir=str(tmp_path / "b"))
    assert again.stages["upscale"].state == "Cached"
    assert {Path(m.path) for m in again.materials} == set(paths.values())
    # Without upscaling, the original clip is used.
    plain = video_flow(_spec(footage), out_dir=str(tmp_path / "c"))
    assert "upscale" not in plain.stages and plain.upscaled is None
    assert footage / "small.mp4" in {Path(m.path) for m in plain.materials}


def test_a_named_model_that_is_missing_fails_before_any_work(footage, weights, settings_env):
    from flows.preflight import preflight

    settings_env(MPT_UPSCALE__WEIGHTS_DIR=str(weights))
    with pytest.raises(BadInput) as err:
        preflight(_spec(footage, upscale="nope.pth"))
    assert str(err.value).startswith("no weights file 'nope.pth' in ")
    assert "compact-x2.pth" in str(err.value)
    from pydantic import ValidationError

    for value, words in [("../x.pth", "not a path"), ("model.bin", "must be 'none', 'auto'")]:
        with pytest.raises(ValidationError, match=words):
            _spec(footage, upscale=value)


def test_require_gpu_refuses_the_cpu(footage, weights, settings_env, tmp_path):
    from flows.video import video_flow

    settings_env(MPT_UPSCALE__WEIGHTS_DIR=str(weights), MPT_UPSCALE__REQUIRE_GPU="true")
    with pytest.raises(StageError, match="upscaling needs a GPU"):
        video_flow(_spec(footage, upscale="compact-x2.pth"), out_dir=str(tmp_path / "o"))


def test_auto_without_weights_warns_and_renders(footage, settings_env, tmp_path):
    from flows.video import video_flow

    settings_env(MPT_UPSCALE__WEIGHTS_DIR=str(tmp_path / "none"))
    result = video_flow(_spec(footage, upscale="auto"), out_dir=str(tmp_path / "o"))
    assert any("upscale auto: no weights in" in w for w in result.warnings)
    assert footage / "small.mp4" in {Path(m.path) for m in result.materials}


# Last in the file: a gpu worker stays "online" for a while after it stops.
def test_the_gpu_pool_deployment_upscales_when_a_worker_is_up(
    footage, weights, settings_env, deployed, tmp_path
):
    from flows.upscale import pool_online
    from flows.video import video_flow

    from .service import start_worker, stop_process_group, wait_for

    settings_env(MPT_UPSCALE__WEIGHTS_DIR=str(weights))
    worker = start_worker("gpu", MPT_UPSCALE__WEIGHTS_DIR=str(weights))
    try:
        wait_for(lambda: pool_online("gpu"), timeout_s=60)
        # A model no other test used, so this upscale is made on the worker, not cached.
        result = video_flow(_spec(footage, upscale="rrdb-x4.pth"), out_dir=str(tmp_path / "o"))
    finally:
        stop_process_group(worker)
    assert result.upscaled.where == "pool gpu", result.upscaled
    assert result.upscaled.models == ["rrdb-x4.pth"]
    small = next(Path(m.path) for m in result.materials if Path(m.path).name == "small-x4.mp4")
    assert media(small)["width"] == 384
    from prefect import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
    upscale_runs = [r for r in runs if r.parameters.get("model") == "rrdb-x4.pth"]
    assert upscale_runs and upscale_runs[0].state.is_completed()
    assert upscale_runs[0].parent_task_run_id is not None  # a subflow of the video run
