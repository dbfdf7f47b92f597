"""ofx-testhost (clients/ofx/testhost) proves itself on plugins this project did not write before it
judges ours: the OpenFX SDK's example plugins Invert and Basic (gain), built from the SDK in place,
loaded through the plugin cache, described, instantiated, set and rendered in 8-bit, 16-bit and
float, at render scale 0.5, in odd sizes and windows, with pixels checked against what each effect
must produce. The host's probe plugin (clients/ofx/testhost/probe) covers temporal access from
several threads, concurrency, messages and failures on demand; the host runs as a subprocess, so
a crash is an exit status."""

from __future__ import annotations

import json
import os
import random
import subprocess

import numpy as np
import pytest

from ofx_host import OfxHost, OfxHostDied, OfxHostError, build_ofx, exported_symbols, read_frame, write_frame

INVERT = "uk.co.thefoundry.OfxInvertExample"
SUPPORT_INVERT = "net.sf.openfx.invertPlugin"  # the same effect on the SDK's C++ Support library
GAIN = "uk.co.thefoundry.BasicGainPlugin"
PROBE = "org.liveedit.testhost.Probe"


@pytest.fixture(scope="module")
def ofx():
    return build_ofx()


@pytest.fixture
def host(ofx):
    h = OfxHost([ofx.examples])
    yield h
    code = h.close()
    assert code == 0, f"ofx-testhost exited with {code}:\n{h.stderr}"


def source_frame(host: OfxHost, tmp_path, frame: float, **fields) -> np.ndarray:
    return read_frame(host.dump_source(frame, tmp_path / "src", **fields)["file"])[0]


def rendered(answer: dict, i: int = 0) -> np.ndarray:
    frame = answer["frames"][i]
    assert frame["ok"], frame
    return read_frame(frame["file"])[0]


# -- discovery -----------------------------------------------------------------------------------


def test_plugin_cache_finds_and_describes_the_sdk_examples(host):
    plugins = {p["identifier"]: p for p in host.list()}
    assert set(plugins) == {INVERT, SUPPORT_INVERT, GAIN, PROBE}
    inv = plugins[INVERT]
    assert inv["label"] == "OFX Invert Example"
    assert inv["bundle"].endswith("Invert.ofx.bundle")
    assert inv["binary"].endswith("Invert.ofx.bundle/Contents/Linux-x86-64/Invert.ofx")
    assert inv["contexts"] == ["OfxImageEffectContextFilter"]
    assert inv["depths"] == ["OfxBitDepthByte"]
    assert inv["temporal_access"] is False
    assert inv["params"] == []
    assert [c["name"] for c in inv["described"]["OfxImageEffectContextFilter"]["clips"]] == ["Output", "Source"]

    gain = plugins[GAIN]
    assert gain["version"] == [1, 0]
    assert sorted(gain["contexts"]) == ["OfxImageEffectContextFilter", "OfxImageEffectContextGeneral"]
    assert gain["depths"] == ["OfxBitDepthByte", "OfxBitDepthShort", "OfxBitDepthFloat"]
    params = {p["name"]: p for p in gain["params"]}
    assert params["scale"]["kind"] == "double" and params["scale"]["default"] == 1.0
    assert params["scale"]["hint"] == "Scales all component in the image"
    assert params["scale"]["min"] == 0.0
    assert params["scaleComponents"]["kind"] == "bool" and params["scaleComponents"]["default"] is False
    assert params["scaleComponents"]["label"] == "Scale Individual Components"
    assert params["scaleR"]["parent"] == "componentScales"
    assert params["componentScales"]["kind"] == "group"
    general = gain["described"]["OfxImageEffectContextGeneral"]
    mask = [c for c in general["clips"] if c["name"] == "Mask"][0]
    assert mask["optional"] is True and mask["components"] == ["OfxImageComponentAlpha"]

    probe = plugins[PROBE]
    assert probe["temporal_access"] is True
    assert probe["render_thread_safety"] == "OfxImageEffectRenderFullySafe"
    params = {p["name"]: p for p in probe["params"]}
    assert params["text"]["kind"] == "string" and params["text"]["string_mode"] == "OfxParamStringIsMultiLine"
    assert params["fail"]["options"][:3] == ["none", "render_failed", "render_memory"]
    assert params["status"]["enabled"] is False


