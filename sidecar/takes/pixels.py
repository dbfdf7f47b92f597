"""Host pictures <-> the editor's frames, for takes (sidecar/takes/service.py). Pure numpy, no HTTP.

An editor host (an OpenFX host through the LiveEdit plug-in) hands over frames at its own
size and precision: 8-bit, 16-bit or float, RGB or RGBA, rows bottom-up (OpenFX's y axis
points up). The editor takes RGB frames at any size and precision (uint8, uint16 or float32),
shows the model an 8-bit picture of them and delivers the edit back at the frames' own size
and type (sidecar/delivery.py, detail "transfer" by default). This module does the two
conversions around that:

- `decode_source`: host pixels -> the frame to push, top-down, at the host's precision
  (`frame_dtype`: uint8 or uint16 codes as sent, float32 for float hosts and whenever the
  values have to be computed: scene-linear input, premultiplied RGBA) plus the alpha plane,
  kept at the host's depth (None when the frame is opaque).
- `encode_output`: a delivered frame (uint8, uint16 or float32, + the source's alpha) ->
  exactly one render window at the host's precision, in one of two encodings:
  "lut": 8-bit RGB codes, a 256-entry table mapping each code to the host's value, and the
  alpha plane (or "opaque"). For uint8 frames (8-bit hosts, and detail "off", where the
  edit has the model's 8 bits) this carries all of it in a quarter (float) of the bytes;
  the plug-in expands it with one table look-up per value.
  "raw": interleaved channels at the host's depth: for uint16 and float32 frames (the
  source's precision, which a table of 256 codes cannot carry), and when the output is
  premultiplied by a non-opaque alpha (the expansion would need a multiply per value).
  "rgb" (for clients that accept it, as the plug-in does): what "raw" carries, without the
  alpha channel (opaque, or copied by the client from its own source frame) and with rows
  top-down as the sidecar keeps them, so that an edit at the host's own type is sent
  straight from the stored frame: a quarter fewer bytes than RGBA and no reordering pass
  (an already-edited 1080p float frame is 25 MB).

Colour ("input colour" in the plug-in): "display" takes the host's values as display-referred
Rec.709/sRGB code values in [0, 1]; "linear" takes scene-linear Rec.709 values and encodes them
with the sRGB curve (extended past 0 and 1, so nothing is clipped before the edit: the model's
8-bit picture clips, the delivered frame keeps what the edit did not change), and the edit is
decoded back to linear on the way out. Delivered frames are always in the display encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liveedit.errors import InputError

DEPTHS: dict[str, type] = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}
FRAME_DTYPES = tuple(np.dtype(t) for t in DEPTHS.values())  # what the editor takes and delivers
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
    """Linear -> sRGB-encoded, [0, 1] -> [0, 1]; outside it the curve goes on (the linear
    segment below 0, the power curve above 1), so `srgb_decode` undoes it everywhere."""
    x = np.asarray(linear, dtype=np.float64)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """sRGB-encoded -> linear (the inverse of `srgb_encode`, on every real value)."""
    x = np.asarray(encoded, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, np.power((np.maximum(x, 0.04045) + 0.055) / 1.055, 2.4))


# -- host -> model ---------------------------------------------------------------------------


def frame_dtype(fmt: PixelFormat, colour: str, premultiplied: bool = False) -> np.dtype:
    """The type `decode_source` gives frames of this format: the host's own integer codes when
    they can be pushed as they are, else float32. It depends on the format and settings only,
    never on a frame's content, because one editor stream keeps one frame type."""
    check_colour(colour)
    if fmt.depth == "f32" or colour == "linear" or (premultiplied and fmt.channels == 4):
        return np.dtype(np.float32)
    return fmt.dtype


