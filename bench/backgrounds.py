"""Benchmark: what each kind of procedural background costs to draw and to encode.

For each kind (gradients, radial, Mandelbrot, Life, cellauto), 4 s of its recipe drawn and
scaled to 1080×1920, then the same encoded by x264 (veryfast, CRF 23), against 4 s of
`testsrc2`, the source the cold-path floor encodes. Prints CPU seconds and file sizes.

    .venv/bin/python bench/backgrounds.py
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tasks.materials import generate_procedural  # noqa: E402
from tasks.media import ffmpeg_exe  # noqa: E402

SIZE = (1080, 1920)
ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]


def cpu_of(cmd: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    kinds: dict[str, str] = {}
    for i in range(300):
        recipe = generate_procedural(f"term {i}", i, SIZE, 4.0).recipe or ""
        name = recipe.split("=")[0] + (" (radial)" if "type=radial" in recipe else "")
        kinds.setdefault(name, recipe)
    ff = [ffmpeg_exe(), "-v", "error", "-y"]
    scale = ["-vf", f"scale={SIZE[0]}:{SIZE[1]}:flags=bicubic,format=yuv420p"]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "out.mp4")
        print(f"{'4 s of':<24} {'draw+scale':>10} {'encode':>8} {'file MB':>8}")
        floor = cpu_of([*ff, "-f", "lavfi", "-i", "testsrc2=s=1080x1920:r=30:d=4", *ENCODE, out])
        print(
            f"{'testsrc2 (the floor)':<24} {'-':>10} {floor:8.2f} {os.path.getsize(out) / 1e6:8.2f}"
        )
        for name, recipe in sorted(kinds.items()):
            source = ["-f", "lavfi", "-t", "4", "-i", recipe]
            drawn = cpu_of([*ff, *source, *scale, "-f", "null", "-"])
            both = cpu_of([*ff, *source, *scale, *ENCODE, out])
            size = os.path.getsize(out) / 1e6
            print(f"{name:<24} {drawn:10.2f} {both - drawn:8.2f} {size:8.2f}")


if __name__ == "__main__":
    main()