def test_plugin_cache_file_is_written_and_read_back(ofx, tmp_path):
    cache = tmp_path / "cache.xml"
    with OfxHost([ofx.examples], args=["--cache", str(cache)]) as h:
        first = {p["identifier"] for p in h.list()}
    assert cache.is_file() and "OfxInvertExample" in cache.read_text()
    with OfxHost([ofx.examples], args=["--cache", str(cache)]) as h:
        assert {p["identifier"] for p in h.list()} == first
        h.create(INVERT)  # a plugin known from the cache file still loads and instantiates


def test_only_the_given_folders_are_searched(ofx, tmp_path):
    with OfxHost([tmp_path]) as h:
        assert h.plugin_count == 0 and h.list() == []
        with pytest.raises(OfxHostError, match="no plugin"):
            h.create(INVERT)


# -- Invert (8-bit only): 255 - x -----------------------------------------------------------------


def test_invert_odd_size_every_frame(host, tmp_path):
    host.source(width=33, height=17, depth="byte", first=0, last=4, pattern="noise", seed=7)
    created = host.create(INVERT)
    assert {c["name"]: c["depth"] for c in created["instance"]["clips"]} == {
        "Output": "OfxBitDepthByte",
        "Source": "OfxBitDepthByte",
    }
    answer = host.render(range(5), out=tmp_path / "out")
    assert answer["ok"], answer
    for i in range(5):
        out = rendered(answer, i)
        assert out.shape == (17, 33, 4) and out.dtype == np.uint8
        assert np.array_equal(out, 255 - source_frame(host, tmp_path, i))
        assert answer["frames"][i]["fetched"] == [i]
    # different frames really differ (the source is not one picture)
    assert answer["frames"][0]["checksum"] != answer["frames"][1]["checksum"]


def test_invert_render_scale_half_and_a_window(host, tmp_path):
    host.source(width=33, height=17, depth="byte", first=0, last=2, pattern="noise", seed=1)
    host.create(INVERT)
    full = host.render([1], out=tmp_path / "full", render_scale=0.5)
    frame = full["frames"][0]
    assert frame["rod"] == [0, 0, 17, 9]  # ceil(33 / 2), ceil(17 / 2)
    src = source_frame(host, tmp_path, 1, render_scale=0.5)
    assert src.shape == (9, 17, 4)
    assert np.array_equal(rendered(full), 255 - src)

    part = host.render([1], out=tmp_path / "part", render_scale=0.5, window=[3, 2, 12, 7])
    frame = part["frames"][0]
    assert frame["bounds"] == [3, 2, 12, 7]
    assert np.array_equal(rendered(part), 255 - src[2:7, 3:12])


def test_output_image_larger_than_the_window(host, tmp_path):
    host.source(width=20, height=10, depth="byte", first=0, last=0, seed=3)
    host.create(INVERT)
    answer = host.render([0], out=tmp_path, window=[5, 2, 15, 8], output_bounds="rod")
    frame = answer["frames"][0]
    assert frame["bounds"] == [0, 0, 20, 10] and frame["wrote_outside_window"] is False
    out = rendered(answer)
    src = source_frame(host, tmp_path, 0)
    assert np.array_equal(out[2:8, 5:15], 255 - src[2:8, 5:15])
    outside = np.ones(out.shape[:2], bool)
    outside[2:8, 5:15] = False
    assert (out[outside] == 0xA5).all()  # the host's fill, untouched


def test_invert_gets_8_bit_from_a_float_source(host, tmp_path):
    """Invert supports only 8-bit: clip preferences map the float source to byte, as hosts do."""
    host.source(width=16, height=9, depth="float", first=0, last=0, pattern="gradient", seed=2)
    created = host.create(INVERT)
    assert {c["name"]: c["depth"] for c in created["instance"]["clips"]}["Source"] == "OfxBitDepthByte"
    src = source_frame(host, tmp_path, 0)
    assert src.dtype == np.uint8
    as_float = source_frame(host, tmp_path / "f", 0, depth="float")
    assert np.array_equal(src, np.round(np.clip(as_float, 0, 1) * 255).astype(np.uint8))
    assert np.array_equal(rendered(host.render([0], out=tmp_path / "out")), 255 - src)


