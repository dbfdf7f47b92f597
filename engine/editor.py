"""StreamingEditor: source frames in, edited frames out, one chunk at a time.

The released LiveEdit code encodes the whole clip, streams only the transformer and
decodes at the end. Here every stage streams: 9 source frames (first chunk) or 12
(later chunks) are VAE-encoded into 3 latent frames, edited by the causal
transformer with its KV cache, and decoded back to 9 or 12 frames straight away, so
the first edited frame leaves while later source frames are still arriving.

Picture size: the model works at one size (480x832 for the released model). Frames of
any other size are scaled to fit inside it without distortion and the rest is padded
by repeating the edge pixels ("fit"); the edited picture is cropped back out and scaled
to the source size. "stretch" reproduces the released code's behaviour (resize to the
model size, aspect ratio ignored). engine/picture.py holds that mapping.

Precision: frames may be uint8, uint16 (10/12-bit sources) or float RGB; the model sees
them at 8 bits. With a ``delivery`` hook (engine/detail.py's SourceDetail, built by
sidecar/delivery.py) the edited picture is not scaled up: the hook gets it with the
model picture the editor built from the same frames and the full-precision frames
themselves, and returns the frames to hand out (same size and type as the source).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from liveedit.errors import InputError
from liveedit.engine.config import TAEHV_PRESETS, VAE_TEMPORAL_STRIDE, MaskCacheConfig, SamplerConfig, SpeedOptions
from liveedit.engine.picture import FrameMapping, Placement, place, resize, to_model_picture
from liveedit.engine.presets import Preset
from liveedit.engine.stream import LatentStream

CHUNK_LATENT_FRAMES = 3
FIRST_CHUNK_FRAMES = 1 + VAE_TEMPORAL_STRIDE * (CHUNK_LATENT_FRAMES - 1)  # 9
CHUNK_FRAMES = VAE_TEMPORAL_STRIDE * CHUNK_LATENT_FRAMES  # 12


@dataclass
class EditorModels:
    """Everything a stream needs, loaded once and shared by every stream."""

    preset: Preset
    transformer: torch.nn.Module
    vae: torch.nn.Module  # diffusers AutoencoderKLWan
    text_encoder: object  # liveedit.engine.text.TextEncoder
    description: str
    random_weights: bool
    checkpoint_hash: str | None = None
    tiny_vae: torch.nn.Module | None = None
    # The speed switches in effect (engine/speed.py's apply_speed_options sets them on the
    # modules and records them here); streams read cuda_graphs and overlap_vae from here.
    speed: SpeedOptions = field(default_factory=SpeedOptions.plain)

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    @classmethod
    def random(cls, preset: Preset, *, seed: int = 0, device="cpu", dtype=torch.float32) -> "EditorModels":
        """Random weights of the preset's shapes. They exercise every code path and
        give speed figures, but they do not edit anything: the output is noise-like."""
        from liveedit.engine.taehv import TAEHV
        from liveedit.engine.text import TextEncoder
        from liveedit.engine.transformer import LiveEditTransformer
        from liveedit.engine.vae import build_vae

        torch.manual_seed(seed)
        transformer = LiveEditTransformer(preset.transformer)
        vae = build_vae(preset.vae)
        tiny_vae = TAEHV(TAEHV_PRESETS["tiny" if preset.random_only else "taew2_1"]).eval()
        # Random decoders put out values near 0, which the preview range remapping (2q - 1,
        # clamped) turns into solid black: centre the last layer on the middle of that range
        # (q = 0.75 is engine pixel 0.5) and stretch it, so random-weight previews show pictures
        # that depend on the latents, like the full VAE's.
        with torch.no_grad():
            tiny_vae.decoder[-1].weight *= 8
            tiny_vae.decoder[-1].bias.fill_(0.75)
        text_encoder = TextEncoder.random(preset.text_encoder, seed=seed)
        transformer.to(device=device, dtype=dtype).eval()
        vae.to(device=device, dtype=dtype).eval()
        tiny_vae.to(device=device, dtype=dtype)
        text_encoder.to(device=device, dtype=dtype)
        return cls(
            preset=preset,
            transformer=transformer,
            vae=vae,
            text_encoder=text_encoder,
            description=f"{preset.name} with RANDOM weights (not a trained model: output is not a real edit)",
            random_weights=True,
            tiny_vae=tiny_vae,
        )


@dataclass
class ChunkStats:
    """One chunk's stage times. On a GPU they are the GPU time between CUDA events queued
    around each stage; the VAE runs on its own stream beside the transformer, so the three
    do not add up to the chunk's wall time."""

    index: int
    source_frames: int  # real frames in this chunk (padding excluded)
    latent_frames: int
    encode_seconds: float
    transformer_seconds: float
    decode_seconds: float
    reused_token_fraction: float | None = None

    @property
    def total_seconds(self) -> float:
        return self.encode_seconds + self.transformer_seconds + self.decode_seconds


