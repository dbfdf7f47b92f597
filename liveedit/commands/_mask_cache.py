"""The mask cache options `liveedit edit` and `liveedit render` share (--mask-cache,
--save-masks) and the one line that reports how much it reused."""

from __future__ import annotations

import argparse

from liveedit.engine.config import DEFAULT_KEEP_RATIO, MaskCacheConfig
from liveedit.errors import InputError


def keep_ratio(text: str) -> float:
    """argparse type for --mask-cache: a share of tokens between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a keep ratio: give a number from 0 to 1 (the share of tokens computed on pruned "
            "steps), or nothing for the default; if it is your input file, put --mask-cache after it")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def add_mask_cache_arguments(parser) -> None:
    g = parser.add_argument_group("mask cache (token pruning, off by default)")
    option = g.add_argument("--mask-cache", nargs="?", const=DEFAULT_KEEP_RATIO, default=None, type=keep_ratio,
                            metavar="KEEP_RATIO",
                            help=f"compute only this share of each frame's tokens on denoising steps 1-2, reusing "
                                 f"step 0 for the rest (default {DEFAULT_KEEP_RATIO} when given without a value); "
                                 "faster, slightly different pixels")
    option.looks_like_value = _is_number  # `--mask-cache clip.mov` keeps clip.mov as the input (cli.py)
    g.add_argument("--mask-rule", choices=["reference", "fixed"], default="reference",
                   help="with --mask-cache: which tokens to compute. reference (default): the released code's "
                        "rule (the top share of latent pixels by change, 2x2 patches with 3 of 4 pixels kept, "
                        "every frame cut to the smallest count); fixed: exactly the keep ratio of each frame's "
                        "tokens, best first (more tokens computed, no per-chunk synchronisation)")
    g.add_argument("--save-masks", action="store_true",
                   help="with --mask-cache: also write which tokens were computed (white) or reused (black) as "
                        "<segment>.masks.mov beside each segment, frame for frame; with --detail masked: the "
                        "change mask (white = the edit applied in full) as <segment>.change.mov")


def mask_cache_config(args):
    """MaskCacheConfig for the parsed options, or None when the mask cache is off."""
    if args.save_masks and args.mask_cache is None and getattr(args, "detail", None) != "masked":
        raise InputError("--save-masks shows what the mask cache reused or where --detail masked applied the edit; "
                         "add --mask-cache or --detail masked (or drop --save-masks)")
    if args.mask_cache is None:
        return None
    return MaskCacheConfig(keep_ratio=args.mask_cache, rule=getattr(args, "mask_rule", "reference"))


def reuse_report(fraction: float | None) -> str:
    """'mask cache: 68% of tokens reused on pruned steps' (or why there is no figure)."""
    if fraction is None:
        return "mask cache: nothing rendered this time (earlier renders were reused), so no reuse figure"
    return f"mask cache: {fraction:.0%} of tokens reused on pruned steps"
