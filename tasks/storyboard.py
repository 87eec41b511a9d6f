"""Storyboard stage ("materials"): footage chosen scene by scene, for what is said there.

A scene is one or more of the script's sentences (`scene_split`: each sentence, paragraph or
line; or the request's own scenes). Once the narration is measured, a scene lasts from its
first word to the next scene's first word (the first scene from 0, the last to the end), and
a scene longer than `scene_max_s` is cut at its sentences, each part keeping its terms.

Each scene's candidates, best first: the request's own clip or still for it; local files
whose name, folders and tags share words with the scene's terms and text; stock hits for
the scene's queries (each query searched once, whatever asks for it). Its picks, per video
variant, are the best candidates not yet used in that variant; with none left, the next
unused local file, then a procedural background drawn for the scene. A clip is not shown
twice in a video while another remains, and each pick says why it was made.
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from blocks.errors import BadInput
from blocks.settings import get_settings
from spec.options import Concat
from spec.scenes import SceneSplit
from tasks.materials import (
    Clip,
    Materials,
    Scene,
    StockSearch,
    _tokens,
    clip_words,
    download_hits,
    generate_procedural,
    scan_folder,
)
from tasks.media import probe
from tasks.script import Script
from tasks.stage import stage
from tasks.terms import Terms
from tasks.text import is_cjk
from tasks.timings import Narration

log = logging.getLogger(__name__)


class SceneFootage(BaseModel):
    """A scene's own footage from the request: a clip or a still of the user's."""

    clip: Path | None = None
    image: Path | None = None


class SceneChoice(BaseModel):
    """A reviewer's change to one scene (spec.scenes.SceneEdit, checked): a candidate by its
    place in the scene's list, a file of their own, or new search terms."""

    index: int
    candidate: int | None = None
    clip: Path | None = None
    terms: list[str] | None = None


def scene_groups(script: Script, split: SceneSplit) -> list[list[int]]:
    """The script's sentences grouped into scenes (by index): at every break of the kind
    `split` names, or at the request's own scenes' ends when it gave scenes."""
    if "scene" in script.breaks:
        cuts = {"scene"}
    else:
        cuts = {
            SceneSplit.sentence: {"sentence", "line", "paragraph"},
            SceneSplit.line: {"line", "paragraph"},
            SceneSplit.paragraph: {"paragraph"},
        }[split]
    groups: list[list[int]] = [[]]
    for i, after in enumerate(script.breaks or ["paragraph"] * len(script.sentences)):
        groups[-1].append(i)
        if after in cuts and i < len(script.sentences) - 1:
            groups.append([])
    return [g for g in groups if g]


def _spoken(script: Script, narration: Narration) -> list[int | None]:
    """For each of the script's sentences, its place among the narration's (a sentence the
    voice made no sound for has none)."""
    out: list[int | None] = []
    k = 0
    for text in script.sentences:
        if k < len(narration.sentences) and narration.sentences[k].text == text:
            out.append(k)
            k += 1
        else:
            out.append(None)
    return out


def timed_scenes(
    script: Script,
    groups: list[list[int]],
    terms: list[list[str]],
    narration: Narration,
    scene_max_s: float,
) -> list[Scene]:
    """Scenes with their times (cut at their first words); a long one is cut at its
    sentences, unless the request gave it as a scene of its own."""
    where = _spoken(script, narration)
    given = "scene" in script.breaks
    joiner = "" if is_cjk(script.language) else " "
    spans: list[tuple[list[int], int]] = []  # (its sentences in the narration, its group)
    for g, group in enumerate(groups):
        said = [k for k in (where[i] for i in group) if k is not None]
        if said:
            spans.append((said, g))
    starts = [0.0] + [narration.sentences[said[0]].start_s for said, _ in spans[1:]]
    ends = starts[1:] + [narration.duration_s]
    scenes: list[Scene] = []
    for (said, g), start, end in zip(spans, starts, ends, strict=True):
        parts, begin = [[said[0]]], start
        for s in said[1:]:
            at = narration.sentences[s].start_s
            if at - begin > scene_max_s and not given:
                parts.append([s])
                begin = at
            else:
                parts[-1].append(s)
        bounds = [start] + [narration.sentences[p[0]].start_s for p in parts[1:]] + [end]
        for k, part in enumerate(parts):
            scenes.append(
                Scene(
                    index=len(scenes),
                    group=g,
                    sentences=part,
                    text=joiner.join(narration.sentences[s].text for s in part),
                    terms=terms[g],
                    start_s=bounds[k],
                    end_s=bounds[k + 1],
                    picks=[],
                )
            )
    return scenes


def _fit(width: int, height: int, seconds: float, needed_s: float, size: tuple[int, int]) -> int:
    """How well footage suits a scene, 0 to 3: the frame's orientation, long enough for the
    scene (a still always is: pass seconds=inf), at least the frame's resolution."""
    w, h = size
    same_way = (width >= height) == (w >= h) or width == height
    return int(same_way) + int(seconds >= needed_s) + int(min(width, height) >= min(w, h))


