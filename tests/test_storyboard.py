"""The storyboard: footage chosen scene by scene for what is said there, cut where each scene
begins; terms per scene (one LLM request, or offline words, segmented for Chinese and
Japanese); pauses written in the script; scenes given by the request."""

from __future__ import annotations

import colorsys
import hashlib
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from blocks.errors import BadInput
from spec import VideoSpec
from spec.scenes import SceneSplit
from tasks.markup import parse_pauses
from tasks.media import read_wav
from tasks.narration import synthesize
from tasks.script import make_script
from tasks.storyboard import scene_groups
from tasks.terms import make_scene_terms

from .conftest import ffmpeg, frame_at
from .fakes import Reply, openai_chat, pexels_search, pexels_video

REPO = Path(__file__).resolve().parent.parent
SIX = (
    "Sharks are older than trees. Honey never spoils in a sealed jar. Octopuses have three "
    "hearts. Bananas are berries but strawberries are not. A day on Venus is longer than its "
    "year. Wombats leave cube-shaped droppings."
)
SMALL = {"resolution": "540p", "aspect": "9:16", "fps": 15, "preset": "ultrafast"}


def colour_of(query: str) -> tuple[int, int, int]:
    """A saturated colour of its own for each query: what the fake's clip for it shows."""
    hue = int(hashlib.sha256(query.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.9)
    return round(r * 255), round(g * 255), round(b * 255)


@pytest.fixture
def stock(fake, settings_env, tmp_path):
    """Pexels, faked: each query's only hit is a clip of that query's colour."""
    queries: dict[str, str] = {}
    made: dict[str, bytes] = {}

    def search(request) -> Reply:
        query = parse_qs(urlsplit(request.path).query)["query"][0]
        slug = hashlib.sha256(query.encode()).hexdigest()[:12]
        queries[slug] = query
        link = f"{fake.url}/files/{slug}.mp4"
        video = pexels_video(int(slug[:6], 16), link, duration=8, w=540, h=960)
        return Reply(body=pexels_search([video]))

    def file(request) -> Reply:
        slug = Path(urlsplit(request.path).path).stem
        if slug not in made:
            r, g, b = colour_of(queries[slug])
            path = tmp_path / "fake-files" / f"{slug}.mp4"
            path.parent.mkdir(exist_ok=True)
            ffmpeg(
                *("-f", "lavfi", "-i", f"color=c=0x{r:02x}{g:02x}{b:02x}:s=540x960:r=15:d=8"),
                *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)),
            )
            made[slug] = path.read_bytes()
        return Reply(body=made[slug], headers={"content-type": "video/mp4"})

    fake.route("GET", "/videos/search", search)
    fake.route("GET", "/files/", file)
    settings_env(
        MPT_MATERIALS__PROVIDERS="pexels",
        MPT_PEXELS__API_KEY="pexels-key",
        MPT_PEXELS__BASE_URL=fake.url,
        MPT_WORK_DIR=str(tmp_path / "work"),
        MPT_OUTPUT_ROOT=str(tmp_path / "output"),
    )
    return fake


def _colour(video: Path, t: float) -> np.ndarray:
    frame = frame_at(video, t).astype(int)
    h, w = frame.shape[:2]
    return np.median(frame[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3), axis=0)


