"""Pexels and Pixabay search, downloads and caching, against local fakes of their APIs."""

import time

import pytest

from blocks.settings import get_settings
from spec.options import Concat
from tasks.downloads import download
from tasks.storyboard import pick_materials

from .conftest import make_video
from .fakes import (
    Reply,
    pexels_search,
    pexels_video,
    pixabay_hit,
    pixabay_search,
)

KEY = "pexels-SECRET-key-42"
SIZE = (540, 960)


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory) -> bytes:
    path = make_video(tmp_path_factory.mktemp("stock") / "c.mp4", size="540x960", seconds=3)
    return path.read_bytes()


@pytest.fixture
def env(settings_env, tmp_path):
    return lambda **values: settings_env(
        MPT_WORK_DIR=str(tmp_path / "work"), MPT_RETRY_BASE_DELAY_S="0", **values
    )


def pexels_env(fake, **extra: str) -> dict[str, str]:
    return {
        "MPT_MATERIALS__PROVIDERS": "pexels,local",
        "MPT_PEXELS__API_KEY": KEY,
        "MPT_PEXELS__BASE_URL": fake.url,
    } | extra


def pick(terms=("coffee",), duration=6.0):
    return pick_materials(
        list(terms),
        duration,
        SIZE,
        None,
        3.0,
        Concat.sequential,
        1,
        1,
        providers=get_settings().materials.providers,
    )


def test_pexels_search_download_and_credit(env, fake, clip_bytes):
    fake.route(
        "GET",
        "/videos/search",
        Reply(
            body=pexels_search(
                [
                    pexels_video(1, f"{fake.url}/files/1.mp4"),
                    pexels_video(2, f"{fake.url}/files/2.mp4"),
                    pexels_video(3, f"{fake.url}/files/3.mp4", duration=1),
                ]
            )
        ),
    )  # too short: skipped
    # Two clips, two files (the cache names files by their content: make them differ).
    fake.route(
        "GET",
        "/files/",
        lambda req: Reply(
            body=clip_bytes + req.path.encode(), headers={"content-type": "video/mp4"}
        ),
    )
    env(**pexels_env(fake))
    m = pick()
    stock = [c for c in m.clips if c.source == "pexels"]
    assert len(stock) == 2 and not [c for c in m.clips if c.source == "procedural"]
    assert stock[0].author == "Ana Author"
    assert stock[0].page_url == "https://www.pexels.com/video/coffee-1/"
    assert stock[0].license_url == "https://www.pexels.com/license/"
    search = fake.hits("/videos/search")[0]
    assert search.headers["authorization"] == KEY
    assert "orientation=portrait" in search.path and "query=coffee" in search.path
    # The rendition closest above 540x960 is the 1080x1920 one, not sd or uhd.
    assert {r.path for r in fake.hits("/files/")} == {"/files/1.mp4", "/files/2.mp4"}