def _clip_fit(clip: Clip, needed_s: float, size: tuple[int, int]) -> int:
    seconds = math.inf if clip.kind == "image" else clip.duration_s
    return _fit(clip.width, clip.height, seconds, needed_s, size)


def plan_storyboard(
    scenes: list[Scene],
    size: tuple[int, int],
    materials_dir: Path | None,
    clip_duration: float,
    concat: Concat,
    video_count: int,
    seed: int,
    fps: int = 30,
    providers: list[str] | None = None,
    own: list[SceneFootage] | None = None,
    choices: list[SceneChoice] | None = None,
    candidates_per_scene: int = 2,
) -> Materials:
    """Each scene's candidates and, per variant, its picks (see the module's doc)."""
    warnings: list[str] = []
    if materials_dir is not None and not materials_dir.is_dir():
        # Checked where the run was made; this machine (a worker) may not have it.
        raise BadInput(f"materials folder does not exist: {materials_dir}")
    own = own or []
    edits = {c.index: c for c in choices or []}
    for edit in edits.values():  # new terms: the scene is searched again with them
        if edit.terms and edit.index < len(scenes):
            scenes[edit.index] = scenes[edit.index].model_copy(update={"terms": edit.terms})
    clips: list[Clip] = []
    known: dict[str, int] = {}

    def add(clip: Clip) -> int:
        key = f"{clip.path}|{clip.recipe}"
        if key not in known:
            known[key] = len(clips)
            clips.append(clip)
        return known[key]

    local = scan_folder(materials_dir, warnings) if materials_dir else []
    if materials_dir and not local:
        warnings.append(f"no usable clips in {materials_dir}; using procedural backgrounds")
    search = StockSearch(providers if providers is not None else ["local"], size, warnings)

    # Each scene's candidates: its own file, matching local files, then stock hits.
    ranked: list[list[int]] = []
    reasons: list[dict[int, str]] = []
    hits: list[list[tuple[str, Any]]] = []
    wants = [
        max(candidates_per_scene, _cuts(scene, clip_duration) * video_count) for scene in scenes
    ]
    claimed: set[str] = set()  # hits earlier scenes will show
    for s, scene in enumerate(scenes):
        found: list[int] = []
        why: dict[int, str] = {}
        mine = own[scene.group] if scene.group < len(own) else None
        edit = edits.get(scene.index)
        files = [(edit.clip if edit else None, "your clip, chosen in review")]
        files.append(((mine.clip or mine.image) if mine else None, "your file for this scene"))
        for path, what in files:
            if path is not None:
                k = add(_own_clip(path))
                found.append(k)
                why[k] = what
        words = set().union(*(_tokens(t) for t in scene.terms)) | _tokens(scene.text)
        matches = [(len(words & clip_words(c)), c) for c in local]
        matches.sort(
            key=lambda m: (-m[0], -_clip_fit(m[1], scene.duration_s, size), m[1].path.name)
        )
        for score, clip in matches:
            if score > 0:
                k = add(clip)
                found.append(k)
                shared = sorted(words & clip_words(clip))[:3]
                why[k] = f"local file named or tagged {', '.join(shared)}"
        # The scene's queries in order, each only while the ones before left it short of
        # unclaimed hits: most scenes send one search (a stock site's hourly quota is small).
        found_hits: list[tuple[str, Any]] = []
        short = wants[s] - len(found)  # its own file and local matches come first
        for query in scene.terms if short > 0 else []:
            found_hits += [(query, h) for h in search.hits(query)]
            if sum(h.download_url not in claimed for _, h in found_hits) >= short:
                break
        found_hits.sort(
            key=lambda qh: (
                qh[1].download_url in claimed,
                -_fit(qh[1].width, qh[1].height, qh[1].duration_s, scene.duration_s, size),
            )
        )
        claimed.update(h.download_url for _, h in found_hits[: wants[s]])
        hits.append(found_hits)
        ranked.append(found)
        reasons.append(why)

    # Stock: the best hits of each scene, downloaded together (enough for every variant's
    # cuts, and a few more to choose from in review), at most MPT_MAX_STOCK_CLIPS.
    # Round by round (every scene's best first, then every scene's second...), so a long
    # script's last scenes get footage too before the budget runs out.
    budget = get_settings().max_stock_clips
    take: list[tuple[int, str, Any]] = []  # (scene, query, hit): a hit may serve scenes
    urls: set[str] = set()
    for r in range(max(wants, default=0)):
        for s in range(len(scenes)):
            if r < min(wants[s], len(hits[s])):
                query, hit = hits[s][r]
                if hit.download_url in urls or len(urls) < budget:
                    urls.add(hit.download_url)
                    take.append((s, query, hit))
    downloaded = download_hits([h for _, _, h in take], warnings) if take else {}
    for s, query, hit in take:
        got = downloaded.get(hit.download_url)
        if got is not None:
            k = add(got.model_copy(update={"term": query, "tags": [query, *got.tags]}))
            if k not in ranked[s]:
                ranked[s].append(k)
                reasons[s][k] = f"{got.source} result for {query!r}"

    # Picks, variant by variant: the scene's best candidate not used yet in the variant,
    # else an unused local file, else a background drawn for the scene.
    picks: list[list[list[int]]] = [[] for _ in scenes]
    first_reason = [""] * len(scenes)
    for v in range(video_count):
        used: set[int] = set()
        repeats = 0
        spare = [add(c) for c in local]
        if concat == Concat.random:
            random.Random(seed * 7919 + v).shuffle(spare)
        for s, scene in enumerate(scenes):
            cuts = _cuts(scene, clip_duration)
            candidates = list(ranked[s])
            edit = edits.get(scene.index)
            if edit is not None and edit.candidate is not None:
                if edit.candidate >= len(candidates):
                    raise BadInput(
                        f"scene {scene.index} has {len(candidates)} candidates; "
                        f"there is no candidate {edit.candidate}"
                    )
                candidates.insert(0, candidates.pop(edit.candidate))
            elif v and len(candidates) > 1:  # variants open on other candidates
                turn = v % len(candidates)
                candidates = candidates[turn:] + candidates[:turn]
            mine = [k for k in candidates if k not in used][:cuts]
            why = [reasons[s].get(k, "") for k in mine]
            while len(mine) < cuts:
                k = next((k for k in spare if k not in used and k not in mine), None)
                if k is not None:
                    mine.append(k)
                    why.append("no match: the next unused local file")
                elif candidates:
                    mine.append(candidates[len(mine) % len(candidates)])
                    why.append("its match again: every other clip is in use")
                elif spare:  # every local file shown once: round again, in the same order
                    mine.append(spare[repeats % len(spare)])
                    repeats += 1
                    why.append("every local file is in use: the next one again")
                else:
                    term = scene.terms[0] if scene.terms else "background"
                    key = seed + 100_003 * v + 1009 * scene.index + len(mine)
                    mine.append(add(generate_procedural(term, key, size, clip_duration, fps)))
                    why.append(f"nothing matched: a background drawn for {term!r}")
            if v == 0:
                first_reason[s] = why[0]
            used.update(mine)
            picks[s].append(mine)
    out = [
        scene.model_copy(
            update={"candidates": ranked[s], "picks": picks[s], "reason": first_reason[s]}
        )
        for s, scene in enumerate(scenes)
    ]
    log.info(
        "storyboard: %d scenes, %d clips (%s), %d stock searches sent",
        len(out),
        len(clips),
        ", ".join(sorted({c.source for c in clips})),
        search.requests,
    )
    return Materials(clips=clips, scenes=out, warnings=warnings)


