"""Every engine setting as plain data: model shapes, the sampler, the mask cache and the
speed switches. Importing this module loads neither torch nor diffusers, so the CLI, the
sidecar's job model and the clients can build and check settings without the 2 s torch
import; the modules that run the model take these objects as they are.

Which shapes go together, by preset name, is engine/presets.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

from liveedit.errors import InputError

# -- the transformer (engine/transformer.py) ---------------------------------------------

LATENT_CHANNELS = 16


@dataclass(frozen=True)
class TransformerConfig:
    dim: int
    ffn_dim: int
    num_heads: int
    num_layers: int
    text_dim: int
    freq_dim: int
    latent_height: int  # latent rows the model works at (pixels / 8)
    latent_width: int
    in_channels: int = 2 * LATENT_CHANNELS  # noisy latent + source latent
    out_channels: int = LATENT_CHANNELS
    patch_size: tuple[int, int, int] = (1, 2, 2)
    eps: float = 1e-6
    rope_max_positions: int = 1024  # rows of the RoPE table per axis (Wan's value)
    rope_theta: float = 10000.0
    # How a stream runs this model (Self-Forcing's num_frame_per_block / local_attn_size /
    # sink_size); LatentStream may override the window and sinks per stream.
    chunk_frames: int = 3
    window_frames: int = 21
    sink_frames: int = 0

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def tokens_per_frame(self) -> int:
        _, ph, pw = self.patch_size
        return (self.latent_height // ph) * (self.latent_width // pw)


TRANSFORMER_PRESETS: dict[str, TransformerConfig] = {
    # Wan2.1-T2V-1.3B at 480x832 with LiveEdit's widened patch embedding.
    "liveedit-1.3b": TransformerConfig(
        dim=1536, ffn_dim=8960, num_heads=12, num_layers=30, text_dim=4096, freq_dim=256,
        latent_height=60, latent_width=104,
    ),
    # Random weights on a CPU: every code path, tiny shapes (pixels 64x112).
    "tiny": TransformerConfig(
        dim=64, ffn_dim=128, num_heads=2, num_layers=2, text_dim=32, freq_dim=32,
        latent_height=8, latent_width=14,
    ),
}

# -- the Wan VAE (engine/vae.py) ---------------------------------------------------------

# The Wan VAE compresses 8x in space and 4x in time (first frame alone).
VAE_SPATIAL_STRIDE = 8
VAE_TEMPORAL_STRIDE = 4

# The 16 per-channel statistics Wan, Self-Forcing, LiveEdit and diffusers all use to
# normalise latents: z = (mu - mean) / std.
WAN_LATENTS_MEAN = [
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
]  # fmt: skip
WAN_LATENTS_STD = [
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160,
]  # fmt: skip

# AutoencoderKLWan keyword arguments. Both presets keep Wan2.1's layout (4 levels, 2
# residual blocks, time downsampling on the last two levels) because diffusers' converter
# for the original `Wan2.1_VAE.pth` names is written for exactly that layout; "tiny" only
# narrows the channels so CPU tests run in milliseconds.
_WAN21_LAYOUT = dict(
    z_dim=16,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    attn_scales=[],
    temperal_downsample=[False, True, True],
    dropout=0.0,
    latents_mean=WAN_LATENTS_MEAN,
    latents_std=WAN_LATENTS_STD,
)
VAE_PRESETS: dict[str, dict] = {
    "liveedit-1.3b": dict(base_dim=96, **_WAN21_LAYOUT),
    "tiny": dict(base_dim=8, **_WAN21_LAYOUT),
}

# -- the tiny preview VAE (engine/taehv.py) ----------------------------------------------


@dataclass(frozen=True)
class TAEHVConfig:
    latent_channels: int = 16
    encoder_time_downscale: tuple[bool, bool, bool] = (True, True, False)
    decoder_time_upscale: tuple[bool, bool, bool] = (False, True, True)
    decoder_space_upscale: tuple[bool, bool, bool] = (True, True, True)
    encoder_width: int = 64
    decoder_widths: tuple[int, int, int, int] = (256, 128, 64, 64)


TAEHV_PRESETS: dict[str, TAEHVConfig] = {
    "taew2_1": TAEHVConfig(),  # the released taew2_1.pth
    "tiny": TAEHVConfig(encoder_width=8, decoder_widths=(16, 8, 8, 8)),  # CPU tests
}

# -- the text encoder (engine/text.py) ---------------------------------------------------


@dataclass(frozen=True)
class TextEncoderConfig:
    vocab_size: int
    d_model: int
    d_kv: int
    d_ff: int
    num_layers: int
    num_heads: int
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    text_len: int = 512
    # "umt5": the google/umt5-xxl tokenizer files; "bytes": UTF-8 bytes, no files (tiny preset).
    tokenizer: str = "umt5"

    @property
    def text_dim(self) -> int:
        return self.d_model


TEXT_ENCODER_PRESETS: dict[str, TextEncoderConfig] = {
    # umT5-XXL encoder as in Wan's `umt5_xxl(encoder_only=True)`.
    "liveedit-1.3b": TextEncoderConfig(
        vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64
    ),
    "tiny": TextEncoderConfig(
        vocab_size=256 + 3, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, tokenizer="bytes"
    ),
}

# -- the sampler (engine/sampler.py) -----------------------------------------------------


@dataclass(frozen=True)
class SamplerConfig:
    """The few-step schedule. σ for a timestep t is looked up on the training scheduler's
    grid (shift 5, 1000 steps), nearest grid timestep, as the released scheduler does; for
    the raw steps that is within 2e-3 of t/1000 (σ = 0.2516 at t = 250)."""

    # Released list, used raw by LiveEdit's inference (σ = 1, .75, .5, .25).
    denoising_steps: tuple[float, ...] = (1000.0, 750.0, 500.0, 250.0)
    # True maps each step through the shifted grid as Self-Forcing's training does
    # (≈ [1000, 937.5, 833.3, 625]); the checkpoint may have been trained on those.
    warp: bool = False
    shift: float = 5.0
    num_train_timesteps: int = 1000
    # Timestep of the clean refresh pass that writes a chunk's history K/V (0 = clean).
    context_noise: float = 0.0

    def __post_init__(self):
        steps = self.denoising_steps
        if not steps or any(not 0 < s <= self.num_train_timesteps for s in steps):
            raise InputError(f"denoising steps must be in (0, {self.num_train_timesteps}], got {list(steps)}")
        if list(steps) != sorted(steps, reverse=True):
            raise InputError(f"denoising steps must decrease, got {list(steps)}")
        if not 0 <= self.context_noise < self.num_train_timesteps:
            raise InputError(f"context_noise must be in [0, {self.num_train_timesteps}), got {self.context_noise}")

    @cached_property
    def grid(self):
        """The training scheduler's (timesteps, sigmas), float64 tensors: σ = shift·s / (1 + (shift−1)·s)
        with s = linspace(1, 0, N+1)[:-1] (sigma_min 0, the extra step dropped)."""
        # torch here, not at the top: its linspace is the scheduler's, value for value (a
        # Python copy differs in the last bit), and only a running model asks for σ.
        import torch

        s = torch.linspace(1.0, 0.0, self.num_train_timesteps + 1, dtype=torch.float64)[:-1]
        sigmas = self.shift * s / (1 + (self.shift - 1) * s)
        return sigmas * self.num_train_timesteps, sigmas

    @cached_property
    def timesteps(self) -> tuple[float, ...]:
        """The timesteps the model is run at, one per denoising step."""
        if not self.warp:
            return tuple(float(s) for s in self.denoising_steps)
        grid_t = self.grid[0]
        # Step s sits at grid index N − round(s); a step that rounds to 0 is past the grid's end: t = 0.
        return tuple(float(grid_t[self.num_train_timesteps - round(s)]) if round(s) > 0 else 0.0
                     for s in self.denoising_steps)

    def sigma(self, t: float) -> float:
        """σ of the grid timestep nearest to t (σ = 0 for t = 0: the clean refresh)."""
        if t <= 0:
            return 0.0
        grid_t, sigmas = self.grid
        return float(sigmas[(grid_t - t).abs().argmin()])


# -- the mask cache (engine/mask_cache.py) -----------------------------------------------

MASK_CACHE_SUBLAYERS = ("self_attn", "ffn")
# Which tokens the pruned steps compute (engine/mask_cache.py): the release's rule, or
# exactly keep_ratio of each frame's tokens.
MASK_CACHE_RULES = ("reference", "fixed")
# The reference's keep ratio (configs/wan_mm-token-pruning.yaml): the CLI's bare
# --mask-cache and the job model's empty mask-cache settings mean this.
DEFAULT_KEEP_RATIO = 0.3


@dataclass(frozen=True)
class MaskCacheConfig:
    """The reference's token-pruning settings (configs/wan_mm-token-pruning.yaml)."""

    keep_ratio: float = DEFAULT_KEEP_RATIO  # share of each frame's tokens computed at pruned steps
    pruned_steps: tuple[int, ...] = (1, 2)  # denoising-step indices (0 = first step)
    pruned_sublayers: tuple[str, ...] = ("self_attn",)  # add "ffn" to prune the FFN too
    save_masks: bool = False  # keep each chunk's token mask for LatentStream.token_masks()
    rule: str = "reference"  # "reference" (the release's selection) or "fixed" (exactly K per frame)
    bucket: int = 32  # reference rule: kept tokens per frame rounded up to a multiple of this (0: exact)

    def __post_init__(self):
        if self.rule not in MASK_CACHE_RULES:
            raise InputError(f"mask cache rule must be one of {', '.join(MASK_CACHE_RULES)}, got {self.rule!r}")
        if isinstance(self.bucket, bool) or not isinstance(self.bucket, int) or self.bucket < 0:
            raise InputError(f"mask cache bucket must be a whole number of tokens >= 0, got {self.bucket!r}")
        if not 0.0 <= self.keep_ratio <= 1.0:
            raise InputError(f"mask cache keep_ratio must be in [0, 1], got {self.keep_ratio}")
        steps = tuple(sorted(set(int(s) for s in self.pruned_steps)))
        if not steps:
            raise InputError("mask cache pruned_steps is empty; to run without pruning pass mask_cache=None")
        if any(s < 1 for s in steps):
            raise InputError(
                f"mask cache pruned_steps must be step indices >= 1, got {list(self.pruned_steps)}: step 0 "
                "always runs every token, its outputs are what pruned steps reuse"
            )
        layers = tuple(dict.fromkeys(self.pruned_sublayers))
        if not layers or any(s not in MASK_CACHE_SUBLAYERS for s in layers):
            raise InputError(
                f"mask cache pruned_sublayers must be some of {list(MASK_CACHE_SUBLAYERS)}, "
                f"got {list(self.pruned_sublayers)}"
            )
        object.__setattr__(self, "pruned_steps", steps)
        object.__setattr__(self, "pruned_sublayers", layers)

    def tokens_kept(self, tokens_per_frame: int) -> int:
        """K: tokens per latent frame computed at a pruned step by the fixed rule (the
        reference rule's count depends on the picture and is at most about this)."""
        return tokens_kept(self.keep_ratio, tokens_per_frame)


