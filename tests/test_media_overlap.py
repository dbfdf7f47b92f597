"""Decoding and encoding beside the edit (sidecar/media/overlap.py): the same frames, the same
errors at the same frame, on the caller's thread; nothing left behind when stopped early."""

from __future__ import annotations

import threading
from fractions import Fraction

import numpy as np
import pytest

from liveedit.sidecar.media import MediaError, SegmentWriter, probe, read_frames
from liveedit.sidecar.media.overlap import BackgroundWriter, PrefetchedFrames


def test_prefetched_frames_are_the_frames_in_order_and_errors_come_at_their_frame():
    closed = []

    def source(fail_at=None):
        try:
            for i in range(10):
                if i == fail_at:
                    raise ValueError(f"frame {i} is damaged")
                yield np.full((2, 2, 3), i, np.uint8)
        finally:
            closed.append(threading.current_thread().name)

    assert [int(f[0, 0, 0]) for f in PrefetchedFrames(source(), depth=2)] == list(range(10))
    got = []
    frames = PrefetchedFrames(source(fail_at=6), depth=3)
    with pytest.raises(ValueError, match="frame 6 is damaged"):
        for f in frames:
            got.append(int(f[0, 0, 0]))
    assert got == [0, 1, 2, 3, 4, 5]
    with pytest.raises(StopIteration):  # after the error: the end, not a hang
        next(frames)
    assert len(closed) == 2 and all(name == "liveedit-read" for name in closed)


def test_stopping_early_stops_the_reading_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    frames = PrefetchedFrames(endless(), depth=2)
    assert [next(frames) for _ in range(3)] == [0, 1, 2]
    frames.close()
    assert closed.is_set() and not frames._thread.is_alive()


class RecordingWriter:
    def __init__(self, path, fail_at=None):
        self.path, self.fail_at = path, fail_at
        self.frames, self.threads, self.state = [], set(), "open"
        self.frames_written = 0

    def write(self, frame):
        self.threads.add(threading.current_thread().name)
        if len(self.frames) == self.fail_at:
            raise MediaError(f"{self.path}: encoding frame {len(self.frames)} failed")
        self.frames.append(int(frame[0, 0, 0]))
        self.frames_written += 1

    def close(self):
        self.state = "closed"
        return self.path

    def abort(self):
        self.state = "aborted"


def test_the_background_writer_encodes_every_frame_in_order_on_its_own_thread(tmp_path):
    inner = RecordingWriter(tmp_path / "a.mov")
    writer = BackgroundWriter(inner, depth=2)
    for i in range(20):
        writer.write(np.full((2, 2, 3), i, np.uint8))
    assert writer.close() == tmp_path / "a.mov"
    assert inner.frames == list(range(20)) and inner.state == "closed"
    assert inner.threads == {"liveedit-write-a.mov"}


def test_an_encoder_error_reaches_the_caller_and_nothing_is_kept(tmp_path):
    inner = RecordingWriter(tmp_path / "b.mov", fail_at=3)
    writer = BackgroundWriter(inner, depth=2)
    with pytest.raises(MediaError, match="encoding frame 3 failed"):
        for i in range(50):  # never blocks on the full queue once the encoder has failed
            writer.write(np.full((2, 2, 3), i, np.uint8))
        writer.close()
    writer.abort()
    assert inner.state == "aborted" and inner.frames == [0, 1, 2]


def test_a_real_segment_through_the_background_writer_equals_the_serial_one(tmp_path):
    """Byte for byte (ProRes: deterministic), and an aborted one leaves no file at all."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(7)]

    def segment(name):
        return SegmentWriter(tmp_path / name, rate=Fraction(24), format="prores", width=64, height=48)

    serial = segment("serial.mov")
    for f in frames:
        serial.write(f)
    serial.close()
    overlapped = BackgroundWriter(segment("overlapped.mov"))
    for f in frames:
        overlapped.write(f)
    overlapped.close()
    assert (tmp_path / "serial.mov").read_bytes() == (tmp_path / "overlapped.mov").read_bytes()
    assert [f.tolist() for f in read_frames(tmp_path / "overlapped.mov", 0, 7)] == [f.tolist() for f in read_frames(tmp_path / "serial.mov", 0, 7)]
    assert probe(tmp_path / "overlapped.mov").frame_count == 7

    dropped = BackgroundWriter(segment("dropped.mov"))
    for f in frames[:3]:
        dropped.write(f)
    dropped.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlapped.mov", "serial.mov"]
