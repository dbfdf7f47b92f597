"""The LiveEdit OpenFX bundle inside a real OpenFX host (the SDK's HostSupport in ofx-testhost,
clients/ofx/testhost), against a real `liveedit serve --model tiny` (random weights, CPU). The host
is a subprocess: a plug-in crash shows as its exit status, never as a crashed test run.

Checked (issue 16's "done means"): the bundle is found and described with its parameters; frames
rendered in order, shuffled and from 4 host threads are bitwise equal; an instruction change and
one changed source frame re-edit exactly the frames from that point (the sidecar's counters); a
stopped, killed or stalled sidecar gives pass-through plus a message in interactive renders and
failed frames in final ones while the host keeps running; 8-bit, 16-bit and float RGBA, odd sizes,
a sub-window and render scale 0.5 come back exactly as asked; only the OpenFX entry points are
exported."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from live_sidecar import LiveSidecar
from ofx_host import OfxHost, build_ofx, read_frame, write_frame

pytestmark = pytest.mark.slow

PLUGIN = "org.liveedit.LiveEdit"
INSTRUCTION = "make the fur snowy white"
FRAMES = list(range(17))  # a 9-frame chunk, then a short one of 8: the clip ends mid-chunk


@pytest.fixture(scope="module")
def built():
    paths = build_ofx()
    binary = paths.plugins / "LiveEdit.ofx.bundle" / "Contents" / "Linux-x86-64" / "LiveEdit.ofx"
    assert binary.is_file(), f"scripts/build-ofx did not build {binary}"
    paths.binary = binary
    return paths


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    with LiveSidecar(tmp_path_factory.mktemp("sidecar")) as running:
        yield running


def host_for(built, config: Path, io_timeout: float = 10, **env) -> OfxHost:
    return OfxHost([built.plugins], env={"LIVEEDIT_CONFIG_DIR": str(config),
                                         "LIVEEDIT_OFX_IO_TIMEOUT": str(io_timeout), **env})


def checksums(answer: dict) -> list[str]:
    assert answer["ok"], [(f["frame"], f.get("error")) for f in answer["frames"] if not f["ok"]]
    return [f["checksum"] for f in answer["frames"]]


def edited(sidecar: LiveSidecar, before: dict) -> tuple[int, int]:
    after = sidecar.stats()
    return after["edited_frames"] - before["edited_frames"], after["replayed_frames"] - before["replayed_frames"]


def test_only_the_openfx_entry_points_are_exported(built):
    out = subprocess.run(["nm", "-D", "--defined-only", str(built.binary)], capture_output=True, text=True, check=True)
    symbols = {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    assert symbols == {"OfxGetNumberOfPlugins", "OfxGetPlugin"}
    needed = subprocess.run(["readelf", "-d", str(built.binary)], capture_output=True, text=True, check=True).stdout
    assert "libstdc++" not in needed, "the C++ runtime is linked in, so a host's own libstdc++ cannot clash"


def test_the_plugin_is_found_and_described_with_its_parameters(built, sidecar):
    with host_for(built, sidecar.config) as host:
        plugin = next(p for p in host.list() if p["identifier"] == PLUGIN)
        assert plugin["label"] == "LiveEdit" and plugin["bundle"].endswith("LiveEdit.ofx.bundle")
        assert set(plugin["contexts"]) == {"OfxImageEffectContextFilter", "OfxImageEffectContextGeneral"}
        assert set(plugin["depths"]) == {"OfxBitDepthByte", "OfxBitDepthShort", "OfxBitDepthFloat"}
        assert plugin["temporal_access"] is True and plugin["supports_tiles"] is True
        assert plugin["render_thread_safety"] == "OfxImageEffectRenderFullySafe"
        params = {p["name"]: p for p in plugin["params"]}
        assert params["instruction"]["kind"] == "string"
        assert params["instruction"]["string_mode"] == "OfxParamStringIsMultiLine"
        assert params["seed"]["kind"] == "int" and params["seed"]["default"] == 0
        assert params["quality"]["options"] == ["Full", "Preview"] and params["quality"]["default"] == 0
        assert params["maskCache"]["kind"] == "bool" and params["maskCache"]["default"] is False
        assert params["editStart"]["kind"] == "int" and params["editStart"]["default"] == 0
        assert len(params["inputColour"]["options"]) == 2
        assert params["status"]["string_mode"] == "OfxParamStringIsLabel"  # read-only
        assert not any(p["animates"] for p in plugin["params"] if p["kind"] != "page")

        for context in ("filter", "general"):
            host.create(PLUGIN, context=context, params={"instruction": INSTRUCTION})
            status = host.get("status")
            assert f"Connected to the LiveEdit sidecar on 127.0.0.1:{sidecar.port}" in status
            assert "RANDOM WEIGHTS" in status, "random weights never pass for an edit"
    assert host.proc.returncode == 0


def test_in_order_shuffled_and_four_threads_give_the_same_pixels(built, sidecar, tmp_path):
    with host_for(built, sidecar.config) as host:
        host.source(width=64, height=48, depth="byte", first=0, last=16, pattern="noise", seed=1)
        host.create(PLUGIN, params={"instruction": INSTRUCTION, "seed": 5})
        runs = {}
        for name, frames, fields in (
            ("in order", FRAMES, {"sequential": True}),
            ("shuffled", random.Random(3).sample(FRAMES, len(FRAMES)), {}),
            ("4 threads", random.Random(4).sample(FRAMES, len(FRAMES)), {"threads": 4}),
        ):
            sidecar.clear()  # every run edits afresh: nothing comes from an earlier run's cache
            before = sidecar.stats()
            answer = host.render(frames, out=tmp_path / name.replace(" ", "_"), **fields)
            sums = dict(zip(frames, checksums(answer)))
            runs[name] = [sums[f] for f in FRAMES]
            assert edited(sidecar, before) == (17, 0), name
            if name == "4 threads":
                assert answer["concurrent"] and answer["max_concurrent"] > 1, "the host ran renders at once"
        assert runs["in order"] == runs["shuffled"] == runs["4 threads"]
        assert len(set(runs["in order"])) == 17
        warnings = [m for m in host.messages() if m["type"] == "OfxMessageWarning"]
        assert warnings and "RANDOM weights" in warnings[0]["text"]
        # the edit is not the source
        source = host.dump_source(4, tmp_path / "src")
        edit, _ = read_frame(tmp_path / "in_order" / "000004.rgba")
        original, _ = read_frame(source["file"])
        assert not np.array_equal(edit[..., :3], original[..., :3])
        assert np.array_equal(edit[..., 3], original[..., 3]), "alpha is the source's"
    assert host.proc.returncode == 0


def test_a_changed_instruction_or_source_frame_re_edits_exactly_from_that_point(built, sidecar, tmp_path):
    with host_for(built, sidecar.config) as host:
        host.source(width=64, height=48, depth="byte", first=0, last=16, pattern="noise", seed=2)
        host.create(PLUGIN, params={"instruction": INSTRUCTION})
        first = checksums(host.render(FRAMES, sequential=True))

        before = sidecar.stats()
        host.set("instruction", "turn it into a watercolour")
        other = checksums(host.render(FRAMES, sequential=True))
        assert edited(sidecar, before) == (17, 0), "a new instruction is a new take from the edit start"
        assert all(a != b for a, b in zip(first, other))

        before = sidecar.stats()
        host.set("instruction", INSTRUCTION)
        assert checksums(host.render(FRAMES)) == first
        assert edited(sidecar, before) == (0, 0), "the first take is still there"

        before = sidecar.stats()
        host.change_frame(12, seed=99)  # inside the second chunk (frames 9..16)
        changed = checksums(host.render(FRAMES, sequential=True))
        assert edited(sidecar, before) == (8, 9), "frames 9..16 edited again; chunk 0 replayed to rebuild the state"
        assert changed[:9] == first[:9] and changed[9:] != first[9:]
        # Random weights barely look at the source (a few pixels move by one code), so the
        # re-edit is checked against a fresh in-order render of the changed clip instead.
        sidecar.clear()
        assert checksums(host.render(FRAMES, sequential=True)) == changed

        before = sidecar.stats()
        host.change_frame(3, seed=77, notify=False)  # an upstream change the host does not announce
        checksums(host.render(FRAMES))
        assert edited(sidecar, before) == (17, 0), "frame 3 is in the first chunk: everything from it is new"
    assert host.proc.returncode == 0


def test_trusted_image_ids_keep_hashes_between_renders_and_still_see_silent_changes(built, sidecar, tmp_path):
    """LIVEEDIT_OFX_TRUST_IMAGE_IDS=1: hashes are kept between renders under the host's image
    identifiers; a host that changes an identifier with its picture still gets exact re-edits."""
    with host_for(built, sidecar.config, LIVEEDIT_OFX_TRUST_IMAGE_IDS="1", LIVEEDIT_OFX_TRACE="1") as host:
        host.source(width=32, height=24, depth="byte", first=0, last=11, pattern="noise", seed=6)
        host.create(PLUGIN, params={"instruction": INSTRUCTION})
        frames = list(range(12))
        first = checksums(host.render(frames))
        mark = len(host.stderr.splitlines())
        assert checksums(host.render(frames)) == first
        deadline = time.monotonic() + 10  # stderr is read on its own thread: it may trail the answer
        while True:
            traces = [line for line in host.stderr.splitlines()[mark:] if line.startswith("liveedit-ofx: frame")]
            if len(traces) >= 12 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(traces) == 12 and all(": 0 of " in line for line in traces), "no frame hashed again"
        before = sidecar.stats()
        host.change_frame(10, seed=5, notify=False)  # the identifier changes; nobody says so
        changed = checksums(host.render(frames))
        assert edited(sidecar, before) == (3, 9), "frames 9..11 edited again, chunk 0 replayed"
        assert changed[:9] == first[:9]
    assert host.proc.returncode == 0


def test_frames_before_the_edit_start_pass_through(built, sidecar, tmp_path):
    with host_for(built, sidecar.config) as host:
        host.source(width=32, height=24, depth="byte", first=10, last=24, pattern="noise", seed=3)
        host.create(PLUGIN, params={"instruction": INSTRUCTION, "editStart": 3})
        before = sidecar.stats()
        answer = host.render(list(range(10, 22)))
        assert answer["ok"]
        identity = [f["frame"] for f in answer["frames"] if f.get("identity")]
        assert identity == [10, 11, 12], "before the edit start (clip start + 3) the source is used as it is"
        assert edited(sidecar, before) == (9, 0), "frames 13..21 are the take's first chunk"
        needed = next(f for f in answer["frames"] if f["frame"] == 15)["frames_needed"]
        assert needed == [13, 21], "temporal access: the edit start through the frame's chunk"


def write_clip(folder: Path, frames: list[np.ndarray], depth: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, rgba in enumerate(frames):
        if depth == "short":
            pixels = rgba.astype(np.uint16) * 257
        elif depth == "float":
            pixels = rgba.astype(np.float32) / np.float32(255)
        else:
            pixels = rgba
        write_frame(folder / f"{n:06d}.rgba", pixels)


def test_8bit_16bit_float_odd_sizes_windows_and_render_scale(built, sidecar, tmp_path):
    """The same 8-bit picture as byte, short and float frames reaches the model as the same
    8-bit picture, and the edit is delivered at each host's precision (detail "transfer": the
    source plus the model's change): the three agree to within the rounding of the coarser depth
    (one code) once put on one scale, and the 16-bit and float edits have more than 8 bits; alpha
    is the source's at every depth; a sub-window is that window of the whole frame and nothing
    outside it is written; at render scale 0.5 the output is the scaled frame's size."""
    width, height = 37, 23
    rng = np.random.default_rng(7)
    clip = [rng.integers(0, 256, (height, width, 4), dtype=np.uint8) for _ in range(9)]
    results = {}
    with host_for(built, sidecar.config) as host:
        for depth in ("byte", "short", "float"):
            folder = tmp_path / depth
            write_clip(folder, clip, depth)
            host.source(width=width, height=height, depth=depth, first=0, last=8, dir=folder)
            host.create(PLUGIN, params={"instruction": INSTRUCTION})
            whole = host.render([4], out=tmp_path / f"{depth}-whole")
            checksums(whole)
            window = host.render([4], out=tmp_path / f"{depth}-window", window=[5, 3, 30, 20], output_bounds="rod")
            checksums(window)
            assert window["frames"][0]["wrote_outside_window"] is False
            half = host.render([4], out=tmp_path / f"{depth}-half", render_scale=0.5)
            checksums(half)
            results[depth] = [read_frame(tmp_path / f"{depth}-{kind}" / "000004.rgba")[0]
                              for kind in ("whole", "window", "half")]
            source_half, _ = read_frame(host.dump_source(4, tmp_path / f"{depth}-src", render_scale=0.5)["file"])
            results[depth].append(source_half)

    byte_whole, byte_window, byte_half, byte_source_half = results["byte"]
    assert byte_whole.shape == (height, width, 4)
    assert np.array_equal(byte_whole[..., 3], clip[4][..., 3]), "alpha kept"
    assert not np.array_equal(byte_whole[..., :3], clip[4][..., :3])
    # the window render's output image is the whole frame pre-filled by the host; the host checked
    # that nothing outside the window was written (wrote_outside_window)
    assert np.array_equal(byte_window[3:20, 5:30], byte_whole[3:20, 5:30])
    assert byte_half.shape == (12, 19, 4), "ceil(23 / 2) x ceil(37 / 2)"
    assert np.array_equal(byte_half[..., 3], byte_source_half[..., 3])

    short_whole, short_window, short_half, _ = results["short"]
    assert short_whole.dtype == np.uint16
    assert np.array_equal(short_whole[..., 3], clip[4][..., 3].astype(np.uint16) * 257)
    assert np.array_equal(short_window[3:20, 5:30], short_whole[3:20, 5:30])
    assert np.any(short_whole[..., :3] % 257 != 0), "16-bit codes, not the 8-bit edit scaled"

    float_whole, float_window, float_half, _ = results["float"]
    assert float_whole.dtype == np.float32
    assert np.array_equal(float_whole[..., 3], clip[4][..., 3].astype(np.float32) / np.float32(255))
    assert np.array_equal(float_window[3:20, 5:30], float_whole[3:20, 5:30])
    assert np.any(float_whole[..., :3] * 255 % 1 != 0), "float values, not 8-bit codes"

    def codes(values: np.ndarray, top: int) -> np.ndarray:
        """Float values as the nearest code of an integer depth (integer depths clip, float does not)."""
        return np.floor(np.clip(values.astype(np.float64), 0, 1) * top + 0.5)

    for floats, short, byte in ((float_whole, short_whole, byte_whole), (float_half, short_half, byte_half)):
        assert np.abs(short[..., :3] - codes(floats[..., :3], 65535)).max() <= 1
        assert np.abs(byte[..., :3] - codes(floats[..., :3], 255)).max() <= 1


