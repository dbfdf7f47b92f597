"""sidecar.weights: fetch into a fake hub cache (no network), verify, locate, clear
messages for missing weights, and reading original-format files into the engine."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import EntryNotFoundError

from liveedit.errors import LiveEditError
from liveedit.sidecar import weights
from liveedit.sidecar.weights import WEIGHT_FILES, check_file, fetch, locate, verify

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _pth_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def remote_contents() -> dict[tuple[str, str], bytes]:
    """What the fake Hub serves: real torch archives for .pt/.pth, JSON for configs."""
    out = {}
    for i, wf in enumerate(WEIGHT_FILES):  # distinct contents: the cache shares equal blobs
        if wf.filename.endswith((".pt", ".pth")):
            data = _pth_bytes({"w": torch.arange(2000, dtype=torch.float32) + i})
        elif wf.filename.endswith(".json"):
            data = b'{"model_max_length": %d}' % i
        else:
            data = b"sentencepiece model bytes"
        out[(wf.repo_id, wf.filename)] = data
    return out


def small_manifest():
    """The real manifest with sizes the small fake files can meet."""
    return tuple(dataclasses.replace(wf, approx_bytes=None) for wf in WEIGHT_FILES)


class FakeHub:
    """Stands in for hf_hub_download: writes the hub cache layout (blobs named by sha256,
    snapshot symlinks, refs/main) exactly as huggingface_hub does for LFS files."""

    def __init__(self, contents):
        self.contents = contents
        self.calls = []

    def __call__(self, *, repo_id, filename, cache_dir):
        self.calls.append((repo_id, filename))
        if (repo_id, filename) not in self.contents:
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        data = self.contents[(repo_id, filename)]
        repo = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / COMMIT / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(os.path.relpath(blob, link.parent))
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(COMMIT)
        return str(link)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    cache_dir = tmp_path / "hub"
    fetch(cache_dir=cache_dir, download=FakeHub(remote_contents()), progress=False, files=small_manifest())
    return cache_dir


def test_fetch_fills_the_cache_and_locate_finds_it(cache):
    paths = locate(cache_dir=cache, files=small_manifest())
    assert paths.vae.name == "Wan2.1_VAE.pth" and paths.transformer.name == "ar-forcing_002000.pt"
    assert paths.tokenizer_dir.name == "umt5-xxl" and (paths.tokenizer_dir / "tokenizer.json").is_file()
    assert torch.load(paths.vae, weights_only=True)["w"].shape == (2000,)
    checks = verify(cache_dir=cache, files=small_manifest())
    assert all(c.ok for c in checks) and all(c.sha256 for c in checks)


def test_fetch_checks_hash_against_the_blob_name(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = FakeHub(remote_contents())
    real = hub.__call__

    def corrupting(**kw):  # a download that lands damaged bytes under the right name
        path = Path(real(**kw))
        if path.name == "Wan2.1_VAE.pth":
            blob = Path(os.path.realpath(path))
            data = bytearray(blob.read_bytes())
            data[100] ^= 0xFF
            blob.write_bytes(bytes(data))
        return str(path)

    with pytest.raises(LiveEditError, match="Wan2.1_VAE.pth.*sha256.*liveedit weights fetch"):
        fetch(cache_dir=tmp_path, download=corrupting, progress=False, files=small_manifest())


def test_optional_files_may_be_absent(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    contents = remote_contents()
    del contents[(weights.WAN_REPO, "google/umt5-xxl/special_tokens_map.json")]
    fetch(cache_dir=tmp_path, download=FakeHub(contents), progress=False, files=small_manifest())
    locate(cache_dir=tmp_path, files=small_manifest())  # no error
    del contents[(weights.WAN_REPO, "Wan2.1_VAE.pth")]
    with pytest.raises(LiveEditError, match="Wan2.1_VAE.pth"):
        fetch(cache_dir=tmp_path / "b", download=FakeHub(contents), progress=False, files=small_manifest())


def test_verify_catches_a_truncated_file(cache):
    blob = Path(os.path.realpath(locate(cache_dir=cache, files=small_manifest()).text_encoder))
    data = blob.read_bytes()
    blob.write_bytes(data[: len(data) // 2])
    bad = [c for c in verify(cache_dir=cache, files=small_manifest()) if not c.ok]
    assert [c.file.filename for c in bad] == ["models_t5_umt5-xxl-enc-bf16.pth"]
    assert any("truncated" in p for p in bad[0].problems) and any("sha256" in p for p in bad[0].problems)


def test_size_check_catches_truncation_without_a_hash(tmp_path):
    wf = dataclasses.replace(WEIGHT_FILES[0], approx_bytes=10_000)
    path = tmp_path / "Wan2.1_VAE.pth"
    path.write_bytes(_pth_bytes({"w": torch.zeros(10)}))
    problems = check_file(wf, path).problems
    assert any("expected about 10,000" in p for p in problems)
    tokenizer_json = dataclasses.replace(WEIGHT_FILES[3], approx_bytes=None)
    half = tmp_path / "tokenizer.json"
    half.write_text('{"model": {"vocab": [')
    assert any("JSON" in p for p in check_file(tokenizer_json, half).problems)


def test_missing_weights_say_the_exact_command(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(LiveEditError) as info:
        locate(cache_dir=tmp_path / "empty")
    assert "Wan2.1_VAE.pth" in str(info.value) and "`liveedit weights fetch`" in str(info.value)
    assert "--weights DIR" in str(info.value)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LiveEditError, match="HF_HUB_OFFLINE is set.*liveedit weights fetch"):
        locate(cache_dir=tmp_path / "empty")
    with pytest.raises(LiveEditError, match="HF_HUB_OFFLINE"):
        fetch(cache_dir=tmp_path, download=FakeHub({}), progress=False)


def test_interrupted_download_says_resume(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    blobs = tmp_path / f"models--{weights.WAN_REPO.replace('/', '--')}" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / ("a" * 64 + ".incomplete")).write_bytes(b"partial")
    with pytest.raises(LiveEditError, match="interrupted.*liveedit weights fetch.*resume"):
        locate(cache_dir=tmp_path)


def test_weights_folder_flat_layout(tmp_path):
    for wf in WEIGHT_FILES:
        if wf.filename.startswith("ar-forcing"):
            continue
        path = tmp_path / wf.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}")
    with pytest.raises(LiveEditError) as info:
        locate(tmp_path)
    message = str(info.value)
    assert "ar-forcing_002000.pt" in message and str(tmp_path) in message and "--weights" in message
    assert "https://huggingface.co/cp-cp/LiveEdit" in message

    (tmp_path / weights.SLIM_TRANSFORMER).write_bytes(b"x")  # a slim converted file will do
    (tmp_path / weights.TINY_VAE_FILE).write_bytes(b"x")
    paths = locate(tmp_path)
    assert paths.transformer.name == weights.SLIM_TRANSFORMER and paths.tiny_vae is not None
    assert paths.source == str(tmp_path)
    with pytest.raises(LiveEditError, match="not a folder"):
        locate(tmp_path / "nope")


def test_load_vae_and_text_encoder_from_original_files(tmp_path):
    """The readers load synthesised original-format files strictly (parity with the
    reference implementations is in test_vae.py / test_text.py)."""
    from test_text import random_wan_t5
    from test_vae import diffusers_vae_to_wan

    from liveedit.engine import loading
    from liveedit.engine.config import TEXT_ENCODER_PRESETS, VAE_PRESETS
    from liveedit.engine.text import ByteTokenizer
    from liveedit.engine.vae import build_vae
    from liveedit.sidecar.weight_files import read_torch_file

    def read(path):
        return loading.Weights(read_torch_file(path), str(path))

    torch.manual_seed(0)
    reference = build_vae(VAE_PRESETS["tiny"])
    torch.save(diffusers_vae_to_wan(reference.state_dict()), tmp_path / "Wan2.1_VAE.pth")
    vae = loading.load_vae(VAE_PRESETS["tiny"], read(tmp_path / "Wan2.1_VAE.pth"))
    for key, value in reference.state_dict().items():
        assert torch.equal(vae.state_dict()[key], value), key

    config = TEXT_ENCODER_PRESETS["tiny"]
    torch.save(random_wan_t5(config), tmp_path / "t5.pth")
    encoder = loading.load_text_encoder(config, read(tmp_path / "t5.pth"), ByteTokenizer(), dtype=torch.float32)
    assert not any(p.is_meta for p in encoder.model.parameters())
    out = encoder.encode("make it snow")
    assert out.shape == (1, 512, 32) and torch.isfinite(out).all()


def test_damaged_file_is_a_clear_error(tmp_path):
    from liveedit.errors import CheckpointError
    from liveedit.sidecar.weight_files import read_torch_file

    (tmp_path / "Wan2.1_VAE.pth").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="Wan2.1_VAE.pth.*liveedit weights verify"):
        read_torch_file(tmp_path / "Wan2.1_VAE.pth")


def test_tiny_preset_has_no_released_weights():
    from liveedit.sidecar.weight_files import load_editor_models

    with pytest.raises(LiveEditError, match="no released weights"):
        load_editor_models("tiny")