class _Span:
    """How long work queued between two points took: CUDA events on the current stream
    (read once, after the work is done, so timing never stalls the queue), or host time on
    the CPU, where the work runs as it is called."""

    def __init__(self, device: torch.device):
        self._events = device.type == "cuda"
        if self._events:
            self._begin, self._end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            self._begin.record()
        else:
            self._begin_s = time.perf_counter()

    def end(self) -> "_Span":
        if self._events:
            self._end.record()
        else:
            self._seconds = time.perf_counter() - self._begin_s
        return self

    def seconds(self) -> float:
        if not self._events:
            return self._seconds
        self._end.synchronize()
        return self._begin.elapsed_time(self._end) / 1000


# (edited, seen, source) -> delivered frames; see engine/detail.py SourceDetail.
# edited, seen: float [n, 3, h, w], the source's rectangle of the model pictures;
# source: the frames as pushed, [n, H, W, 3] on the model's device.
Delivery = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
FRAME_DTYPES = (np.uint8, np.uint16, np.float32)


class StreamingEditor:
    """Edits one stream of frames with one instruction (changeable mid-stream)."""

    def __init__(
        self,
        models: EditorModels,
        *,
        instruction: str,
        seed: int = 0,
        sampler: SamplerConfig | None = None,
        frame_mapping: FrameMapping = "fit",
        window_frames: int | None = None,
        sink_frames: int = 0,
        mask_cache: MaskCacheConfig | None = None,  # None = off; MaskCacheConfig() = reference settings
        preview_vae: bool = False,  # True: the tiny VAE (TAEHV) both ways, for fast previews
        on_frames=None,  # called with each latent's edited frames as soon as they are decoded
        delivery: Delivery | None = None,  # None: the edited picture scaled up, 8-bit (detail "off")
    ):
        if frame_mapping not in ("fit", "stretch"):
            raise InputError(f"frame_mapping must be 'fit' or 'stretch', not {frame_mapping!r}")
        if preview_vae and models.tiny_vae is None:
            raise InputError(
                "the preview VAE (taew2_1.pth) is not loaded; put taew2_1.pth in the --weights folder "
                "or preview with the full VAE"
            )
        self.models = models
        self.on_frames = on_frames
        self.delivery = delivery
        self.preview_vae = preview_vae
        self.frame_mapping = frame_mapping
        self.sampler = sampler or SamplerConfig()
        self._stream = LatentStream(
            models.transformer,
            models.preset.transformer,
            self.sampler,
            device=models.device,
            dtype=models.dtype,
            window_frames=window_frames,
            sink_frames=sink_frames,
            mask_cache=mask_cache,
            defer_refresh=True,  # edited frames leave before the chunk's refresh forward runs
            cuda_graphs=models.speed.cuda_graphs,
        )
        self.stats: list[ChunkStats] = []
        self.reset(instruction=instruction, seed=seed)

    # -- stream control -------------------------------------------------
    def reset(self, instruction: str | None = None, seed: int | None = None) -> None:
        """Start a new stream: caches cleared, frame counting from zero."""
        from liveedit.engine.taehv import StreamingTAEHV
        from liveedit.engine.vae import StreamingWanVAE

        if instruction is not None:
            self.instruction = instruction
        if seed is not None:
            self.seed = seed
        self._vae = StreamingTAEHV(self.models.tiny_vae) if self.preview_vae else StreamingWanVAE(self.models.vae)
        # VAE work on its own CUDA stream (SpeedOptions.overlap_vae): a chunk's decode then runs
        # alongside its clean refresh forward, and the next chunk's encode alongside it too,
        # instead of one after the other. Same kernels on the same inputs: same frames.
        cuda = self.models.device.type == "cuda"
        overlap = cuda and self.models.speed.overlap_vae
        self._vae_stream = torch.cuda.Stream(self.models.device) if overlap else None
        self._pending: list[np.ndarray] = []  # this chunk's frames not yet encoded
        self._latents: list[torch.Tensor] = []  # this chunk's source latents so far
        self._seen: list[torch.Tensor] = []  # with a delivery hook: this chunk's model pictures (crops)
        self._sources: list[torch.Tensor] = []  # ... and its frames as pushed, on the device
        self._chunk_in = 0  # this chunk's frames pushed so far
        self._encode_spans: list[_Span] = []  # this chunk's encodes
        self._frame_size: tuple[int, int] | None = None
        self._chunks_done = 0
        self.frames_in = 0
        self.frames_out = 0
        self.stats = []
        self._stream.start(self._encode_instruction(self.instruction), seed=self.seed)

    def set_instruction(self, instruction: str) -> None:
        """Change the instruction from the next chunk on; the history stays."""
        self.instruction = instruction
        self._stream.set_context(self._encode_instruction(instruction))

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        """Add one source frame. Returns the edited frames of a chunk when this frame
        completes one (9 frames for the first chunk, 12 after), else an empty list.
        Eager on purpose: a push that is never iterated must still happen.

        Frames are VAE-encoded as soon as they form a group the causal encoder takes (a
        stream's first frame alone, then 4 at a time), so when a chunk's last frame arrives
        only its last group is left to encode: less latency, same latents."""
        self._check_frame(frame)
        self._pending.append(frame)
        self.frames_in += 1
        self._chunk_in += 1
        if len(self._pending) == self._group_frames():
            self._encode_pending()
        if self._chunk_in < self._chunk_frames():
            return []
        return self._run_chunk(real=self._chunk_in)

    def finish(self) -> list[np.ndarray]:
        """End of stream: edit the last, partial chunk. Output count equals input count."""
        if not self._chunk_in:
            return []
        if self._pending:
            # The encoder takes whole groups: pad the last one by repeating its last frame;
            # the padded frames are dropped after decoding.
            self._pending += [self._pending[-1]] * (self._group_frames() - len(self._pending))
            self._encode_pending()
        return self._run_chunk(real=self._chunk_in)

    @property
    def placement(self) -> Placement:
        """Where the source picture sits inside the model picture (after the first frame)."""
        return self._placement

    def token_masks(self) -> list:
        """Per chunk, the mask cache's token mask (uint8 [F, h, w], 255 = computed), when
        the stream runs with MaskCacheConfig(save_masks=True)."""
        return self._stream.token_masks()

    def edit(self, frames) -> Iterator[np.ndarray]:
        """Convenience: push every frame of an iterable, then finish."""
        for frame in frames:
            yield from self.push(frame)
        yield from self.finish()

    # -- internals --------------------------------------------------------
    def _chunk_frames(self) -> int:
        return FIRST_CHUNK_FRAMES if self._chunks_done == 0 else CHUNK_FRAMES

    def _group_frames(self) -> int:
        """Frames the causal encoder takes next: the stream's very first frame alone, then 4."""
        return 1 if self._chunks_done == 0 and not self._latents else VAE_TEMPORAL_STRIDE

    def _on_vae_stream(self):
        """Where VAE work is queued: its own CUDA stream when overlapping, else the current one."""
        return torch.cuda.stream(self._vae_stream) if self._vae_stream is not None else contextlib.nullcontext()

    @torch.no_grad()
    def _encode_pending(self) -> None:
        with self._on_vae_stream():
            span = _Span(self.models.device)
            source = self._upload(self._pending)
            model_in = self._to_model(source)
            self._latents.append(self._vae.encode(model_in))
            if self.delivery is not None:
                self._sources.append(source)
                # What the model saw of each frame, copied: the VAE may reuse its input's memory.
                self._seen.append(self._placement.crop(model_in[0].transpose(0, 1)).to(torch.float32, copy=True))
            self._encode_spans.append(span.end())
        self._pending = []

    def _encode_instruction(self, instruction: str) -> torch.Tensor:
        context = self.models.text_encoder.encode(instruction)
        return context.to(device=self.models.device, dtype=self.models.dtype)

    def _check_frame(self, frame: np.ndarray) -> None:
        if not isinstance(frame, np.ndarray) or frame.dtype not in FRAME_DTYPES or frame.ndim != 3 \
                or frame.shape[2] != 3:
            shape = getattr(frame, "shape", None)
            dtype = getattr(frame, "dtype", type(frame).__name__)
            raise InputError(
                f"frame {self.frames_in}: expected an RGB array of shape [H, W, 3] (uint8, uint16 or float32), "
                f"got {dtype} {shape}"
            )
        size = frame.shape[:2]
        if self._frame_size is None:
            self._frame_size = size
            self._frame_dtype = frame.dtype
            self._placement = self._place(size)
        elif size != self._frame_size:
            raise InputError(
                f"frame {self.frames_in} is {size[1]}x{size[0]} but this stream started at "
                f"{self._frame_size[1]}x{self._frame_size[0]}; start a new stream for a new size"
            )
        elif frame.dtype != self._frame_dtype:
            raise InputError(
                f"frame {self.frames_in} is {frame.dtype} but this stream started with {self._frame_dtype} "
                "frames; keep one type per stream"
            )

    def _place(self, size: tuple[int, int]) -> Placement:
        return place(size, (self.models.preset.height, self.models.preset.width), self.frame_mapping)

    def _upload(self, frames: list[np.ndarray]) -> torch.Tensor:
        """Frames [T, H, W, 3] as pushed, on the model's device."""
        return torch.from_numpy(np.stack(frames)).to(self.models.device)

    def _to_model(self, frames: torch.Tensor | list[np.ndarray]) -> torch.Tensor:
        """Frames [T, H, W, 3] → float [1, 3, T, h, w] in [0, 1] at the model size. The
        model sees 8 bits: uint16 and float frames are rounded to the nearest 8-bit level."""
        x = frames if isinstance(frames, torch.Tensor) else self._upload(frames)
        dtype = x.dtype
        x = x.permute(0, 3, 1, 2).to(torch.float32)  # [T, 3, H, W]
        if dtype == torch.uint8:
            x = x / 255.0
        else:
            scale = 255.0 / 65535.0 if dtype == torch.uint16 else 255.0
            x = (x * scale).clamp_(0.0, 255.0).round_() / 255.0
        x = to_model_picture(x, self._placement, (self.models.preset.height, self.models.preset.width))
        return x.permute(1, 0, 2, 3).unsqueeze(0).to(self.models.dtype)

    def _from_model(self, video: torch.Tensor) -> torch.Tensor:
        """float [1, 3, T, h, w] in [0, 1] → uint8 [T, H, W, 3] at the source size, on the
        model's device (the download is queued separately, see _download)."""
        x = self._placement.crop(video[0].permute(1, 0, 2, 3).float())  # [T, 3, h, w]
        x = resize(x, self._frame_size)
        return (x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)

    def _deliver(self, video: torch.Tensor, offset: int, count: int) -> torch.Tensor:
        """Frames offset .. offset+count-1 of this chunk through the delivery hook: the
        edited picture with the model picture and the frames it was made from."""
        if count == 0:
            return torch.empty((0, *self._frame_size, 3), dtype=self._sources[0].dtype, device=video.device)
        edited = self._placement.crop(video[0, :, :count].transpose(0, 1).float())
        return self.delivery(edited, _frames(self._seen, offset, count), _frames(self._sources, offset, count))

    def _download(self, frames: torch.Tensor):
        """Queue the copy of frames to the host; returns (host tensor, event to wait
        for, or None when the copy is already done)."""
        if frames.device.type != "cuda":
            return frames, None
        host = torch.empty(frames.shape, dtype=frames.dtype, pin_memory=True)
        host.copy_(frames, non_blocking=True)
        ready = torch.cuda.Event()
        ready.record()
        return host, ready

    @torch.no_grad()
    def _run_chunk(self, real: int) -> list[np.ndarray]:
        """Edit the chunk's encoded latents and decode them one latent at a time, handing
        each latent's frames to ``on_frames`` as soon as they are on the host. Nothing here
        waits on the GPU except for finished frames (timings come from CUDA events)."""
        device = self.models.device
        overlap = self._vae_stream is not None
        if overlap:  # the latents were encoded on the VAE's stream
            main = torch.cuda.current_stream(device)
            main.wait_stream(self._vae_stream)
            for latent in self._latents:
                latent.record_stream(main)
        transformer = _Span(device)
        source_latents = torch.cat(self._latents, dim=2)
        edited_latents = self._stream.edit_chunk(source_latents)
        transformer.end()
        if overlap:
            # The decode waits for nothing but the edited latents; the refresh forward that
            # turns this chunk into history runs meanwhile on the main stream.
            self._vae_stream.wait_stream(main)
            edited_latents.record_stream(self._vae_stream)
        with self._on_vae_stream():
            decode = _Span(device)
        edited: list[np.ndarray] = []
        decoded = 0  # frames of this chunk decoded so far, padding included
        for i in range(edited_latents.shape[2]):
            # One latent at a time: queueing the next decode before handing these frames out
            # gained ~1% throughput on the H100 but cost the first frames ~75 ms of latency
            # (the host's launch time of the queued decode).
            with self._on_vae_stream():
                video = self._vae.decode(edited_latents[:, :, i : i + 1])
                if self.delivery is None:
                    frames = self._from_model(video)
                else:  # the padded frames of a partial last chunk are not delivered
                    frames = self._deliver(video, decoded, max(0, min(video.shape[2], real - decoded)))
                decoded += video.shape[2]
                host, ready = self._download(frames)
            if overlap and i == 0:
                self._stream.refresh_pending()  # main stream, beside the decode just queued
            if ready is not None:
                ready.synchronize()
            # Copied out of the (pinned) download buffer: callers may keep frames for long.
            frames = [frame.copy() for frame in host.numpy()[: real - len(edited)]]
            edited += frames
            if self.on_frames is not None and frames:
                self.on_frames(frames)
        with self._on_vae_stream():
            decode.end()
        self.stats.append(
            ChunkStats(
                index=self._chunks_done,
                source_frames=real,
                latent_frames=source_latents.shape[2],
                encode_seconds=sum(span.seconds() for span in self._encode_spans),
                transformer_seconds=transformer.seconds(),
                decode_seconds=decode.seconds(),
                reused_token_fraction=getattr(self._stream, "last_reused_fraction", None),
            )
        )
        self._chunks_done += 1
        self._latents, self._chunk_in, self._encode_spans = [], 0, []
        self._seen, self._sources = [], []
        self.frames_out += len(edited)
        return edited


def _frames(groups: list[torch.Tensor], offset: int, count: int) -> torch.Tensor:
    """Frames offset .. offset+count-1 of tensors [n_i, ...] taken one after the other (a
    view when they lie in one tensor, as a latent's frames lie in one encode group)."""
    parts, start = [], 0
    for group in groups:
        lo, hi = max(offset - start, 0), min(offset + count - start, group.shape[0])
        if lo < hi:
            parts.append(group[lo:hi])
        start += group.shape[0]
    return parts[0] if len(parts) == 1 else torch.cat(parts)
