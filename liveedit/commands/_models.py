"""The model options every command shares (--model, --weights, --device, --dtype, --ema)
and the one way they turn into loaded EditorModels. torch and the model code are imported
when models load, never while the parser is built (`liveedit --help` stays fast)."""

from __future__ import annotations

import logging
import sys

from liveedit.engine.config import SpeedOptions
from liveedit.engine.presets import get_preset

log = logging.getLogger("liveedit")

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def add_model_arguments(parser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default="liveedit-1.3b",
                   help="liveedit-1.3b (released weights) or tiny (RANDOM weights: tests the pipeline, edits nothing)")
    g.add_argument("--weights", metavar="DIR", help="folder with the weight files instead of the Hugging Face cache")
    g.add_argument("--ema", action="store_true", help="use the checkpoint's EMA generator")
    g.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    g.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default bf16 on GPU, fp32 on CPU")
    g.add_argument("--numerics", choices=["reference", "fast"], default="reference",
                   help="reference (default): bf16 as the model was trained; fast: FP8 self-attention on Hopper "
                        "GPUs (about 12%% faster transformer, frames differ from the reference numerics by ~35-43 dB "
                        "PSNR; docs/benchmarks.md)")


def load_models(args):
    """EditorModels for the parsed arguments. Random weights are announced on stderr."""
    import torch

    from liveedit.engine.editor import EditorModels
    from liveedit.engine.speed import apply_speed_options

    preset = get_preset(args.model)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = getattr(torch, DTYPES[args.dtype or ("bf16" if device.type == "cuda" else "fp32")])
    if preset.random_only:
        models = EditorModels.random(preset, device=device, dtype=dtype)
    else:
        from liveedit.sidecar.weight_files import load_editor_models

        models = load_editor_models(preset, weights_dir=args.weights, device=device, dtype=dtype, use_ema=args.ema)
    apply_speed_options(models, SpeedOptions.for_device(device))
    from liveedit.engine import fast_attention

    if getattr(args, "numerics", "reference") == "fast":
        ok, why = fast_attention.available(device)
        if not ok:
            from liveedit.errors import InputError

            raise InputError(f"--numerics fast needs FP8 attention, which is not available here: {why}; "
                             "drop --numerics fast to run the reference numerics")
        print("liveedit: fast numerics: FP8 self-attention (frames differ slightly from the reference numerics)",
              file=sys.stderr)
    fast_attention.set_numerics(getattr(args, "numerics", "reference"))
    if models.random_weights:
        print(f"liveedit: WARNING: {models.description}", file=sys.stderr)
    log.info("model: %s on %s (%s)", models.description, device, dtype)
    return models
