"""`mpt upscale`: any video (or image) file through an upscaler, or the list of models found.

It runs the engine directly, on this machine's device, with no Prefect run: a tool for one
file, as users of video2x expect. Videos made by `mpt make` upscale their footage through
the flow instead (`--upscale`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli.kit import fail

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")  # H.264 in each
IMAGE_SUFFIXES = (".png",)


def upscale(
    src: Annotated[Path | None, typer.Argument(help="Video or image to upscale.")] = None,
    dst: Annotated[Path | None, typer.Argument(help="Where to write the result.")] = None,
    model: Annotated[
        str, typer.Option(help="A weights file's name in the weights folder, or 'auto'.")
    ] = "auto",
    scale: Annotated[int, typer.Option(help="With --model auto: 2 or 4.")] = 2,
    device: Annotated[str, typer.Option(help="auto, cuda or cpu.")] = "auto",
    list_: Annotated[
        bool, typer.Option("--list", help="List the models in the weights folder.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Upscale SRC into DST with a Real-ESRGAN, Compact or SwinIR model from the weights
    folder (MPT_UPSCALE__WEIGHTS_DIR)."""
    from blocks.errors import BadInput, StageError
    from blocks.settings import get_settings

    folder = get_settings().upscale.weights_dir
    try:
        if list_:
            _list(folder, device, as_json)
            return
        if src is None or dst is None:
            raise BadInput("give SRC and DST (or --list)")
        _one(src, dst, folder, model, scale, device, as_json)
    except (BadInput, StageError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # DST unwritable, disk full
        raise fail(f"cannot write {dst}: {exc.strerror or exc}", code=1) from None


def _list(folder: Path, device: str, as_json: bool) -> None:
    from tasks.upscale import ModelInfo, list_models, pick_device

    found = list_models(folder, pick_device(device))
    if as_json:
        typer.echo(
            json.dumps(
                [m.model_dump() if isinstance(m, ModelInfo) else {"error": m} for m in found]
            )
        )
        return
    if not found:
        typer.echo(f"no weights files (.pth, .safetensors) in {folder}", err=True)
        return
    for m in found:
        if isinstance(m, ModelInfo):
            typer.echo(f"{m.name}\t{m.label}\tx{m.scale}\t{m.precision}\t{m.parameters:,} params")
        else:
            typer.echo(f"refused\t{m}")


def _one(
    src: Path, dst: Path, folder: Path, model: str, scale: int, device: str, as_json: bool
) -> None:
    from blocks.errors import BadInput, StageError
    from tasks.upscale import list_models, load_model, pick_device, probe_video, upscale_file
    from tasks.upscale_stage import choose

    if not src.is_file():
        raise BadInput(f"no such file: {src}")
    if dst.suffix.lower() not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
        raise BadInput(f"DST must end in one of {', '.join(VIDEO_SUFFIXES + IMAGE_SUFFIXES)}")
    if dst.resolve() == src.resolve():
        raise BadInput("DST must not be SRC")
    if scale not in (2, 4):
        raise BadInput("--scale must be 2 or 4")
    if device not in ("auto", "cuda", "cpu"):
        raise BadInput("--device must be auto, cuda or cpu")
    try:
        info = probe_video(src)
    except StageError:
        raise BadInput(f"{src.name} is not a readable video or image") from None
    if info.image != (dst.suffix.lower() in IMAGE_SUFFIXES):
        kind = "an image" if info.image else "a video"
        raise BadInput(f"{src.name} is {kind}: DST must be {kind} too")
    on = pick_device(device)
    if model == "auto":
        models = [m for m in list_models(folder, on) if not isinstance(m, str)]
        best = choose(models, scale, on.type == "cuda")
        if best is None:
            raise BadInput(f"no usable upscale model in {folder} for {on.type}")
        model = best.name
    up = load_model(folder / model, on)
    stats = upscale_file(up, src, dst, info)
    out = {
        "output": str(dst),
        "model": up.info.name,
        "device": str(on),
        "size": f"{info.width * up.scale}x{info.height * up.scale}",
        "frames": stats.frames,
        "fps": round(stats.fps, 2),
    }
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(
            f"done: {dst} ({out['size']}, {stats.frames} frames at {stats.fps:.1f}/s "
            f"with {up.info.name} on {on})"
        )
