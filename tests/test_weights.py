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
    snapshot symlinks, refs/main) exactly as huggingface_hub does for LFS files. A download
    must name its revision: a commit, or a branch ("main") that resolves to COMMIT."""

    def __init__(self, contents):
        self.contents = contents
        self.calls = []

    def __call__(self, *, repo_id, filename, revision, cache_dir):
        self.calls.append((repo_id, filename, revision))
        assert revision == "main" or weights.COMMIT_PATTERN.fullmatch(revision), revision
        commit = COMMIT if revision == "main" else revision
        if (repo_id, filename) not in self.contents:
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        data = self.contents[(repo_id, filename)]
        repo = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(os.path.relpath(blob, link.parent))
        if revision == "main":
            (repo / "refs").mkdir(exist_ok=True)
            (repo / "refs" / "main").write_text(COMMIT)
        return str(link)


LIVEEDIT_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """Pins are recorded in the config folder: a private one per test."""
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    cache_dir = tmp_path / "hub"
    fetch(cache_dir=cache_dir, download=FakeHub(remote_contents()), progress=False, files=small_manifest(),
          revisions={weights.LIVEEDIT_REPO: LIVEEDIT_COMMIT})
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
        fetch(cache_dir=tmp_path, download=corrupting, progress=False, files=small_manifest(), unpinned=True)


def test_optional_files_may_be_absent(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    contents = remote_contents()
    del contents[(weights.WAN_REPO, "google/umt5-xxl/special_tokens_map.json")]
    fetch(cache_dir=tmp_path, download=FakeHub(contents), progress=False, files=small_manifest(), unpinned=True)
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
        fetch(cache_dir=tmp_path, download=FakeHub({}), progress=False, unpinned=True)


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


# -- pinned downloads ------------------------------------------------------------------------
HUB_DOWNLOADS = {"hf_hub_download", "snapshot_download"}
ROOT = Path(__file__).resolve().parent.parent


def _unpinned_hub_calls(path: Path) -> list[str]:
    """Calls of huggingface_hub's downloaders (under any imported name) without revision=, and
    from_pretrained calls that may reach the Hub (neither revision= nor local_files_only=True)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = set(HUB_DOWNLOADS)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("huggingface_hub"):
            names |= {alias.asname or alias.name for alias in node.names if alias.name in HUB_DOWNLOADS}
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        keywords = {k.arg: k.value for k in node.keywords}
        local_only = isinstance(keywords.get("local_files_only"), ast.Constant) and keywords["local_files_only"].value
        if (name in names or name == "from_pretrained") and "revision" not in keywords and not local_only:
            bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(...)")
    return bad


def test_no_hub_download_in_the_code_goes_without_a_revision():
    sources = [p for folder in ("engine", "sidecar", "liveedit", "clients", "ui", "scripts")
               for p in (ROOT / folder).rglob("*.py")]
    assert len(sources) > 50
    bad = [call for path in sources for call in _unpinned_hub_calls(path)]
    assert not bad, f"every hub download must name a commit (revision=): {bad}"
    # The scan is real: it finds an unpinned call under an alias.
    probe = ROOT / "tests" / "_probe_unpinned.py"
    try:
        probe.write_text("from huggingface_hub import hf_hub_download as get\nget('a/b', 'c.pth')\n")
        assert _unpinned_hub_calls(probe) == ["tests/_probe_unpinned.py:2 get(...)"]
    finally:
        probe.unlink()


