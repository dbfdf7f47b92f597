"""Host pictures <-> the model's picture, for takes (sidecar/takes/service.py). Pure numpy, no HTTP.

An editor host (an OpenFX host through the LiveEdit plug-in) hands over frames at its own
size and precision: 8-bit, 16-bit or float, RGB or RGBA, rows bottom-up (OpenFX's y axis
points up). The model reads 8-bit RGB, display-referred, at any size (the editor fits the
picture into the model's own size itself: engine/editor.py, `Placement`). This module does
the two conversions around that:

- `decode_source`: host pixels -> uint8 RGB top-down (what StreamingEditor.push takes) plus
  the alpha plane, kept at the host's precision (None when the frame is opaque).
- `encode_output`: an edited uint8 RGB frame (+ the source's alpha) -> exactly one render
  window at the host's precision, in one of two encodings:
  "lut": 8-bit RGB codes, a 256-entry table mapping each code to the host's value, and the
  alpha plane (or "opaque"). The edit has 8 bits per channel, so this carries all of it in a
  quarter (float) of the bytes; the plug-in expands it with one table look-up per value.
  "raw": interleaved channels at the host's depth, used when the output is premultiplied by
  a non-opaque alpha (the expansion would need a multiply per value).

Colour ("input colour" in the plug-in): "display" takes the host's values as display-referred
Rec.709/sRGB code values in [0, 1]; "linear" takes scene-linear Rec.709 values and encodes them
with the sRGB curve for the model (values above 1 are clipped: the model is SDR), and the edit
is decoded back to linear on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liveedit.errors import InputError

DEPTHS: dict[str, type] = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}
DEPTH_MAX = {"u8": 255.0, "u16": 65535.0, "f32": 1.0}
COLOURS = ("display", "linear")
MAX_SIDE = 16384  # an OpenFX host's 16K frame; anything larger is a bad request


@dataclass(frozen=True)
class PixelFormat:
    depth: str  # "u8" | "u16" | "f32"
    channels: int  # 3 (RGB) or 4 (RGBA)

    def __post_init__(self):
        if self.depth not in DEPTHS:
            raise InputError(f"pixel depth {self.depth!r} is not supported; use one of {', '.join(DEPTHS)}")
        if self.channels not in (3, 4):
            raise InputError(f"{self.channels} channels are not supported; send RGB (3) or RGBA (4)")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(DEPTHS[self.depth])

    @property
    def pixel_bytes(self) -> int:
        return self.channels * self.dtype.itemsize

    def frame_bytes(self, width: int, height: int) -> int:
        return width * height * self.pixel_bytes


def check_colour(colour: str) -> str:
    if colour not in COLOURS:
        raise InputError(f"input colour {colour!r} is not one of {', '.join(COLOURS)}")
    return colour


def check_size(width: int, height: int, what: str = "frame") -> None:
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
            raise InputError(f"{what} {name} {value!r} is outside 1..{MAX_SIDE} pixels")


# -- the sRGB curve (IEC 61966-2-1) ----------------------------------------------------------


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded [0, 1]."""
    x = np.asarray(linear, dtype=np.float64)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded [0, 1] -> linear [0, 1]."""
    x = np.asarray(encoded, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, np.power((np.maximum(x, 0.04045) + 0.055) / 1.055, 2.4))


# -- host -> model ---------------------------------------------------------------------------


def decode_source(data, width: int, height: int, fmt: PixelFormat, colour: str,
                  premultiplied: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Host pixels (rows bottom-up, tightly packed) -> (uint8 RGB [H, W, 3] top-down, alpha
    [H, W] top-down at the host's depth, or None when every pixel is opaque)."""
    check_size(width, height)
    check_colour(colour)
    expected = fmt.frame_bytes(width, height)
    if len(data) != expected:
        raise InputError(f"a {width}x{height} {fmt.depth} frame with {fmt.channels} channels is {expected} "
                         f"bytes; got {len(data)}")
    pixels = np.frombuffer(data, dtype=fmt.dtype).reshape(height, width, fmt.channels)[::-1]
    alpha = None
    if fmt.channels == 4:
        plane = pixels[..., 3]
        if not np.all(plane == fmt.dtype.type(DEPTH_MAX[fmt.depth])):
            alpha = np.ascontiguousarray(plane)
    unpremultiply = premultiplied and alpha is not None
    if fmt.depth == "u8" and colour == "display" and not unpremultiply:
        return np.ascontiguousarray(pixels[..., :3]), alpha  # exact: the model's own format
    x = pixels[..., :3].astype(np.float32)
    if fmt.depth != "f32":
        x /= np.float32(DEPTH_MAX[fmt.depth])
    if unpremultiply:
        a = alpha.astype(np.float32)
        if fmt.depth != "f32":
            a /= np.float32(DEPTH_MAX[fmt.depth])
        x = np.divide(x, a[..., None], out=np.zeros_like(x), where=a[..., None] > 0)
    np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(x, 0.0, 1.0, out=x)
    if colour == "linear":
        x = srgb_encode(x)
    return np.floor(x * 255.0 + 0.5).astype(np.uint8), alpha