def _near(found: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool(np.abs(found - np.array(colour)).max() < 30)


def check_scene_by_scene(video: Path, manifest: dict) -> None:
    """Each scene shows clips found for its own queries (its first cut, the clip the
    manifest names), from the frame its first word is spoken on (within a frame) to the
    next scene's."""
    fps = manifest["spec"]["fps"]
    scenes = manifest["scenes"]
    sentences = manifest["sentences"]
    assert len(scenes) >= 2
    for k, scene in enumerate(scenes):
        clip = scene["clip"]
        assert clip["source"] == "pexels" and clip["term"] in scene["terms"], scene
        colour = colour_of(clip["term"])
        inside = scene["start_s"] + min(1.0, (scene["end_s"] - scene["start_s"]) / 2)
        assert _near(_colour(video, inside), colour), (k, scene)
        if k:
            first = next(s for s in sentences if scene["text"].startswith(s["text"]))
            assert abs(scene["start_s"] - first["start_s"]) < 1e-6
            before, after = scene["start_s"] - 1.5 / fps, scene["start_s"] + 1.5 / fps
            assert _near(_colour(video, after), colour), (k, "not cut by the next frame")
            # Just before, still the previous scene: one of the clips of its own queries.
            previous = [colour_of(t) for t in scenes[k - 1]["terms"]]
            if colour not in previous:
                found = _colour(video, before)
                assert any(_near(found, c) for c in previous), (k, "cut too early")


def test_every_scene_shows_footage_for_its_own_words(stock, tmp_path):
    from flows.video import video_flow

    spec = VideoSpec(script=SIX, subtitles={"enabled": False}, **SMALL)
    result = video_flow(spec, out_dir=str(tmp_path / "six"))
    manifest = json.loads((tmp_path / "six" / "manifest.json").read_text())
    assert len(manifest["scenes"]) == 6
    check_scene_by_scene(Path(result.video), manifest)
    # A scene's first query finds it enough, so its others are not sent; a second video of
    # the same script asks the search cache, not the site.
    sent = [parse_qs(urlsplit(r.path).query)["query"][0] for r in stock.hits("/videos/search")]
    assert sorted(sent) == sorted(s["terms"][0] for s in manifest["scenes"])
    searched = len(sent)
    video_flow(spec.model_copy(update={"seed": 99}), out_dir=str(tmp_path / "again"))
    assert len(stock.hits("/videos/search")) == searched


def test_a_script_not_written_here_is_cut_scene_by_scene_too(stock, tmp_path):
    """The demo's script (resources/): the same checks on text this test did not choose."""
    from flows.video import video_flow

    script = (REPO / "resources" / "demo" / "script.txt").read_text()
    spec = VideoSpec(script=script, subtitles={"enabled": False}, **SMALL)
    result = video_flow(spec, out_dir=str(tmp_path / "demo"))
    manifest = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    check_scene_by_scene(Path(result.video), manifest)


# --- terms per scene -------------------------------------------------------------------------


def _llm(settings_env, fake, reply: Reply) -> None:
    fake.route("POST", "/v1/chat/completions", reply)
    settings_env(
        MPT_LLM__PROVIDERS="openai",
        MPT_OPENAI__API_KEY="sk-scene-terms",
        MPT_OPENAI__BASE_URL=f"{fake.url}/v1",
        MPT_LLM_ATTEMPTS="1",
        MPT_RETRY_BASE_DELAY_S="0",
    )


def _six():
    script = make_script("", SIX)
    return script, scene_groups(script, SceneSplit.sentence)


def test_one_request_gives_every_scene_its_queries(settings_env, fake):
    script, groups = _six()
    answer = {"scenes": [{"terms": [f"query {i}", f"other {i}"]} for i in range(6)]}
    _llm(settings_env, fake, Reply(body=openai_chat(json.dumps(answer))))
    terms = make_scene_terms(script, groups)
    assert terms.scenes == [[f"query {i}", f"other {i}"] for i in range(6)]
    assert terms.source == "openai" and not terms.warnings
    (request,) = fake.hits("/v1/chat/completions")  # one request for the whole storyboard
    prompt = request.json()["messages"][1]["content"]
    assert "6 scenes" in prompt and "Octopuses have three hearts." in prompt


@pytest.mark.parametrize(
    ("reply", "warning"),
    [
        ("Sure! Sharks, honey and octopus footage would work well.", "in prose"),
        (json.dumps({"scenes": [{"terms": ["shark"]}] * 4}), "gave terms for 4 scenes, not 6"),
    ],
)
def test_prose_or_a_wrong_count_gives_keyword_terms_and_a_warning(
    settings_env, fake, reply, warning
):
    script, groups = _six()
    _llm(settings_env, fake, Reply(body=openai_chat(reply)))
    terms = make_scene_terms(script, groups)
    assert len(terms.scenes) == 6 and all(terms.scenes)
    assert terms.source == "keywords"
    assert any(warning in w for w in terms.warnings), terms.warnings
    assert "sharks" in terms.scenes[0] and "octopuses" in " ".join(terms.scenes[2])


def test_a_scene_too_short_for_keywords_borrows_its_neighbours():
    script = make_script("", "Coffee beans grow near the equator. Yes. Roasting them matters.")
    terms = make_scene_terms(script, scene_groups(script, SceneSplit.sentence))
    assert terms.scenes[1] == terms.scenes[0] and terms.scenes[1]


def test_scenes_by_paragraph_and_line_and_terms_given_by_the_request():
    text = "One fish. Two fish.\nRed fish.\n\nBlue fish. Old fish."
    script = make_script("", text)
    assert scene_groups(script, SceneSplit.sentence) == [[0], [1], [2], [3], [4]]
    assert scene_groups(script, SceneSplit.line) == [[0, 1], [2], [3, 4]]
    assert scene_groups(script, SceneSplit.paragraph) == [[0, 1, 2], [3, 4]]
    given = make_script("", None, scenes=["A cat. A dog.", "The sea."])
    groups = scene_groups(given, SceneSplit.sentence)  # the request's scenes win
    assert groups == [[0, 1], [2]]
    terms = make_scene_terms(given, groups, [["kitten"], []])
    assert terms.scenes[0] == ["kitten"] and terms.scenes[1]


def test_chinese_and_japanese_terms_are_words_from_a_segmenter():
    import rjieba

    text = "咖啡是世界上最受欢迎的饮料之一。它生长在赤道附近的热带地区。"
    zh = make_script("", text)
    terms = make_scene_terms(zh, scene_groups(zh, SceneSplit.sentence))
    assert "咖啡" in terms.scenes[0] and "饮料" in terms.scenes[0]
    words = set(rjieba.cut(text))
    found = {t for s in terms.scenes for t in s}
    assert found <= words, found - words  # the segmenter's words, not character pairs
    assert "热带地区" in found  # a word of four characters: no bigram is
    ja = make_script(
        "", "コーヒーは世界で最も人気のある飲み物の一つです。赤道付近の熱帯地域で育ちます。"
    )
    terms = make_scene_terms(ja, scene_groups(ja, SceneSplit.sentence))
    assert "コーヒー" in terms.scenes[0] and "人気" in terms.scenes[0]
    assert {"赤道", "熱帯"} & set(terms.scenes[1])


# --- pauses ----------------------------------------------------------------------------------


def _longest_silence(narration) -> float:
    audio, rate = read_wav(narration.audio)
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > 300)
    return float(np.diff(loud).max() / rate) if loud.size > 1 else 0.0


