"""Frame transport: the shared-memory ring's checks, and the transport benchmark's plumbing
(figures are not asserted: timing goals never go into unit tests)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liveedit.errors import InputError
from liveedit.commands import _transport_bench as transport_bench
from liveedit.clients.transport import FrameRing, RingUnavailable, frame_from_bytes


def test_ring_round_trip_and_checks():
    with FrameRing.create(8, 4, 16) as ring:
        server = FrameRing.open(ring.spec, 8, 4)
        frame = np.arange(96, dtype=np.uint8).reshape(4, 8, 3)
        ring.write(ring.slot_of(17), frame)
        np.testing.assert_array_equal(server.read(1), frame)
        with pytest.raises(InputError, match="outside"):
            server.read(16)
        server.close()
        with pytest.raises(RingUnavailable, match="not the client's ring"):
            FrameRing.open(dataclasses.replace(ring.spec, nonce=bytes(16)), 8, 4)
        with pytest.raises(InputError, match="smaller than one"):
            FrameRing.open(ring.spec, 80, 40)
        with pytest.raises(InputError, match="start with"):
            FrameRing.open(dataclasses.replace(ring.spec, name="psm_other"), 8, 4)
        with pytest.raises(InputError, match="below 16"):
            FrameRing.open(dataclasses.replace(ring.spec, slot_count=4), 8, 4)
    with pytest.raises(RingUnavailable, match="different machines"):
        FrameRing.open(ring.spec, 8, 4)  # unlinked by its creator


def test_frame_bytes_must_match_the_stream_size():
    assert frame_from_bytes(bytes(24), 4, 2, "frame 0").shape == (2, 4, 3)
    with pytest.raises(InputError, match="frame 3 has 23 bytes"):
        frame_from_bytes(bytes(23), 4, 2, "frame 3")


def test_transport_bench_measures_both_transports_and_records_a_dated_section(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEEDIT_COMMIT", "abc1234")
    results = transport_bench.run(frames=10, sizes=("480p",))
    assert [(r.transport, r.size, r.frames) for r in results] == [
        ("in-message", "480p", 10), ("shared-memory", "480p", 10)]
    assert all(r.seconds > 0 for r in results)
    doc = tmp_path / "benchmarks.md"
    transport_bench.record(doc, results)
    transport_bench.record(doc, results)
    text = doc.read_text()
    assert text.startswith("# Benchmarks") and text.count("# Benchmarks") == 1
    assert text.count("commit abc1234") == 2 and "| 480p | shared-memory | 10 |" in text