# -- model -> host ---------------------------------------------------------------------------


def output_lut(depth: str, colour: str) -> np.ndarray:
    """The host value of each 8-bit code: 256 entries of the host's type."""
    check_colour(colour)
    codes = np.arange(256, dtype=np.float64) / 255.0
    if colour == "linear":
        codes = srgb_decode(codes)
    if depth == "f32":
        return codes.astype(np.float32)
    return np.floor(codes * DEPTH_MAX[depth] + 0.5).astype(DEPTHS[depth])


def check_window(window, what: str = "render window") -> tuple[int, int, int, int]:
    if not isinstance(window, (list, tuple)) or len(window) != 4 or not all(isinstance(v, int) for v in window):
        raise InputError(f"{what} must be [x1, y1, x2, y2] in whole pixels; got {window!r}")
    x1, y1, x2, y2 = window
    if not (x1 < x2 and y1 < y2):
        raise InputError(f"{what} {list(window)} is empty; x2 must exceed x1 and y2 exceed y1")
    if x2 - x1 > MAX_SIDE or y2 - y1 > MAX_SIDE or max(map(abs, window)) > 4 * MAX_SIDE:
        raise InputError(f"{what} {list(window)} is larger than a {MAX_SIDE}-pixel frame")
    return x1, y1, x2, y2


def _window_of(plane: np.ndarray, window: tuple[int, int, int, int], fill) -> np.ndarray:
    """Rows y1..y2-1 counted from the bottom (OpenFX), columns x1..x2-1, of a top-down plane,
    in bottom-up row order; parts outside the frame are `fill`."""
    h, w = plane.shape[:2]
    x1, y1, x2, y2 = window
    if 0 <= x1 and x2 <= w and 0 <= y1 and y2 <= h:
        return plane[h - y2 : h - y1, x1:x2][::-1]
    out = np.full((y2 - y1, x2 - x1, *plane.shape[2:]), fill, dtype=plane.dtype)
    cx1, cx2, cy1, cy2 = max(x1, 0), min(x2, w), max(y1, 0), min(y2, h)
    if cx1 < cx2 and cy1 < cy2:
        out[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] = plane[h - cy2 : h - cy1, cx1:cx2][::-1]
    return out


