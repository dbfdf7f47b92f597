"""Checkpoint layouts: each accepted file format loads strictly into the tiny model and gives
the same output; wrong weights fail with a message that says what is wrong."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from liveedit.engine.checkpoint import (
    canonical_state_dict,
    repair_fsdp_names,
    select_generator,
    to_diffusers,
    widen_wan_base,
)
from liveedit.errors import CheckpointError
from liveedit.engine.config import TRANSFORMER_PRESETS
from liveedit.engine.loading import Weights, load_transformer
from liveedit.engine.transformer import LiveEditTransformer
from liveedit.sidecar.weight_files import (
    read_checkpoint_metadata,
    read_transformer_checkpoint,
    write_slim_checkpoint,
)

CFG = TRANSFORMER_PRESETS["tiny"]


def random_model(seed: int, zero_source_channels: bool = False) -> LiveEditTransformer:
    torch.manual_seed(seed)
    model = LiveEditTransformer(CFG).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        if zero_source_channels:  # what a widened Wan base holds
            model.patch_embedding.weight[:, 16:] = 0
    return model


@pytest.fixture(scope="module")
def probe():
    g = torch.Generator().manual_seed(9)
    shape = (1, 16, 3, CFG.latent_height, CFG.latent_width)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.randn(1, 4, CFG.text_dim, generator=g)


@torch.no_grad()
def output(model, probe):
    return model(*probe[:2], torch.tensor([500.0]), probe[2])


def loads_as(state_dict, probe) -> torch.Tensor:
    return output(load_transformer(CFG, Weights(state_dict, "test weights")), probe)


def released(gen: dict, ema: dict, critic: dict) -> dict:
    """The released .pt layout: `model.` prefix, some names with FSDP segments."""
    def wrap(sd, fsdp):
        out = {}
        for i, (k, v) in enumerate(sd.items()):
            if fsdp and i % 3 == 0:
                out[f"model._fsdp_wrapped_module.{k}"] = v
            elif fsdp and i % 3 == 1:
                out[f"_fsdp_wrapped_module.model.{k}"] = v
            else:
                out[f"model.{k}"] = v
        return out
    return {"generator": wrap(gen, fsdp=False), "generator_ema": wrap(ema, fsdp=True), "critic": wrap(critic, fsdp=False)}


def test_released_pt_generator_and_ema(tmp_path, probe):
    gen, ema = random_model(1), random_model(2)
    critic = {"blocks.0.self_attn.q.weight": torch.zeros(3, 3)}
    path = tmp_path / "ar-forcing_002000.pt"
    torch.save(released(gen.state_dict(), ema.state_dict(), critic), path)

    assert torch.equal(loads_as(read_transformer_checkpoint(path), probe), output(gen, probe))
    assert torch.equal(loads_as(read_transformer_checkpoint(path, use_ema=True), probe), output(ema, probe))
    # a folder holding the file (and the Wan release's other .pth files) works too
    (tmp_path / "Wan2.1_VAE.pth").write_bytes(b"not a transformer")
    (tmp_path / "models_t5_umt5-xxl-enc-bf16.pth").write_bytes(b"not a transformer")
    assert torch.equal(loads_as(read_transformer_checkpoint(tmp_path), probe), output(gen, probe))


def test_requested_generator_absent_is_a_clear_error():
    only_gen = {"generator": {"model.x": torch.zeros(1)}, "critic": {"model.x": torch.zeros(1)}}
    with pytest.raises(CheckpointError, match=r"no 'generator_ema'.*critic, generator.*without --use-ema"):
        select_generator(only_gen, use_ema=True)
    with pytest.raises(CheckpointError, match=r"no 'generator'.*with --use-ema"):
        select_generator({"generator_ema": {"model.x": torch.zeros(1)}})
    with pytest.raises(CheckpointError, match="no 'generator'"):
        select_generator({"critic": {"model.x": torch.zeros(1)}})


def test_fsdp_names_repaired_and_collisions_refused():
    sd = {"model._fsdp_wrapped_module.blocks.0.ffn.0.weight": torch.zeros(1), "model.head.modulation": torch.zeros(1)}
    assert set(repair_fsdp_names(sd)) == {"model.blocks.0.ffn.0.weight", "model.head.modulation"}
    nested = {
        "model._fsdp_wrapped_module.blocks.0._fsdp_wrapped_module.q.weight": torch.zeros(1),
        "model._fsdp_wrapped_module.blocks.1._fsdp_wrapped_module.q.weight": torch.zeros(1),
    }
    with pytest.raises(CheckpointError, match="FULL_STATE_DICT"):
        repair_fsdp_names(nested)


def test_plain_state_dict_pth(tmp_path, probe):
    model = random_model(3)
    path = tmp_path / "model.pth"
    torch.save(model.state_dict(), path)
    assert torch.equal(loads_as(read_transformer_checkpoint(path), probe), output(model, probe))


def test_wan_base_safetensors_is_widened(tmp_path, probe):
    model = random_model(4, zero_source_channels=True)
    base = model.state_dict()
    base["patch_embedding.weight"] = base["patch_embedding.weight"][:, :16].clone()
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file(base, str(path))
    assert torch.equal(loads_as(read_transformer_checkpoint(tmp_path), probe), output(model, probe))
    wide = widen_wan_base(base)
    assert wide["patch_embedding.weight"].shape[1] == 32 and torch.equal(wide["patch_embedding.bias"], base["patch_embedding.bias"])


def test_diffusers_shards_are_renamed(tmp_path, probe):
    model = random_model(5, zero_source_channels=True)
    diff = to_diffusers(model.state_dict())
    diff["patch_embedding.weight"] = diff["patch_embedding.weight"][:, :16].clone()
    names = sorted(diff)
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": names[::2], "diffusion_pytorch_model-00002-of-00002.safetensors": names[1::2]}
    folder = tmp_path / "transformer"
    folder.mkdir()
    for shard, keys in shards.items():
        save_file({k: diff[k] for k in keys}, str(folder / shard))
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    assert torch.equal(loads_as(read_transformer_checkpoint(tmp_path), probe), output(model, probe))


def test_slim_checkpoint_round_trip(tmp_path, probe):
    model = random_model(6)
    path = tmp_path / "liveedit.safetensors"
    write_slim_checkpoint(model.state_dict(), path, dtype=torch.float32, metadata={"source": "ar-forcing_002000.pt", "ema": False})
    assert torch.equal(loads_as(read_transformer_checkpoint(path), probe), output(model, probe))
    meta = read_checkpoint_metadata(path)
    assert meta["source"] == "ar-forcing_002000.pt" and meta["ema"] == "false" and meta["format"] == "liveedit-transformer"
    with pytest.raises(CheckpointError, match="non-EMA"):
        read_transformer_checkpoint(path, use_ema=True)
    assert [p.name for p in tmp_path.iterdir()] == ["liveedit.safetensors"]  # no temp file left

    bf16 = write_slim_checkpoint(model.state_dict(), tmp_path / "bf16.safetensors", metadata={"ema": True})
    sd = read_transformer_checkpoint(bf16, use_ema=True)
    assert sd["blocks.0.ffn.0.weight"].dtype == torch.bfloat16
    assert torch.equal(sd["head.modulation"], model.state_dict()["head.modulation"].bfloat16())


def test_slim_writer_refuses_to_overwrite_its_source(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(CheckpointError, match="overwrite the source"):
        write_slim_checkpoint(random_model(0).state_dict(), path, metadata={"source": str(path)})


def test_wrong_weights_fail_with_a_clear_message():
    good = canonical_state_dict(random_model(7).state_dict())
    broken = dict(good)
    del broken["blocks.1.ffn.2.bias"]
    broken["blocks.0.extra.weight"] = torch.zeros(2)
    broken["head.modulation"] = torch.zeros(1, 3, CFG.dim)
    with pytest.raises(CheckpointError) as info:
        load_transformer(CFG, Weights(broken, "broken weights"))
    message = str(info.value)
    assert "1 missing: blocks.1.ffn.2.bias" in message
    assert "1 unexpected: blocks.0.extra.weight" in message
    assert f"head.modulation (file [1, 3, {CFG.dim}], model [1, 2, {CFG.dim}])" in message
    assert "Expected" in message

    # the 1.3B preset's weights in the tiny model: long lists are cut short
    with pytest.raises(CheckpointError, match=r"and \d+ more"):
        load_transformer(CFG, Weights({f"blocks.{i}.x": torch.zeros(1) for i in range(30)}, "1.3B weights"))


def test_unreadable_files_are_clear_errors(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="broken.pt"):
        read_transformer_checkpoint(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_transformer_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "a.pt").write_bytes(b"")
    (tmp_path / "b.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="several candidate"):
        read_transformer_checkpoint(tmp_path)
