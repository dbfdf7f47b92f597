"""`liveedit ofx install | check | build` (liveedit/commands/ofx.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from liveedit.commands import ofx
from liveedit.errors import LiveEditError
from take_helpers import fake_factory

REPO = Path(__file__).resolve().parent.parent


def fake_bundle(folder: Path, content: bytes = b"\x7fELF plug-in") -> Path:
    bundle = folder / ofx.BUNDLE
    binary = ofx.bundle_binary(bundle)
    binary.parent.mkdir(parents=True)
    binary.write_bytes(content)
    (bundle / "Contents" / "Info.plist").write_text("<plist/>")
    return bundle


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("OFX_PLUGIN_PATH", str(tmp_path / "ofx-path"))
    monkeypatch.delenv("LIVEEDIT_OFX_PORT", raising=False)


def test_standard_folders_and_bundle_layout_per_os():
    assert ofx.standard_plugin_dir("Linux") == Path("/usr/OFX/Plugins")
    assert ofx.standard_plugin_dir("Darwin") == Path("/Library/OFX/Plugins")
    assert str(ofx.standard_plugin_dir("Windows")).replace("\\", "/").endswith("Common Files/OFX/Plugins")
    assert ofx.arch_folder("Linux", "x86_64") == "Linux-x86-64"
    assert ofx.arch_folder("Windows", "AMD64") == "Win64" and ofx.arch_folder("Darwin", "arm64") == "MacOS"


def test_install_goes_to_the_first_ofx_plugin_path_folder_and_replaces_an_older_copy(tmp_path, capsys):
    bundle = fake_bundle(tmp_path / "build", b"new")
    old = fake_bundle(tmp_path / "ofx-path", b"old")
    (old / "Contents" / "stale.txt").write_text("from the old version")
    args = type("Args", (), {"bundle": bundle, "dest": None})
    assert ofx.run_install(args) == 0
    installed = tmp_path / "ofx-path" / ofx.BUNDLE
    assert ofx.bundle_binary(installed).read_bytes() == b"new"
    assert not (installed / "Contents" / "stale.txt").exists(), "the old bundle is replaced, not merged"
    assert [p.name for p in (tmp_path / "ofx-path").iterdir()] == [ofx.BUNDLE], "no staging folders left"
    assert f"installed {installed}" in capsys.readouterr().out


def test_install_refuses_what_is_not_a_bundle_and_folders_it_cannot_write(tmp_path):
    with pytest.raises(LiveEditError, match="liveedit ofx build"):
        ofx.install_bundle(tmp_path / "nothing", tmp_path / "dest")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(LiveEditError, match="cannot install into .* choose another folder"):
        ofx.install_bundle(fake_bundle(tmp_path / "c"), tmp_path / "a-file" / "plugins")


def test_install_without_permission_says_how_to_fix_it(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(LiveEditError, match="OFX_PLUGIN_PATH"):
        ofx.install_bundle(fake_bundle(tmp_path / "b"), locked)


def test_check_reports_what_is_missing(tmp_path, capsys):
    assert ofx.run_check(None) == 1
    out = capsys.readouterr()
    assert "[missing] installed bundle: not in" in out.out
    assert "[missing] sidecar: not running for this user" in out.out
    assert "missing:" in out.err and "sidecar" in out.err


def test_check_finds_an_installed_bundle_and_a_running_sidecar(tmp_path):
    from liveedit.sidecar.api.bridge import start_bridge
    from liveedit.sidecar.jobs import RenderQueue
    from liveedit.sidecar.takes import TakeService
    from liveedit.sidecar.worker import GpuWorker
    from test_jobs import FakeExecutor

    fake_bundle(tmp_path / "ofx-path")
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    (config / "token").write_text("tok-" + "z" * 40)
    os.chmod(config / "token", 0o600)
    queue = RenderQueue(tmp_path / "jobs.db", FakeExecutor())

    async def main():
        worker = GpuWorker(None)
        takes = TakeService(worker, model_key="fake", random_weights=True, model_description="fake",
                            preview_available=False, editor_factory=fake_factory)
        bridge = await start_bridge(queue, None, token="tok-" + "z" * 40, takes=takes)
        try:
            return await asyncio.to_thread(ofx.checks)
        finally:
            await bridge.close()
            await takes.close()
            await worker.close(drain=False)

    try:
        results = {c.what: c for c in asyncio.run(main())}
    finally:
        queue.close()
    assert results["installed bundle"].ok and str(tmp_path / "ofx-path") in results["installed bundle"].detail
    assert results["sidecar"].ok and "RANDOM weights" in results["sidecar"].detail


@pytest.mark.slow
def test_build_makes_the_bundle_in_the_standard_layout():
    """`liveedit ofx build` in this checkout (scripts/build-ofx, incremental after the first run)."""
    from ofx_host import build_tools_present

    if not build_tools_present():
        pytest.skip("cmake/make/c++ not installed")
    env = {k: v for k, v in os.environ.items() if k != "OFX_PLUGIN_PATH"}
    result = subprocess.run([sys.executable, "-m", "liveedit", "ofx", "build"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    bundle = REPO / "build" / "ofx" / "plugins" / ofx.BUNDLE
    assert f"built {bundle}" in result.stdout
    assert (bundle / "Contents" / "Linux-x86-64" / "LiveEdit.ofx").is_file()
    assert (bundle / "Contents" / "Info.plist").is_file()
