"""What a client and the sidecar on one machine share besides the gRPC contract (protos/):
where the per-user files are (the token, the socket, bridge.json) and how frame pixels
cross (bytes in messages, or the shared-memory frame ring). The Python client and the
preview window depend on this module and the protos only; the sidecar imports it too
(sidecar/config.py creates what this module reads). Standard library and numpy only.

Per-user folders (docs/architecture.md):

- config folder: `~/.config/liveedit/` (Linux, honours XDG_CONFIG_HOME),
  `~/Library/Application Support/LiveEdit/` (macOS), `%APPDATA%\\LiveEdit\\` (Windows);
  holds `token` (mode 0600) and `bridge.json`.
- runtime folder (sockets): `$XDG_RUNTIME_DIR/liveedit/` when set, else a private
  `liveedit-<uid>` folder in the temp dir; holds `sidecar.sock`.

LIVEEDIT_CONFIG_DIR / LIVEEDIT_RUNTIME_DIR override both (tests, several installs side by side).
The Resolve scripts, which run in Resolve's own Python without this package, repeat the
config-folder rule in clients/resolve/bridge_client.py.

Frames: bytes in messages, or a shared-memory ring when both run on one machine (several
times faster for large frames; see docs/benchmarks.md and shared/spec/nle-integration.md §5).
The ring (`FrameRing`) is created by the client: a header (16 random bytes, the nonce) then
`slot_count` frame slots. Frame i of a stream uses slot i % slot_count in both directions: the
server copies source frame i out when its message arrives and later writes edited frame i into
the same slot. The client keeps at most slot_count frames in flight (sent but not yet read
back), which is the whole ownership protocol: no slot is ever written by both sides at once.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

from liveedit.errors import InputError, LiveEditError

# -- per-user files -----------------------------------------------------------------------

TOKEN_FILE = "token"
SOCKET_FILE = "sidecar.sock"
BRIDGE_FILE = "bridge.json"
# Unix socket paths are limited to ~104 bytes (macOS) / 108 (Linux) including the NUL.
MAX_SOCKET_PATH = 100


class ConfigError(LiveEditError):
    """The per-user config or runtime folder cannot be used."""


def config_dir() -> Path:
    """The per-user config folder (not created)."""
    override = os.environ.get("LIVEEDIT_CONFIG_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "LiveEdit"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "LiveEdit"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "liveedit"


def runtime_dir() -> Path:
    """The per-user folder for sockets (not created)."""
    override = os.environ.get("LIVEEDIT_RUNTIME_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and sys.platform.startswith("linux"):
        return Path(xdg) / "liveedit"
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"liveedit-{uid}"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (mode 0700) if needed; refuse one that other users can write to,
    because a socket or token there could be swapped by someone else."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.name == "posix":
        st = path.stat()
        if st.st_uid != os.getuid():
            raise ConfigError(
                f"{path} belongs to another user; remove it or set LIVEEDIT_RUNTIME_DIR / "
                "LIVEEDIT_CONFIG_DIR to a folder of your own"
            )
        if st.st_mode & 0o022:
            os.chmod(path, 0o700)
    return path


def default_socket_path() -> Path:
    path = runtime_dir() / SOCKET_FILE
    if len(str(path)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"socket path {path} is longer than {MAX_SOCKET_PATH} characters, which Unix "
            "sockets do not allow; set LIVEEDIT_RUNTIME_DIR to a shorter folder or pass --socket"
        )
    return path


def token_path() -> Path:
    return config_dir() / TOKEN_FILE


def read_token(path: Path | None = None) -> str | None:
    """The token if the file exists, else None. Refuses a token file others can read."""
    path = path or token_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if os.name == "posix" and st.st_mode & 0o077:
        raise ConfigError(
            f"token file {path} is readable by other users (mode {st.st_mode & 0o777:o}); "
            f"run `chmod 600 {path}` or delete it to get a new token"
        )
    return path.read_text().strip() or None


def bridge_info_path() -> Path:
    return config_dir() / BRIDGE_FILE


def read_bridge_info(path: Path | None = None) -> dict | None:
    """`{"port": int}` if a bridge has run for this user, else None."""
    path = path or bridge_info_path()
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); delete it and start the sidecar again") from None
    if not isinstance(info, dict) or not isinstance(info.get("port"), int):
        raise ConfigError(f'{path} should hold {{"port": <number>}}; delete it and start the sidecar again')
    return info


# -- frames ---------------------------------------------------------------------------------

RING_PREFIX = "liveedit_"
HEADER_BYTES = 64
NONCE_BYTES = 16
MIN_RING_SLOTS = 16  # a whole chunk (12 frames) must fit in flight, or the stream stalls
MAX_RING_BYTES = 8 * 2**30
_CREATED_HERE: set[str] = set()  # rings this process created (client and server in one process)


class RingUnavailable(LiveEditError):
    """The server cannot use the client's ring (another machine, wrong name); fall back."""


def frame_bytes(width: int, height: int) -> int:
    return width * height * 3


