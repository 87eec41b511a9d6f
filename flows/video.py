"""The video flow: script → terms → narration → materials → subtitles → render → publish.

Every stage is a cached Prefect task, so a rerun of the same spec does no work, and a change
(say, only the music) reruns only the stages that depend on it. `output` stops it early for
the service's narration-only and narration + subtitles requests.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from prefect import flow
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.runtime import deployment, flow_run
from pydantic import BaseModel

from blocks import storage
from blocks.catalog import RunReporter
from blocks.errors import BadInput, StageError, TransientError
from blocks.llm import llm_fingerprint
from blocks.settings import get_settings
from blocks.stock import stock_fingerprint
from blocks.storage import result_storage
from blocks.tts import voice_fingerprint
from flows.progress import Progress
from flows.review import (
    ReviewDecision,
    drop_preview,
    require_service,
    wait_for_decision,
    write_preview,
)
from flows.storyboard import (
    report_storyboard,
    scenes_view,
    wait_for_storyboard,
    write_storyboard,
)
from flows.upscale import upscale_materials
from spec.errors import first_error
from spec.runs import Kind, stages_of
from spec.scenes import StoryboardScene
from spec.video import VideoSpec
from tasks.files import remove_stale_parts
from tasks.materials import Materials
from tasks.narration import Hold, narration_stage
from tasks.publish import (
    Published,
    PublishedNarration,
    publish_narration_stage,
    publish_stage,
    upload_stage,
    write_manifest,
)
from tasks.render import RenderResult, pick_music, render_stage
from tasks.script import Script, script_stage
from tasks.shared_files import restore
from tasks.storyboard import SceneChoice, SceneFootage, scene_groups, storyboard_stage
from tasks.subtitles import Subtitles, resolve_font, subtitles_stage
from tasks.terms import Terms, social_stage, terms_stage
from tasks.text import count_words
from tasks.timings import Narration

log = logging.getLogger(__name__)


class StageRecord(BaseModel):
    state: Literal["Completed", "Cached"]
    seconds: float


class SentenceOut(BaseModel):
    text: str
    start_s: float
    end_s: float


class MaterialOut(BaseModel):
    """One clip and its credit (author, page, licence) where it came from a stock site."""

    path: str
    source: str
    kind: str
    term: str | None = None
    license_url: str | None = None
    author: str | None = None
    page_url: str | None = None


class UpscaleSummary(BaseModel):
    clips: int
    models: list[str]
    device: str
    where: str  # "pool gpu" or "in-process"


class VideoResult(BaseModel):
    """What a run produced; written to manifest.json beside the video."""

    video: str
    videos: list[str]
    subtitles_srt: str
    subtitles_ass: str
    script_txt: str
    duration_s: float
    narration_s: float
    width: int
    height: int
    title: str
    script: str
    language: str
    sentences: list[SentenceOut]
    terms: list[str]
    materials: list[MaterialOut]  # the clips the video shows, with their credits
    scenes: list[StoryboardScene] = []  # the storyboard: each scene's words, clip and why
    script_source: str
    social: dict[str, Any] | None = None  # title, description, hashtags (with an LLM)
    voice: str
    music: str | None
    encoder: str
    seed: int
    flow_run_id: str | None
    stages: dict[str, StageRecord]
    warnings: list[str]
    spec: dict[str, Any]
    review_note: str | None = None  # what the reviewer said, when it was reviewed
    upscaled: UpscaleSummary | None = None  # with `upscale` set and footage to upscale


class Rejected(BaseModel):
    """A video a reviewer rejected: nothing was published."""

    review: Literal["rejected"] = "rejected"
    note: str
    flow_run_id: str | None


class NarrationResult(BaseModel):
    """What a narration-only (or narration + subtitles) run produced."""

    audio: str
    subtitles_srt: str | None
    subtitles_ass: str | None
    script_txt: str
    duration_s: float
    title: str
    script: str
    language: str
    sentences: list[SentenceOut]
    voice: str
    flow_run_id: str | None
    stages: dict[str, StageRecord]
    warnings: list[str]
    spec: dict[str, Any]


def default_out_dir(spec: VideoSpec) -> Path:
    # A deployment's run (from the service) gets a folder of its own, named by its id.
    if flow_run.get_id() and deployment.get_id():
        return get_settings().output_root / str(flow_run.get_id())
    slug = re.sub(r"[^\w]+", "-", (spec.topic or spec.script or "video")[:40]).strip("-").lower()
    return get_settings().output_root / (slug or "video")


def _intact(result: Any) -> bool:
    """A cached result is good only while the files it points at are still there."""
    items = result if isinstance(result, list) else [result]
    for item in items:
        if hasattr(item, "intact"):
            if not item.intact():
                return False
        elif hasattr(item, "files") and not all(Path(p).is_file() for p in item.files()):
            return False
    return True


@dataclass
class _Pending:
    """A stage started and not yet waited for: its state, or the future that will have it."""

    name: str
    task: Any
    kwargs: dict[str, Any]
    start: float
    state: Any = None
    future: Any = None
    end: float | None = None  # when it finished, if that is known before it is waited for
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def outcome(self) -> Any:
        if self.future is not None:
            self.future.wait()
            state = self.future.state
            # It may have ended long before it is waited for: its final state says when.
            ran = (state.timestamp - self.started_at).total_seconds()
            self.end = self.start + max(0.0, min(ran, time.perf_counter() - self.start))
            return state
        return self.state


class _Runner:
    """Runs stages, recording each one's state and time for the manifest."""

    def __init__(self, stages: list[str], reporter: RunReporter | None) -> None:
        self.stages = stages
        self.progress = Progress(stages, sink=reporter.progress if reporter else None)
        self.records: dict[str, StageRecord] = {}

    def run(self, name: str, task: Any, **kwargs: Any) -> Any:
        """Run a stage here, in the flow's thread (stages that run ffmpeg stay here, so an
        interrupt unwinds them), and return its result."""
        return self.wait(self.submit(name, task, now=True, **kwargs))

    def submit(self, name: str, task: Any, now: bool = False, **kwargs: Any) -> _Pending:
        """Start a stage; without `now`, in the flow's task runner, beside what follows
        (an LLM's terms and social text while the voice speaks)."""
        if name in self.stages:  # optional extras (social) are recorded, not progress steps
            self.progress.started(name)
        start = time.perf_counter()
        if now:
            state = task(**kwargs, return_state=True)
            return _Pending(name, task, kwargs, start, state, end=time.perf_counter())
        return _Pending(name, task, kwargs, start, future=task.submit(**kwargs))

    def wait(self, pending: _Pending) -> Any:
        name, task, kwargs = pending.name, pending.task, pending.kwargs
        try:
            state = pending.outcome()
            result = state.result()
            cached, refreshed = state.name == "Cached", False
            if cached and not _intact(result):
                # Made on another machine: its files come from storage, if they are there.
                try:
                    restored = restore(result)
                except (StageError, TransientError) as exc:
                    log.warning("%s: cached files not fetched from storage (%s)", name, exc)
                    restored = None
                if restored is not None and _intact(restored):
                    result = restored
                else:
                    state = task.with_options(refresh_cache=True)(**kwargs, return_state=True)
                    result, cached, refreshed = state.result(), False, True
        except BadInput as exc:
            raise BadInput(f"{name}: {exc}") from None
        except Exception as exc:
            raise StageError(f"{name} stage failed: {exc}") from exc
        end = pending.end if pending.end is not None and not refreshed else time.perf_counter()
        self.add(name, "Cached" if cached else "Completed", round(end - pending.start, 3))
        return result

    def add(self, name: str, state: str, seconds: float) -> None:
        prev = self.records.get(name)
        if prev is not None:  # a stage run several times (render per video) sums up
            state = "Cached" if prev.state == state == "Cached" else "Completed"
            seconds = round(prev.seconds + seconds, 3)
            self.records[name] = StageRecord(state=state, seconds=seconds)
            return
        self.records[name] = StageRecord(state=state, seconds=seconds)
        if name in self.stages and name != "render":
            self.progress.finished(name, state, seconds)