def test_an_opaque_source_comes_back_opaque(built, sidecar, tmp_path):
    """Opaque frames (every alpha 1): the answer says so and the plug-in fills alpha itself."""
    with host_for(built, sidecar.config) as host:
        host.source(width=33, height=17, depth="float", first=0, last=8, pattern="gradient", seed=2)
        host.create(PLUGIN, params={"instruction": INSTRUCTION})
        answer = host.render([2, 7], out=tmp_path / "out")
        checksums(answer)
        for frame in (2, 7):
            edit, _ = read_frame(tmp_path / "out" / f"{frame:06d}.rgba")
            source, _ = read_frame(host.dump_source(frame, tmp_path / "src")["file"])
            assert np.all(source[..., 3] == 1.0) and np.all(edit[..., 3] == 1.0)
            assert not np.array_equal(edit[..., :3], source[..., :3])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def interactive_and_final(host: OfxHost, tmp_path: Path, frames: list[int]) -> tuple[dict, dict]:
    interactive = host.render(frames, out=tmp_path / "interactive", interactive=True)
    final = host.render(frames, out=tmp_path / "final", interactive=False)
    return interactive, final


def assert_pass_through_and_failure(host: OfxHost, interactive: dict, final: dict, tmp_path: Path, reason: str):
    assert interactive["ok"], "interactive renders show the source instead of failing"
    for frame in interactive["frames"]:
        shown, _ = read_frame(frame["file"])
        source, _ = read_frame(host.dump_source(frame["frame"], tmp_path / "source")["file"])
        assert np.array_equal(shown, source), "pass-through: the source, unedited"
    errors = [e for e in interactive["events"] if e.get("event") == "message" and e["type"] == "OfxMessageError"]
    assert errors and reason in errors[0]["text"] and "showing the source unedited" in errors[0]["text"]
    assert not final["ok"] and all(not f["ok"] for f in final["frames"]), "a final render never writes unedited frames"
    assert all(f["status"] == "kOfxStatFailed" for f in final["frames"])
    errors = [e for e in final["events"] if e.get("event") == "message" and e["type"] == "OfxMessageError"]
    assert errors and "the render stops here" in errors[0]["text"]


