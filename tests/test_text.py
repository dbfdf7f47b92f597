"""TextEncoder: Wan's original T5 names, parity with transformers' UMT5EncoderModel and
with Wan's own T5 arithmetic, padding, truncation and the per-instruction cache.

Tiny preset (d_model 32, 2 layers), fp32 on CPU. Tolerance: atol 1e-5 / rtol 1e-4
(same weights, different but equivalent arithmetic order).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from liveedit.errors import CheckpointError, InputError
from liveedit.engine.config import TEXT_ENCODER_PRESETS
from liveedit.engine.loading import Weights, load_text_encoder
from liveedit.engine.text import (
    ByteTokenizer,
    TextEncoder,
    build_umt5,
    umt5_config,
    wan_t5_to_transformers,
)

ATOL, RTOL = 1e-5, 1e-4
CONFIG = TEXT_ENCODER_PRESETS["tiny"]


def random_wan_t5(config, seed=0) -> dict[str, torch.Tensor]:
    """A state dict with the names of Wan's `models_t5_umt5-xxl-enc-bf16.pth`."""
    g = torch.Generator().manual_seed(seed)
    d, inner, ff = config.d_model, config.num_heads * config.d_kv, config.d_ff

    def rnd(*shape, scale=1.0):
        return torch.randn(*shape, generator=g) * scale

    sd = {"token_embedding.weight": rnd(config.vocab_size, d), "norm.weight": 1 + 0.1 * rnd(d)}
    for i in range(config.num_layers):
        p = f"blocks.{i}."
        sd[p + "norm1.weight"] = 1 + 0.1 * rnd(d)
        sd[p + "norm2.weight"] = 1 + 0.1 * rnd(d)
        for name in "qkv":
            sd[p + f"attn.{name}.weight"] = rnd(inner, d, scale=d**-0.5)
        sd[p + "attn.o.weight"] = rnd(d, inner, scale=inner**-0.5)
        sd[p + "ffn.gate.0.weight"] = rnd(ff, d, scale=d**-0.5)
        sd[p + "ffn.fc1.weight"] = rnd(ff, d, scale=d**-0.5)
        sd[p + "ffn.fc2.weight"] = rnd(d, ff, scale=ff**-0.5)
        sd[p + "pos_embedding.embedding.weight"] = rnd(config.relative_attention_num_buckets, config.num_heads)
    return sd


def wan_t5_reference(sd, config, ids: torch.Tensor) -> torch.Tensor:
    """Wan's T5Encoder forward (wan/modules/t5.py) written out on the Wan-named weights,
    independent of transformers: catches a swapped gate/fc1 or a wrong bias table."""

    def norm(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))

    def gelu(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))

    def buckets(length):
        rel = torch.arange(length)[None, :] - torch.arange(length)[:, None]
        half = config.relative_attention_num_buckets // 2
        out = (rel > 0).long() * half
        rel = rel.abs()
        exact = half // 2
        large = exact + (
            torch.log(rel.float() / exact) / math.log(config.relative_attention_max_distance / exact) * (half - exact)
        ).long()
        large = torch.clamp(large, max=half - 1)
        return out + torch.where(rel < exact, rel, large)

    b, length = ids.shape
    n, c = config.num_heads, config.d_kv
    x = sd["token_embedding.weight"][ids]
    bucket = buckets(length)
    for i in range(config.num_layers):
        p = f"blocks.{i}."
        bias = sd[p + "pos_embedding.embedding.weight"][bucket].permute(2, 0, 1)[None]  # [1, N, L, L]
        h = norm(x, sd[p + "norm1.weight"])
        q = (h @ sd[p + "attn.q.weight"].T).view(b, -1, n, c)
        k = (h @ sd[p + "attn.k.weight"].T).view(b, -1, n, c)
        v = (h @ sd[p + "attn.v.weight"].T).view(b, -1, n, c)
        attn = F.softmax(torch.einsum("binc,bjnc->bnij", q, k) + bias, dim=-1)
        x = x + torch.einsum("bnij,bjnc->binc", attn, v).reshape(b, -1, n * c) @ sd[p + "attn.o.weight"].T
        h = norm(x, sd[p + "norm2.weight"])
        ffn = (h @ sd[p + "ffn.fc1.weight"].T) * gelu(h @ sd[p + "ffn.gate.0.weight"].T)
        x = x + ffn @ sd[p + "ffn.fc2.weight"].T
    return norm(x, sd["norm.weight"])


@pytest.fixture(scope="module")
def wan_sd():
    return random_wan_t5(CONFIG)


@pytest.fixture()
def encoder(wan_sd, tmp_path):
    # Through a real .pth file, as the sidecar reads Wan's checkpoint.
    path = tmp_path / "models_t5_umt5-xxl-enc-bf16.pth"
    torch.save(wan_sd, path)
    return load_text_encoder(CONFIG, Weights(torch.load(path, weights_only=True), str(path)), ByteTokenizer(),
                             cache_size=2)


