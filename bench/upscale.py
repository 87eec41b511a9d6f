"""Benchmark: neural upscaling, model alone and end to end, against the device's limit.

For each model (full-size architectures with random weights, saved and loaded through
spandrel exactly as users' weights are):
- multiply-accumulates per frame, counted from the loaded model's layers (torch's
  FlopCounterMode over a forward pass on the meta device: nothing is computed);
- model-only frames per second: batches of frames already on the device, through the
  model in its precision, uint8 in and out, synchronised;
- end-to-end frames per second: `upscale_file` on a clip (ffmpeg decode → pinned batches →
  model → encoder pipe, x264 veryfast CRF 18 with the audio copied), against a bare x264
  encode of the same output (the same decode, a bicubic scale to the same size, the same
  encoder settings): the ratio says whether the video waits for the model;
- each as a fraction of the device's arithmetic limit: MACs × 2 ÷ the dense fp16 rate
  (a table of known GPUs, or --peak-tflops), or on the CPU ÷ its measured fp32 GEMM rate.

Cases: ×2 on 540×960 → 1080×1920 and ×4 on 270×480 → 1080×1920.

    .venv/bin/python bench/upscale.py                 # the CPU: compact ×2 only, few frames
    .venv/bin/python bench/upscale.py --all           # every model (slow on a CPU)
    python3 bench/upscale.py --device cuda            # on a GPU machine

It runs from the working tree on Python 3.11 or 3.12 with torch, numpy, pydantic, spandrel
and imageio-ffmpeg importable (on a machine with no registry, unpack their wheels to a
folder on PYTHONPATH); PyAV is not needed.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Dense (no sparsity) fp16/bf16 tensor rates, TFLOPS, from the vendors' data sheets.
PEAK_TFLOPS = {
    "H100 80GB HBM3": 989.4,  # SXM
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H200": 989.4,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.2,
}


@dataclass
class Case:
    model: str
    scale: int
    width: int
    height: int


def build(name: str):  # noqa: ANN201 - a torch module
    """The published architectures' sizes."""
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SwinIR import SwinIR

    return {
        # Real-ESRGAN's compact video models: 64 features, 16 convolutions.
        "compact-x2": lambda: Compact(num_feat=64, num_conv=16, upscale=2),
        "compact-x4": lambda: Compact(num_feat=64, num_conv=16, upscale=4),  # animevideov3
        # RealESRGAN_x2plus: RRDBNet on a pixel-unshuffled frame; x4plus without.
        "rrdb-x2plus": lambda: ESRGAN(
            in_nc=12, num_filters=64, num_blocks=23, scale=4, shuffle_factor=2
        ),
        "rrdb-x4plus": lambda: ESRGAN(num_filters=64, num_blocks=23, scale=4),
        # SwinIR-M classical ×2 (001_classicalSR_DF2K_s64w8_SwinIR-M_x2).
        "swinir-x2": lambda: SwinIR(
            upscale=2,
            img_size=64,
            window_size=8,
            embed_dim=180,
            depths=[6] * 6,
            num_heads=[6] * 6,
            mlp_ratio=2.0,
            upsampler="pixelshuffle",
            resi_connection="1conv",
        ),
    }[name]()


CASES = {
    "compact-x2": Case("compact-x2", 2, 960, 540),
    "rrdb-x2plus": Case("rrdb-x2plus", 2, 960, 540),
    "swinir-x2": Case("swinir-x2", 2, 960, 540),
    "compact-x4": Case("compact-x4", 4, 480, 270),
    "rrdb-x4plus": Case("rrdb-x4plus", 4, 480, 270),
}


