"""The detail delivery options `liveedit edit` and `liveedit render` share: --detail,
--detail-threshold, --detail-softness (engine/config.py says what they mean)."""

from __future__ import annotations

from liveedit.engine.config import (DEFAULT_MODE, DEFAULT_SOFTNESS, DEFAULT_THRESHOLD, DETAIL_MODES,
                                           DetailConfig)


def add_detail_arguments(parser) -> None:
    g = parser.add_argument_group("detail (how the edit is delivered at the source's size and bit depth)")
    g.add_argument("--detail", choices=DETAIL_MODES, default=DEFAULT_MODE,
                   help="transfer (default): the edit's change applied to the source at full size and precision, "
                        "keeping the source's own detail; masked: the same, only where the edit changed more than "
                        "the threshold (the source passes through untouched elsewhere); off: the model's picture "
                        "scaled up, 8-bit")
    g.add_argument("--detail-threshold", type=float, default=None, metavar="LEVEL",
                   help=f"with --detail masked: changes up to this share of full scale count as no edit "
                        f"(default {DEFAULT_THRESHOLD}; the mask is full at twice this)")
    g.add_argument("--detail-softness", type=int, default=None, metavar="PIXELS",
                   help=f"with --detail masked: the mask fades out over this many model pixels around what "
                        f"changed (default {DEFAULT_SOFTNESS})")


def detail_config(args) -> DetailConfig:
    """DetailConfig for the parsed options; a threshold or softness without "masked" is refused."""
    from liveedit.errors import InputError

    threshold, softness = args.detail_threshold, args.detail_softness
    if args.detail != "masked" and (threshold is not None or softness is not None):
        raise InputError("--detail-threshold and --detail-softness shape the change mask of --detail masked; "
                         f"add --detail masked (or drop them with --detail {args.detail})")
    return DetailConfig(args.detail,
                        DEFAULT_THRESHOLD if threshold is None else threshold,
                        DEFAULT_SOFTNESS if softness is None else softness)
