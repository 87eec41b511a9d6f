"""Small, randomly initialised upscalers of each architecture we support, saved the ways
users' weights come (a plain state dict, wrapped in `params_ema`, safetensors), so tests load
them through spandrel exactly as real weights are loaded. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path


def build(kind: str, seed: int = 0):  # noqa: ANN201 - a torch module
    import torch
    from spandrel.architectures.Compact import Compact
    from spandrel.architectures.ESRGAN import ESRGAN
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(seed)
    models = {
        "compact-x2": lambda: Compact(
            num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2
        ),
        "compact-x4": lambda: Compact(
            num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=2, upscale=4
        ),
        # Real-ESRGAN's x2plus: RRDBNet ×4 fed a pixel-unshuffled frame (12 channels).
        "rrdb-x2": lambda: ESRGAN(
            in_nc=12, out_nc=3, num_filters=16, num_blocks=1, scale=4, shuffle_factor=2
        ),
        "rrdb-x4": lambda: ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=4),
        "swinir-x2": lambda: SwinIR(
            img_size=16,
            embed_dim=12,
            depths=[1],
            num_heads=[2],
            window_size=4,
            mlp_ratio=2.0,
            upscale=2,
            upsampler="pixelshuffledirect",
        ),
    }
    model = models[kind]()
    # Random weights near zero give near-grey frames; a residual-scale nudge keeps detail.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    return model.eval()


def save(kind: str, folder: Path, how: str = "plain", seed: int = 0) -> Path:
    """Save one model: `plain` state dict, `params_ema` wrapped (as Real-ESRGAN's releases
    are), or `safetensors`."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = build(kind, seed).state_dict()
    if how == "safetensors":
        from safetensors.torch import save_file

        path = folder / f"{kind}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        return path
    path = folder / f"{kind}{'-ema' if how == 'params_ema' else ''}.pth"
    torch.save({"params_ema": state, "iter": 1} if how == "params_ema" else state, path)
    return path