def test_fetch_downloads_every_file_at_a_commit(tmp_path, monkeypatch):
    """huggingface_hub itself, replaced: each download names a full commit id."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = FakeHub(remote_contents())

    def strict_download(repo_id, filename, *, revision=None, cache_dir=None, **rest):
        assert revision is not None and weights.COMMIT_PATTERN.fullmatch(revision), (repo_id, filename, revision)
        return hub(repo_id=repo_id, filename=filename, revision=revision, cache_dir=cache_dir)

    def no_snapshots(*args, **kwargs):
        raise AssertionError("fetch downloads file by file, at a commit")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", strict_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_snapshots)
    fetch(cache_dir=tmp_path / "hub", progress=False, files=small_manifest(),
          revisions={weights.LIVEEDIT_REPO: LIVEEDIT_COMMIT})
    revisions = {(repo, rev) for repo, _, rev in hub.calls}
    assert revisions == {(weights.WAN_REPO, weights.REVISIONS[weights.WAN_REPO]), (weights.LIVEEDIT_REPO, LIVEEDIT_COMMIT)}
    assert len(hub.calls) == len(WEIGHT_FILES)


def test_an_unknown_commit_is_never_taken_silently(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert weights.REVISIONS[weights.LIVEEDIT_REPO] is None  # no published commit could be checked
    hub = FakeHub(remote_contents())
    with pytest.raises(LiveEditError) as info:
        fetch(cache_dir=tmp_path / "hub", download=hub, progress=False, files=small_manifest())
    message = str(info.value)
    assert f"--revision {weights.LIVEEDIT_REPO}=COMMIT" in message and "--unpinned" in message
    assert hub.calls == []  # refused before downloading anything

    # A cache filled by someone else's download of main is not used either.
    FakeHub(remote_contents())(repo_id=weights.LIVEEDIT_REPO, filename="ar-forcing_002000.pt", revision="main",
                               cache_dir=tmp_path / "other")
    fetch(cache_dir=tmp_path / "other", download=FakeHub(remote_contents()), progress=False,
          files=tuple(wf for wf in small_manifest() if wf.repo_id == weights.WAN_REPO))
    with pytest.raises(LiveEditError, match=f"--revision {weights.LIVEEDIT_REPO}=COMMIT"):
        locate(cache_dir=tmp_path / "other", files=small_manifest())


def test_unpinned_takes_main_once_and_records_its_commit(tmp_path, monkeypatch, config_dir):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = FakeHub(remote_contents())
    fetch(cache_dir=tmp_path / "hub", download=hub, progress=False, files=small_manifest(), unpinned=True)
    assert {rev for repo, _, rev in hub.calls if repo == weights.LIVEEDIT_REPO} == {"main"}
    pins = weights.read_pins()
    assert pins["revisions"][weights.LIVEEDIT_REPO] == COMMIT  # what main was when it was fetched
    assert pins["revisions"][weights.WAN_REPO] == weights.REVISIONS[weights.WAN_REPO]
    assert (config_dir / weights.PINS_FILE).is_file()
    # Later runs use that commit: locate finds it, and the next fetch asks for it, not for main.
    assert locate(cache_dir=tmp_path / "hub", files=small_manifest()).transformer.name == "ar-forcing_002000.pt"
    again = FakeHub(remote_contents())
    fetch(cache_dir=tmp_path / "hub", download=again, progress=False, files=small_manifest())
    assert {rev for repo, _, rev in again.calls if repo == weights.LIVEEDIT_REPO} == {COMMIT}


def test_a_weights_folder_is_checked_against_the_known_hashes(tmp_path, cache):
    folder = tmp_path / "weights"
    paths = locate(cache_dir=cache, files=small_manifest())
    for wf in WEIGHT_FILES:
        source = paths.tokenizer_dir.parent.parent / wf.filename if wf.role == "tokenizer" else None
        source = {"vae": paths.vae, "text_encoder": paths.text_encoder, "transformer": paths.transformer}.get(
            wf.role, source)
        (folder / wf.filename).parent.mkdir(parents=True, exist_ok=True)
        (folder / wf.filename).write_bytes(Path(os.path.realpath(source)).read_bytes())
    assert all(c.ok for c in verify(folder, files=small_manifest()))
    # Same size, still a readable zip, one byte changed: only the recorded hash catches it.
    vae = folder / "Wan2.1_VAE.pth"
    data = bytearray(vae.read_bytes())
    data[len(data) // 3] ^= 0xFF
    vae.write_bytes(bytes(data))
    bad = [c for c in verify(folder, files=small_manifest()) if not c.ok]
    assert [c.file.filename for c in bad] == ["Wan2.1_VAE.pth"]
    assert "differs from the known" in bad[0].problems[0]
    # A hash this release knows counts even without a recorded fetch.
    known = tuple(dataclasses.replace(wf, sha256="0" * 64) if wf.role == "tokenizer" else wf for wf in small_manifest())
    Path(os.environ["LIVEEDIT_CONFIG_DIR"], weights.PINS_FILE).unlink()  # no recorded hashes
    flagged = {c.file.filename for c in verify(folder, files=known) if not c.ok}
    assert flagged == {wf.filename for wf in known if wf.role == "tokenizer"}


def test_revision_overrides_must_be_commits():
    assert weights.parse_revision(f"{weights.LIVEEDIT_REPO}={LIVEEDIT_COMMIT.upper()}") == (weights.LIVEEDIT_REPO,
                                                                                         LIVEEDIT_COMMIT)
    for text in (f"{weights.LIVEEDIT_REPO}=main", weights.LIVEEDIT_REPO, f"={LIVEEDIT_COMMIT}"):
        with pytest.raises(LiveEditError, match="40-character commit"):
            weights.parse_revision(text)


def test_files_reach_the_engine_one_part_at_a_time(tmp_path):
    """weight_files.FileWeights over released-format files (tiny shapes) → the engine's
    load_editor_models: every part loads strictly from its file, the files read in
    loading order."""
    from test_text import random_wan_t5
    from test_vae import diffusers_vae_to_wan

    from liveedit.engine import loading
    from liveedit.engine.presets import get_preset
    from liveedit.engine.transformer import LiveEditTransformer
    from liveedit.engine.vae import build_vae
    from liveedit.sidecar import weight_files

    preset = get_preset("tiny")
    torch.manual_seed(0)
    vae, transformer = build_vae(preset.vae), LiveEditTransformer(preset.transformer)
    torch.save(diffusers_vae_to_wan(vae.state_dict()), tmp_path / "Wan2.1_VAE.pth")
    torch.save(random_wan_t5(preset.text_encoder), tmp_path / "t5.pth")
    torch.save({"generator": {f"model.{k}": v for k, v in transformer.state_dict().items()}}, tmp_path / "ar.pt")
    paths = weights.WeightPaths(vae=tmp_path / "Wan2.1_VAE.pth", text_encoder=tmp_path / "t5.pth",
                                tokenizer_dir=tmp_path, transformer=tmp_path / "ar.pt", tiny_vae=None,
                                source=str(tmp_path))

    read: list[str] = []

    class Recording(weight_files.FileWeights):
        def vae(self):
            read.append("vae")
            return super().vae()

        def text_encoder(self):
            read.append("text_encoder")
            return super().text_encoder()

        def transformer(self):
            read.append("transformer")
            return super().transformer()

    models = loading.load_editor_models(preset, Recording(paths, preset), device="cpu", dtype=torch.float32)
    assert read == ["vae", "text_encoder", "transformer"] and not models.random_weights and models.tiny_vae is None
    assert models.description == f"tiny: LiveEdit ar.pt (generator) from {tmp_path}"
    for key, value in transformer.state_dict().items():
        assert torch.equal(models.transformer.state_dict()[key], value), key
    assert models.text_encoder.encode("snow").shape == (1, 512, preset.text_encoder.d_model)
