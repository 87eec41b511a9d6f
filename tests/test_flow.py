"""The video flow on a real Prefect server: caching, retries, persistence and artifacts."""

import json
import os
from pathlib import Path

import pytest
from prefect import flow
from prefect.cache_policies import NO_CACHE

from blocks.errors import BadInput, StageError, TransientError
from flows.video import video_flow
from spec import VideoSpec
from spec.runs import STAGES
from tasks.stage import stage

from .conftest import frame_at, integrated_lufs, media

SCRIPT = "Tea is brewed all over the world. Green tea is steamed. Black tea is oxidised first."


def _spec(**over) -> VideoSpec:
    fields = {"script": SCRIPT, "resolution": "540p", "music": "random", "seed": 11} | over
    return VideoSpec(**fields)


def _states(result) -> dict[str, str]:
    return {name: r.state for name, r in result.stages.items()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "out"
    result = video_flow(_spec(video_count=2), out_dir=str(out))
    return out, result


def test_first_run_publishes_everything(first_run):
    out, result = first_run
    assert _states(result) == dict.fromkeys(STAGES, "Completed")
    manifest = json.loads((out / "manifest.json").read_text())
    for key in [
        "video",
        "subtitles_srt",
        "subtitles_ass",
        "duration_s",
        "width",
        "height",
        "script",
        "sentences",
        "terms",
        "materials",
        "voice",
        "flow_run_id",
        "stages",
    ]:
        assert key in manifest, key
    assert set(manifest["stages"]) == set(STAGES)
    assert manifest["flow_run_id"]
    assert (manifest["width"], manifest["height"]) == (540, 960)
    assert manifest["sentences"][0] == {
        "text": "Tea is brewed all over the world.",
        "start_s": manifest["sentences"][0]["start_s"],
        "end_s": manifest["sentences"][0]["end_s"],
    }
    assert all({"path", "source"} <= set(m) for m in manifest["materials"])
    for name in ["video.mp4", "video-2.mp4", "subtitles.srt", "subtitles.ass", "script.txt"]:
        assert (out / name).is_file(), name
    info = media(out / "video.mp4")
    assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
    last_end = manifest["sentences"][-1]["end_s"]
    assert abs(info["duration"] - manifest["duration_s"]) < 0.3
    assert manifest["duration_s"] >= last_end
    # video_count=2: same narration, different cuts.
    t = 1.0
    assert (frame_at(out / "video.mp4", t) != frame_at(out / "video-2.mp4", t)).any()


def test_results_persist_to_the_configured_storage(first_run):
    storage = Path(os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"])
    assert storage.is_dir() and len(list(storage.iterdir())) >= len(STAGES)


def test_second_run_is_all_cached_and_encodes_nothing(first_run, monkeypatch):
    out, _ = first_run
    calls = []
    import tasks.media
    import tasks.render

    for module in (tasks.render, tasks.media):  # every ffmpeg run goes through these
        monkeypatch.setattr(module, "run_ffmpeg", lambda args, *a, **k: calls.append(args))
    before = (out / "video.mp4").stat().st_mtime_ns
    result = video_flow(_spec(video_count=2), out_dir=str(out))
    assert _states(result) == dict.fromkeys(STAGES, "Cached")
    assert calls == []
    assert (out / "video.mp4").stat().st_mtime_ns == before
    assert result.flow_run_id != first_run[1].flow_run_id
    assert json.loads((out / "manifest.json").read_text())["flow_run_id"] == result.flow_run_id


def test_changing_only_music_reruns_only_render_and_publish(first_run, tmp_path):
    out, _ = first_run
    from .conftest import ffmpeg

    music = tmp_path / "other.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=f=330:d=3", "-c:a", "aac", str(music))
    result = video_flow(_spec(video_count=2, music=str(music)), out_dir=str(out))
    states = _states(result)
    assert {s for s, v in states.items() if v == "Completed"} == {"render", "publish"}


def test_a_changed_file_counts_by_content(first_run, tmp_path):
    out, _ = first_run
    from .conftest import ffmpeg

    music = tmp_path / "track.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=f=330:d=3", "-c:a", "aac", str(music))
    video_flow(_spec(music=str(music)), out_dir=str(tmp_path / "o"))
    again = video_flow(_spec(music=str(music)), out_dir=str(tmp_path / "o"))
    assert _states(again)["render"] == "Cached"
    ffmpeg("-f", "lavfi", "-i", "sine=f=500:d=3", "-c:a", "aac", str(music))  # same name
    changed = video_flow(_spec(music=str(music)), out_dir=str(tmp_path / "o"))
    assert _states(changed)["render"] == "Completed"


