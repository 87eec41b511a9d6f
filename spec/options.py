"""The choices a request makes: enums shared by the spec and the stages that take them."""

from __future__ import annotations

from enum import StrEnum

HEX_COLOUR = r"^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$"
# Upscaler weights a spec may name (TorchScript .pt is not: spandrel loads it unchecked).
WEIGHT_SUFFIXES = (".pth", ".ckpt", ".safetensors")


class Aspect(StrEnum):
    portrait = "9:16"
    landscape = "16:9"
    square = "1:1"


class Resolution(StrEnum):
    p1080 = "1080p"
    p720 = "720p"
    p540 = "540p"


class Fit(StrEnum):
    cover = "cover"
    contain = "contain"


class Concat(StrEnum):
    random = "random"
    sequential = "sequential"


class Transition(StrEnum):
    """Values other than none and random are ffmpeg xfade transitions."""

    none = "none"
    fade = "fade"
    fadeblack = "fadeblack"
    slideleft = "slideleft"
    slideright = "slideright"
    slideup = "slideup"
    slidedown = "slidedown"
    wipeleft = "wipeleft"
    zoomin = "zoomin"
    dissolve = "dissolve"
    circleopen = "circleopen"
    random = "random"


class Background(StrEnum):
    blur = "blur"
    color = "color"


class Encoder(StrEnum):
    auto = "auto"
    libx264 = "libx264"
    h264_nvenc = "h264_nvenc"
    h264_qsv = "h264_qsv"
    h264_vaapi = "h264_vaapi"


class Preset(StrEnum):
    """x264's speed/size trade-off, fastest first."""

    ultrafast = "ultrafast"
    superfast = "superfast"
    veryfast = "veryfast"
    faster = "faster"
    fast = "fast"
    medium = "medium"
    slow = "slow"
    slower = "slower"
    veryslow = "veryslow"


class Position(StrEnum):
    top = "top"
    center = "center"  # type: ignore[assignment]  # named like str.center: a value all the same
    bottom = "bottom"
    custom = "custom"
