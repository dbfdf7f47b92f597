"""Host pictures <-> the editor's frames (sidecar/takes/pixels.py): depths kept both ways, colour,
alpha, premultiplication, windows."""

from __future__ import annotations

import numpy as np
import pytest

from liveedit.errors import InputError
from liveedit.sidecar.takes.pixels import (
    PixelFormat,
    decode_source,
    encode_output,
    expand_output,
    frame_dtype,
    output_lut,
    payload_bytes,
    srgb_decode,
    srgb_encode,
)


def bottom_up(plane: np.ndarray) -> bytes:
    return np.ascontiguousarray(plane[::-1]).tobytes()


def test_8bit_display_frames_pass_through_exactly():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    rgb, alpha = decode_source(bottom_up(rgba), 7, 5, PixelFormat("u8", 4), "display")
    assert np.array_equal(rgb, rgba[..., :3]) and np.array_equal(alpha, rgba[..., 3])
    meta, parts = encode_output(rgb, alpha, PixelFormat("u8", 4), "display", (0, 0, 7, 5))
    assert np.array_equal(expand_output(meta, payload_bytes(parts))[::-1], rgba)


def test_16bit_and_float_frames_keep_the_host_precision_both_ways():
    """Decoded frames are the host's own values (the editor takes them as they are), and a
    delivered frame of the host's type comes back bit for bit: 16-bit codes, float values
    outside [0, 1] included."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    floats = rng.uniform(-0.2, 3.0, (5, 7, 3)).astype(np.float32)
    for depth, values in (("u16", codes), ("f32", floats)):
        fmt = PixelFormat(depth, 3)
        back, alpha = decode_source(bottom_up(values), 7, 5, fmt, "display")
        assert alpha is None and back.dtype == frame_dtype(fmt, "display") == values.dtype, depth
        np.testing.assert_array_equal(back, values)
        meta, parts = encode_output(back, None, fmt, "display", (0, 0, 7, 5))
        assert meta["encoding"] == "raw" and meta["raw_bytes"] == values.nbytes, depth
        np.testing.assert_array_equal(expand_output(meta, payload_bytes(parts))[::-1], values)
    # non-finite host values are not colours
    odd = np.array([[[np.nan, np.inf, -np.inf], [0.5, 1.7, -0.5]]], np.float32)
    back, _ = decode_source(bottom_up(odd), 2, 1, PixelFormat("f32", 3), "display")
    assert back.tolist() == [[[0.0, 1.0, 0.0], [0.5, np.float32(1.7), -0.5]]]


def test_a_delivered_frame_converts_to_any_depth_the_host_asks_for():
    """uint8 frames (detail "off", 8-bit hosts) travel as codes and a table; uint16 and float
    frames as raw values, rounded to the nearest code and clipped for integer depths."""
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb8 = np.stack([codes] * 3, axis=-1)
    for depth, values in (("u16", rgb8.astype(np.uint16) * 257), ("f32", rgb8.astype(np.float32) / 255)):
        meta, parts = encode_output(rgb8, None, PixelFormat(depth, 3), "display", (0, 0, 16, 16))
        assert meta["encoding"] == "lut" and meta["alpha"] == "none"
        assert np.array_equal(expand_output(meta, payload_bytes(parts))[::-1], values), depth
    u16 = np.array([[[0, 128, 129], [65535, 32896, 257]]], np.uint16)
    f32 = np.array([[[-0.1, 0.5, 1.5], [0.5 / 255, 1.49 / 255, 1.0]]], np.float32)
    cases = ((u16, "u8", [[[0, 0, 1], [255, 128, 1]]]),
             (u16, "f32", (u16 / np.float32(65535)).tolist()),
             (f32, "u8", [[[0, 128, 255], [1, 1, 255]]]),  # half steps round up
             (f32, "u16", [[[0, 32768, 65535], [129, 383, 65535]]]))
    for frame, depth, want in cases:
        meta, parts = encode_output(frame, None, PixelFormat(depth, 3), "display", (0, 0, 2, 1))
        got = expand_output(meta, payload_bytes(parts))[::-1]
        assert got.dtype == PixelFormat(depth, 3).dtype and got.tolist() == want, (frame.dtype, depth)
    # alpha kept at the upload's depth is scaled to the depth asked for, in both encodings
    alpha16 = np.array([[0, 32896], [65535, 257]], np.uint16)
    for frame in (np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint16)):
        for depth, want in (("u8", [[0, 128], [255, 1]]), ("f32", (alpha16 / np.float32(65535)).tolist())):
            meta, parts = encode_output(frame, alpha16, PixelFormat(depth, 4), "display", (0, 0, 2, 2))
            assert expand_output(meta, payload_bytes(parts))[::-1][..., 3].tolist() == want, (frame.dtype, depth)


def test_scene_linear_input_is_srgb_encoded_for_the_model_and_decoded_back():
    assert np.allclose(srgb_decode(srgb_encode(np.linspace(0, 1, 101))), np.linspace(0, 1, 101))
    linear = np.full((1, 1, 3), 0.18, np.float32)  # mid grey
    rgb, _ = decode_source(bottom_up(linear), 1, 1, PixelFormat("f32", 3), "linear")
    assert rgb.dtype == np.float32 and round(float(rgb[0, 0, 0]) * 255) == 118  # the sRGB code of 18% grey
    lut = output_lut("f32", "linear")
    assert abs(lut[118] - 0.18) < 0.002 and lut[0] == 0 and lut[255] == 1
    # Nothing is clipped on the way in: values above 1 and below 0 come back, to float32 rounding
    # (the curve is computed in float64, the frame held in float32: a few ulps).
    values = np.array([[[-0.05, 0.0, 0.002], [0.18, 1.0, 6.5]]], np.float32)
    rgb, _ = decode_source(bottom_up(values), 2, 1, PixelFormat("f32", 3), "linear")
    meta, parts = encode_output(rgb, None, PixelFormat("f32", 3), "linear", (0, 0, 2, 1))
    np.testing.assert_allclose(expand_output(meta, payload_bytes(parts))[::-1], values, rtol=5e-7, atol=0)
    # 16-bit scene-linear codes are computed as float32 and come back on the same codes
    codes = np.random.default_rng(2).integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    rgb, _ = decode_source(bottom_up(codes), 6, 4, PixelFormat("u16", 3), "linear")
    assert rgb.dtype == np.float32
    meta, parts = encode_output(rgb, None, PixelFormat("u16", 3), "linear", (0, 0, 6, 4))
    np.testing.assert_array_equal(expand_output(meta, payload_bytes(parts))[::-1], codes)


def test_premultiplied_sources_are_unpremultiplied_and_the_output_premultiplied_again():
    rgba = np.array([[[0.25, 0.1, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]]], np.float32)
    rgb, alpha = decode_source(bottom_up(rgba), 2, 1, PixelFormat("f32", 4), "display", premultiplied=True)
    assert rgb.dtype == np.float32 and alpha.tolist() == [[0.5, 0.0]]
    np.testing.assert_allclose(rgb, [[[0.5, 0.2, 0.0], [0.0, 0.0, 0.0]]], rtol=1e-7)
    meta, parts = encode_output(rgb, alpha, PixelFormat("f32", 4), "display", (0, 0, 2, 1), premultiplied=True)
    assert meta["encoding"] == "raw"
    np.testing.assert_allclose(expand_output(meta, payload_bytes(parts)), rgba, rtol=1e-7)
    # integer hosts: unpremultiplied in float32 and multiplied back onto the very same codes
    rng = np.random.default_rng(3)
    for depth in ("u8", "u16"):
        top = np.iinfo(PixelFormat(depth, 4).dtype).max
        a = rng.integers(0, top + 1, (6, 5), dtype=np.int64)
        pixels = np.empty((6, 5, 4), dtype=PixelFormat(depth, 4).dtype)
        pixels[..., :3] = (rng.uniform(0, 1, (6, 5, 3)) * a[..., None]).round()
        pixels[..., 3] = a
        rgb, alpha = decode_source(bottom_up(pixels), 5, 6, PixelFormat(depth, 4), "display", premultiplied=True)
        assert rgb.dtype == np.float32, depth
        meta, parts = encode_output(rgb, alpha, PixelFormat(depth, 4), "display", (0, 0, 5, 6), premultiplied=True)
        np.testing.assert_array_equal(expand_output(meta, payload_bytes(parts))[::-1], pixels)


def test_the_frame_type_follows_the_format_and_settings_never_the_content():
    """One editor stream keeps one frame type: an opaque frame of a premultiplied RGBA clip is
    float32 like its neighbours with alpha."""
    u16 = PixelFormat("u16", 4)
    assert frame_dtype(PixelFormat("u8", 4), "display") == np.uint8
    assert frame_dtype(u16, "display") == np.uint16 and frame_dtype(PixelFormat("u16", 3), "display", True) == np.uint16
    assert frame_dtype(u16, "linear") == frame_dtype(u16, "display", True) == np.float32
    opaque = np.full((2, 2, 4), 65535, np.uint16)
    rgb, alpha = decode_source(bottom_up(opaque), 2, 2, u16, "display", premultiplied=True)
    assert rgb.dtype == np.float32 and alpha is None and np.all(rgb == 1.0)


def test_windows_outside_the_frame_are_transparent_black_and_bad_windows_are_refused():
    rgb = np.full((4, 4, 3), 200, np.uint8)
    meta, parts = encode_output(rgb, None, PixelFormat("u8", 4), "display", (2, 2, 6, 5))
    out = expand_output(meta, payload_bytes(parts))
    assert out.shape == (3, 4, 4) and meta["alpha"] == "plane"
    assert np.all(out[:2, :2] == [200, 200, 200, 255]) and np.all(out[2:] == 0) and np.all(out[:, 2:] == 0)
    deep = np.full((4, 4, 3), 40000, np.uint16)  # raw: the same window rules
    meta, parts = encode_output(deep, None, PixelFormat("u16", 4), "display", (2, 2, 6, 5))
    out = expand_output(meta, payload_bytes(parts))
    assert meta["encoding"] == "raw" and out.shape == (3, 4, 4)
    assert np.all(out[:2, :2] == [40000, 40000, 40000, 65535]) and np.all(out[2:] == 0) and np.all(out[:, 2:] == 0)
    for window in ((0, 0, 0, 4), (0, 0, 4), (0, 0, 4.5, 4), (0, 0, 40000, 4)):
        with pytest.raises(InputError):
            encode_output(rgb, None, PixelFormat("u8", 4), "display", window)


def test_bad_uploads_name_the_problem():
    with pytest.raises(InputError, match="is 48 bytes; got 47"):
        decode_source(b"\0" * 47, 3, 4, PixelFormat("u8", 4), "display")
    with pytest.raises(InputError, match="depth"):
        PixelFormat("f16", 4)
    with pytest.raises(InputError, match="channels"):
        PixelFormat("u8", 2)
    with pytest.raises(InputError, match="input colour"):
        decode_source(b"\0" * 4, 1, 1, PixelFormat("u8", 4), "aces")


def test_alpha_from_the_source_is_left_out_of_the_answer():
    rgb = np.full((2, 3, 3), 7, np.uint8)
    alpha = np.full((2, 3), 0.5, np.float32)
    meta, parts = encode_output(rgb, alpha, PixelFormat("f32", 4), "display", (0, 0, 3, 2), alpha_from_source=True)
    assert meta["alpha"] == "source" and "alpha_bytes" not in meta
    assert len(payload_bytes(parts)) == 256 * 4 + 2 * 3 * 3
    # premultiplied by a real alpha: the answer is raw, alpha included, whatever the client offers
    meta, parts = encode_output(rgb, alpha, PixelFormat("f32", 4), "display", (0, 0, 3, 2), premultiplied=True,
                                alpha_from_source=True)
    assert meta["encoding"] == "raw" and np.all(expand_output(meta, payload_bytes(parts))[..., 3] == 0.5)
    # a frame at the source's precision is raw too, its alpha included
    meta, parts = encode_output(rgb.astype(np.float32) / 255, alpha, PixelFormat("f32", 4), "display", (0, 0, 3, 2),
                                alpha_from_source=True)
    out = expand_output(meta, payload_bytes(parts))
    assert meta["encoding"] == "raw" and np.all(out[..., 3] == 0.5) and np.all(out[..., :3] == np.float32(7 / 255))


@pytest.mark.parametrize("depth", ["u16", "f32"])
@pytest.mark.parametrize("channels", [3, 4])
def test_the_rgb_encoding_carries_what_raw_carries_without_the_alpha(depth, channels):
    """Clients that accept "rgb" get 16-bit and float edits as RGB rows top-down (straight from
    the stored frame): expanded, the same pixels as "raw" for every window inside the frame
    (alpha opaque, or left to the client's source), premultiplied output included, and a
    quarter fewer bytes than RGBA. Windows reaching outside the frame and alpha planes that must
    be sent stay "raw"."""
    rng = np.random.default_rng(7)
    fmt = PixelFormat(depth, channels)
    rgb = (rng.integers(0, 65536, (6, 9, 3), dtype=np.uint16) if depth == "u16"
           else rng.uniform(-0.1, 2.0, (6, 9, 3)).astype(np.float32))
    alpha = rng.integers(1, 65536, (6, 9), dtype=np.uint16) if depth == "u16" else rng.uniform(0.1, 1, (6, 9)).astype(np.float32)
    cases = [dict(alpha=None), dict(alpha=alpha, alpha_from_source=True),
             dict(alpha=alpha, alpha_from_source=True, premultiplied=True)]
    for window in [(0, 0, 9, 6), (2, 1, 7, 5), (0, 3, 9, 4)]:
        for case in cases:
            case = dict(case)
            a = case.pop("alpha")
            raw_meta, raw_parts = encode_output(rgb, a, fmt, "display", window, **case)
            meta, parts = encode_output(rgb, a, fmt, "display", window, accept_rgb=True, **case)
            assert meta["encoding"] == "rgb" and meta["rows"] == "top-down", (window, case)
            got = expand_output(meta, payload_bytes(parts))
            want = expand_output(raw_meta, payload_bytes(raw_parts))
            if channels == 4 and case.get("alpha_from_source"):
                assert meta["alpha"] == "source"
                want = want.copy()
                want[..., 3] = 0  # both leave it to the client
                got[..., 3] = 0
            np.testing.assert_array_equal(got, want)
            w, h = window[2] - window[0], window[3] - window[1]
            assert meta["rgb_bytes"] == len(payload_bytes(parts)) == w * h * 3 * fmt.dtype.itemsize
    outside = encode_output(rgb, None, fmt, "display", (-1, 0, 9, 6), accept_rgb=True)[0]
    assert outside["encoding"] == "raw"
    if channels == 4:  # an alpha plane the client does not have: it travels, in "raw"
        assert encode_output(rgb, alpha, fmt, "display", (0, 0, 9, 6), accept_rgb=True)[0]["encoding"] == "raw"
