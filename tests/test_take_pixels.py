"""Host pictures <-> the model's 8-bit RGB (sidecar/takes/pixels.py): depths, colour, alpha,
premultiplication, windows."""

from __future__ import annotations

import numpy as np
import pytest

from liveedit.errors import InputError
from liveedit.sidecar.takes.pixels import (
    PixelFormat,
    decode_source,
    encode_output,
    expand_output,
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


def test_16bit_and_float_quantize_to_the_nearest_code_and_come_back_on_the_codes():
    codes = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = np.stack([codes] * 3, axis=-1)
    for depth, values in (("u16", rgb.astype(np.uint16) * 257), ("f32", rgb.astype(np.float32) / 255)):
        back, alpha = decode_source(bottom_up(values), 16, 16, PixelFormat(depth, 3), "display")
        assert alpha is None and np.array_equal(back, rgb), depth
        meta, parts = encode_output(back, None, PixelFormat(depth, 3), "display", (0, 0, 16, 16))
        assert meta["alpha"] == "none"
        assert np.array_equal(expand_output(meta, payload_bytes(parts))[::-1], values), depth
    # float values outside [0, 1] and NaN clip; half steps round up
    odd = np.array([[[-0.5, 1.7, np.nan], [0.5 / 255, 1.49 / 255, 1.0]]], np.float32)
    back, _ = decode_source(bottom_up(odd), 2, 1, PixelFormat("f32", 3), "display")
    assert back.tolist() == [[[0, 255, 0], [1, 1, 255]]]


def test_scene_linear_input_is_srgb_encoded_for_the_model_and_decoded_back():
    assert np.allclose(srgb_decode(srgb_encode(np.linspace(0, 1, 101))), np.linspace(0, 1, 101))
    linear = np.full((1, 1, 3), 0.18, np.float32)  # mid grey
    rgb, _ = decode_source(bottom_up(linear), 1, 1, PixelFormat("f32", 3), "linear")
    assert rgb.tolist() == [[[118, 118, 118]]]  # sRGB code of 18% grey
    lut = output_lut("f32", "linear")
    assert abs(lut[118] - 0.18) < 0.002 and lut[0] == 0 and lut[255] == 1


def test_premultiplied_sources_are_unpremultiplied_and_the_output_premultiplied_again():
    rgba = np.array([[[0.25, 0.1, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0]]], np.float32)
    rgb, alpha = decode_source(bottom_up(rgba), 2, 1, PixelFormat("f32", 4), "display", premultiplied=True)
    assert rgb.tolist() == [[[128, 51, 0], [0, 0, 0]]] and alpha.tolist() == [[0.5, 0.0]]
    meta, parts = encode_output(rgb, alpha, PixelFormat("f32", 4), "display", (0, 0, 2, 1), premultiplied=True)
    assert meta["encoding"] == "raw"
    out = expand_output(meta, payload_bytes(parts))
    assert np.allclose(out, rgba, atol=0.5 / 255 * 0.5 + 1e-6)


def test_windows_outside_the_frame_are_transparent_black_and_bad_windows_are_refused():
    rgb = np.full((4, 4, 3), 200, np.uint8)
    meta, parts = encode_output(rgb, None, PixelFormat("u8", 4), "display", (2, 2, 6, 5))
    out = expand_output(meta, payload_bytes(parts))
    assert out.shape == (3, 4, 4) and meta["alpha"] == "plane"
    assert np.all(out[:2, :2] == [200, 200, 200, 255]) and np.all(out[2:] == 0) and np.all(out[:, 2:] == 0)
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
