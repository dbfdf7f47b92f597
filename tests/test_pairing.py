"""Pairing the Premiere panel: `liveedit premiere pair` gets a one-time code from the running
sidecar, the panel exchanges it over the bridge for the install token. Codes expire, work
once, and wrong guesses are limited per code and across codes (a fake clock: no waiting)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import aiohttp
import pytest

from liveedit.sidecar.api import pairing
from liveedit.sidecar.api.bridge import start_bridge
from liveedit.sidecar.jobs import RenderQueue
from liveedit.sidecar.api.pairing import NoCode, Pairing, TooManyAttempts, WrongCode
from test_bridge import TOKEN, run_with_bridge
from test_jobs import FakeExecutor


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    path = tmp_path / "config"
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(path))
    return path


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_code_is_short_single_use_and_forgiving_to_type():
    p = Pairing(TOKEN, Clock())
    code, ttl = p.new_code()
    assert len(code) == 9 and code[4] == "-" and ttl == pairing.CODE_TTL_SECONDS
    assert set(code.replace("-", "")) <= set(pairing.ALPHABET) and not set("01IO") & set(code)
    typed = " " + code.lower().replace("-", " ") + " "
    assert p.exchange(typed) == TOKEN
    with pytest.raises(NoCode, match="liveedit premiere pair"):
        p.exchange(code)  # used


def test_codes_expire_and_a_new_one_replaces_the_old():
    clock = Clock()
    p = Pairing(TOKEN, clock)
    old, _ = p.new_code()
    new, _ = p.new_code()
    if old != new:
        with pytest.raises(WrongCode):
            p.exchange(old)
    clock.now += pairing.CODE_TTL_SECONDS
    with pytest.raises(NoCode, match="expired"):
        p.exchange(new)


def test_wrong_guesses_burn_the_code_and_then_lock_the_exchange():
    clock = Clock()
    p = Pairing(TOKEN, clock)
    code, _ = p.new_code()
    for left in range(pairing.MAX_ATTEMPTS - 1, 0, -1):
        with pytest.raises(WrongCode, match=f"{left} tries left"):
            p.exchange("AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB")
    with pytest.raises(WrongCode, match="no longer works"):
        p.exchange("AAAA-AAAA" if code != "AAAA-AAAA" else "BBBB-BBBB")
    with pytest.raises(NoCode):
        p.exchange(code)  # burnt: even the right code is refused now
    # Across codes: MAX_FAILURES wrong guesses in the window lock every exchange for a while.
    code, _ = p.new_code()
    for _ in range(pairing.MAX_FAILURES - pairing.MAX_ATTEMPTS):
        with pytest.raises(WrongCode):
            p.exchange("22222222" if code != "2222-2222" else "33333333")
    code, _ = p.new_code()  # even a fresh code's right answer waits out the lock
    with pytest.raises(TooManyAttempts):
        p.exchange(code)
    clock.now += pairing.FAILURE_WINDOW_SECONDS
    assert p.exchange(code) == TOKEN


def test_the_bridge_hands_out_codes_with_the_token_and_exchanges_them_without(tmp_path):
    async def test(session, bridge, queue):
        out = {}
        async with session.post("/v1/pairing/code") as r:
            out["code without token"] = r.status
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post("/v1/pairing/code", headers=auth) as r:
            code = (await r.json())["code"]
        async with session.post("/v1/pairing/exchange", json={"code": code},
                                headers={"Origin": "https://evil.example"}) as r:
            out["foreign origin"] = r.status
        async with session.post("/v1/pairing/exchange", json={"code": "WRONG-CODE"}, headers={"Origin": "null"}) as r:
            out["wrong"] = r.status, (await r.json())["error"]["code"]
        async with session.post("/v1/pairing/exchange", json={"code": code},
                                headers={"Origin": "uxp://com.liveedit.premiere"}) as r:
            out["right"] = r.status, await r.json(), r.headers.get("Access-Control-Allow-Origin")
        async with session.post("/v1/pairing/exchange", json={"code": code}) as r:
            out["again"] = r.status, (await r.json())["error"]["code"]
        async with session.post("/v1/pairing/exchange", data="not json",
                                headers={"Content-Type": "application/json"}) as r:
            out["bad body"] = r.status
        async with session.get("/v1/jobs") as r:  # nothing else opens without the token
            out["jobs without token"] = r.status
        return out

    out = run_with_bridge(tmp_path, test)
    assert out["code without token"] == 401 and out["foreign origin"] == 403
    assert out["wrong"] == (403, "wrong_code")
    assert out["right"] == (200, {"token": TOKEN}, "uxp://com.liveedit.premiere")
    assert out["again"] == (410, "no_pairing_code")
    assert out["bad body"] == 400 and out["jobs without token"] == 401


def test_the_pair_command_shows_a_code_the_bridge_accepts(tmp_path, config_dir):
    config_dir.mkdir(mode=0o700)
    (config_dir / "token").write_text(TOKEN + "\n")
    (config_dir / "token").chmod(0o600)
    queue = RenderQueue(tmp_path / "jobs.db", FakeExecutor())
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bridge = asyncio.run_coroutine_threadsafe(start_bridge(queue, None), loop).result(30)  # writes bridge.json
    env = {**os.environ, "LIVEEDIT_CONFIG_DIR": str(config_dir)}
    try:
        run = subprocess.run([sys.executable, "-m", "liveedit", "premiere", "pair"], capture_output=True, text=True,
                             timeout=120, env=env)
        assert run.returncode == 0, run.stderr
        code = next(line.split()[-1] for line in run.stdout.splitlines() if line.startswith("Pairing code:"))

        async def exchange():
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{bridge.url}/v1/pairing/exchange", json={"code": code}) as r:
                    return r.status, await r.json()

        assert asyncio.run_coroutine_threadsafe(exchange(), loop).result(30) == (200, {"token": TOKEN})
        assert "Settings > Pairing code" in run.stdout and f"port {bridge.port}" in run.stdout
    finally:
        asyncio.run_coroutine_threadsafe(bridge.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        queue.close()
    # With the sidecar stopped (bridge.json gone), the command says what to do.
    run = subprocess.run([sys.executable, "-m", "liveedit", "premiere", "pair"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode == 1 and "liveedit serve" in run.stderr and "Traceback" not in run.stderr
