"""Which models to load, as plain data, and the one way to load them.

The command line's model options (--model, --weights, --ema, --device, --dtype) become a
`ModelSpec`; `load()` turns it into the engine's EditorModels with the speed options of the
device. The spec is small and picklable, so a Ray worker on another machine loads its own
copy of exactly the models the sidecar would (jobs/ray_executor.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from liveedit.errors import InputError

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass(frozen=True)
class ModelSpec:
    preset: str = "liveedit-1.3b"
    weights_dir: str | None = None  # None: the Hugging Face cache
    use_ema: bool = False
    device: str | None = None  # None: cuda when available, else cpu
    dtype: str | None = None  # a DTYPES key; None: bf16 on GPU, fp32 on CPU
    # Random weights of the preset's real shapes with a fixed instruction embedding instead of
    # the text encoder (engine/benchmark.py): speed measurements without weight files.
    benchmark_random: bool = False

    def __post_init__(self):
        from liveedit.engine.presets import get_preset

        get_preset(self.preset)  # an unknown name fails here, with the known ones listed
        if self.dtype is not None and self.dtype not in DTYPES:
            raise InputError(f"dtype {self.dtype!r} is not one of {', '.join(sorted(DTYPES))}")

    def torch_device(self):
        import torch

        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def load(self):
        """EditorModels on `torch_device()`, speed options applied. Random weights say so in
        their description; the caller announces them."""
        import torch

        from liveedit.engine.editor import EditorModels
        from liveedit.engine.presets import get_preset
        from liveedit.engine.config import SpeedOptions
        from liveedit.engine.speed import apply_speed_options

        preset = get_preset(self.preset)
        device = self.torch_device()
        dtype = getattr(torch, DTYPES[self.dtype or ("bf16" if device.type == "cuda" else "fp32")])
        if preset.random_only:
            models = EditorModels.random(preset, device=device, dtype=dtype)
        elif self.benchmark_random:
            from liveedit.engine.benchmark import random_models

            models = random_models(preset, device, dtype)
        else:
            from liveedit.sidecar.weight_files import load_editor_models

            models = load_editor_models(preset, weights_dir=self.weights_dir, device=device, dtype=dtype,
                                        use_ema=self.use_ema)
        apply_speed_options(models, SpeedOptions.for_device(device))
        return models