def decode_source(data, width: int, height: int, fmt: PixelFormat, colour: str,
                  premultiplied: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Host pixels (rows bottom-up, tightly packed) -> (RGB [H, W, 3] top-down of type
    `frame_dtype`, alpha [H, W] top-down at the host's depth, or None when every pixel is
    opaque). Integer codes come through unchanged; float32 frames hold display-encoded values
    (1.0 = white), not clipped. Non-finite host values are not colours: NaN and -inf become 0,
    +inf 1."""
    check_size(width, height)
    dtype = frame_dtype(fmt, colour, premultiplied)
    expected = fmt.frame_bytes(width, height)
    if len(data) != expected:
        raise InputError(f"a {width}x{height} {fmt.depth} frame with {fmt.channels} channels is {expected} "
                         f"bytes; got {len(data)}")
    pixels = np.frombuffer(data, dtype=fmt.dtype).reshape(height, width, fmt.channels)[::-1]
    alpha = None
    if fmt.channels == 4:
        plane = pixels[..., 3]
        if not np.all(plane == fmt.dtype.type(DEPTH_MAX[fmt.depth])):
            alpha = np.array(plane, order="C")
    if dtype != np.float32:
        return np.array(pixels[..., :3], order="C"), alpha  # exact: the host's own codes
    # Copies (never views of the request body, which is read-only and would be kept alive).
    x = np.array(pixels[..., :3], dtype=np.float32, order="C")
    if fmt.depth != "f32":
        x /= np.float32(DEPTH_MAX[fmt.depth])
    elif not np.isfinite(x).all():
        np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    if premultiplied and alpha is not None:
        a = alpha.astype(np.float32)
        if fmt.depth != "f32":
            a /= np.float32(DEPTH_MAX[fmt.depth])
        # Transparent pixels have no colour; black keeps them finite.
        x = np.divide(x, a[..., None], out=np.zeros_like(x), where=a[..., None] > 0)
        if not np.isfinite(x).all():  # a tiny alpha can overflow float32
            np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    if colour == "linear":
        x = srgb_encode(x).astype(np.float32)
    return x, alpha


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
                  window, premultiplied: bool = False, alpha_from_source: bool = False,
                  accept_rgb: bool = False) -> tuple[dict, list]:
    """One render window of a delivered frame (uint8, uint16 or float32 RGB [H, W, 3],
    display-encoded) for the host. Returns (description, parts): numpy arrays (possibly views,
    any strides) or bytes whose bytes, concatenated in order, are the payload the
    description's byte counts refer to (`payload_bytes`).

    `alpha_from_source`: the client copies alpha from its own source frame (the one this edit was
    made from), so the plane is not sent: "alpha": "source". For the "lut" and "rgb" encodings: a
    "raw" answer carries its alpha, whatever the client offers. `accept_rgb`: the client reads the
    "rgb" encoding, used instead of "raw" whenever the alpha need not be sent."""
    x1, y1, x2, y2 = check_window(window)
    if rgb.dtype not in FRAME_DTYPES or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError(f"edited frames are uint8, uint16 or float32 [H, W, 3], not {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    inside = 0 <= x1 and x2 <= w and 0 <= y1 and y2 <= h
    top = fmt.dtype.type(DEPTH_MAX[fmt.depth])
    plane = None  # the alpha of the window at the host's depth; None = opaque everywhere
    if fmt.channels == 4:
        if alpha is not None:
            if alpha.shape != (h, w):
                raise TypeError(f"alpha plane {alpha.shape} does not match the frame {h}x{w}")
            plane = _window_of(_at_depth(alpha, fmt), (x1, y1, x2, y2), 0)
        elif not inside:  # opaque inside the frame, transparent black outside it
            plane = _window_of(np.full((h, w), top, dtype=fmt.dtype), (x1, y1, x2, y2), 0)
    meta = {"encoding": "lut", "width": x2 - x1, "height": y2 - y1, "depth": fmt.depth,
            "channels": fmt.channels}
    multiply = premultiplied and plane is not None
    alpha_mode = "none" if fmt.channels == 3 else "source" if alpha_from_source else "opaque" if plane is None else None
    if accept_rgb and inside and (rgb.dtype != np.uint8 or multiply) and alpha_mode is not None:
        # Rows top-down, straight from the stored frame: a view when it is at the host's type.
        rows = rgb[h - y2 : h - y1, x1:x2]
        factor = None
        if multiply:
            factor = plane[::-1]  # plane is bottom-up like every window; the colour rows are not
        values = _host_values(rows, fmt, colour, factor)
        meta.update(encoding="rgb", rows="top-down", alpha=alpha_mode, rgb_bytes=values.nbytes)
        return meta, [values]
    window_rgb = _window_of(rgb, (x1, y1, x2, y2), 0)
    if rgb.dtype != np.uint8 or multiply:
        out = np.empty((y2 - y1, x2 - x1, fmt.channels), dtype=fmt.dtype)
        out[..., :3] = _host_values(window_rgb, fmt, colour, plane if multiply else None)
        if fmt.channels == 4:
            out[..., 3] = top if plane is None else plane
        meta.update(encoding="raw", raw_bytes=out.nbytes)
        return meta, [out]
    lut = output_lut(fmt.depth, colour)
    parts = [lut, window_rgb]
    meta.update(lut_bytes=lut.nbytes, rgb_bytes=window_rgb.nbytes, alpha="opaque" if plane is None else "plane")
    if fmt.channels == 3:
        meta["alpha"] = "none"
    elif alpha_from_source:
        meta["alpha"] = "source"
    elif plane is not None:
        parts.append(plane)
        meta["alpha_bytes"] = plane.nbytes
    return meta, parts


def _at_depth(plane: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """An alpha plane kept at its upload's depth, at the depth asked for (the same take may be
    asked at another depth than its frames were sent at): scaled, and rounded to the nearest code."""
    if plane.dtype == fmt.dtype:
        return plane
    x = plane.astype(np.float32)
    if plane.dtype != np.float32:
        x /= np.float32(np.iinfo(plane.dtype).max)
    if fmt.depth == "f32":
        return x
    return np.floor(np.clip(x, 0.0, 1.0) * DEPTH_MAX[fmt.depth] + 0.5).astype(fmt.dtype)


def _host_values(rgb: np.ndarray, fmt: PixelFormat, colour: str, alpha: np.ndarray | None) -> np.ndarray:
    """Delivered display-encoded RGB (uint8, uint16 or float32) -> the host's values at its
    depth, premultiplied by `alpha` (the host's depth) when given. Codes of the host's own type
    in display colour come back untouched, so an unchanged source is returned bit for bit;
    integer depths round to the nearest code and clip, float keeps values outside [0, 1]."""
    if colour == "display" and alpha is None and rgb.dtype == fmt.dtype:
        return rgb
    if rgb.dtype == np.float32:
        x = rgb
    else:
        x = rgb.astype(np.float32) / np.float32(np.iinfo(rgb.dtype).max)
    if colour == "linear":
        x = srgb_decode(x)  # float64
    if alpha is not None:
        a = alpha.astype(np.float32)
        if fmt.depth != "f32":
            a /= np.float32(DEPTH_MAX[fmt.depth])
        x = x * a[..., None]
    if fmt.depth == "f32":
        return x.astype(np.float32, copy=False)
    top = DEPTH_MAX[fmt.depth]
    return np.floor(np.clip(x, 0.0, 1.0) * top + 0.5).astype(fmt.dtype)


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
    if meta["encoding"] == "rgb":
        rows = np.frombuffer(payload, dtype=fmt.dtype).reshape(h, w, 3)[::-1]  # top-down -> bottom-up
        out = np.empty((h, w, fmt.channels), dtype=fmt.dtype)
        out[..., :3] = rows
        if fmt.channels == 4:  # "source": the client fills it from its own source frame
            out[..., 3] = DEPTH_MAX[fmt.depth] if meta["alpha"] == "opaque" else 0
        return out
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
