"""Helpers for the take tests: a causal fake editor with the real chunking, the reference edit it
defines, and a client loop that asks for a frame the way the OpenFX plug-in does (ask, upload
what the sidecar needs, ask again)."""

from __future__ import annotations

import hashlib

import numpy as np

from liveedit.sidecar.takes import pixels as take_pixels
from liveedit.sidecar.takes import FrameReady, FrameRequest, SourceUpload, TakeSettings, chunk_of
from liveedit.sidecar.takes.pixels import PixelFormat


class CausalFakeEditor:
    """Chunks like StreamingEditor (9 frames, then 12; finish() edits a short last chunk), and
    each edited frame depends on every frame pushed so far and on the whole of its chunk, as the
    real model's do: frame j of a chunk is the source XOR a byte of a running hash (plus it, for
float frames)."""

    instances = 0

    def __init__(self, instruction: str, seed: int):
        CausalFakeEditor.instances += 1
        self._hash = hashlib.blake2b(f"{instruction}|{seed}".encode(), digest_size=32)
        self._chunk: list[np.ndarray] = []
        self._chunks_done = 0
        self.stats: list = []

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        # the editor's frame types (sidecar/takes/pixels.py: frame_dtype)
        assert frame.dtype in (np.uint8, np.uint16, np.float32) and frame.ndim == 3 and frame.shape[2] == 3
        self._chunk.append(frame)
        if len(self._chunk) < (9 if self._chunks_done == 0 else 12):
            return []
        return self._run()

    def finish(self) -> list[np.ndarray]:
        return self._run() if self._chunk else []

    def _run(self) -> list[np.ndarray]:
        for frame in self._chunk:
            self._hash.update(frame.tobytes())
        digest = self._hash.copy().digest()
        out = [_change(frame, digest[j] | 1) for j, frame in enumerate(self._chunk)]
        self._chunk = []
        self._chunks_done += 1
        return out


def _change(frame: np.ndarray, byte: int) -> np.ndarray:
    """A change of every value, in the frame's own type (as the editor delivers)."""
    if frame.dtype == np.float32:
        return frame + np.float32(byte / 256)
    return frame ^ frame.dtype.type(byte)


def fake_factory(settings: TakeSettings):
    tag = f"{settings.instruction}|q={settings.quality}|m={settings.mask_cache}"
    return lambda models, instruction, seed: CausalFakeEditor(tag, seed)


def reference_edit(settings: TakeSettings, sources: list[np.ndarray], frame: int) -> np.ndarray:
    """The definition of a take frame: the causal stream from frame 0 through frame's chunk
    (or the clip's end), run in one go."""
    last = min(chunk_of(frame)[2], len(sources) - 1)
    editor = fake_factory(settings)(None, settings.instruction, settings.seed)
    out: list[np.ndarray] = []
    for source in sources[: last + 1]:
        out += editor.push(source)
    out += editor.finish()
    return out[frame]


def frame_hash(data: bytes, width: int, height: int, fmt: PixelFormat, premultiplied: bool = False) -> bytes:
    h = hashlib.blake2b(data, digest_size=16)
    h.update(f"{width}x{height}x{fmt.depth}x{fmt.channels}".encode())
    if premultiplied:  # the plug-in hashes it too (images.cpp, hashHeader)
        h.update(b"premultiplied")
    return h.digest()


class HostClip:
    """Source frames as a host holds them: RGBA (or RGB) at a depth, rows bottom-up."""

    premultiplied = False

    @classmethod
    def of_pixels(cls, pixels: list[np.ndarray], premultiplied: bool = False) -> "HostClip":
        """A clip of host pixels as they are: [H, W, 3 or 4] top-down, uint8, uint16 or float32."""
        clip = cls.__new__(cls)
        depth = {np.dtype(np.uint8): "u8", np.dtype(np.uint16): "u16", np.dtype(np.float32): "f32"}[pixels[0].dtype]
        clip.fmt = PixelFormat(depth, pixels[0].shape[2])
        clip.premultiplied = premultiplied
        clip.frames = [np.ascontiguousarray(p[::-1]) for p in pixels]
        clip.height, clip.width = pixels[0].shape[:2]
        return clip

    def __init__(self, rgb_frames: list[np.ndarray], fmt: PixelFormat = PixelFormat("u8", 4), alpha=None):
        self.fmt = fmt
        self.frames = []
        for n, rgb in enumerate(rgb_frames):
            h, w = rgb.shape[:2]
            values = take_pixels.output_lut(fmt.depth, "display")[rgb]
            pixels = np.empty((h, w, fmt.channels), dtype=fmt.dtype)
            pixels[..., :3] = values
            if fmt.channels == 4:
                pixels[..., 3] = take_pixels.DEPTH_MAX[fmt.depth] if alpha is None else alpha[n]
            self.frames.append(np.ascontiguousarray(pixels[::-1]))  # bottom-up rows
        self.height, self.width = rgb_frames[0].shape[:2]

    def data(self, i: int) -> bytes:
        return self.frames[i].tobytes()

    def hash(self, i: int) -> bytes:
        return frame_hash(self.data(i), self.width, self.height, self.fmt, self.premultiplied)

    def upload(self, i: int) -> SourceUpload:
        return SourceUpload(self.hash(i), self.width, self.height, self.fmt, self.premultiplied,
                            memoryview(self.data(i)))


def random_frames(count: int, height: int = 48, width: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


async def render_frame(service, settings: TakeSettings, clip: HostClip, frame: int, *, window=None,
                       fmt: PixelFormat | None = None, wait: float = 2.0, rounds: int = 200) -> np.ndarray:
    """One frame through TakeService the way the plug-in asks for it; [h, w, c] rows bottom-up."""
    fmt = fmt or clip.fmt
    last = min(chunk_of(frame)[2], len(clip.frames) - 1)
    request = FrameRequest(settings, frame, tuple(clip.hash(i) for i in range(last + 1)), fmt,
                           window or (0, 0, clip.width, clip.height), wait)
    for _ in range(rounds):
        answer = await service.frame(request)
        if isinstance(answer, FrameReady):
            return take_pixels.expand_output(answer.meta, take_pixels.payload_bytes(answer.parts))
        if answer.need:
            await service.add_sources(settings, [clip.upload(i) for i in answer.need])
    raise AssertionError(f"frame {frame} was not ready after {rounds} rounds")


def run_take_service(test, *, models=None, timeout: float = 120, **options):
    """`test(service)` on a TakeService over a real GpuWorker (holding `models`; None for fake
    editor factories); `options` are TakeService's. The service and worker are closed after."""
    import asyncio

    from liveedit.sidecar.takes import TakeService
    from liveedit.sidecar.worker import GpuWorker

    async def main():
        worker = GpuWorker(models)
        service = TakeService(worker, **options)
        try:
            return await asyncio.wait_for(test(service), timeout)
        finally:
            await service.close()
            await worker.close(drain=False)

    return asyncio.run(main())
