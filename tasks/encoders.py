"""Which H.264 encoder to use: hardware when the ffmpeg build has it and a device answers.

Detection encodes a tenth of a second with each candidate once per process, so a machine
with NVENC, Quick Sync or VAAPI uses it, and every other machine quietly uses libx264.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache

from blocks.errors import StageError
from spec.options import Encoder
from tasks.media import ffmpeg_encoders, run_ffmpeg

log = logging.getLogger(__name__)

# Each 1080×1920 frame x264 holds costs ~12 MB with its half-pel planes; a shorter
# lookahead and no sync buffer hold ~5 fewer frames (about 60 MB) for ~3 % larger files.
LEAN_X264 = os.environ.get("MPT_LEAN_X264", "sync-lookahead=0:rc-lookahead=5")
HARDWARE = [Encoder.h264_nvenc, Encoder.h264_qsv, Encoder.h264_vaapi]
VAAPI_DEVICE = os.environ.get("MPT_VAAPI_DEVICE", "/dev/dri/renderD128")


def device_args(encoder: Encoder) -> list[str]:
    """Global ffmpeg options an encoder needs before the inputs."""
    if encoder == Encoder.h264_vaapi:
        return ["-vaapi_device", VAAPI_DEVICE]
    return []


def upload_filter(encoder: Encoder) -> str:
    """The tail of the video chain that hands frames to the encoder."""
    if encoder == Encoder.h264_vaapi:
        return "format=nv12,hwupload"
    return "format=yuv420p"


def quality_args(encoder: Encoder, preset: str, crf: int, lean: bool = False) -> list[str]:
    """Map x264's preset and CRF onto each encoder's nearest equivalents.

    `lean` trims x264's frame queues for long renders (see LEAN_X264).
    """
    if encoder == Encoder.h264_nvenc:
        fast = preset in {"ultrafast", "superfast", "veryfast", "faster"}
        return ["-preset", "p2" if fast else "p5", "-rc", "vbr", "-cq", str(crf), "-b:v", "0"]
    if encoder == Encoder.h264_qsv:
        return [
            "-preset",
            "veryfast" if preset in {"ultrafast", "superfast"} else preset,
            "-global_quality",
            str(crf),
        ]
    if encoder == Encoder.h264_vaapi:
        return ["-qp", str(crf)]
    args = ["-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
    return [*args, "-x264-params", LEAN_X264] if lean else args


@lru_cache
def device_answers(encoder: Encoder) -> bool:
    if encoder.value not in ffmpeg_encoders():
        return False
    try:
        run_ffmpeg(
            [
                *device_args(encoder),
                "-f",
                "lavfi",
                "-i",
                "color=s=256x256:r=30:d=0.1",
                "-vf",
                upload_filter(encoder),
                "-c:v",
                encoder.value,
                "-f",
                "null",
                "-",
            ],
            timeout_s=20,
        )
    except StageError as exc:
        log.info("encoder %s unavailable: %s", encoder.value, exc)
        return False
    return True


def pick_encoder(requested: Encoder) -> Encoder:
    """`auto` → the first hardware encoder that answers, else libx264; others as asked."""
    if requested != Encoder.auto:
        return requested
    return next((enc for enc in HARDWARE if device_answers(enc)), Encoder.libx264)