def _reporter(output: Kind, spec: VideoSpec) -> RunReporter | None:
    """The catalog row of this run, when the service's database is configured."""
    url, run_id = get_settings().database_url, flow_run.get_id()
    if not url or not run_id:
        return None
    return RunReporter(str(run_id), output, spec.model_dump(mode="json"), url)


def _relative_paths(files: dict[str, str | None]) -> dict[str, str]:
    """Published files as paths under the output root, which is what the facade serves."""
    root = get_settings().output_root.resolve()
    out = {}
    for name, path in files.items():
        if path:
            p = Path(path).resolve()
            out[name] = str(p.relative_to(root)) if p.is_relative_to(root) else str(p)
    return out


@flow(
    name="video",
    log_prints=True,
    validate_parameters=True,
    persist_result=True,
    result_storage=result_storage(),
)
def video_flow(
    spec: VideoSpec, out_dir: str | None = None, output: Kind = "video"
) -> VideoResult | NarrationResult | Rejected:
    """Make one finished short video (or `video_count` variants) from a topic or a script;
    with `output` 'audio' or 'subtitles', only the narration (and its subtitles). With
    `spec.review`, the rendered video waits for a reviewer before it is published.

    The spec was checked against the machine where the run was created (flows.preflight);
    a stage that finds something missing here fails with its own reason."""
    if (spec.review or spec.review_storyboard) and output == "video":
        require_service()
    target = Path(out_dir) if out_dir else default_out_dir(spec)
    work = get_settings().work_dir
    remove_stale_parts(work / "stages", work / "procedural", work / "downloads", target)
    reporter = _reporter(output, spec)
    try:
        if output == "video":
            made = _make_video(spec, target, reporter)
            if isinstance(made, Rejected):
                return made
            result: VideoResult | NarrationResult = made
            files = {"video": result.video, "srt": result.subtitles_srt}
            files |= {f"video_{i + 1}": v for i, v in enumerate(result.videos[1:], start=1)}
        else:
            result = _make_narration(spec, target, reporter, output)
            files = {"audio": result.audio, "srt": result.subtitles_srt}
        files |= {"ass": result.subtitles_ass, "script": result.script_txt}
        files["manifest"] = str(target / "manifest.json")
        if storage.enabled():
            result = _to_storage(result, files, target)
        if reporter:
            note = result.review_note if isinstance(result, VideoResult) else None
            reporter.completed(str(target), _relative_paths(files), result.duration_s, note)
        return result
    except Exception as exc:
        if reporter:
            reporter.failed(first_error(exc))
        raise
    finally:
        if reporter:
            reporter.close()