@pytest.mark.parametrize("depth, top", [("byte", 255), ("short", 65535), ("float", 1.0)])
def test_support_library_invert_in_every_depth(host, tmp_path, depth, top):
    """A plugin on the SDK's C++ Support library (as LiveEdit's is) runs in this host."""
    host.source(width=19, height=11, depth=depth, first=0, last=2, pattern="noise", seed=21)
    created = host.create(SUPPORT_INVERT)
    assert {c["depth"] for c in created["instance"]["clips"]} == {f"OfxBitDepth{depth.capitalize()}"}
    answer = host.render([0, 2], out=tmp_path / "full", threads=2)
    for i, t in enumerate([0, 2]):
        src = source_frame(host, tmp_path, t)
        assert np.array_equal(rendered(answer, i), (top - src).astype(src.dtype))
    half = host.render([1], out=tmp_path / "half", render_scale=0.5, window=[1, 1, 9, 5])
    src = source_frame(host, tmp_path, 1, render_scale=0.5)
    assert src.shape == (6, 10, 4)
    assert np.array_equal(rendered(half), (top - src[1:5, 1:9]).astype(src.dtype))


def test_bundles_export_only_the_openfx_entry_points(ofx):
    binaries = sorted(ofx.examples.glob("*.ofx.bundle/Contents/Linux-x86-64/*.ofx"))
    assert len(binaries) == 4
    for binary in binaries:
        assert exported_symbols(binary) <= {"OfxGetPlugin", "OfxGetNumberOfPlugins", "OfxSetHost"}, binary
        assert {"OfxGetPlugin", "OfxGetNumberOfPlugins"} <= exported_symbols(binary), binary


# -- Basic gain: byte / short / float, params, identity, multithread suite ------------------------


def expected_gain(src: np.ndarray, scales, depth: str) -> np.ndarray:
    s = np.asarray(scales, dtype=np.float32)
    if depth == "float":
        return src * s
    top = 255 if depth == "byte" else 65535
    return np.clip((src.astype(np.float32) * s).astype(np.int64), 0, top).astype(src.dtype)


@pytest.mark.parametrize("depth", ["byte", "short", "float"])
def test_gain_in_every_depth(host, tmp_path, depth):
    host.source(width=31, height=13, depth=depth, first=10, last=13, pattern="noise", seed=5)
    created = host.create(GAIN)
    assert {c["depth"] for c in created["instance"]["clips"]} == {f"OfxBitDepth{depth.capitalize()}"}
    assert host.set("scale", 2.0)["value"] == 2.0
    answer = host.render([10, 13], out=tmp_path / "x2", threads=2)
    assert answer["ok"], answer
    for i, t in enumerate([10, 13]):
        out = rendered(answer, i)
        assert out.dtype == {"byte": np.uint8, "short": np.uint16, "float": np.float32}[depth]
        assert np.array_equal(out, expected_gain(source_frame(host, tmp_path, t), [2, 2, 2, 2], depth))

    host.set("scale", 0.5)
    host.set("scaleComponents", True)
    host.set("scaleG", 0.25)
    assert host.get("scaleG") == 0.25
    half = host.render([11], out=tmp_path / "half", render_scale=0.5)
    src = source_frame(host, tmp_path, 11, render_scale=0.5)
    assert src.shape == (7, 16, 4)
    assert np.array_equal(rendered(half), expected_gain(src, [0.5, 0.125, 0.5, 0.5], depth))
    # Basic splits its render over the multithread suite's threads
    status = host.status()
    assert status["multithread_calls"] >= 3 and status["spawned_threads"] > status["multithread_calls"]


def test_gain_of_one_is_an_identity_the_host_copies(host, tmp_path):
    host.source(width=12, height=8, depth="short", first=0, last=1, seed=9)
    host.create(GAIN)
    answer = host.render([1], out=tmp_path)
    assert answer["frames"][0]["identity"] == {"clip": "Source", "time": 1.0}
    assert np.array_equal(rendered(answer), source_frame(host, tmp_path, 1))
    # asked not to use isIdentity, the plugin renders the same pixels itself
    rendered_by_plugin = host.render([1], out=tmp_path / "r", identity=False)
    assert "identity" not in rendered_by_plugin["frames"][0]
    assert rendered_by_plugin["frames"][0]["checksum"] == answer["frames"][0]["checksum"]


