"""Pairing an editor panel with the sidecar, instead of pasting the install token by hand.

`liveedit premiere pair` asks the running sidecar (with the token, which the command line can
read from the config folder) for a short one-time code and shows it; the user types it into
the panel, which exchanges it over the bridge for the token and keeps that in UXP's secure
storage. A code:

- is 8 characters from an alphabet without look-alikes (shown as ``K7QM-3XRA``; case, spaces
  and dashes do not matter when typed), about 40 bits;
- expires after CODE_TTL_SECONDS and works once; a new code replaces the previous one;
- survives MAX_ATTEMPTS wrong guesses, then is burnt; and the exchange as a whole refuses
  further tries (429) for a while after MAX_FAILURES wrong ones in FAILURE_WINDOW_SECONDS,
  whichever code they were for.

The exchange needs no token (that is what it hands out) but is otherwise guarded like every
bridge request: loopback Host, allowed Origin. Codes live in the sidecar's memory only.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Callable

from liveedit.errors import Kind, LiveEditError

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 8
CODE_TTL_SECONDS = 300
MAX_ATTEMPTS = 5
MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 60
CODE_PATH = "/v1/pairing/code"
EXCHANGE_PATH = "/v1/pairing/exchange"
PUBLIC_PATHS = (EXCHANGE_PATH,)  # the only bridge path that needs no token


class PairingError(LiveEditError):
    """A pairing code was refused; `status` and `code` are the bridge's answer. Pairing exists only
    on the bridge, where the panel tells these answers apart, so they keep their own statuses; the
    kind is what the refusal is anywhere else (a wrong request)."""

    kind = Kind.INVALID
    status = 403
    code = "pairing_refused"


class WrongCode(PairingError):
    kind = Kind.INVALID
    code = "wrong_code"


class NoCode(PairingError):
    kind = Kind.NOT_FOUND
    status = 410
    code = "no_pairing_code"


class TooManyAttempts(PairingError):
    kind = Kind.EXHAUSTED  # a limit reached: try again later
    status = 429
    code = "too_many_attempts"


@dataclass
class _Code:
    value: str
    expires: float
    attempts_left: int


def normalize(text: str) -> str:
    return "".join(ch for ch in str(text).upper() if ch not in " -\t")


def display(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


class Pairing:
    """One-time codes for one sidecar; `clock` is injectable so tests need no waiting."""

    def __init__(self, token: str, clock: Callable[[], float] = time.monotonic):
        self._token = token
        self._clock = clock
        self._code: _Code | None = None
        self._failures: list[float] = []

    def new_code(self) -> tuple[str, int]:
        """A fresh code (the previous one stops working) and its lifetime in seconds."""
        value = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        self._code = _Code(value, self._clock() + CODE_TTL_SECONDS, MAX_ATTEMPTS)
        return display(value), CODE_TTL_SECONDS

    def exchange(self, typed: str) -> str:
        """The install token for the current code, once. Raises PairingError otherwise."""
        now = self._clock()
        self._failures = [t for t in self._failures if now - t < FAILURE_WINDOW_SECONDS]
        if len(self._failures) >= MAX_FAILURES:
            raise TooManyAttempts("too many wrong pairing codes; wait a minute, then run `liveedit premiere pair` "
                                  "for a new code")
        code = self._code
        if code is None or now >= code.expires:
            self._code = None
            raise NoCode("no pairing code is waiting (it expired or was used); run `liveedit premiere pair` for a "
                         "new one")
        if not hmac.compare_digest(normalize(typed).encode(), code.value.encode()):
            self._failures.append(now)
            code.attempts_left -= 1
            if code.attempts_left <= 0:
                self._code = None
                raise WrongCode("wrong pairing code, too many times: this code no longer works; run "
                                "`liveedit premiere pair` for a new one")
            raise WrongCode(f"wrong pairing code; check it and try again ({code.attempts_left} tries left)")
        self._code = None  # single use
        return self._token


# --------------------------------------------------------------------------- bridge routes


def register(app, token: str, clock: Callable[[], float] = time.monotonic) -> Pairing:
    """Add the pairing routes to the bridge's aiohttp app. POST CODE_PATH (token needed, as
    for every route) answers {"code", "expires_in"}; POST EXCHANGE_PATH with {"code"} answers
    {"token"} or a JSON error."""
    from aiohttp import web

    pairing = Pairing(token, clock)

    async def issue(request: web.Request) -> web.Response:
        code, ttl = pairing.new_code()
        return web.json_response({"code": code, "expires_in": ttl})

    async def exchange(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("code"), str) or len(body["code"]) > 64:
            return _error(400, "invalid_request", 'send {"code": "<the code liveedit premiere pair shows>"}')
        try:
            return web.json_response({"token": pairing.exchange(body["code"])})
        except PairingError as exc:
            return _error(exc.status, exc.code, str(exc))

    app.router.add_post(CODE_PATH, issue)
    app.router.add_post(EXCHANGE_PATH, exchange)
    return pairing


def _error(status: int, code: str, message: str):
    from aiohttp import web

    return web.json_response({"error": {"code": code, "message": message}}, status=status)


# --------------------------------------------------------------------------- the command line


def request_code(port: int, token: str, timeout: float = 10.0) -> tuple[str, int]:
    """Ask the sidecar's bridge on 127.0.0.1:`port` for a pairing code."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}{CODE_PATH}", data=b"{}", method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        detail = ""
        try:
            detail = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        raise LiveEditError(f"the sidecar on 127.0.0.1:{port} refused to make a pairing code (HTTP {exc.code}"
                            f"{': ' + detail if detail else ''}); is it this user's sidecar?") from None
    except (urllib.error.URLError, OSError) as exc:
        raise LiveEditError(f"no LiveEdit sidecar answers on 127.0.0.1:{port} ({getattr(exc, 'reason', exc)}); "
                            "start it with `liveedit serve`, then run this again") from None
    return body["code"], int(body["expires_in"])
