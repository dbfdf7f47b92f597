"""FAKE-HOST TESTS: the Premiere panel page (clients/premiere/index.html, the real panel code)
in headless Chromium, against a real sidecar bridge on 127.0.0.1, with Premiere's
`premierepro` module replaced by a strict recording fake
(clients/premiere/test/browser/fake-premierepro.js). Nothing here proves the panel works in
Premiere itself; docs/premiere.md keeps that list.

Chromium is driven over the DevTools protocol with aiohttp. The page is loaded from file://,
an origin the bridge allows (it answers `null`/`file://` origins; the token is the lock)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from liveedit.sidecar.api.bridge import start_bridge
from liveedit.sidecar.jobs import LocalExecutor, RenderQueue
from media_fixtures import ffprobe_frame_count
from test_bridge import FakePreview
from test_jobs import FakeExecutor

pytestmark = pytest.mark.fakehost

PANEL = Path(__file__).resolve().parent.parent / "clients" / "premiere"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "premiere-test-token-" + "y" * 24
TPS = 254016000000
NTSC_FILM_TPF = TPS * 1001 // 24000  # ticks per frame at 23.976


def ticks(frames: int) -> str:
    return str(frames * NTSC_FILM_TPF)


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "config"))


def need_chromium():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed; scripts/test installs it (apt-get install chromium)")


class Page:
    """One Chromium tab over the DevTools protocol: evaluate, wait for a condition."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.next_id = 0
        self.waiting: dict[int, asyncio.Future] = {}
        self.console: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.waiting:
                self.waiting.pop(data["id"]).set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.console.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif data.get("method") == "Runtime.consoleAPICalled":
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in data["params"]["args"]))

    async def send(self, method: str, **params):
        self.next_id += 1
        future = asyncio.get_running_loop().create_future()
        self.waiting[self.next_id] = future
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def js(self, expression: str):
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60, what: str = ""):
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                status = await self.js("document.getElementById('status').outerHTML")
                jobs = await self.js("document.getElementById('jobs').innerText")
                raise AssertionError(f"timed out waiting for {what or expression}\nstatus: {status}\njobs: {jobs}\n"
                                     f"console: {self.console[-20:]}")
            await asyncio.sleep(0.1)

    async def click(self, element_id: str):
        await self.js(f"document.getElementById({element_id!r}).click()")

    async def set_value(self, element_id: str, value: str):
        await self.js(f"(() => {{ const e = document.getElementById({element_id!r}); e.value = {json.dumps(value)};"
                      " e.dispatchEvent(new Event('change')); })()")


