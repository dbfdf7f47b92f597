"""`liveedit weights verify | convert` through the real CLI entry point (no network)."""

from __future__ import annotations

import torch

from liveedit.cli import main


def test_verify_reports_the_missing_file_and_fails(tmp_path, capsys):
    (tmp_path / "Wan2.1_VAE.pth").write_bytes(b"truncated")
    code = main(["weights", "verify", "--weights", str(tmp_path), "--no-hash"])
    out, err = capsys.readouterr()
    assert code == 1
    assert "BAD Wan2.1_VAE.pth" in out and "not a complete torch archive" in out
    assert "BAD ar-forcing_002000.pt" in out and "missing" in out
    assert f"replace them in {tmp_path}" in err


def test_convert_writes_a_slim_file_that_reads_back(tmp_path, capsys):
    from liveedit.engine.config import TRANSFORMER_PRESETS
    from liveedit.engine.transformer import LiveEditTransformer
    from liveedit.sidecar.weight_files import read_transformer_checkpoint

    torch.manual_seed(0)
    model = LiveEditTransformer(TRANSFORMER_PRESETS["tiny"])
    generator = {f"model.{k}": v for k, v in model.state_dict().items()}
    ema = {k: v + 1 for k, v in generator.items()}
    source = tmp_path / "ar-forcing_002000.pt"
    torch.save({"generator": generator, "generator_ema": ema, "critic": {}}, source)

    out = tmp_path / "liveedit-transformer.safetensors"
    assert main(["weights", "convert", str(source), "-o", str(out), "--ema"]) == 0
    assert "EMA generator" in capsys.readouterr().out
    slim = read_transformer_checkpoint(out, use_ema=True)
    for key, value in model.state_dict().items():  # bf16 copy of the EMA weights
        torch.testing.assert_close(slim[key].float(), (value + 1).to(torch.bfloat16).float(), atol=0, rtol=0)

    assert main(["weights", "convert", str(source), "-o", str(tmp_path / "x.pt")]) == 1
    assert ".safetensors" in capsys.readouterr().err


def test_fetch_without_a_known_commit_refuses_before_downloading(tmp_path, capsys, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("nothing may be downloaded")))
    assert main(["weights", "fetch", "--cache-dir", str(tmp_path / "hub")]) == 1
    err = capsys.readouterr().err
    assert "--revision cp-cp/LiveEdit=COMMIT" in err and "--unpinned" in err and "Traceback" not in err
    assert main(["weights", "fetch", "--revision", "cp-cp/LiveEdit=main"]) == 1
    assert "40-character commit" in capsys.readouterr().err