def test_wan_pth_matches_umt5_encoder_model_padded_run(encoder, wan_sd):
    """Our unpadded run + zero rows == transformers on 512 padded tokens with the mask."""
    instruction = "make the fur snowy white"
    got = encoder.encode(instruction)
    assert got.shape == (1, 512, CONFIG.d_model)

    ids = ByteTokenizer()(instruction)
    padded = torch.zeros(1, 512, dtype=torch.long)
    padded[0, : len(ids)] = torch.tensor(ids)
    mask = (torch.arange(512) < len(ids)).long()[None]
    reference_model = build_umt5(CONFIG)
    reference_model.load_state_dict(wan_t5_to_transformers(wan_sd))
    with torch.no_grad():
        expected = reference_model(input_ids=padded, attention_mask=mask).last_hidden_state
    expected[:, len(ids) :] = 0

    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)
    assert got[0, len(ids) :].abs().max() == 0
    assert got[0, : len(ids)].abs().min(dim=-1).values.gt(0).all()


def test_wan_pth_matches_wan_t5_arithmetic(encoder, wan_sd):
    instruction = "Change the red currants to deep black grapes."
    ids = torch.tensor([ByteTokenizer()(instruction)])
    expected = wan_t5_reference(wan_sd, CONFIG, ids)
    got = encoder.encode(instruction)
    torch.testing.assert_close(got[:, : ids.shape[1]], expected, atol=ATOL, rtol=RTOL)


def test_whitespace_is_cleaned_and_empty_is_refused(encoder):
    a = encoder.encode("make  it\n snowy ")
    b = encoder.encode("make it snowy")
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    for bad in ["", "   \n\t"]:
        with pytest.raises(InputError, match="empty"):
            encoder.encode(bad)
    with pytest.raises(InputError, match="text"):
        encoder.encode(None)


def test_long_instruction_is_truncated_with_a_warning(encoder, caplog):
    long = "snow " * 200  # 999 bytes -> 1000 tokens with EOS
    with caplog.at_level("WARNING"):
        out = encoder.encode(long)
    stats = encoder.last_stats
    assert stats.truncated and stats.tokens == 512 and stats.tokens_requested == len(long.strip()) + 1
    assert "512" in stats.warning and "512" in caplog.text
    assert out.shape == (1, 512, CONFIG.d_model)
    assert out[0].abs().amin(dim=-1).gt(0).all()  # every row is a real token

    ids, _ = encoder.tokenize(long)
    assert len(ids) == 512 and ids[-1] == 1  # EOS kept last, as the tokenizer truncates


def test_cache_is_lru_and_returns_copies(encoder):
    first = encoder.encode("a")
    assert encoder.last_stats.cached is False
    first.zero_()  # a caller scribbling on its tensor must not touch the cache
    again = encoder.encode("a")
    assert encoder.last_stats.cached is True and again.abs().sum() > 0

    encoder.encode("b")
    encoder.encode("c")  # cache_size=2: "a" is the least recently used and goes
    encoder.encode("a")
    assert encoder.last_stats.cached is False
    encoder.encode("c")
    assert encoder.last_stats.cached is True


def test_dtype_change_clears_cache(encoder):
    encoder.encode("a")
    encoder.to(dtype=torch.float64)
    out = encoder.encode("a")
    assert encoder.last_stats.cached is False and out.dtype == torch.float64


def test_unknown_wan_names_are_refused(wan_sd):
    bad = dict(wan_sd)
    bad["blocks.0.attn.extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="blocks.0.attn.extra.weight"):
        wan_t5_to_transformers(bad, "x.pth")


def test_wrong_shapes_name_the_file(wan_sd):
    other = TEXT_ENCODER_PRESETS["tiny"].__class__(**{**TEXT_ENCODER_PRESETS["tiny"].__dict__, "d_ff": 48})
    with pytest.raises(CheckpointError, match="x.pth.*wrong shape"):
        load_text_encoder(other, Weights(wan_sd, "x.pth"), ByteTokenizer())
    missing = {k: v for k, v in wan_sd.items() if not k.startswith("blocks.1.")}
    with pytest.raises(CheckpointError, match="missing"):
        load_text_encoder(CONFIG, Weights(missing, "x.pth"), ByteTokenizer())


def test_random_tiny_encoder_needs_no_files():
    enc = TextEncoder.random(CONFIG, seed=3)
    out = enc.encode("hello")
    assert out.shape == (1, 512, 32) and torch.isfinite(out).all()
    torch.testing.assert_close(TextEncoder.random(CONFIG, seed=3).encode("hello"), out, atol=0, rtol=0)
    with pytest.raises(InputError, match="tokenizer"):
        TextEncoder.random(TEXT_ENCODER_PRESETS["liveedit-1.3b"])


def test_real_preset_is_umt5_xxl():
    cfg = umt5_config(TEXT_ENCODER_PRESETS["liveedit-1.3b"])
    assert (cfg.d_model, cfg.num_layers, cfg.num_heads, cfg.d_kv, cfg.d_ff) == (4096, 24, 64, 64, 10240)
    assert cfg.vocab_size == 256384 and cfg.dense_act_fn == "gelu_new" and cfg.is_gated_act