@asynccontextmanager
async def panel(tmp_path: Path, scene: dict, settings: dict, secure: dict | None = None):
    """Headless Chromium showing the panel page, with the fake premierepro, the settings in
    localStorage and `secure` in the fake UXP secure storage (where the token lives)."""
    need_chromium()
    profile = tmp_path / f"chromium-{os.urandom(4).hex()}"
    profile.mkdir()
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
        "--allow-file-access-from-files",  # the test loader reads the panel's modules from file://
        f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as r:
                target = next(t for t in await r.json() if t["type"] == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Runtime.enable")
                await page.send("Page.enable")
                setup = (f"window.__fakeScene = {json.dumps(scene)};\n"
                         f"window.__fakeSecureItems = {json.dumps(secure or {})};\n"
                         "localStorage.removeItem('liveedit.plans');\n"
                         f"localStorage.setItem('liveedit.settings', {json.dumps(json.dumps(settings))});\n")
                browser = PANEL / "test" / "browser"
                source = setup + "".join((browser / name).read_text() for name in
                                         ("fake-premierepro.js", "fake-uxp.js", "cjs-loader.js"))
                await page.send("Page.addScriptToEvaluateOnNewDocument", source=source)
                await page.send("Page.navigate", url=(PANEL / "index.html").as_uri())
                await page.wait_for("document.readyState === 'complete' && !!document.getElementById('status')",
                                    what="the panel page")
                try:
                    yield page
                finally:
                    page.reader.cancel()
    finally:
        proc.kill()
        await proc.wait()


def scene_for(media: Path, tmp_path: Path, *, frames: int = 10, in_frame: int = 4, playhead: int = 0) -> dict:
    """A 23.976 sequence: V1 holds one selected clip of `media` at sequence frame 48, V2 is empty."""
    return {
        "projectPath": str(tmp_path / "project" / "Edit.prproj"),
        "bins": [],
        "sequence": {"name": "Sequence 01", "timebase": str(NTSC_FILM_TPF), "playhead": ticks(playhead), "audioTracks": 2},
        "media": {str(media): {"fps": 24000 / 1001, "start": ticks(86400), "duration": ticks(30)}},  # TC 01:00:00:00
        "tracks": [[{"name": media.name, "media": str(media), "start": ticks(48), "end": ticks(48 + frames),
                     "inPoint": ticks(in_frame), "selected": True}], []],
        "markers": [],
    }


@pytest.fixture(scope="module")
def tiny_models():
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    return EditorModels.random(get_preset("tiny"), seed=0)


@pytest.mark.slow
def test_submit_render_place_and_cancel_with_the_tiny_model(media_clips, tmp_path, tiny_models):
    source = media_clips["ntsc_film"]  # 30 frames at 23.976 starting at 01:00:00:00
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    renders = tmp_path / "renders"
    queue = RenderQueue(tmp_path / "jobs.db", LocalExecutor(models=tiny_models))
    settings = {"port": 0, "outputDir": str(renders), "handles": 2, "placement": "above",
                "format": "h264", "range": "selection", "markerColor": 0}

    async def main():
        # The facts `liveedit serve` puts in GET /v1/info (ServerInfo field names).
        info = {"model_preset": "tiny", "random_weights": True, "model_description": tiny_models.description}
        bridge = await start_bridge(queue, FakePreview(), token=TOKEN, write_port_file=False, info=info)
        settings["port"] = bridge.port
        try:
            async with panel(tmp_path, scene_for(source, tmp_path), settings, {"liveedit.token": TOKEN}) as page:
                await page.wait_for("document.getElementById('status').dataset.state === 'connected'", what="connected")
                assert "RANDOM weights" in await page.js("document.getElementById('status-message').textContent")
                await page.set_value("instruction", "make the fur snowy white")
                await page.set_value("seed", "3")
                await page.click("submit")
                await page.wait_for("!!document.querySelector('#jobs li')", what="the job row")
                assert await page.js("document.getElementById('form-error').textContent") == ""
                seen = set()
                for _ in range(2400):  # the tiny model on 2 CPU cores: seconds to a few minutes
                    row = await page.js("(() => { const r = document.querySelector('#jobs li'); return r && "
                                        "[r.dataset.state, r.querySelector('.job-detail').textContent, "
                                        "r.querySelector('progress').value]; })()")
                    seen.add((row[0], row[1] if row[0] == "running" else "", row[2]))
                    if row[0] == "done" and "placed in the sequence" in row[1] and "placing" not in row[1]:
                        break
                    assert row[0] in ("queued", "running", "done"), row
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"the job did not finish: {row}; console {page.console[-10:]}")
                record = await page.js("window.__fakeRecord")
                job = queue.list()[0]

                # Cancel: a second job, cancelled from its row as soon as it shows.
                await page.click("submit")
                await page.wait_for("document.querySelectorAll('#jobs li').length === 2 && "
                                    "!!document.querySelector('#jobs li button[data-cancel]')", what="second row")
                await page.js("document.querySelector('#jobs li button[data-cancel]').click()")
                await page.wait_for("document.querySelector('#jobs li').dataset.state === 'cancelled'", 120,
                                    what="cancelled")
                cancelled_row = await page.js("document.querySelector('#jobs li').innerText")
                await asyncio.sleep(0.5)
                after_cancel = await page.js("window.__fakeRecord")
                return seen, record, job, cancelled_row, after_cancel
        finally:
            await bridge.close()

    try:
        seen, record, job, cancelled_row, after_cancel = asyncio.run(main())
    finally:
        queue.close()

    # Progress was shown while it rendered, in frames of the 14 (10 + 2 handles each side).
    assert any(state == "running" and "of 14 frames" in detail for state, detail, _ in seen), seen
    assert job.state == "done"
    region = job.regions[0]
    output = Path(region.output)
    assert output.parent == renders.resolve() and ffprobe_frame_count(output) == 14
    assert job.spec.regions[0].first_frame == 4 and job.spec.regions[0].frame_count == 10
    assert job.spec.regions[0].record_start.frame == 48

    assert record["errors"] == []
    assert record["imports"] == [{"paths": [str(output)], "suppressUI": True, "bin": "LiveEdit",
                                  "asNumberedStills": False}]
    # The bin is made once (its own undo step); the placement is ONE transaction.
    labels = [t["label"] for t in record["transactions"]]
    assert labels == ["LiveEdit: create bin", "LiveEdit: place 1 result"]
    actions = record["transactions"][1]["actions"]
    assert [a["type"] for a in actions] == ["setInOut", "overwrite", "addMarker"]
    set_in_out, overwrite, marker = actions
    assert set_in_out == {"type": "setInOut", "media": str(output), "in": ticks(2), "out": ticks(12)}  # handles trimmed
    assert overwrite == {"type": "overwrite", "media": str(output), "bin": "LiveEdit", "time": ticks(48),
                         "videoTrackIndex": 1, "audioTrackIndex": 2}  # V2, the empty track above V1
    assert marker["start"] == ticks(48) and marker["duration"] == ticks(10)
    assert marker["name"] == f"LiveEdit {job.id[:8]}" and job.id in marker["comments"]
    assert "make the fur snowy white" in marker["comments"]

    assert "cancelled" in cancelled_row and "Cancel" not in cancelled_row.replace("cancelled", "")
    assert len(after_cancel["transactions"]) == 2 and len(after_cancel["imports"]) == 1  # nothing placed
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before