def pick_materials(
    terms: list[str],
    duration_s: float,
    size: tuple[int, int],
    materials_dir: Path | None,
    clip_duration: float,
    concat: Concat,
    video_count: int,
    seed: int,
    fps: int = 30,
    providers: list[str] | None = None,
) -> Materials:
    """Footage for one stretch of `duration_s` seconds about `terms`: a storyboard of a
    single scene (what a video without a script's scenes, or a test, needs)."""
    scene = Scene(
        index=0, sentences=[], text="", terms=terms, start_s=0.0, end_s=duration_s, picks=[]
    )
    return plan_storyboard(
        [scene], size, materials_dir, clip_duration, concat, video_count, seed, fps, providers
    )


def _cuts(scene: Scene, clip_duration: float) -> int:
    """How many cuts the scene is shown in: none longer than the longest cut."""
    return max(1, math.ceil(scene.duration_s / clip_duration - 1e-6))


def _own_clip(path: Path) -> Clip:
    """A file the request names for a scene, probed."""
    info = probe(path)
    if info.kind == "audio":
        raise BadInput(f"{path.name} has no picture")
    return Clip(
        path=path,
        kind=info.kind,
        width=info.width,
        height=info.height,
        duration_s=info.duration_s,
        source="user",
    )


@stage("materials")
def storyboard_stage(
    script: Script,
    terms: Terms,
    groups: list[list[int]],
    narration: Narration,
    size: tuple[int, int],
    materials_dir: Path | None,
    clip_duration: float,
    scene_max_s: float,
    concat: Concat,
    video_count: int,
    seed: int,
    fps: int,
    providers: list[str],
    saved: list[str] | None = None,
    own: list[SceneFootage] | None = None,
    choices: list[SceneChoice] | None = None,
    candidates_per_scene: int = 2,
) -> Materials:
    # `providers` (names only, no keys) is an input so a new source means a new choice;
    # `saved`, the saved stock blocks' digests, so an edited block searches anew.
    scenes = timed_scenes(script, groups, terms.scenes, narration, scene_max_s)
    return plan_storyboard(
        scenes,
        size,
        materials_dir,
        clip_duration,
        concat,
        video_count,
        seed,
        fps,
        providers,
        own,
        choices,
        candidates_per_scene,
    )