def _edge(monkeypatch, tmp_path):
    """Edge faked at its library, as tests/test_tts.py does: a tone per word."""
    import edge_tts

    def tone(seconds: float) -> bytes:
        path = tmp_path / f"tone-{seconds}.mp3"
        if not path.is_file():
            ffmpeg(
                *("-f", "lavfi", "-i", f"sine=f=220:d={seconds}:sample_rate=24000"),
                *("-af", "apad=pad_dur=0.2", "-c:a", "libmp3lame", str(path)),
            )
        return path.read_bytes()

    class FakeCommunicate:
        def __init__(self, text, voice, rate="+0%", boundary="SentenceBoundary", **kw):
            self.words = text.split()

        def stream_sync(self):
            yield {"type": "audio", "data": tone(round(0.3 * (len(self.words) - 1) + 0.25, 2))}
            for i, w in enumerate(self.words):
                yield {
                    "type": "WordBoundary",
                    "offset": int(0.3 * i * 1e7),
                    "duration": int(0.25 * 1e7),
                    "text": w.strip(".,"),
                }

    monkeypatch.setattr(edge_tts, "Communicate", FakeCommunicate)


@pytest.mark.parametrize(
    "voice", ["piper:en_US-joe-medium", "espeak:en-us", "edge:en-US-AvaNeural"]
)
def test_a_pause_is_that_much_silence_where_it_is_written(voice, tmp_path, monkeypatch):
    _edge(monkeypatch, tmp_path)
    plain = synthesize(
        make_script("", "Sharks are old. Honey never spoils."), voice, 1, 0.3, tmp_path / "a"
    )
    between = synthesize(
        make_script("", "Sharks are old. [pause: 2s] Honey never spoils."),
        voice,
        1,
        0.3,
        tmp_path / "b",
    )
    inside = synthesize(
        make_script("", "Sharks are old. Honey [pause: 2s] never spoils."),
        voice,
        1,
        0.3,
        tmp_path / "c",
    )
    assert between.duration_s - plain.duration_s == pytest.approx(2.0, abs=0.05)
    shift = between.sentences[1].start_s - plain.sentences[1].start_s
    assert shift == pytest.approx(2.0, abs=0.05)
    honey, never = inside.sentences[1].words[:2]
    assert never.start_s - honey.end_s == pytest.approx(2.0, abs=0.05)
    assert _longest_silence(inside) == pytest.approx(2.0, abs=0.05)
    assert [w.text for w in inside.sentences[1].words] == ["Honey", "never", "spoils."]


