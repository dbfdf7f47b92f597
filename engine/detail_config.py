"""How edited pictures are delivered at the source's size and precision (plain data, no torch).

The model edits a 480x832, 8-bit picture of the source. Delivering that picture scaled up
to a 1080p or UHD, 10-bit source softens every edited segment and puts 8-bit steps in it.
The modes (engine/detail.py does the arithmetic):

- ``transfer`` (default): output = source + upscale(edited - source as the model saw it),
  in float. The edit's change is applied at the source's size and precision; the
  source's own fine detail and code values stay where the edit changed nothing.
- ``masked``: the same change, weighted by a soft change mask. Where the edited picture
  differs from what the model saw by no more than ``threshold`` (the VAE's round-trip
  error, not an edit), the source passes through untouched; the mask reaches 1 at twice
  the threshold and fades out over ``softness`` model pixels around what changed.
- ``off``: the model picture scaled up to the source size, 8-bit (the behaviour before
  detail delivery existed).

Lives apart from engine/detail.py so the command line and the job schema can use it
without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from liveedit.errors import InputError

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