def test_gain_general_context_with_its_optional_mask_unconnected(host, tmp_path):
    host.source(width=9, height=5, depth="byte", first=0, last=0, seed=4)
    created = host.create(GAIN, context="general")
    clips = {c["name"]: c for c in created["instance"]["clips"]}
    assert clips["Mask"]["connected"] is False and clips["Source"]["connected"] is True
    host.set("scale", 0.5)
    out = rendered(host.render([0], out=tmp_path))
    assert np.array_equal(out, expected_gain(source_frame(host, tmp_path, 0), [0.5] * 4, "byte"))


def test_parameter_values_are_checked(host):
    host.create(GAIN)
    with pytest.raises(OfxHostError, match="no parameter"):
        host.set("nope", 1)
    with pytest.raises(OfxHostError, match="takes true or false"):
        host.set("scaleComponents", "yes")
    host.create(PROBE)
    assert host.set("fail", "render_memory")["value"] == 2  # a choice by option text
    with pytest.raises(OfxHostError, match="has no option"):
        host.set("fail", "sometimes")
    with pytest.raises(OfxHostError, match="takes a string"):
        host.set("text", 3)


# -- the probe: temporal access, threads, messages, failures -------------------------------------


def test_temporal_access_from_spawned_threads(host, tmp_path):
    host.source(width=21, height=11, depth="short", first=0, last=5, pattern="noise", seed=11)
    host.create(PROBE)
    host.set("radius", 1)
    host.set("offset", 1)
    host.set("fetch_threads", 3)  # the plugin fetches its frames from 3 threads of the suite
    answer = host.render([0, 2, 4], out=tmp_path / "out")
    assert answer["ok"], answer
    src = {t: source_frame(host, tmp_path, t).astype(np.float64) for t in range(6)}
    for i, t in enumerate([0, 2, 4]):
        window = [k for k in (t, t + 1, t + 2) if k <= 5]
        expected = np.floor(np.mean([src[k] for k in window], axis=0) + 0.5).astype(np.uint16)
        assert np.array_equal(rendered(answer, i), expected)
        assert answer["frames"][i]["frames_needed"] == [t, t + 2]
    # fetched on threads the host spawned for the plugin: still attributed to their render
    assert [f["fetched"] for f in answer["frames"]] == [[0, 1, 2], [2, 3, 4], [4, 5]]
    assert answer["stray_fetches"] == []


def test_order_and_threads_do_not_change_pixels(host, tmp_path):
    host.source(width=25, height=15, depth="float", first=0, last=7, pattern="noise", seed=12)
    host.create(PROBE)
    host.set("radius", 2)
    frames = list(range(8))
    in_order = host.render(frames)
    shuffled = frames[:]
    random.Random(3).shuffle(shuffled)
    assert shuffled != frames
    out_of_order = host.render(shuffled, threads=4)
    assert in_order["ok"] and out_of_order["ok"]
    by_frame = {f["frame"]: f["checksum"] for f in out_of_order["frames"]}
    assert [by_frame[t] for t in frames] == [f["checksum"] for f in in_order["frames"]]


def test_four_host_threads_render_at_once_when_the_plugin_is_fully_safe(host):
    host.source(width=8, height=8, depth="byte", first=0, last=3)
    host.create(PROBE)
    host.set("barrier", 4)  # each render returns only once 4 are inside the plugin together
    answer = host.render([0, 1, 2, 3], threads=4, frame_timeout=60)
    assert answer["ok"], answer
    assert answer["concurrent"] is True and answer["max_concurrent"] == 4


def test_an_unsafe_plugin_gets_one_render_at_a_time(ofx):
    with OfxHost([ofx.examples], env={"LIVEEDIT_PROBE_THREAD_SAFETY": "unsafe"}) as h:
        h.source(width=8, height=8, depth="byte", first=0, last=5)
        h.create(PROBE)
        answer = h.render(range(6), threads=4)
        assert answer["ok"] and answer["thread_safety"] == "OfxImageEffectRenderUnsafe"
        assert answer["concurrent"] is False and answer["max_concurrent"] == 1
        h.set("barrier", 2)  # two at once can then never happen: the plugin gives up, the host answers
        blocked = h.render([0, 1], threads=2, frame_timeout=1, abort_grace=30)
        assert not blocked["ok"] and "aborted" in blocked["frames"][0]["error"]
        assert any("fewer than 2 renders at once" in e["text"] for e in blocked["events"] if e["event"] == "message")


