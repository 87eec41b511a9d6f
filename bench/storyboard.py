"""Benchmark: footage matched scene by scene, against the round-robin it replaced, side by side.

Each run is the real CLI (`mpt make`) in its own process, cold (a fresh work dir and Prefect
home), with a local stock server speaking Pexels' wire format (a solid-colour clip per
query), so searches and downloads are real HTTP:

- the demo script, and a script of 60 one-sentence scenes (about 3 minutes of narration);
- this checkout, and with `--before DIR` another one (a worktree of the commit before the
  storyboard: `git worktree add /tmp/base REV`), on the same inputs, one after the other.

Wall is the child's elapsed time, CPU is user + sys of it and everything it ran. Then a
campaign of 20 videos on 5 topics (`mpt batch`, 4 rows a topic, one process): how many
searches reach the stock site, against the queries its scenes ask for (searches are cached
per query).

    .venv/bin/python bench/storyboard.py
    .venv/bin/python bench/storyboard.py --before /tmp/base
    .venv/bin/python bench/storyboard.py --runs 1 --skip-campaign
"""

from __future__ import annotations

import argparse
import colorsys
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.cold import timed  # noqa: E402

SMALL = ["--resolution", "540p", "--fps", "15", "--preset", "ultrafast"]
THINGS = [
    "sea turtle", "red fox", "honey bee", "blue whale", "snow leopard", "coffee bean",
    "tea garden", "rice field", "volcano", "glacier", "desert dune", "rain forest",
    "city bridge", "night market", "train station", "lighthouse", "windmill", "old castle",
    "mountain lake", "waterfall", "cherry blossom", "sunflower", "pine cone", "oak tree",
    "river delta", "coral reef", "jellyfish", "octopus", "penguin", "polar bear",
    "kangaroo", "elephant", "giraffe", "zebra", "hummingbird", "owl",
    "fishing boat", "sailboat", "hot air balloon", "bicycle", "vintage car", "steam engine",
    "bakery bread", "cheese wheel", "chocolate", "strawberry", "orange grove", "vineyard",
    "thunderstorm", "rainbow", "northern lights", "full moon", "sunrise", "fog",
    "library", "museum", "concert hall", "stadium", "skyscraper", "village square",
]  # fmt: skip
TOPICS = {
    "coffee": "Coffee grows near the equator. Roasting brings out its flavour. A cup wakes you.",
    "tea": "Tea leaves are picked by hand. Green tea is not oxidised. Tea houses are calm.",
    "bees": "Honey bees dance to share directions. A hive holds thousands of bees.",
    "whales": "Blue whales are the largest animals. Their songs travel far through the sea.",
    "volcanoes": "Volcanoes build new land. Lava cools into black rock near the shore.",
}


def sixty() -> str:
    return " ".join(f"The {thing} is worth a closer look." for thing in THINGS)


PALETTE = 48  # clips of distinct colours, drawn before any timing