def test_pairing_wrong_token_stopped_sidecar_and_preview_following_the_playhead(media_clips, tmp_path):
    source = media_clips["ntsc_film"]
    queue = RenderQueue(tmp_path / "jobs.db", FakeExecutor())
    preview = FakePreview()
    settings = {"port": 0, "outputDir": str(tmp_path / "renders"), "handles": 0,
                "placement": "above", "format": "prores", "range": "selection", "markerColor": 0}

    async def new_code(bridge) -> str:  # what `liveedit premiere pair` asks the sidecar for
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{bridge.url}/v1/pairing/code", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                return (await r.json())["code"]

    async def main():
        bridge = await start_bridge(queue, preview, token=TOKEN, write_port_file=False)
        settings["port"] = bridge.port
        out = {}
        async with panel(tmp_path, scene_for(source, tmp_path), settings) as page:
            # Never paired: the panel says how to pair, and sends nothing without a token.
            await page.wait_for("document.getElementById('status').dataset.state === 'unpaired'", what="unpaired")
            out["unpaired"] = await page.js("document.getElementById('status-message').textContent")
            out["no token field"] = await page.js("document.getElementById('token') === null")
        async with panel(tmp_path, scene_for(source, tmp_path, playhead=50), settings,
                         {"liveedit.token": "not-the-token"}) as page:
            await page.wait_for("document.getElementById('status').dataset.state === 'unauthorized'", what="401")
            out["wrong token"] = await page.js("document.getElementById('status-message').textContent")
            out["submit disabled"] = await page.js("document.getElementById('submit').disabled")

            code = await new_code(bridge)
            await page.set_value("pairing-code", "WRONG-CODE")
            await page.click("pair")
            await page.wait_for("document.getElementById('pair-status').textContent.includes('rong pairing code')",
                                what="wrong code refused")
            out["wrong code"] = await page.js("document.getElementById('pair-status').textContent")
            await page.set_value("pairing-code", code.lower())
            await page.click("pair")
            await page.wait_for("document.getElementById('status').dataset.state === 'connected'", what="paired")
            out["paired note"] = await page.js("document.getElementById('pair-status').textContent")
            out["secure items"] = await page.js("window.__fakeSecureItems")
            out["local storage"] = await page.js("JSON.stringify(Object.assign({}, localStorage))")
            # The code worked once: using it again is refused.
            await page.set_value("pairing-code", code)
            await page.click("pair")
            await page.wait_for("document.getElementById('pair-status').textContent.includes('liveedit premiere pair')",
                                what="used code refused")
            out["reused code"] = await page.js("document.getElementById('pair-status').textContent")
            # Playhead at sequence frame 50: 2 frames into the clip, whose in point is source frame 4.
            await page.set_value("instruction", "make it snow")
            await page.wait_for("document.getElementById('preview').src.includes('side=edit') && "
                                "document.getElementById('preview').complete && "
                                "document.getElementById('preview').naturalWidth > 0", what="edited preview image")
            out["first preview"] = [r for r in preview.requests if r.side == "edit"][-1]
            await page.js(f"window.__fakeScene.sequence.playhead = {json.dumps(ticks(55))}")
            await page.wait_for("document.getElementById('preview').src.includes('frame=11&')", what="new frame")
            await page.wait_for("document.getElementById('preview').complete", what="image loaded")
            out["second preview"] = [r for r in preview.requests if r.side == "edit"][-1]
            out["preview note"] = await page.js("document.getElementById('preview-status').textContent")

            await bridge.close()  # the sidecar stops under the panel
            await page.wait_for("document.getElementById('status').dataset.state === 'down'", what="down")
            out["stopped"] = await page.js("document.getElementById('status-message').textContent")
            out["retry shown"] = await page.js("!document.getElementById('retry').hidden")

        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            free_port = s.getsockname()[1]
        # An older panel kept the token in localStorage: it moves to secure storage.
        legacy = {**settings, "port": free_port, "token": TOKEN}
        async with panel(tmp_path, scene_for(source, tmp_path), legacy) as page:
            await page.wait_for("document.getElementById('status').dataset.state === 'down'", what="down")
            out["not running"] = await page.js("document.getElementById('status-message').textContent")
            out["migrated"] = await page.js("[window.__fakeSecureItems, localStorage.getItem('liveedit.settings')]")
        return out

    try:
        out = asyncio.run(main())
    finally:
        queue.close()
    assert "liveedit premiere pair" in out["unpaired"] and out["no token field"] is True
    assert "refused the token" in out["wrong token"] and "liveedit premiere pair" in out["wrong token"]
    assert out["submit disabled"] is True
    assert "Wrong pairing code" in out["wrong code"] and "tries left" in out["wrong code"]
    assert out["paired note"] == "Paired with the sidecar."
    assert out["secure items"] == {"liveedit.token": TOKEN}
    assert TOKEN not in out["local storage"]  # the token never lands in localStorage
    assert "No pairing code is waiting" in out["reused code"]
    first, second = out["first preview"], out["second preview"]
    assert (first.media, first.frame, first.instruction, first.side, first.client) == \
        (source, 6, "make it snow", "edit", "premiere-panel")
    assert (second.frame, second.side) == (11, "edit") and first.max_height == 360
    assert "source frame 11" in out["preview note"]
    assert "stopped" in out["stopped"] and "liveedit serve" in out["stopped"] and out["retry shown"]
    assert f"No LiveEdit sidecar answers on 127.0.0.1:{settings['port']}" not in out["not running"]
    assert "No LiveEdit sidecar answers on 127.0.0.1:" in out["not running"] and "liveedit serve" in out["not running"]
    secure_items, local_settings = out["migrated"]
    assert secure_items == {"liveedit.token": TOKEN} and TOKEN not in local_settings