def test_a_cached_result_whose_file_is_gone_is_a_miss(first_run):
    out, result = first_run
    rendered = video_flow(_spec(video_count=2), out_dir=str(out))
    assert _states(rendered)["render"] == "Cached"
    # Remove the narration stage's audio and the published video.
    from tasks.narration import narration_stage  # noqa: F401 - the stage under test

    manifest = json.loads((out / "manifest.json").read_text())
    (out / "video.mp4").unlink()
    work = Path(os.environ["MPT_WORK_DIR"]) / "stages" / "narration"
    for wav in work.rglob("narration.wav"):
        wav.unlink()
    again = video_flow(_spec(video_count=2), out_dir=str(out))
    states = _states(again)
    assert states["narration"] == "Completed"
    assert states["publish"] == "Completed"
    assert states["script"] == states["terms"] == "Cached"
    assert (out / "video.mp4").is_file()
    assert manifest["video"] == again.video


def test_transient_error_is_retried_and_bad_input_fails_at_once():
    attempts = {"flaky": 0, "bad": 0}

    @stage("flaky", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=0)
    def flaky() -> str:
        attempts["flaky"] += 1
        if attempts["flaky"] == 1:
            raise TransientError("HTTP 503 from provider")
        return "ok"

    @stage("bad", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=0)
    def bad() -> str:
        attempts["bad"] += 1
        raise BadInput("unknown voice 'x'")

    @flow
    def run_flaky() -> str:
        return flaky()

    @flow
    def run_bad() -> str:
        return bad()

    assert run_flaky() == "ok"
    assert attempts["flaky"] == 2
    with pytest.raises(BadInput):
        run_bad()
    assert attempts["bad"] == 1


def test_stage_failure_names_the_stage(tmp_path, monkeypatch):
    import tasks.render

    def broken(*args, **kwargs):
        raise StageError("ffmpeg failed: simulated")

    monkeypatch.setattr(tasks.render, "run_ffmpeg", broken)
    with pytest.raises(StageError, match="render stage failed: ffmpeg failed: simulated"):
        video_flow(_spec(seed=99, music="none"), out_dir=str(tmp_path / "o"))
    assert not (tmp_path / "o" / "video.mp4").exists()


def test_run_leaves_artifacts(first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    _, result = first_run
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[result.flow_run_id])
            )
        )
    by_key = {a.key: a for a in arts}
    assert {"video-summary", "video-materials", "video-progress", "video-file"} <= set(by_key)
    assert by_key["video-progress"].data == 100.0
    assert "## Script" in by_key["video-summary"].data
    assert "procedural" in json.dumps(by_key["video-materials"].data)
    # The storyboard: a row per scene, with its time, words, terms, clip and why.
    rows = json.loads(by_key["storyboard"].data)
    assert [r["scene"] for r in rows] == list(range(1, len(result.scenes) + 1))
    assert rows[0]["text"] == result.scenes[0].text and rows[0]["terms"]
    assert set(rows[0]) == {"scene", "time", "text", "terms", "clip", "source", "why"}


def test_subtitles_output_stops_after_subtitles_and_leaves_a_summary(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    out = tmp_path / "subs"
    result = video_flow(_spec(seed=5), out_dir=str(out), output="subtitles")
    assert set(result.stages) == {"script", "narration", "subtitles", "publish"}
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "manifest.json",
        "narration.wav",
        "script.txt",
        "subtitles.ass",
        "subtitles.srt",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["audio"] == str(out / "narration.wav") and manifest["duration_s"] > 2
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[result.flow_run_id])
            )
        )
    by_key = {a.key: a for a in arts}
    assert by_key["video-progress"].data == 100.0
    assert "narration.wav" in by_key["subtitles-summary"].data


def test_spec_options_reach_the_render_and_progress_is_reported(tmp_path):

    from flows.progress import listening

    events = []
    spec = _spec(seed=21, music="random", transition="random", loudness=-18.0, tail_s=1.0, fps=25)
    with listening(lambda stage, state, x: events.append((stage, state, x))):
        result = video_flow(spec, out_dir=str(tmp_path / "o"))
    assert result.encoder == "libx264"
    fractions = [x for stage, state, x in events if stage == "render" and state == "Progress"]
    assert fractions and fractions == sorted(fractions) and 0 < fractions[0] < 1
    finished = [e[0] for e in events if e[1] not in ("Running", "Progress")]
    # Terms run beside the narration, so they may finish after it; the rest is in order.
    assert sorted(finished) == sorted(STAGES) and finished[0] == "script"
    assert [s for s in finished if s != "terms"] == [s for s in STAGES if s != "terms"]
    video = Path(result.video)
    assert abs(media(video)["duration"] - (result.narration_s + 1.0)) < 0.2
    from tasks.media import probe

    assert probe(video).fps == pytest.approx(25, abs=0.01)
    assert abs(integrated_lufs(video) + 18.0) <= 1.0