def _to_storage(
    result: VideoResult | NarrationResult, files: dict[str, str | None], target: Path
) -> VideoResult | NarrationResult:
    """The published files uploaded; the manifest (uploaded last) names their objects."""
    made = [f for name, f in files.items() if f and name != "manifest"]
    urls = upload_stage(files=made, out_dir=str(target))
    update: dict[str, Any] = {}
    for name in ("video", "audio", "subtitles_srt", "subtitles_ass", "script_txt"):
        value = getattr(result, name, None)
        if value:
            update[name] = urls.get(value, value)
    if isinstance(result, VideoResult):
        update["videos"] = [urls.get(v, v) for v in result.videos]
    result = result.model_copy(update=update)
    write_manifest(target, result)
    upload_stage(files=[files["manifest"]], out_dir=str(target))
    return result


def _script(run: _Runner, spec: VideoSpec, llm: list[str]) -> Script:
    return run.run(
        "script",
        script_stage,
        topic=spec.topic,
        script=spec.script,
        language=spec.language,
        llm=[] if spec.script or spec.audio or spec.scenes else llm,
        audio=spec.audio,
        scenes=[scene.text for scene in spec.scenes] if spec.scenes else None,
    )


def _holds(spec: VideoSpec, groups: list[list[int]]) -> list[Hold] | None:
    """The request's scenes that last at least a given time."""
    if not spec.scenes:
        return None
    held = [
        Hold(first=group[0], last=group[-1], seconds=scene.duration)
        for scene, group in zip(spec.scenes, groups, strict=False)
        if scene.duration
    ]
    return held or None