def frame_from_bytes(data: bytes, width: int, height: int, where: str) -> np.ndarray:
    expected = frame_bytes(width, height)
    if len(data) != expected:
        raise InputError(f"{where} has {len(data)} bytes; a {width}x{height} RGB24 frame has "
                         f"{expected}: send frames of the size given at the start of the stream")
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def check_frame_array(frame: np.ndarray, width: int, height: int, where: str) -> np.ndarray:
    if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
        raise InputError(f"{where} is {frame.dtype} {tuple(frame.shape)}; expected uint8 "
                         f"({height}, {width}, 3) RGB")
    return frame


@dataclass(frozen=True)
class RingSpec:
    """The fields of liveedit.v1.SharedMemoryRing."""

    name: str
    slot_count: int
    slot_bytes: int
    header_bytes: int
    nonce: bytes


class FrameRing:
    def __init__(self, shm: shared_memory.SharedMemory, spec: RingSpec, width: int, height: int,
                 owner: bool):
        self._shm = shm
        self.spec = spec
        self.width, self.height = width, height
        self._owner = owner

    # -- creating (client) and opening (server) ---------------------------
    @classmethod
    def create(cls, width: int, height: int, slot_count: int = 24) -> "FrameRing":
        if slot_count < MIN_RING_SLOTS:
            raise InputError(f"a ring needs at least {MIN_RING_SLOTS} slots; got {slot_count}")
        slot = frame_bytes(width, height)
        name = RING_PREFIX + secrets.token_hex(8)
        shm = shared_memory.SharedMemory(name=name, create=True, size=HEADER_BYTES + slot * slot_count)
        _CREATED_HERE.add(name)
        nonce = secrets.token_bytes(NONCE_BYTES)
        shm.buf[:NONCE_BYTES] = nonce
        return cls(shm, RingSpec(name, slot_count, slot, HEADER_BYTES, nonce), width, height, owner=True)

    @classmethod
    def open(cls, spec: RingSpec, width: int, height: int) -> "FrameRing":
        """Opens the client's ring, or raises RingUnavailable saying why (the caller falls back
        to in-message frames) or InputError for a ring described inconsistently."""
        if not spec.name.startswith(RING_PREFIX) or "/" in spec.name or len(spec.name) > 64:
            raise InputError(f"ring name {spec.name[:80]!r} must start with {RING_PREFIX!r} "
                             "and contain no '/'")
        if spec.slot_count < MIN_RING_SLOTS:
            raise InputError(f"ring slot_count {spec.slot_count} is below {MIN_RING_SLOTS}: a whole "
                             "chunk must fit in flight")
        if spec.slot_bytes < frame_bytes(width, height):
            raise InputError(f"ring slot_bytes {spec.slot_bytes} is smaller than one "
                             f"{width}x{height} frame ({frame_bytes(width, height)} bytes)")
        if spec.header_bytes < NONCE_BYTES or len(spec.nonce) != NONCE_BYTES:
            raise InputError(f"ring header must hold the {NONCE_BYTES}-byte nonce")
        total = spec.header_bytes + spec.slot_bytes * spec.slot_count
        if total > MAX_RING_BYTES:
            raise InputError(f"ring of {total} bytes is larger than {MAX_RING_BYTES}; use fewer slots")
        try:
            shm = _attach(spec.name)
        except (FileNotFoundError, PermissionError, OSError) as exc:
            raise RingUnavailable(f"cannot open shared memory {spec.name!r} ({exc}); "
                                  "client and server are probably on different machines") from None
        if shm.size < total or bytes(shm.buf[:NONCE_BYTES]) != spec.nonce:
            shm.close()
            raise RingUnavailable(f"shared memory {spec.name!r} is not the client's ring "
                                  "(size or nonce differ)")
        return cls(shm, spec, width, height, owner=False)

    # -- pixels ------------------------------------------------------------
    def slot_of(self, index: int) -> int:
        return index % self.spec.slot_count

    def _view(self, slot: int) -> np.ndarray:
        if not 0 <= slot < self.spec.slot_count:
            raise InputError(f"ring slot {slot} is outside 0..{self.spec.slot_count - 1}")
        start = self.spec.header_bytes + slot * self.spec.slot_bytes
        return np.ndarray((self.height, self.width, 3), np.uint8, self._shm.buf, start)

    def write(self, slot: int, frame: np.ndarray) -> None:
        self._view(slot)[...] = frame

    def read(self, slot: int) -> np.ndarray:
        """A copy: the slot is reused once the frame is handed back."""
        return self._view(slot).copy()

    def close(self) -> None:
        try:
            self._shm.close()
        except BufferError:
            pass  # a numpy view is still alive; the mapping goes when it does
        if self._owner:
            _CREATED_HERE.discard(self.spec.name)
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _attach(name: str) -> shared_memory.SharedMemory:
    # Python < 3.13 registers attached segments with the resource tracker, which would unlink
    # the client's ring when the server exits; only the creator may unlink it.
    try:
        return shared_memory.SharedMemory(name=name, create=False, track=False)  # 3.13+
    except TypeError:
        shm = shared_memory.SharedMemory(name=name, create=False)
        if name in _CREATED_HERE:
            return shm  # one registration for both ends: the creator's unlink clears it
        try:
            from multiprocessing import resource_tracker

            resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - platform without a tracker (Windows)
            pass
        return shm