def macs_per_frame(model, width: int, height: int) -> float:  # noqa: ANN001
    """Multiply-accumulates of one forward pass, counted on the meta device."""
    import copy

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).float().to("meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty((1, 3, height, width), device="meta"))
    return counter.get_total_flops() / 2


def peak_flops(device, override: float | None) -> tuple[float, str]:  # noqa: ANN001
    import torch

    if override:
        return override * 1e12, f"--peak-tflops {override}"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in PEAK_TFLOPS.items():
            if key in name:
                return tflops * 1e12, f"{name}: {tflops} TFLOPS dense fp16"
        return 0.0, f"{name}: unknown peak (give --peak-tflops)"
    # The CPU: what a large fp32 matrix product reaches here.
    a = torch.randn(2048, 2048)
    torch.mm(a, a)
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < 1.0:
        torch.mm(a, a)
        n += 1
    rate = n * 2 * 2048**3 / (time.perf_counter() - start)
    return rate, f"CPU fp32 GEMM measured: {rate / 1e9:.0f} GFLOPS"


def model_only(up, width: int, height: int, frames: int, min_s: float) -> float:  # noqa: ANN001
    """Frames per second of the model on uint8 frames already on the device."""
    import torch

    from tasks.upscale import _batch_for, run_batch

    batch = _batch_for(up, width, height)
    x = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, device=up.device)
    sync = torch.cuda.synchronize if up.device.type == "cuda" else (lambda: None)
    run_batch(up, x)  # warm-up: kernels chosen, memory allocated
    sync()
    done, start = 0, time.perf_counter()
    while done < frames or time.perf_counter() - start < min_s:
        run_batch(up, x)
        done += batch
        if up.device.type != "cuda" and done >= frames:
            break
    sync()
    return done / (time.perf_counter() - start)


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def make_clip(path: Path, width: int, height: int, frames: int) -> None:
    """A test clip with sound, encoded as stock footage is (x264, yuv420p)."""
    seconds = frames / 30
    subprocess.run(
        [_ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i"]
        + [f"testsrc2=s={width}x{height}:r=30:d={seconds}", "-f", "lavfi", "-i"]
        + [f"sine=d={seconds}", "-c:v", "libx264", "-preset", "fast", "-crf", "20"]
        + ["-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path)],
        check=True,
    )


def bare_encode(src: Path, dst: Path, width: int, height: int) -> float:
    """The same decode and encoder settings, a bicubic scale in place of the model."""
    start = time.perf_counter()
    subprocess.run(
        [_ffmpeg(), "-v", "error", "-y", "-i", str(src), "-map", "0:v", "-map", "0:a"]
        + ["-vf", f"scale={width}:{height}:flags=bicubic", "-c:a", "copy"]
        + ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
        + [str(dst)],
        check=True,
    )
    return time.perf_counter() - start


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    from tasks.upscale import VideoIn, load_model, pick_device, upscale_file

    device = pick_device(args.device)
    peak, peak_note = peak_flops(device, args.peak_tflops)
    names = args.models or (list(CASES) if args.all or device.type == "cuda" else ["compact-x2"])
    print(f"# {platform.node()} · {platform.processor() or platform.machine()} · {peak_note}")
    print(f"# torch {torch.__version__}, Python {platform.python_version()}, device {device}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            case = CASES[name]
            model = build(name)
            weights = folder / f"{name}.pth"
            torch.save(model.state_dict(), weights)
            up = load_model(weights, device)
            macs = macs_per_frame(up.descriptor.model, case.width, case.height)
            limit = peak / (2 * macs) if peak else 0.0
            frames = args.frames or (600 if device.type == "cuda" else 3)
            fps = model_only(
                up, case.width, case.height, frames, 3.0 if device.type == "cuda" else 0
            )
            row = {
                "model": name,
                "case": f"{case.width}x{case.height} x{case.scale}",
                "precision": up.info.precision,
                "gmacs_per_frame": round(macs / 1e9, 1),
                "limit_fps": float(f"{limit:.3g}"),
                "model_fps": round(fps, 2),
                "model_of_limit": round(fps / limit, 3) if limit else None,
            }
            if name in (args.e2e or (names if device.type == "cuda" else ["compact-x2"])):
                clip_frames = args.clip_frames or (300 if device.type == "cuda" else 8)
                src = folder / f"in-{case.width}.mp4"
                if not src.exists():
                    make_clip(src, case.width, case.height, clip_frames)
                info = VideoIn(width=case.width, height=case.height, fps="30/1", has_audio=True)
                start = time.perf_counter()
                stats = upscale_file(up, src, folder / "out.mp4", info, ffmpeg=_ffmpeg())
                e2e = time.perf_counter() - start
                bare = bare_encode(
                    src, folder / "bare.mp4", case.width * case.scale, case.height * case.scale
                )
                row |= {
                    "e2e_fps": round(stats.frames / e2e, 2),
                    "e2e_of_limit": round(stats.frames / e2e / limit, 3) if limit else None,
                    "bare_x264_fps": round(stats.frames / bare, 2),
                    "e2e_vs_bare": round(e2e / bare, 2),
                    "batch": stats.batch,
                }
            rows.append(row)
            print(json.dumps(row), flush=True)
            del up, model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def table(rows: list[dict]) -> str:
    cols = ["model", "case", "precision", "gmacs_per_frame", "limit_fps", "model_fps"]
    cols += ["model_of_limit", "e2e_fps", "bare_x264_fps", "e2e_vs_bare"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    parser.add_argument("--models", nargs="*", choices=list(CASES))
    parser.add_argument("--e2e", nargs="*", choices=list(CASES), help="end to end for these")
    parser.add_argument("--all", action="store_true", help="every model, even on a CPU")
    parser.add_argument("--frames", type=int, default=0, help="model-only frames at least")
    parser.add_argument("--clip-frames", type=int, default=0, help="frames of the e2e clip")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = run(args)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
