"""Audio bytes or files in any format PyAV reads, decoded to mono PCM in-process.

Below the stages on purpose: network voices (blocks/tts.py) decode what a provider sends, and
the narration stage decodes a user's recording, with the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from blocks.errors import StageError


def decode_mono(source: Path | BinaryIO) -> tuple[np.ndarray, int]:
    """Any audio ffmpeg reads (a file or bytes in memory) → mono int16 samples and its rate."""
    try:
        with av.open(source if not isinstance(source, Path) else str(source)) as container:
            stream = container.streams.audio[0]
            rate = stream.codec_context.sample_rate or 24000
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            frames = [f for packet in container.decode(stream) for f in resampler.resample(packet)]
            frames += resampler.resample(None)  # what the resampler still holds
    except (av.error.FFmpegError, IndexError) as exc:
        raise StageError(f"not readable audio ({exc})") from None
    chunks = [f.to_ndarray().reshape(-1) for f in frames]
    return (np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)), rate