def tokens_kept(keep_ratio: float, tokens_per_frame: int) -> int:
    """K = round(keep_ratio · T), at least 1 for any positive ratio."""
    k = round(keep_ratio * tokens_per_frame)
    return max(k, 1) if keep_ratio > 0 else 0


# -- detail delivery (engine/detail.py) --------------------------------------------------
# How an edited picture is delivered at the source's size and precision. The model edits a
# 480x832, 8-bit picture; scaling that up to a 1080p or UHD, 10-bit source softens every
# edited segment and puts 8-bit steps in it. The modes:
# - "transfer" (default): output = source + upscale(edited - source as the model saw it), in
#   float: the edit's change at the source's size and precision, the source's own detail and
#   code values kept where the edit changed nothing;
# - "masked": the same change weighted by a soft change mask: where the edited picture differs
#   from what the model saw by no more than `threshold` (the VAE's round-trip error, not an
#   edit) the source passes through untouched; the mask reaches 1 at twice the threshold and
#   fades out over `softness` model pixels around what changed;
# - "off": the model picture scaled up to the source size, 8-bit (before detail delivery).

DETAIL_MODES = ("transfer", "masked", "off")
DEFAULT_MODE = "transfer"
# A starting point, not a measurement: the Wan VAE's round-trip error on natural video is
# about 0.02-0.03 of full scale (RMS), and the mask compares a 3x3 mean of each pixel's
# largest channel difference against the threshold. Tune per shot with --detail-threshold.
DEFAULT_THRESHOLD = 0.05
DEFAULT_SOFTNESS = 8  # model pixels: one latent cell of the released model
MAX_SOFTNESS = 64