def test_a_changed_source_frame_is_told_and_seen(host, tmp_path):
    host.source(width=10, height=6, depth="byte", first=0, last=4, seed=1)
    host.create(PROBE)
    before = host.render(range(5))
    old_uid = host.dump_source(2, tmp_path)["uid"]
    changed = host.change_frame(2, seed=99)
    assert changed["uid"] != old_uid
    assert any("clip Source changed (OfxChangeUserEdited) at 2" in e["text"] for e in changed["events"])
    after = host.render(range(5))
    same = [a["checksum"] == b["checksum"] for a, b in zip(before["frames"], after["frames"])]
    assert same == [True, True, False, True, True]
    silent = host.change_frame(3, seed=5, notify=False)  # as a host that changes media silently
    assert silent["events"] == []


def test_messages_persistent_messages_and_plugin_set_parameters(host):
    host.source(width=6, height=4, first=0, last=3)
    host.create(PROBE)
    host.set("persistent", True)
    answer = host.set("text", "make the fur\nsnowy white")
    events = answer["events"]
    assert {"event": "param_changed", "param": "status",
            "value": "text set (OfxChangeUserEdited): make the fur\nsnowy white", "by": "plugin"} in events
    persistent = [e for e in events if e["event"] == "message" and e["persistent"]]
    assert persistent[0]["type"] == "OfxMessageWarning" and persistent[0]["text"] == "make the fur\nsnowy white"
    assert host.status()["persistent_message"]["text"] == "make the fur\nsnowy white"
    assert host.get("status") == "text set (OfxChangeUserEdited): make the fur\nsnowy white"
    cleared = host.set("text", "")
    assert any(e["event"] == "message_cleared" for e in cleared["events"])
    assert host.status()["persistent_message"] is None

    host.set("text", "echo me")
    host.set("echo", True)
    host.set("progress", True)
    host.call("goto", frame=2)
    answer = host.render([1, 3], interactive=True)
    echoes = sorted(e["text"] for e in answer["events"] if e.get("id") == "probe.echo")
    assert echoes == [
        "t=1 text=echo me interactive=1 sequential=0 draft=0 timeline=2",
        "t=3 text=echo me interactive=1 sequential=0 draft=0 timeline=2",
    ]
    assert [e["what"] for e in answer["events"] if e["event"] == "progress"] == ["start", "end"] * 2
    assert host.status()["progress_updates"] > 0


def test_sequence_render_actions(host):
    host.source(width=6, height=4, first=0, last=5)
    host.create(PROBE)
    host.set("echo", True)

    def seen(answer, ident):
        return [e["text"] for e in answer["events"] if e.get("id") == ident]

    # a final render: one Begin/EndSequenceRender around the frames, sequential status 1
    final = host.render([2, 3, 4], sequential=True, draft=False)
    assert final["ok"] and final["begin_status"] == "kOfxStatOK" and final["end_status"] == "kOfxStatOK"
    assert seen(final, "probe.sequence") == ["begin 2..4 sequential=1 interactive=0", "end 2..4 sequential=1 interactive=0"]
    assert all("sequential=1 draft=0" in t for t in seen(final, "probe.echo"))
    # scrubbing: each frame alone, sequential status 0, draft as asked
    scrub = host.render([5, 1], interactive=True, draft=True)
    assert seen(scrub, "probe.sequence") == [
        "begin 5..5 sequential=0 interactive=1", "end 5..5 sequential=0 interactive=1",
        "begin 1..1 sequential=0 interactive=1", "end 1..1 sequential=0 interactive=1",
    ]
    assert all("interactive=1 sequential=0 draft=1" in t for t in seen(scrub, "probe.echo"))


@pytest.mark.parametrize(
    "fail, status, message",
    [
        ("render_failed", "kOfxStatFailed", "render failed on purpose at 1"),
        ("render_memory", "kOfxStatErrMemory", None),
        ("throw", "kOfxStatFailed", "Exception occurred in plugin org.liveedit.testhost.Probe (probe: exception"),
    ],
)
def test_a_failing_render_is_an_answer_not_a_crash(host, fail, status, message):
    host.source(width=6, height=4, first=0, last=3)
    host.create(PROBE)
    host.set("fail", fail)
    answer = host.render([1, 2])
    assert answer["ok"] is False
    assert [f["status"] for f in answer["frames"]] == [status, status]
    assert all(not f["ok"] and "file" not in f for f in answer["frames"])
    if message:
        texts = [e["text"] for e in answer["events"] if e["event"] == "message"]
        assert any(message in t for t in texts), texts
    host.set("fail", "none")
    assert host.render([1])["ok"]  # the instance still works


