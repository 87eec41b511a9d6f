"""Neural upscaling: Real-ESRGAN, SRVGGNetCompact and SwinIR weights, loaded with spandrel,
run over a video as a stream.

ffmpeg decodes the clip to raw RGB frames on a pipe; batches of frames are read straight into
pinned memory, copied to the device on a stream of their own while the previous batch
computes (channels-last, fp16 where the architecture allows it, bf16 for SwinIR, fp32 on the
CPU), and the upscaled frames go back through pinned memory into the encoder's pipe, written
by a thread of their own. No frame touches the disk as an image; a frame is cut into tiles
only when the device cannot hold it whole. The audio is copied and every input frame makes
one output frame, at the input's frame rate.

Why spandrel: the `realesrgan` and `swinir` packages no longer import with current torch
(basicsr reaches for torchvision internals that are gone); spandrel knows their
architectures, detects which one a state dict holds, and unpickles with an allow-list, so a
weights file cannot run code. torch is imported here only, and only when a model is loaded:
nothing else in the pipeline needs it.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import queue
import subprocess
import threading
import time
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from blocks.errors import BadInput, StageError
from spec.options import WEIGHT_SUFFIXES
from tasks.files import atomic_path

log = logging.getLogger(__name__)
# SwinIR's call of torch.meshgrid warns of a future change, meant for its authors, not users.
warnings.filterwarnings("ignore", message="torch.meshgrid", category=UserWarning)

Precision = Literal["fp16", "bf16", "fp32"]
COPYABLE_AUDIO = {"aac", "mp3", "ac3", "eac3", "opus", "alac"}
# The architectures tested here, by spandrel's id, and what users call them.
KNOWN = {
    "ESRGAN": "Real-ESRGAN (RRDBNet)",
    "Compact": "SRVGGNetCompact",
    "SwinIR": "SwinIR",
}


class ModelInfo(BaseModel):
    """One weights file as spandrel reads it."""

    name: str  # the file's name: what `upscale` and `--model` take
    architecture: str  # spandrel's id: ESRGAN, Compact, SwinIR, ...
    label: str
    scale: int
    precision: Precision  # what it runs in on the device it was loaded for
    parameters: int
    tags: list[str] = []


class VideoIn(BaseModel):
    """What the pipe needs to know of the input: its frame size and rate, and its audio."""

    width: int
    height: int
    fps: str  # a rational as ffmpeg prints it: 30/1, 30000/1001
    has_audio: bool
    audio_codec: str | None = None
    image: bool = False  # a still: one frame in, one PNG out


@dataclass
class Upscaler:
    """A loaded model on its device, in the precision it runs in."""

    descriptor: Any  # spandrel.ImageModelDescriptor
    info: ModelInfo
    device: Any  # torch.device
    dtype: Any  # torch.dtype

    @property
    def scale(self) -> int:
        return self.info.scale


# --- loading -----------------------------------------------------------------------------


def _spandrel() -> Any:
    try:
        import spandrel
        import torch  # noqa: F401
    except ImportError as exc:
        raise BadInput(
            f"upscaling needs the upscale extra ({exc.name} is not installed): "
            "pip install -e '.[upscale]'"
        ) from None
    return spandrel


def pick_device(prefer: str = "auto") -> Any:
    import torch

    if prefer == "cpu":
        return torch.device("cpu")
    if prefer in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if prefer == "cuda":
        raise BadInput("no CUDA device is available here")
    return torch.device("cpu")


def precision_for(descriptor: Any, device: Any) -> Precision:
    """fp16 where the architecture allows it, bf16 where only that is safe (SwinIR's
    attention overflows fp16), fp32 on the CPU (its half kernels are slower, not faster)."""
    if device.type != "cuda":
        return "fp32"
    if descriptor.supports_half:
        return "fp16"
    if descriptor.supports_bfloat16:
        return "bf16"
    return "fp32"


def load_model(path: Path, device: Any = None) -> Upscaler:
    """Load a weights file through spandrel, refusing in one line what is not an upscaler."""
    spandrel = _spandrel()
    import torch

    device = device if device is not None else pick_device()
    name = path.name
    if not path.is_file():
        raise BadInput(f"no weights file {name!r} in {path.parent}")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise BadInput(f"{name}: weights must be {', '.join(WEIGHT_SUFFIXES)} files")
    try:
        with warnings.catch_warnings():  # SwinIR's meshgrid notice, meant for its authors
            warnings.simplefilter("ignore", UserWarning)
            descriptor = spandrel.ModelLoader().load_from_file(path)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "forbidden" in text:  # spandrel's allow-list: the file wants to import something
            what = text.split("'")[1] if "'" in text else text
            raise BadInput(
                f"{name} is refused: it carries code ({what}), not only weights; "
                "use a state dict (.pth) or .safetensors"
            ) from None
        raise BadInput(f"{name} is not a readable weights file ({text})") from None
    except spandrel.UnsupportedModelError:
        raise BadInput(
            f"{name}: unknown model architecture (supported: {', '.join(KNOWN.values())} "
            "and the other super-resolution models spandrel knows)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        what = (
            "damaged or truncated: " if isinstance(exc, OSError | RuntimeError | EOFError) else ""
        )
        raise BadInput(f"{name} is not a readable weights file ({what}{first[:200]})") from None
    except Exception as exc:  # noqa: BLE001 - safetensors' and spandrel's own errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{name} is not a readable weights file ({first[:200]})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.purpose != "SR":
        raise BadInput(
            f"{name} is a {descriptor.architecture.name} model for "
            f"{descriptor.purpose.lower()}, not an upscaler"
        )
    if descriptor.scale < 2 or descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise BadInput(f"{name} does not upscale RGB images (scale {descriptor.scale})")
    precision = precision_for(descriptor, device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    descriptor.to(device).to(dtype).eval()
    descriptor.model.to(memory_format=torch.channels_last)
    info = ModelInfo(
        name=name,
        architecture=descriptor.architecture.id,
        label=KNOWN.get(descriptor.architecture.id, descriptor.architecture.name),
        scale=descriptor.scale,
        precision=precision,
        parameters=sum(p.numel() for p in descriptor.model.parameters()),
        tags=list(descriptor.tags),
    )
    return Upscaler(descriptor=descriptor, info=info, device=device, dtype=dtype)


def weight_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in WEIGHT_SUFFIXES)


def list_models(folder: Path, device: Any = None) -> list[ModelInfo | str]:
    """Every weights file in the folder: its info, or the one-line reason it cannot load."""
    found: list[ModelInfo | str] = []
    for path in weight_files(folder):
        try:
            found.append(load_model(path, device or pick_device("cpu")).info)
        except BadInput as exc:
            found.append(str(exc))
    return found


# --- the model on a batch ----------------------------------------------------------------


def run_batch(up: Upscaler, frames: Any, tile: int | None = None) -> Any:
    """(N, H, W, 3) uint8 on the device → (N, H*s, W*s, 3) uint8 on the device."""
    import torch

    with torch.inference_mode():
        x = frames.permute(0, 3, 1, 2).to(up.dtype).div_(255)
        x = x.contiguous(memory_format=torch.channels_last)
        y = _tiled(up, x, tile) if tile else up.descriptor(x)
        return y.mul_(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def _tiled(up: Upscaler, x: Any, tile: int, overlap: int = 16) -> Any:
    """The model over overlapping tiles, each tile's border dropped: for frames the device
    cannot hold whole."""
    import torch

    n, c, h, w = x.shape
    s = up.scale
    out = torch.empty((n, c, h * s, w * s), dtype=x.dtype, device=x.device)
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(bottom + overlap, h), min(right + overlap, w)
            y = up.descriptor(x[:, :, t0:t1, l0:l1])
            out[:, :, top * s : bottom * s, left * s : right * s] = y[
                :, :, (top - t0) * s : (bottom - t0) * s, (left - l0) * s : (right - l0) * s
            ]
    return out


# --- the stream --------------------------------------------------------------------------


@dataclass
class StreamStats:
    frames: int
    seconds: float
    batch: int
    tiled: bool

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def _read_frames(pipe: Any, buffers: queue.Queue, filled: queue.Queue, frame_bytes: int) -> None:
    """Fill pinned buffers from the decoder's pipe; None marks the end."""
    try:
        while True:
            buf = buffers.get()
            if buf is None:
                break
            view = memoryview(buf.numpy()).cast("B")
            count = 0
            while count < buf.shape[0]:
                got = pipe.readinto(view[count * frame_bytes : (count + 1) * frame_bytes])
                if got == 0:
                    break
                # A pipe may hand over less than a frame at a time.
                while got < frame_bytes:
                    more = pipe.readinto(
                        view[count * frame_bytes + got : (count + 1) * frame_bytes]
                    )
                    if not more:
                        break
                    got += more
                if got < frame_bytes:
                    break
                count += 1
            filled.put((buf, count))
            if count < buf.shape[0]:
                break
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
        filled.put(exc)
    filled.put(None)