@dataclass(frozen=True)
class DetailConfig:
    mode: str = DEFAULT_MODE
    threshold: float = DEFAULT_THRESHOLD  # masked: changes up to this (0..1 of full scale) are not edits
    softness: int = DEFAULT_SOFTNESS  # masked: the mask fades out over this many model pixels

    def __post_init__(self):
        if self.mode not in DETAIL_MODES:
            raise InputError(f"detail mode {self.mode!r} is not one of {', '.join(DETAIL_MODES)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not 0.0 < float(self.threshold) <= 0.5:
            raise InputError(f"detail threshold {self.threshold!r} must be a number above 0 and at most 0.5 "
                             "(a share of full scale: 0.05 is about 13 of 255 code values)")
        if isinstance(self.softness, bool) or not isinstance(self.softness, int) \
                or not 0 <= self.softness <= MAX_SOFTNESS:
            raise InputError(f"detail softness {self.softness!r} must be a whole number of model pixels "
                             f"from 0 to {MAX_SOFTNESS}")
        object.__setattr__(self, "threshold", float(self.threshold))

    @property
    def delivers(self) -> bool:
        """False for "off": the model picture is scaled up as it is."""
        return self.mode != "off"

    def pixel_settings(self) -> dict:
        """What decides the delivered pixels (the threshold and softness only matter when masked)."""
        if self.mode == "masked":
            return {"mode": self.mode, "threshold": self.threshold, "softness": self.softness}
        return {"mode": self.mode}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object, where: str = "detail") -> "DetailConfig":
        """The wire form: {"mode": ..., "threshold": ..., "softness": ...}; absent keys take the defaults."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InputError(f'{where} must be an object like {{"mode": "masked", "threshold": 0.05}}')
        unknown = sorted(set(data) - {"mode", "threshold", "softness"})
        if unknown:
            raise InputError(f"{where} has unknown fields {', '.join(unknown)}; use mode, threshold, softness")
        try:
            return cls(**data)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None


# -- speed switches (engine/speed.py applies them) ---------------------------------------


@dataclass(frozen=True)
class SpeedOptions:
    """Speed switches of one loaded model, each measured in docs/benchmarks.md and checked
    against the plain path. ``engine.speed.apply_speed_options`` sets them on the model's
    modules and records them on its EditorModels, where streams read them."""

    fuse_elementwise: bool = True
    cudnn_benchmark: bool = True  # torch's own switch, so process-wide
    channels_last_vae: bool = True
    lean_vae_convs: bool = True
    cuda_graphs: bool = True  # replay steady-state chunk forwards (full window) from CUDA graphs
    fused_vae_norms: bool = True  # one pass for each RMS norm + SiLU pair of the VAE
    overlap_vae: bool = True  # VAE encode/decode on their own CUDA stream, beside the refresh forward

    @classmethod
    def plain(cls) -> "SpeedOptions":
        """The reference's choices: eager, no autotuning, default layouts."""
        return cls(False, False, False, False, False, False, False)

    @classmethod
    def for_device(cls, device) -> "SpeedOptions":
        """All on for a CUDA device (a torch.device or its name), all off elsewhere."""
        kind = getattr(device, "type", None) or str(device).split(":")[0]
        return cls() if kind == "cuda" else cls.plain()