def test_markup_never_reaches_subtitles_terms_or_the_script(tmp_path):
    from spec.subtitles import SubtitleStyle
    from tasks.subtitles import make_subtitles, resolve_font

    script = make_script("", "Sharks [pause] are old. [pause: 500ms] 鲨鱼[pause: 1s]很古老。")
    assert "pause" not in script.text and "[" not in script.text
    assert "鲨鱼很古老。" in script.text  # no space where the script had none
    narration = synthesize(script, "piper:en_US-joe-medium", 1.0, 0.3, tmp_path / "n")
    style = SubtitleStyle()
    subs = make_subtitles(
        narration, style, resolve_font(style.font, script.text), (540, 960), tmp_path
    )
    assert "pause" not in subs.srt.read_text() and "pause" not in subs.ass.read_text()
    terms = make_scene_terms(script, scene_groups(script, SceneSplit.sentence))
    assert not any("pause" in t for s in terms.scenes for t in s)


@pytest.mark.parametrize(
    "bad", ["[pause: x]", "[pause: -1s]", "[pause: 60s]", "[pause 2s]", "[pause:]"]
)
def test_a_bad_pause_is_one_line_of_bad_input(bad):
    with pytest.raises(BadInput) as err:
        parse_pauses(f"Sharks are old. {bad} Honey never spoils.")
    assert bad in str(err.value) and "\n" not in str(err.value)


