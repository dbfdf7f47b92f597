"""The model options every command shares (--model, --weights, --device, --dtype, --ema)
and the one way they turn into loaded EditorModels (sidecar/models.py's ModelSpec, which a Ray
worker loads too). torch and the model code are imported when models load, never while the
parser is built (`liveedit --help` stays fast)."""

from __future__ import annotations

import logging
import sys

from liveedit.sidecar.models import DTYPES

log = logging.getLogger("liveedit")

__all__ = ["DTYPES", "add_model_arguments", "load_models", "model_spec"]


def add_model_arguments(parser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--model", default="liveedit-1.3b",
                   help="liveedit-1.3b (released weights) or tiny (RANDOM weights: tests the pipeline, edits nothing)")
    g.add_argument("--weights", metavar="DIR", help="folder with the weight files instead of the Hugging Face cache")
    g.add_argument("--ema", action="store_true", help="use the checkpoint's EMA generator")
    g.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    g.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="default bf16 on GPU, fp32 on CPU")


def model_spec(args):
    """The parsed model options as a ModelSpec (what a Ray worker loads, too)."""
    from liveedit.sidecar.models import ModelSpec

    return ModelSpec(preset=args.model, weights_dir=args.weights, use_ema=args.ema, device=args.device,
                     dtype=args.dtype)


def load_models(args):
    """EditorModels for the parsed arguments. Random weights are announced on stderr."""
    models = model_spec(args).load()
    if models.random_weights:
        print(f"liveedit: WARNING: {models.description}", file=sys.stderr)
    log.info("model: %s on %s", models.description, models.device)
    return models
