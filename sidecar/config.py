"""Where the sidecar keeps its per-user files, and the per-install token.

Shared by the gRPC server (`sidecar/server.py`) and the HTTP bridge (`sidecar/bridge.py`):
both accept the same token, so a client that can read the user's config folder can talk to
either. Layout (see docs/architecture.md):

- config folder: `~/.config/liveedit/` (Linux, honours XDG_CONFIG_HOME),
  `~/Library/Application Support/LiveEdit/` (macOS), `%APPDATA%\\LiveEdit\\` (Windows);
  holds `token` (mode 0600) and `bridge.json`.
- runtime folder (sockets): `$XDG_RUNTIME_DIR/liveedit/` when set, else a private
  `liveedit-<uid>` folder in the temp dir; holds `sidecar.sock`.

LIVEEDIT_CONFIG_DIR / LIVEEDIT_RUNTIME_DIR override both (tests, several installs side by side).
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
import tempfile
from pathlib import Path

from liveedit.errors import LiveEditError

TOKEN_FILE = "token"
SOCKET_FILE = "sidecar.sock"
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


def load_or_create_token(path: Path | None = None) -> str:
    """The per-install token, created on first use (random, mode 0600, written atomically)."""
    path = path or token_path()
    token = read_token(path)
    if token:
        return token
    ensure_private_dir(path.parent)
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    try:
        # Another process may have created it meanwhile: keep theirs (link fails if present).
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # file systems without hard links
        if not path.exists():
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return read_token(path) or token


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


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison, so the token cannot be guessed byte by byte from timing."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def check_loopback(host: str) -> str:
    """Only loopback addresses may be bound: the sidecar is a local service."""
    if host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"refusing to listen on {host!r}: the sidecar only binds loopback addresses "
            f"({', '.join(LOOPBACK_HOSTS)}); use an SSH tunnel to reach it from another machine"
        )
    return host


# -- bridge.json and the jobs database (sidecar/bridge.py, sidecar/jobs.py) ----------------

BRIDGE_FILE = "bridge.json"
JOBS_DB_FILE = "jobs.sqlite3"


def bridge_info_path() -> Path:
    return config_dir() / BRIDGE_FILE


def write_bridge_info(port: int, path: Path | None = None) -> Path:
    """Record the bridge's port for clients (Resolve scripts, the UXP panel's installer).
    Written atomically so a client never reads half a file."""
    path = path or bridge_info_path()
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"port": int(port)}) + "\n")
    os.replace(tmp, path)
    return path


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


def cache_dir() -> Path:
    """The per-user cache folder (not created): edited take frames (sidecar/takes.py).
    LIVEEDIT_CACHE_DIR overrides it."""
    override = os.environ.get("LIVEEDIT_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "LiveEdit" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "LiveEdit"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liveedit"


def default_jobs_db() -> Path:
    """The render queue's database (jobs survive restarts)."""
    return config_dir() / JOBS_DB_FILE