def _narration(
    run: _Runner, spec: VideoSpec, script: Script, groups: list[list[int]] | None = None
) -> Narration:
    return run.run(
        "narration",
        narration_stage,
        script=script,
        voice=spec.voice,
        speech_rate=spec.speech_rate,
        pause_s=spec.sentence_pause,
        audio=spec.audio,
        seed=spec.effective_seed(),
        saved=voice_fingerprint(spec.voice),
        holds=_holds(spec, groups or []),
    )


def _subtitles(run: _Runner, spec: VideoSpec, narration: Narration, script: Script) -> Subtitles:
    return run.run(
        "subtitles",
        subtitles_stage,
        narration=narration,
        # Keyed without `enabled`: turning burning off or on must not remake the files.
        style=spec.subtitles.model_copy(update={"enabled": True}),
        font=resolve_font(spec.subtitles.font, script.text),
        size=spec.size,
    )


def _sentences(narration: Narration) -> list[SentenceOut]:
    return [SentenceOut(text=s.text, start_s=s.start_s, end_s=s.end_s) for s in narration.sentences]


def _make_narration(
    spec: VideoSpec, target: Path, reporter: RunReporter | None, output: Kind
) -> NarrationResult:
    run = _Runner(stages_of(output), reporter)
    llm = llm_fingerprint()
    script = _script(run, spec, llm)
    narration = _narration(run, spec, script)
    subtitles = None
    if output == "subtitles":
        subtitles = _subtitles(run, spec, narration, script)
    published: PublishedNarration = run.run(
        "publish",
        publish_narration_stage,
        narration=narration,
        subtitles=subtitles,
        script=script,
        out_dir=str(target),
    )
    result = NarrationResult(
        audio=str(published.audio),
        subtitles_srt=str(published.subtitles_srt) if published.subtitles_srt else None,
        subtitles_ass=str(published.subtitles_ass) if published.subtitles_ass else None,
        script_txt=str(published.script_txt),
        duration_s=narration.duration_s,
        title=script.title,
        script=script.text,
        language=script.language,
        sentences=_sentences(narration),
        voice=narration.voice,
        flow_run_id=str(flow_run.get_id()) if flow_run.get_id() else None,
        stages=run.records,
        warnings=script.warnings + narration.warnings,
        spec=spec.model_dump(mode="json"),
    )
    write_manifest(target, result)
    _report_narration(result, output)
    return result


def _stage_table(stages: dict[str, StageRecord]) -> str:
    rows = "\n".join(f"| {name} | {r.state} | {r.seconds:.2f} |" for name, r in stages.items())
    return f"| stage | state | seconds |\n|---|---|---|\n{rows}\n"


def _report_narration(result: NarrationResult, output: Kind) -> None:
    """The operator's summary of a narration-only (or + subtitles) run in the Prefect UI."""
    files = [result.audio, result.subtitles_srt, result.subtitles_ass]
    create_markdown_artifact(
        key=f"{output}-summary",
        description=result.title,
        markdown=(
            f"# {result.title}\n\n**Kind:** {output} · **Voice:** {result.voice} · "
            f"**Narration:** {result.duration_s:.2f} s\n\n"
            + "".join(f"- `{f}`\n" for f in files if f)
            + f"\n## Script\n\n{result.script}\n\n## Stages\n\n{_stage_table(result.stages)}"
        ),
    )