def encode_output(rgb: np.ndarray, alpha: np.ndarray | None, fmt: PixelFormat, colour: str,
                  window, premultiplied: bool = False, alpha_from_source: bool = False) -> tuple[dict, list]:
    """One render window of an edited frame for the host. Returns (description, parts): numpy
    arrays (possibly views, any strides) or bytes whose bytes, concatenated in order, are the
    payload the description's byte counts refer to (`payload_bytes`).

    `alpha_from_source`: the client copies alpha from its own source frame (the one this edit was
    made from), so the plane is not sent: "alpha": "source". Not when the output is premultiplied
    by a non-opaque alpha: that comes back "raw", alpha included."""
    x1, y1, x2, y2 = check_window(window)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError(f"edited frames are uint8 [H, W, 3], not {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    inside = 0 <= x1 and x2 <= w and 0 <= y1 and y2 <= h
    lut = output_lut(fmt.depth, colour)
    top = fmt.dtype.type(DEPTH_MAX[fmt.depth])
    codes = _window_of(rgb, (x1, y1, x2, y2), 0)
    plane = None  # the alpha of the window at the host's depth; None = opaque everywhere
    if fmt.channels == 4:
        if alpha is not None:
            if alpha.shape != (h, w):
                raise TypeError(f"alpha plane {alpha.shape} does not match the frame {h}x{w}")
            plane = _window_of(alpha.astype(fmt.dtype, copy=False), (x1, y1, x2, y2), 0)
        elif not inside:  # opaque inside the frame, transparent black outside it
            plane = _window_of(np.full((h, w), top, dtype=fmt.dtype), (x1, y1, x2, y2), 0)
    meta = {"encoding": "lut", "width": x2 - x1, "height": y2 - y1, "depth": fmt.depth,
            "channels": fmt.channels}
    if premultiplied and plane is not None:
        values = lut[codes].astype(np.float32)
        a = plane.astype(np.float32) / np.float32(DEPTH_MAX[fmt.depth])
        values *= a[..., None]
        if fmt.depth != "f32":
            values = np.floor(values + 0.5)
        out = np.empty((y2 - y1, x2 - x1, 4), dtype=fmt.dtype)
        out[..., :3] = values
        out[..., 3] = plane
        meta.update(encoding="raw", raw_bytes=out.nbytes)
        return meta, [out]
    parts = [lut, codes]
    meta.update(lut_bytes=lut.nbytes, rgb_bytes=codes.nbytes, alpha="opaque" if plane is None else "plane")
    if fmt.channels == 3:
        meta["alpha"] = "none"
    elif alpha_from_source:
        meta["alpha"] = "source"
    elif plane is not None:
        parts.append(plane)
        meta["alpha_bytes"] = plane.nbytes
    return meta, parts


def payload_bytes(parts) -> bytes:
    """The payload of encode_output's parts (for tests and Python clients; the bridge writes the
    parts straight into its answer)."""
    return b"".join(p if isinstance(p, (bytes, bytearray, memoryview)) else np.ascontiguousarray(p).tobytes()
                    for p in parts)


def expand_output(meta: dict, payload: bytes) -> np.ndarray:
    """What the plug-in does with an answer: the window as [h, w, channels] at the host's
    depth, rows bottom-up. The reference for tests and Python clients."""
    fmt = PixelFormat(meta["depth"], meta["channels"])
    h, w = meta["height"], meta["width"]
    if meta["encoding"] == "raw":
        return np.frombuffer(payload, dtype=fmt.dtype).reshape(h, w, fmt.channels)
    lut_end = meta["lut_bytes"]
    lut = np.frombuffer(payload[:lut_end], dtype=fmt.dtype)
    rgb_end = lut_end + meta["rgb_bytes"]
    codes = np.frombuffer(payload[lut_end:rgb_end], dtype=np.uint8).reshape(h, w, 3)
    out = np.empty((h, w, fmt.channels), dtype=fmt.dtype)
    out[..., :3] = lut[codes]
    if fmt.channels == 4:
        if meta["alpha"] == "plane":
            out[..., 3] = np.frombuffer(payload[rgb_end:], dtype=fmt.dtype).reshape(h, w)
        elif meta["alpha"] == "opaque":
            out[..., 3] = DEPTH_MAX[fmt.depth]
        else:  # "source": the client fills it from its own source frame
            out[..., 3] = 0
    return out