def test_pixabay_filters_orientation_and_keeps_tags(env, fake, clip_bytes):
    fake.route(
        "GET",
        "/api/videos/",
        Reply(
            body=pixabay_search(
                [
                    pixabay_hit(5, f"{fake.url}/px/5.mp4", w=1080, h=1920),
                    pixabay_hit(6, f"{fake.url}/px/6.mp4"),
                ]
            )
        ),
    )  # landscape: not for a 9:16 video
    fake.route("GET", "/px/", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    env(
        MPT_MATERIALS__PROVIDERS="pixabay",
        MPT_PIXABAY__API_KEY="pk",
        MPT_PIXABAY__BASE_URL=f"{fake.url}/api",
    )
    m = pick(duration=3.0)
    stock = [c for c in m.clips if c.source == "pixabay"]
    assert [c.page_url for c in stock] == ["https://pixabay.com/videos/coffee-5/"]
    assert "cup" in stock[0].tags and stock[0].author == "pix_user"
    assert "key=pk" in fake.hits("/api/videos/")[0].path


def test_empty_results_fall_back_to_procedural(env, fake):
    fake.route("GET", "/videos/search", Reply(body=pexels_search([])))
    env(**pexels_env(fake))
    m = pick()
    assert m.clips and {c.source for c in m.clips} == {"procedural"}


def test_429_retry_after_then_results(env, fake, clip_bytes):
    fake.route(
        "GET",
        "/videos/search",
        Reply(429, {"error": "Rate limit exceeded"}, {"retry-after": "1"}),
        Reply(body=pexels_search([pexels_video(1, f"{fake.url}/files/1.mp4")])),
    )
    fake.route("GET", "/files/", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    env(**pexels_env(fake))
    start = time.perf_counter()
    m = pick(duration=3.0)
    assert time.perf_counter() - start >= 0.9
    assert [c.source for c in m.clips] == ["pexels"]


def test_401_and_malformed_json_are_warnings_not_failures(env, fake):
    fake.route("GET", "/videos/search", Reply(401, {"error": "invalid key"}))
    fake.route(
        "GET", "/api/videos/", Reply(200, b"<html>oops</html>", {"content-type": "text/html"})
    )
    env(
        **pexels_env(
            fake,
            MPT_MATERIALS__PROVIDERS="pexels,pixabay",
            MPT_PIXABAY__API_KEY="pk",
            MPT_PIXABAY__BASE_URL=f"{fake.url}/api",
        )
    )
    m = pick()
    assert {c.source for c in m.clips} == {"procedural"}
    assert any(w.startswith("pexels search failed: 401") for w in m.warnings)
    assert any("pixabay search failed" in w and "not valid JSON" in w for w in m.warnings)
    assert len(fake.hits("/videos/search")) == 1  # a rejected key is not retried
    assert all(KEY not in w for w in m.warnings)


def test_download_cut_off_midway_resumes_with_a_range_request(env, fake, clip_bytes, tmp_path):
    half = len(clip_bytes) // 2
    fake.route(
        "GET",
        "/files/",
        Reply(body=clip_bytes, headers={"content-type": "video/mp4"}, ranges=True, cut_after=half),
        Reply(body=clip_bytes, headers={"content-type": "video/mp4"}, ranges=True),
    )
    env()
    path = download(f"{fake.url}/files/x.mp4", tmp_path / "dl", 10 * 2**20, 10)
    assert path.read_bytes() == clip_bytes
    first, second = fake.hits("/files/")
    assert "range" not in first.headers
    resumed_from = int(second.headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= half  # it asked only for what it lacked
    import hashlib

    assert path.name == hashlib.sha256(clip_bytes).hexdigest() + ".mp4"  # content-addressed
    again = download(f"{fake.url}/files/x.mp4", tmp_path / "dl", 10 * 2**20, 10)
    assert again == path and len(fake.hits("/files/")) == 2  # served from the cache


def test_a_clip_that_is_not_a_video_is_refused(env, fake, tmp_path):
    from blocks.calls import ProviderError
    from blocks.errors import StageError

    fake.route("GET", "/page", Reply(body=b"<html></html>", headers={"content-type": "text/html"}))
    fake.route(
        "GET", "/fake.mp4", Reply(body=b"\x00" * 5000, headers={"content-type": "video/mp4"})
    )
    env()
    with pytest.raises(ProviderError, match="not a video"):
        download(f"{fake.url}/page", tmp_path / "dl", 2**20, 5)
    with pytest.raises(StageError, match="not a video"):
        download(f"{fake.url}/fake.mp4", tmp_path / "dl", 2**20, 5)
    assert not list((tmp_path / "dl").glob("*.mp4"))


def test_size_cap(env, fake, clip_bytes, tmp_path):
    from blocks.calls import ProviderError

    fake.route("GET", "/big.mp4", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    env()
    with pytest.raises(ProviderError, match="cap"):
        download(f"{fake.url}/big.mp4", tmp_path / "dl", len(clip_bytes) // 2, 5)


def test_search_responses_are_cached_in_redis(env, fake, clip_bytes):
    import redis

    fake.route(
        "GET",
        "/videos/search",
        Reply(body=pexels_search([pexels_video(11, f"{fake.url}/files/11.mp4")])),
    )
    fake.route("GET", "/files/", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    env(**pexels_env(fake, MPT_REDIS_URL="redis://127.0.0.1:6379/15", MPT_SEARCH_TTL_S="60"))
    r = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    r.flushdb()
    pick(duration=3.0)
    pick(duration=3.0)
    assert len(fake.hits("/videos/search")) == 1
    keys = r.keys("mpt:search:pexels:*")
    assert len(keys) == 1 and 0 < r.ttl(keys[0]) <= 60
    assert KEY.encode() not in r.get(keys[0])
    r.flushdb()


def test_redis_down_bypasses_the_cache(env, fake, clip_bytes):
    fake.route(
        "GET",
        "/videos/search",
        Reply(body=pexels_search([pexels_video(12, f"{fake.url}/files/12.mp4")])),
    )
    fake.route("GET", "/files/", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    env(**pexels_env(fake, MPT_REDIS_URL="redis://127.0.0.1:1/0"))  # nothing listens there
    m = pick(duration=3.0)
    assert [c.source for c in m.clips] == ["pexels"]


def test_flow_credits_stock_clips_in_the_manifest(env, fake, clip_bytes, tmp_path):
    import json

    from flows.video import video_flow
    from spec import VideoSpec

    fake.route(
        "GET",
        "/videos/search",
        Reply(
            body=pexels_search(
                [
                    pexels_video(21, f"{fake.url}/files/21.mp4"),
                    pexels_video(22, f"{fake.url}/f/22.mp4"),
                ]
            )
        ),
    )
    fake.route("GET", "/files/", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    fake.route("GET", "/f/", Reply(body=clip_bytes, headers={"content-type": "video/mp4"}))
    env(**pexels_env(fake))
    spec = VideoSpec(
        script="Fresh coffee smells wonderful in the morning.", resolution="540p", seed=3
    )
    result = video_flow(spec, out_dir=str(tmp_path / "out"))
    stock = [m for m in result.materials if m.source == "pexels"]
    assert stock and all(m.author == "Ana Author" and m.page_url and m.license_url for m in stock)
    text = (tmp_path / "out" / "manifest.json").read_text()
    assert json.loads(text)["materials"][0]["source"] == "pexels"
    assert KEY not in text


def test_providers_check_covers_stock_sources(fake):
    import os
    import subprocess

    from .test_cli import MPT, REPO

    fake.route(
        "GET",
        "/videos/search",
        Reply(body=pexels_search([pexels_video(1, f"{fake.url}/files/1.mp4")])),
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_LEVEL"} | {
        "MPT_MATERIALS__PROVIDERS": "pexels,pixabay,local",
        "MPT_PEXELS__API_KEY": KEY,
        "MPT_PEXELS__BASE_URL": fake.url,
        "COLUMNS": "200",
    }
    proc = subprocess.run(
        [*MPT, "providers", "check"], capture_output=True, text=True, env=env, cwd=REPO, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[1]: line for line in proc.stdout.splitlines() if "materials" in line}
    assert "yes" in rows["pexels"] and "1 clips" in rows["pexels"]
    assert "no" in rows["pixabay"] and "MPT_PIXABAY__API_KEY" in rows["pixabay"]