def _write_frames(pipe: Any, done: queue.Queue, free: queue.Queue) -> None:
    """Write finished batches into the encoder's pipe, once their copy back has landed."""
    try:
        while (item := done.get()) is not None:
            event, buf, count = item
            if event is not None:
                event.synchronize()
            pipe.write(memoryview(buf[:count].numpy()).cast("B"))
            free.put(buf)
    except BaseException as exc:  # noqa: BLE001 - the main thread sees the encoder's exit
        free.put(exc)


def stream(
    up: Upscaler,
    read_pipe: Any,
    write_pipe: Any,
    width: int,
    height: int,
    batch: int = 0,
    tile: int | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> StreamStats:
    """Upscale every frame from one pipe into the other, overlapping reading, copying in,
    computing, copying out and writing."""
    import torch

    cuda = up.device.type == "cuda"
    batch = batch or _batch_for(up, width, height)
    s = up.scale
    frame_bytes = width * height * 3
    pin = cuda  # pinned host memory makes copies asynchronous; on the CPU it means nothing

    def host(shape: tuple[int, ...]) -> Any:
        t = torch.empty(shape, dtype=torch.uint8)
        return t.pin_memory() if pin else t

    in_free: queue.Queue = queue.Queue()
    in_filled: queue.Queue = queue.Queue()
    for _ in range(3):
        in_free.put(host((batch, height, width, 3)))
    out_free: queue.Queue = queue.Queue()
    out_done: queue.Queue = queue.Queue()
    for _ in range(3):
        out_free.put(host((batch, height * s, width * s, 3)))
    reader = threading.Thread(
        target=_read_frames, args=(read_pipe, in_free, in_filled, frame_bytes), daemon=True
    )
    writer = threading.Thread(
        target=_write_frames, args=(write_pipe, out_done, out_free), daemon=True
    )
    reader.start()
    writer.start()
    copy_stream = torch.cuda.Stream() if cuda else None
    frames = 0
    start = time.perf_counter()
    try:
        while (item := in_filled.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            buf, count = item
            if count == 0:
                in_free.put(buf)
                continue
            if cuda:
                with torch.cuda.stream(copy_stream):
                    x = buf[:count].to(up.device, non_blocking=True)
                torch.cuda.current_stream().wait_stream(copy_stream)
                # The host buffer may be refilled only once its copy has been made.
                x.record_stream(torch.cuda.current_stream())
                copied = torch.cuda.Event()
                copied.record(copy_stream)
            else:
                x = buf[:count]
            y, tile = _upscale_fitting(up, x, tile)
            out = out_free.get()
            if isinstance(out, BaseException):
                raise StageError(f"the encoder stopped taking frames ({out})")
            out[:count].copy_(y, non_blocking=cuda)
            event = None
            if cuda:
                event = torch.cuda.Event()
                event.record()
                copied.synchronize()
            in_free.put(buf)
            out_done.put((event, out, count))
            frames += count
            if on_frames:
                on_frames(frames)
    finally:
        in_free.put(None)
        out_done.put(None)
        writer.join()
        reader.join(timeout=5)
    return StreamStats(frames, time.perf_counter() - start, batch, tile is not None)


def _upscale_fitting(up: Upscaler, x: Any, tile: int | None) -> tuple[Any, int | None]:
    """Whole frames while the device holds them; on running out of memory, one frame at a
    time, then tiles of half the size each time down to 64 px. Returns the output and the
    tile it took, which the next batches keep (so they do not run out of memory again)."""
    import torch

    while True:
        try:
            if x.shape[0] > 1 and tile is None:
                return run_batch(up, x), None
            parts = [run_batch(up, x[i : i + 1], tile) for i in range(x.shape[0])]
            return (parts[0] if len(parts) == 1 else torch.cat(parts)), tile
        except torch.cuda.OutOfMemoryError:
            if up.device.type != "cuda":
                raise
            torch.cuda.empty_cache()
            if tile == 64:
                raise StageError("the upscale model does not fit on the device") from None
            tile = max(64, (tile or max(x.shape[1], x.shape[2])) // 2)
            log.warning("frames do not fit on the device: tiles of %d px", tile)


def _batch_for(up: Upscaler, width: int, height: int) -> int:
    """Frames per batch: enough to keep the GPU busy, small enough that a batch's
    activations stay within a quarter of the device's free memory."""
    if up.device.type != "cuda":
        return 1
    import torch

    free, _ = torch.cuda.mem_get_info(up.device)
    per_frame = width * height * up.scale**2 * 3 * 64 * 2  # a generous activation estimate
    return int(max(1, min(16, free // 4 // max(per_frame, 1))))


# --- files -------------------------------------------------------------------------------


def probe_video(path: Path) -> VideoIn:
    from tasks.media import probe  # PyAV: not needed where only the model runs (bench)

    info = probe(path)
    if info.kind == "audio":
        raise BadInput(f"{path.name} has no video to upscale")
    fps, turned = "1/1", False
    if info.kind == "video":
        rate, turned = _rate_and_rotation(path)
        fps = rate or str(Fraction(info.fps).limit_denominator(1001))
    return VideoIn(
        # ffmpeg decodes a clip with a 90° rotation tag upright: its frames come turned.
        width=info.height if turned else info.width,
        height=info.width if turned else info.height,
        fps=fps,
        has_audio=info.audio_codec is not None,
        audio_codec=info.audio_codec,
        image=info.kind == "image",
    )


def _rate_and_rotation(path: Path) -> tuple[str | None, bool]:
    """The exact average frame rate, and whether the first frame is turned by 90°."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frame = next(container.decode(stream), None)
        rotation = int(getattr(frame, "rotation", 0) or 0) if frame is not None else 0
    return (f"{rate.numerator}/{rate.denominator}" if rate else None), abs(rotation) % 180 == 90


def upscale_file(
    up: Upscaler,
    src: Path,
    dst: Path,
    info: VideoIn | None = None,
    encoder: list[str] | None = None,
    batch: int = 0,
    tile: int | None = None,
    ffmpeg: str | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> StreamStats:
    """Upscale a video (or a still image) file into `dst`: the same frames at the same rate,
    its audio copied. `encoder` replaces the default H.264 arguments."""
    info = info or probe_video(src)
    exe = ffmpeg or _ffmpeg()
    w, h, s = info.width, info.height, up.scale
    decode = [exe, "-v", "error", "-nostdin", *_hwaccel(exe, up), "-i", str(src), "-map", "0:v:0"]
    decode += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    encode = [exe, "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    encode += ["-s", f"{w * s}x{h * s}", "-framerate", info.fps, "-i", "-"]
    if info.image:
        encode += ["-frames:v", "1", *(encoder or ["-c:v", "png"])]
    else:
        if info.has_audio:
            # Copied where the container takes it as it is; PCM, Vorbis and the like to AAC.
            copy = info.audio_codec in COPYABLE_AUDIO or _muxer(dst) in ("matroska", "nut")
            encode += ["-i", str(src), "-map", "0:v", "-map", "1:a:0"]
            encode += ["-c:a", "copy"] if copy else ["-c:a", "aac", "-b:a", "192k"]
        encode += encoder or [
            *("-c:v", "libx264", "-preset", "veryfast", "-crf", "18"),
            *("-pix_fmt", "yuv420p", "-movflags", "+faststart"),
        ]
    with atomic_path(dst) as tmp:
        encode += ["-f", _muxer(dst), str(tmp)]
        with (
            _process(decode, stdout=subprocess.PIPE) as dec,
            _process(encode, stdin=subprocess.PIPE) as enc,
        ):
            try:
                stats = stream(up, dec.stdout, enc.stdin, w, h, batch, tile, on_frames)
            except StageError as exc:  # the model's side (out of memory, ...)
                enc.kill()
                raise StageError(f"upscaling {src.name} failed: {exc}") from None
            except (BrokenPipeError, OSError) as exc:
                enc.kill()
                raise StageError(f"upscaling {src.name} failed: {_why(enc, exc)}") from None
            finally:
                if enc.stdin and not enc.stdin.closed:
                    with contextlib.suppress(BrokenPipeError):
                        enc.stdin.close()
            if dec.wait() != 0:
                raise StageError(f"decoding {src.name} failed: {_why(dec, None)}")
            if enc.wait() != 0:
                raise StageError(f"encoding the upscaled {src.name} failed: {_why(enc, None)}")
        if stats.frames == 0:
            raise StageError(f"{src.name} gave no frames to upscale")
    return stats


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _hwaccel(exe: str, up: Upscaler) -> list[str]:
    """NVDEC decoding when the model is on CUDA and this ffmpeg build has it; frames come
    back to system memory (the pipe), and ffmpeg decodes in software what NVDEC cannot."""
    if up.device.type != "cuda":
        return []
    return ["-hwaccel", "cuda"] if "cuda" in _hwaccels(exe) else []


@lru_cache
def _hwaccels(exe: str) -> frozenset[str]:
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-hwaccels"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(line.strip() for line in out.splitlines()[1:] if line.strip())


def _muxer(dst: Path) -> str:
    return {".png": "image2", ".mkv": "matroska", ".nut": "nut", ".mov": "mov"}.get(
        dst.suffix.lower(), "mp4"
    )


def _why(proc: subprocess.Popen, exc: BaseException | None) -> str:
    err = ""
    if proc.stderr is not None:
        proc.stderr.seek(0)
        err = proc.stderr.read().decode(errors="replace").strip()
    return err.splitlines()[-1] if err else str(exc or f"exit {proc.returncode}")


class _process:
    """An ffmpeg child tied to this process (it dies with us), killed if left running. Its
    stderr goes to a temporary file: a pipe nobody reads while frames flow could fill up
    with decode warnings and stall it."""

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        import tempfile

        from blocks.processes import spawn

        self.err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.proc = spawn(args, stderr=self.err, **kwargs)
        self.proc.stderr = self.err  # what _why reads

    def __enter__(self) -> subprocess.Popen:
        return self.proc

    def __exit__(self, *exc: object) -> None:
        from blocks.processes import reap

        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        reap(self.proc)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self.err.close()