def test_a_render_that_stops_only_when_aborted(host):
    host.source(width=6, height=4, first=0, last=3)
    host.create(PROBE)
    host.set("fail", "hang")
    answer = host.render([0], frame_timeout=0.2)
    frame = answer["frames"][0]
    assert not frame["ok"] and "aborted" in frame["error"]
    host.set("fail", "none")
    assert host.render([0])["ok"]


def test_a_render_that_never_returns_is_given_up(ofx):
    h = OfxHost([ofx.examples])
    h.source(width=6, height=4, first=0, last=3)
    h.create(PROBE)
    h.set("fail", "hang_hard")
    answer = h.render([0, 1], frame_timeout=0.2, abort_grace=0.2)
    assert [f["ok"] for f in answer["frames"]] == [False, False]
    assert "timeout" in answer["frames"][0]["error"]
    assert "not rendered" in answer["frames"][1]["error"]
    assert h.status()["hung"] is True
    refused = h.render([2])
    assert not refused["ok"] and "stuck" in refused["error"]
    assert h.close() == 0  # leaves without waiting for the stuck thread


def test_a_plugin_crash_is_the_host_exit_status(ofx):
    h = OfxHost([ofx.examples])
    h.create(PROBE)
    h.set("fail", "crash")
    with pytest.raises(OfxHostDied) as died:
        h.render([0])
    assert died.value.returncode == -11  # SIGSEGV, seen by pytest, not suffered by it
    assert died.value.events[-1] == {"event": "crash", "signal": "SIGSEGV"}
    h.close()


def test_create_instance_failure_is_answered(host):
    with pytest.raises(OfxHostError) as err:
        host.create(PROBE, params={"fail": "create_failed"})
    assert err.value.answer["status"] == "kOfxStatFailed"
    refused = host.render([0])
    assert not refused["ok"] and "no instance" in refused["error"]
    host.create(PROBE)  # the next one is fine


def test_source_frames_from_files(host, tmp_path):
    rng = np.random.default_rng(0)
    frames = {t: rng.integers(0, 256, (7, 13, 4), dtype=np.uint8) for t in (5, 6)}
    for t, px in frames.items():
        write_frame(tmp_path / f"clip_{t:04d}.raw", px)
    host.source(width=13, height=7, depth="byte", first=5, last=7, dir=tmp_path, files="clip_####.raw")
    host.create(INVERT)
    answer = host.render([5, 6, 7], out=tmp_path / "out")
    assert np.array_equal(rendered(answer, 0), 255 - frames[5])
    assert np.array_equal(rendered(answer, 1), 255 - frames[6])
    missing = answer["frames"][2]
    assert not missing["ok"]
    assert any("clip_0007.raw" in e["text"] for e in answer["events"] if e["event"] == "warning")


def test_malformed_commands_get_error_answers(ofx):
    exe = os.environ.get("LIVEEDIT_OFX_TESTHOST") or ofx.host
    proc = subprocess.Popen(
        [str(exe), "--plugin-path", str(ofx.examples)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    lines = ['{"cmd": "list"', "[1, 2]", '{"cmd": "fly"}', '{"cmd": "render", "frames": [0]}',
             '{"cmd": "source", "width": -3}', '{"cmd": "quit"}']
    out, _ = proc.communicate("\n".join(lines) + "\n", timeout=60)
    answers = [json.loads(line) for line in out.splitlines() if '"event"' not in line]
    assert [a["ok"] for a in answers] == [False, False, False, False, False, True]
    assert "bad JSON" in answers[0]["error"]
    assert "unknown command" in answers[2]["error"]
    assert "no instance" in answers[3]["error"]
    assert "width" in answers[4]["error"]
    assert proc.returncode == 0


def test_build_is_incremental(ofx):
    """A second scripts/build-ofx with nothing changed rebuilds nothing (the plugin's tests call it)."""
    stamps = {p: p.stat().st_mtime_ns for p in [ofx.host, *ofx.examples.glob("*.ofx.bundle/Contents/*/*.ofx")]}
    assert len(stamps) == 5
    again = build_ofx()
    assert again.host == ofx.host
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
