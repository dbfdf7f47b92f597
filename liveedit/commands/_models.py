"""The model options every command shares (--model, --weights, --device, --dtype, --ema)
and the one way they turn into loaded EditorModels (sidecar/models.py's ModelSpec, which a Ray
worker loads too). torch and the model code are imported when models load, never while the
parser is built (`liveedit --help` stays fast)."""

from __future__ import annotations

import logging
import os
import sys

from liveedit.sidecar.models import DTYPES

log = logging.getLogger("liveedit")

__all__ = ["DTYPES", "add_model_arguments", "load_models", "model_spec"]


def add_model_arguments(parser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default="liveedit-1.3b",
                   help="liveedit-1.3b (released weights) or tiny (RANDOM weights: tests the pipeline, edits nothing)")
    g.add_argument("--weights", metavar="DIR", default=os.environ.get("LIVEEDIT_WEIGHTS") or None,
                   help="folder with the weight files instead of the Hugging Face cache "
                        "(default: $LIVEEDIT_WEIGHTS when set)")
    g.add_argument("--ema", action="store_true", help="use the checkpoint's EMA generator")
    g.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    g.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default bf16 on GPU, fp32 on CPU")
    g.add_argument("--numerics", choices=["reference", "fast"], default="reference",
                   help="reference (default): bf16 as the model was trained; fast: FP8 self-attention on Hopper "
                        "GPUs (about 12%% faster transformer, frames differ from the reference numerics by ~35-43 dB "
                        "PSNR; docs/benchmarks.md)")


def check_model_arguments(args) -> None:
    """The model options, checked before anything loads (an unknown preset, a --weights
    folder that is not there), so a typo fails in a second, not after minutes of loading."""
    from liveedit.engine.presets import get_preset

    get_preset(args.model)  # an unknown name raises, naming the presets there are
    if args.weights is not None and not os.path.isdir(os.path.expanduser(args.weights)):
        from liveedit.errors import InputError

        raise InputError(f"--weights {args.weights} is not a folder; give the folder that holds the weight files "
                         "(or unset LIVEEDIT_WEIGHTS)")


def model_spec(args):
    """The parsed model options as a ModelSpec (what a Ray worker loads, too)."""
    from liveedit.sidecar.models import ModelSpec

    return ModelSpec(preset=args.model, weights_dir=args.weights, use_ema=args.ema, device=args.device,
                     dtype=args.dtype)


def load_models(args):
    """EditorModels for the parsed arguments. Random weights are announced on stderr."""
    numerics = getattr(args, "numerics", "reference")
    from liveedit.engine import fast_attention

    if numerics == "fast":  # checked before minutes of loading, on the device the model will use
        ok, why = fast_attention.available(getattr(args, "device", None))
        if not ok:
            from liveedit.errors import InputError

            raise InputError(f"--numerics fast needs FP8 attention, which is not available here: {why}; "
                             "drop --numerics fast to run the reference numerics")
    models = model_spec(args).load()
    if numerics == "fast":
        print("liveedit: fast numerics: FP8 self-attention (frames differ slightly from the reference numerics)",
              file=sys.stderr)
    fast_attention.set_numerics(numerics)
    if models.random_weights:  # said once per run, here; the log line does not repeat it
        print(f"liveedit: WARNING: {models.description}", file=sys.stderr)
        log.info("model: %s on %s", args.model, models.device)
    else:
        log.info("model: %s on %s", models.description, models.device)
    return models
