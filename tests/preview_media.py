"""Writes small lossless test clips (PNG in QuickTime) whose pixels encode the frame number."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def source_frame(index: int, height: int = 24, width: int = 32) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = index % 256
    frame[..., 1] = np.arange(width, dtype=np.uint8)[None, :] * 3
    frame[..., 2] = 200
    return frame


def write_clip(path: Path, count: int, height: int = 24, width: int = 32,
               rate: Fraction = Fraction(24000, 1001)) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
        for i in range(count):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(source_frame(i, height, width),
                                                                   format="rgb24")))
        container.mux(stream.encode())
    return path
