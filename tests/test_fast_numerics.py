"""Fast numerics (engine/fast_attention.py): the switch, the CPU fallback and the FP8 helpers.
FP8 attention itself needs a Hopper GPU: `liveedit bench --what check-fast-numerics`."""

import pytest, torch
from liveedit.engine import fast_attention
from liveedit.errors import InputError

def test_numerics_switch_is_checked_and_reference_by_default():
    assert fast_attention.numerics() == "reference"
    with pytest.raises(InputError, match="numerics"):
        fast_attention.set_numerics("fp8")

def test_fast_numerics_leave_the_cpu_path_untouched():
    """Off Hopper (here: the CPU) fast numerics cannot run: attention is the reference
    path bitwise, and the bench refuses --numerics fast with the reason."""
    from liveedit.engine.attention import attention
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 20, 2, 16, generator=g) for _ in range(3))
    want = attention(q, k, v, fast_ok=True)
    fast_attention.set_numerics("fast")
    try:
        assert torch.equal(attention(q, k, v, fast_ok=True), want)
        assert not fast_attention.available(torch.device("cpu"))[0]
    finally:
        fast_attention.set_numerics("reference")

def test_bench_refuses_fast_numerics_without_fp8_attention(capsys):
    from liveedit.cli import main
    assert main(["bench", "--model", "tiny", "--device", "cpu", "--dtype", "fp32", "--numerics", "fast",
                 "--what", "transformer"]) != 0
    assert "FP8 attention" in capsys.readouterr().err

def test_fp8_quantisation_helpers_clamp_and_round_trip():
    x = torch.tensor([0.0, 1.0, -3.5, 1000.0, -1000.0])
    q = fast_attention._quantise_eager(x)
    assert q.dtype == torch.float8_e4m3fn
    assert q.float().tolist() == [0.0, 1.0, -3.5, 448.0, -448.0]
    v = torch.tensor([[0.5, -2.0]])
    s = fast_attention._output_scale_eager(v)
    assert float(s) == pytest.approx(224.0)
    o = fast_attention._quantise_eager(v * s)
    assert torch.allclose(fast_attention._dequantise_eager(o, s, torch.float32), v)


def test_model_options_refuse_fast_numerics_where_fp8_attention_cannot_run(monkeypatch):
    """edit, render and serve load their models through one helper: --numerics fast on a
    machine without FP8 attention is a clear error before any model loads, and the default
    stays the reference."""
    import argparse

    from liveedit.commands._models import add_model_arguments, load_models
    from liveedit.sidecar.models import ModelSpec

    loads = []
    real_load = ModelSpec.load
    monkeypatch.setattr(ModelSpec, "load", lambda self, *a, **k: loads.append(self) or real_load(self, *a, **k))

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    args = parser.parse_args(["--model", "tiny", "--device", "cpu", "--numerics", "fast"])
    with pytest.raises(InputError, match="--numerics fast.*CUDA|--numerics fast.*no CUDA"):
        load_models(args)
    assert loads == []  # refused before loading
    load_models(parser.parse_args(["--model", "tiny", "--device", "cpu"]))
    assert len(loads) == 1
    assert fast_attention.numerics() == "reference"