def test_a_bad_pause_is_refused_by_mpt_before_any_work(tmp_path):
    import subprocess

    from .test_cli import MPT

    out = tmp_path / "out"
    proc = subprocess.run(
        [*MPT, "make", "--script", "One. [pause: 60s] Two.", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().splitlines() == ["error: script: '[pause: 60s]' is longer than 10 s"]


# --- scenes given by the request ---------------------------------------------------------


def test_scenes_with_their_own_terms_clip_still_and_duration(stock, tmp_path):
    from flows.preflight import preflight
    from flows.video import video_flow

    from .conftest import make_image, make_video

    clip = make_video(tmp_path / "mine" / "ocean.mp4", "540x960", 4, source="color=c=0x2050d0")
    still = make_image(tmp_path / "mine" / "still.png", "900x1600", colour="red")
    spec = VideoSpec(
        scenes=[
            {"text": "The sea is deep.", "clip": str(clip)},
            {"text": "A still of a red box.", "image": str(still), "duration": 4},
            {"text": "Sharks swim here.", "terms": ["great white shark"]},
        ],
        subtitles={"enabled": False},
        **SMALL,
    )
    result = video_flow(preflight(spec), out_dir=str(tmp_path / "out"))
    scenes = result.scenes
    assert [s.clip.source for s in scenes] == ["user", "user", "pexels"]
    assert scenes[2].clip.term == "great white shark" and scenes[2].terms == ["great white shark"]
    assert scenes[1].end_s - scenes[1].start_s >= 4.0 - 1e-3  # at least its duration
    video = Path(result.video)
    assert _near(_colour(video, (scenes[0].start_s + scenes[0].end_s) / 2), (0x20, 0x50, 0xD0))
    first, later = (frame_at(video, scenes[1].start_s + t).astype(int) for t in (0.2, 3.6))
    assert np.abs(first - later).mean() > 2  # the still moves
    assert _near(
        _colour(video, (scenes[2].start_s + scenes[2].end_s) / 2), colour_of("great white shark")
    )


def test_scenes_come_from_a_campaign_cell_and_a_cli_file(tmp_path):
    from spec.campaign import Campaign, validate_rows

    rows = [{"scenes": json.dumps([{"text": "One."}, {"text": "Two.", "terms": ["two"]}])}]
    ((number, spec),) = validate_rows(Campaign(name="c", rows=rows))[0]
    assert [s.text for s in spec.scenes] == ["One.", "Two."]
    with pytest.raises(ValueError, match="give scenes or a script"):
        VideoSpec(script="x", scenes=[{"text": "y"}])
    from typer.testing import CliRunner

    import api.cli.main as main

    seen = {}
    original = main._run
    main._run = lambda spec, *a, **k: seen.update(spec=spec)
    try:
        file = tmp_path / "scenes.json"
        file.write_text(json.dumps([{"text": "From a file."}]))
        done = CliRunner().invoke(main.app, ["make", "--scenes", str(file)])
    finally:
        main._run = original
    assert done.exit_code == 0, done.output
    assert seen["spec"].scenes[0].text == "From a file."


def test_cuts_begin_on_each_scene_s_first_word_with_or_without_transitions():
    """The render's plan: a cut (or the transition into it) starts on the frame a scene's
    first word is spoken, however the scenes fall; long scenes hold several cuts."""
    from spec.options import Transition
    from tasks.materials import Clip, Materials, Scene
    from tasks.render import RenderOptions, plan_cuts

    clips = [
        Clip(path=Path(f"/c{i}.mp4"), kind="video", width=540, height=960, duration_s=9.0,
             source="local")
        for i in range(6)
    ]  # fmt: skip
    starts = [0.0, 2.437, 4.9, 11.02, 12.71]
    scenes = [
        Scene(index=i, sentences=[i], text="", terms=[], start_s=s, end_s=e, picks=[[i]])
        for i, (s, e) in enumerate(zip(starts, [*starts[1:], 15.3], strict=True))
    ]
    materials = Materials(clips=clips, scenes=scenes)
    for transition in (Transition.none, Transition.fade):
        opts = RenderOptions(
            size=(540, 960), fps=30, clip_duration=4.0, transition=transition,
            transition_duration=0.5,
        )  # fmt: skip
        cuts = plan_cuts(materials, 0, 15.3, opts, seed=3)
        overlap = 0.5 if transition == Transition.fade else 0.0
        at, begins = 0.0, []
        for cut in cuts:
            begins.append((at, cut.scene))
            at += cut.duration_s - (overlap if cut is not cuts[-1] else 0.0)
        assert abs(at - 15.3) < 1 / 30
        for scene in scenes:
            first = min(t for t, s in begins if s == scene.index)
            assert abs(first - scene.start_s) <= 1 / 30, (transition, scene.index, first)
        assert [s for _, s in begins].count(2) == 2  # 6.1 s in cuts of at most 4 s


def test_a_long_paragraph_is_cut_at_its_sentences_keeping_its_terms(tmp_path):
    from tasks.storyboard import timed_scenes
    from tasks.timings import Narration, SentenceTiming

    text = "One is here. Two is there.\n\nThree goes on. Four goes on. Five ends it."
    script = make_script("", text)
    groups = scene_groups(script, SceneSplit.paragraph)
    assert groups == [[0, 1], [2, 3, 4]]
    timed = [
        SentenceTiming(text=t, start_s=3.0 * i, end_s=3.0 * i + 2.5, words=[])
        for i, t in enumerate(script.sentences)
    ]
    narration = Narration(
        audio=tmp_path / "a.wav", timings=tmp_path / "t.json", voice="v", duration_s=15.0,
        sample_rate=22050, sentences=timed,
    )  # fmt: skip
    scenes = timed_scenes(script, groups, [["a"], ["b"]], narration, scene_max_s=5.0)
    assert [(s.start_s, s.end_s, s.sentences) for s in scenes] == [
        (0.0, 6.0, [0, 1]),
        (6.0, 12.0, [2, 3]),
        (12.0, 15.0, [4]),
    ]
    assert [s.terms for s in scenes] == [["a"], ["b"], ["b"]]  # the cut part keeps its terms
    assert [s.group for s in scenes] == [0, 1, 1]