def _make_video(
    spec: VideoSpec, target: Path, reporter: RunReporter | None
) -> VideoResult | Rejected:
    seed = spec.effective_seed()
    run = _Runner(stages_of("video", spec.upscale), reporter)

    llm = llm_fingerprint()
    script = _script(run, spec, llm)
    groups = scene_groups(script, spec.scene_split)
    given = [scene.terms for scene in spec.scenes] if spec.scenes else None
    # Terms and the social text wait on an LLM; the voice does not: they overlap. Offline,
    # terms take a tenth of a second and a thread would cost more than it saves.
    terms_f = run.submit(
        "terms", terms_stage, now=not llm, script=script, llm=llm, groups=groups, given=given
    )
    social_f = run.submit("social", social_stage, script=script, llm=llm) if llm else None
    narration = _narration(run, spec, script, groups)
    terms = run.wait(terms_f)
    social = run.wait(social_f) if social_f else None
    materials = _storyboard(run, spec, script, terms, groups, narration)
    if spec.review_storyboard:
        choices = _review_storyboard(materials, target, reporter)
        if choices:
            materials = _storyboard(run, spec, script, terms, groups, narration, choices)
    report_storyboard(materials)
    upscaled = None
    if spec.upscale != "none":
        materials, upscaled = _upscale(run, spec, materials)
    subtitles = _subtitles(run, spec, narration, script)
    music = pick_music(spec.music, seed)
    opts = spec.render_options()
    renders = []
    run.progress.parts = spec.video_count
    for i in range(spec.video_count):
        run.progress.part = i
        renders.append(
            run.run(
                "render",
                render_stage,
                materials=materials,
                video_index=i,
                narration=narration,
                subtitles=subtitles if spec.subtitles.enabled else None,
                music=music,
                opts=opts,
                seed=seed,
            )
        )
    run.progress.finished("render", run.records["render"].state, run.records["render"].seconds)
    note = None
    if spec.review:
        decision = _review(renders, subtitles, target, reporter)
        if not decision.approved:
            return Rejected(note=decision.note, flow_run_id=str(flow_run.get_id()))
        note = decision.note or None
    published: Published = run.run(
        "publish",
        publish_stage,
        renders=renders,
        subtitles=subtitles,
        script=script,
        out_dir=str(target),
    )

    result = VideoResult(
        video=str(published.videos[0]),
        videos=[str(v) for v in published.videos],
        subtitles_srt=str(published.subtitles_srt),
        subtitles_ass=str(published.subtitles_ass),
        script_txt=str(published.script_txt),
        duration_s=renders[0].duration_s,
        narration_s=narration.duration_s,
        width=renders[0].width,
        height=renders[0].height,
        title=script.title,
        script=script.text,
        language=script.language,
        sentences=_sentences(narration),
        terms=terms.terms,
        materials=[
            MaterialOut(
                path=str(c.path),
                source=c.source,
                kind=c.kind,
                term=c.term,
                license_url=c.license_url,
                author=c.author,
                page_url=c.page_url,
            )
            for c in materials.shown()
        ],
        scenes=scenes_view(materials),
        script_source=script.source,
        social=social,
        voice=narration.voice,
        music=str(music) if music else None,
        encoder=renders[0].encoder,
        seed=seed,
        flow_run_id=str(flow_run.get_id()) if flow_run.get_id() else None,
        stages=run.records,
        review_note=note,
        upscaled=upscaled,
        warnings=script.warnings
        + terms.warnings
        + narration.warnings
        + materials.warnings
        + [w for r in renders for w in r.warnings],
        spec=spec.model_dump(mode="json"),
    )
    write_manifest(target, result)
    _report(result, words=count_words(script.text))
    return result


def _storyboard(
    run: _Runner,
    spec: VideoSpec,
    script: Script,
    terms: Terms,
    groups: list[list[int]],
    narration: Narration,
    choices: list[SceneChoice] | None = None,
) -> Materials:
    providers = get_settings().materials.providers
    own = [SceneFootage(clip=s.clip, image=s.image) for s in spec.scenes] if spec.scenes else None
    return run.run(
        "materials",
        storyboard_stage,
        script=script,
        terms=terms,
        groups=groups,
        narration=narration,
        size=spec.size,
        materials_dir=spec.materials_dir,
        clip_duration=spec.clip_duration,
        scene_max_s=spec.scene_max_s,
        concat=spec.concat,
        video_count=spec.video_count,
        seed=spec.effective_seed(),
        fps=spec.fps,
        providers=providers,
        saved=stock_fingerprint(providers),
        own=own,
        choices=choices,
        # A reviewer chooses among a few; otherwise what the cuts show is downloaded.
        candidates_per_scene=4 if spec.review_storyboard else 1,
    )