def test_no_sidecar_gives_pass_through_interactively_and_a_failed_final_render(built, tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "bridge.json").write_text(f'{{"port": {free_port()}}}')  # a sidecar that has stopped
    (config / "token").write_text("t" * 40)
    with host_for(built, config) as host:
        host.source(width=20, height=10, depth="float", first=0, last=4, pattern="noise", seed=1)
        host.create(PLUGIN, params={"instruction": INSTRUCTION})
        assert host.get("status").startswith("Not connected: cannot connect to the LiveEdit sidecar")
        interactive, final = interactive_and_final(host, tmp_path, [0, 3])
        assert_pass_through_and_failure(host, interactive, final, tmp_path, "cannot connect to the LiveEdit sidecar")
    assert host.proc.returncode == 0


def test_a_sidecar_killed_mid_render_leaves_the_host_running(built, tmp_path):
    with LiveSidecar(tmp_path / "sidecar") as doomed, host_for(built, doomed.config) as host:
        host.source(width=64, height=48, depth="byte", first=0, last=40, pattern="noise", seed=4)
        host.create(PLUGIN, params={"instruction": INSTRUCTION})
        result = {}
        render = threading.Thread(target=lambda: result.update(host.render(list(range(41)), interactive=False)))
        render.start()
        deadline = time.monotonic() + 120
        while doomed.stats()["source_frames"] == 0:  # the render has reached the sidecar
            assert time.monotonic() < deadline and render.is_alive()
            time.sleep(0.05)
        doomed.kill()
        render.join(300)
        assert not render.is_alive() and result, "the render came back"
        assert not result["ok"] and not result["frames"][-1]["ok"], "frames after the kill failed"
        assert host.proc.poll() is None, "the host is still running"
        # the sidecar is gone now: interactive renders show the source, final ones fail
        interactive, final = interactive_and_final(host, tmp_path, [2])
        assert_pass_through_and_failure(host, interactive, final, tmp_path, "cannot connect")
    assert host.proc.returncode == 0


def test_a_stalled_sidecar_times_out_instead_of_hanging_the_host(built, sidecar, tmp_path):
    with host_for(built, sidecar.config, io_timeout=2) as host:
        host.source(width=24, height=16, depth="byte", first=0, last=8, pattern="noise", seed=8)
        host.create(PLUGIN, params={"instruction": "a stalled take"})
        sidecar.pause()  # SIGSTOP: connections are accepted by the kernel, nothing answers
        try:
            started = time.monotonic()
            interactive, final = interactive_and_final(host, tmp_path, [1])
            seconds = time.monotonic() - started
        finally:
            sidecar.resume()
        assert seconds < 30, "two renders each gave up after the 2 s I/O timeout, not the host's"
        assert_pass_through_and_failure(host, interactive, final, tmp_path, "did not answer for 2000 ms")
        assert host.status()["hung"] is False
    assert host.proc.returncode == 0