def draw_palette(folder: Path) -> list[Path]:
    """PALETTE solid-colour clips (540x960, 8 s), so no run's time includes drawing them."""
    from tasks.media import ffmpeg_exe

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(PALETTE):
        path = folder / f"{i:02d}.mp4"
        r, g, b = (round(c * 255) for c in colorsys.hsv_to_rgb(i / PALETTE, 0.8, 0.9))
        if not path.is_file():
            subprocess.run(
                [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi"]
                + ["-i", f"color=c=0x{r:02x}{g:02x}{b:02x}:s=540x960:r=15:d=8"]
                + ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
                check=True,
            )
        paths.append(path)
    return paths


class StockFake:
    """Pexels, served on 127.0.0.1: each query's hit is a clip of the palette, by the
    query's hash (so distinct queries mostly get distinct colours)."""

    def __init__(self, palette: list[Path]) -> None:
        self.palette, self.searches, self.files = palette, 0, 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the server's name for it
                url = urlsplit(self.path)
                if url.path == "/videos/search":
                    body = json.dumps(fake.search(parse_qs(url.query)["query"][0])).encode()
                    kind = "application/json"
                else:
                    body, kind = fake.clip(Path(url.path).stem), "video/mp4"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def search(self, query: str) -> dict:
        with self.lock:
            self.searches += 1
        slug = hashlib.sha256(query.encode()).hexdigest()[:12]
        link = f"{self.url}/files/{slug}.mp4"
        return {
            "page": 1,
            "per_page": 15,
            "total_results": 1,
            "videos": [
                {
                    "id": int(slug[:6], 16),
                    "width": 540,
                    "height": 960,
                    "duration": 8,
                    "url": f"https://www.pexels.com/video/{slug}/",
                    "user": {"name": "Bench"},
                    "video_files": [
                        {"file_type": "video/mp4", "width": 540, "height": 960, "link": link}
                    ],
                }
            ],
        }

    def clip(self, slug: str) -> bytes:
        with self.lock:
            self.files += 1
        return self.palette[int(slug[:6], 16) % len(self.palette)].read_bytes()

    def close(self) -> None:
        self.server.shutdown()


def cold_env(tmp: Path, fake: StockFake) -> dict[str, str]:
    """A fresh work dir and Prefect home under `tmp`, footage from the fake only. No PREFECT_*
    of this process: importing our modules set some (results in the shared default work
    dir, where a second run would find the first one's stages cached)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {
        "MPT_WORK_DIR": str(tmp / "work"),
        "PREFECT_HOME": str(tmp / "prefect"),
        "MPT_OUTPUT_ROOT": str(tmp / "out"),
        "MPT_MATERIALS__PROVIDERS": "pexels",
        "MPT_PEXELS__API_KEY": "bench",
        "MPT_PEXELS__BASE_URL": fake.url,
    }
    return env


def make(checkout: Path | None, script: Path, fake: StockFake, tmp: Path) -> tuple[float, float]:
    """One cold `mpt make` of `script` (this checkout's, or another's): (wall s, CPU s)."""
    env = cold_env(tmp, fake)
    cwd = checkout or REPO
    env["PYTHONPATH"] = str(cwd)  # its code first on the path, before the editable install's
    cmd = [sys.executable, "-m", "api.cli", "make", "--script-file", str(script), *SMALL]
    wall, cpu, _ = timed([*cmd, "--out", str(tmp / "out" / "video")], env, cwd)
    return wall, cpu


def compare(name: str, text: str, before: Path | None, palette: list[Path], runs: int) -> None:
    """`runs` cold runs of each checkout, taking turns; the median of each is compared."""
    tmp = Path(tempfile.mkdtemp(prefix="mpt-storyboard-"))
    script = tmp / f"{name}.txt"
    script.write_text(text)
    checkouts = [("storyboard", None)] + ([("before", before)] if before else [])
    try:
        results: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in checkouts}
        for n in range(runs):
            for label, checkout in checkouts:
                fake = StockFake(palette)
                try:
                    wall, cpu = make(checkout, script, fake, tmp / f"{label}-{n}")
                finally:
                    fake.close()
                results[label].append((wall, cpu))
                print(
                    f"{name}: {label:10} {wall:6.1f} s {cpu:6.1f} CPU-s, "
                    f"{fake.searches} searches, {fake.files} downloads",
                    flush=True,
                )
        if before is not None:
            (w, c), (bw, bc) = (
                [statistics.median(x) for x in zip(*results[k], strict=True)]
                for k in ("storyboard", "before")
            )
            print(
                f"{name}: medians of {runs}: storyboard {w:.1f} s {c:.1f} CPU-s, round-robin "
                f"{bw:.1f} s {bc:.1f} CPU-s; ratio wall {w / bw:.3f}, CPU {c / bc:.3f} "
                "(target <= 1.05)",
                flush=True,
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def campaign(palette: list[Path]) -> None:
    """20 videos on 5 topics in one `mpt batch`: searches that reach the site."""
    import csv
    import io

    tmp = Path(tempfile.mkdtemp(prefix="mpt-campaign-"))
    fake = StockFake(palette)
    try:
        rows = io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(["script", "seed"])
        for i in range(20):
            writer.writerow([list(TOPICS.values())[i % 5], i])
        file = tmp / "rows.csv"
        file.write_text(rows.getvalue())
        defaults = tmp / "defaults.json"
        defaults.write_text(
            json.dumps({"resolution": "540p", "fps": 15, "preset": "ultrafast", "aspect": "1:1"})
        )
        env = cold_env(tmp, fake)
        cmd = [sys.executable, "-m", "api.cli", "batch", str(file), "--defaults", str(defaults)]
        wall, cpu, _ = timed([*cmd, "--out", str(tmp / "out" / "c"), "--json"], env)
        report = json.loads((tmp / "out" / "c" / "report.json").read_text())
        scenes = 0
        for row in report["rows"]:
            manifest = json.loads((Path(row["video"]).parent / "manifest.json").read_text())
            scenes += len(manifest["scenes"])
        print(
            f"campaign: 20 videos on 5 topics in {wall:.0f} s ({cpu:.0f} CPU-s): {scenes} "
            f"scenes, each searching at least once without the cache; {fake.searches} "
            f"searches reached the site, {fake.files} downloads",
            flush=True,
        )
    finally:
        fake.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="a checkout of another commit to compare")
    parser.add_argument("--runs", type=int, default=3, help="cold runs of each, taking turns")
    parser.add_argument("--skip-campaign", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    palette = draw_palette(Path(tempfile.gettempdir()) / "mpt-bench-palette")
    compare(
        "demo",
        (REPO / "resources" / "demo" / "script.txt").read_text(),
        args.before,
        palette,
        args.runs,
    )
    compare("60 scenes", sixty(), args.before, palette, args.runs)
    if not args.skip_campaign:
        campaign(palette)


if __name__ == "__main__":
    main()