def _review_storyboard(
    materials: Materials, target: Path, reporter: RunReporter | None
) -> list[SceneChoice]:
    """Show the storyboard, wait (suspended) for its review; the changes asked for."""
    files = write_storyboard(materials, target)
    if reporter:
        reporter.awaiting_review(str(target), _relative_paths(files), stage="storyboard")
    choices = wait_for_storyboard(materials)
    if reporter:
        reporter.resumed()
    return choices


def _upscale(
    run: _Runner, spec: VideoSpec, materials: Materials
) -> tuple[Materials, UpscaleSummary | None]:
    """Footage smaller than the frame, upscaled (on the gpu pool when it has a worker)."""
    run.progress.started("upscale")
    start = time.perf_counter()
    try:
        upscaled, report = upscale_materials(materials, spec.size, spec.upscale, spec.fit.value)
    except BadInput as exc:
        raise BadInput(f"upscale: {exc}") from None
    except StageError:
        raise
    except Exception as exc:
        raise StageError(f"upscale stage failed: {exc}") from exc
    cached = report is None or report.cached == len(report.clips)
    run.add("upscale", "Cached" if cached else "Completed", round(time.perf_counter() - start, 3))
    if report is None:
        return upscaled, None
    create_table_artifact(
        key="video-upscale",
        description=f"Upscaled clips ({report.device}, {report.where})",
        table=[
            {"clip": c.source.name, "model": c.model, "size": f"{c.width}×{c.height}"}
            for c in report.clips
        ],
    )
    summary = UpscaleSummary(
        clips=len(report.clips), models=report.models, device=report.device, where=report.where
    )
    return upscaled, summary


def _review(
    renders: list[RenderResult], subtitles: Subtitles, target: Path, reporter: RunReporter | None
) -> ReviewDecision:
    """Show the preview, wait (suspended) for the decision, then clear the preview."""
    files = write_preview([r.video for r in renders], subtitles.srt, target)
    if reporter:
        reporter.awaiting_review(
            str(target), _relative_paths({k: str(v) for k, v in files.items()})
        )
    decision = wait_for_decision(files)
    drop_preview(target)
    if reporter and not decision.approved:
        reporter.rejected(decision.note)
    elif reporter:
        reporter.resumed()
    return decision


def _report(result: VideoResult, words: int) -> None:
    """Artifacts an operator reads in the Prefect UI."""
    create_markdown_artifact(
        key="video-summary",
        description=result.title,
        markdown=(
            f"# {result.title}\n\n"
            f"**Video:** `{result.video}` — {result.width}×{result.height}, "
            f"{result.duration_s:.2f} s\n\n"
            f"**Script by:** {result.script_source} · "
            f"**Voice:** {result.voice} · **Music:** {result.music or 'none'} · "
            f"**Seed:** {result.seed} · **Words:** {words}\n\n"
            f"**Terms:** {', '.join(result.terms)}\n\n"
            f"## Script\n\n{result.script}\n\n"
            f"## Stages\n\n{_stage_table(result.stages)}"
            + (
                "\n## Warnings\n\n" + "\n".join(f"- {w}" for w in result.warnings)
                if result.warnings
                else ""
            )
        ),
    )
    create_table_artifact(
        key="video-materials",
        description="Clips the video was cut from",
        table=[m.model_dump() for m in result.materials],
    )
    create_link_artifact(
        key="video-file",
        link=Path(result.video).resolve().as_uri(),
        link_text=Path(result.video).name,
        description="The finished video",
    )
