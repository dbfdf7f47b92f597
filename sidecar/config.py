"""The sidecar's side of the per-user files: creating the install token, checking it,
binding only loopback addresses, and writing bridge.json. Where the files live, and reading
them, is clients/transport.py, which clients and the sidecar share.

Shared by the gRPC server (`sidecar/server.py`) and the HTTP bridge (`sidecar/bridge.py`):
both accept the same token, so a client that can read the user's config folder can talk to
either.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
from pathlib import Path

# The per-user layout both sides share; the server's modules reach it through this module.
from liveedit.clients.transport import (  # noqa: F401 - default_socket_path: server.py uses config.*
    ConfigError,
    bridge_info_path,
    config_dir,
    default_socket_path,
    ensure_private_dir,
    read_token,
    token_path,
)


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

JOBS_DB_FILE = "jobs.sqlite3"


def write_bridge_info(port: int, path: Path | None = None) -> Path:
    """Record the bridge's port for clients (Resolve scripts, the UXP panel's installer).
    Written atomically so a client never reads half a file."""
    path = path or bridge_info_path()
    ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"port": int(port)}) + "\n")
    os.replace(tmp, path)
    return path


def cache_dir() -> Path:
    """The sidecar's per-user cache folder (not created): edited take frames (sidecar/takes/).
    LIVEEDIT_CACHE_DIR overrides it."""
    override = os.environ.get("LIVEEDIT_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "LiveEdit" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "LiveEdit"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liveedit"


def remove_bridge_info(port: int, path: Path | None = None) -> bool:
    """Forget a stopped bridge: remove bridge.json if it still names `port` (a sidecar started
    since then owns the file otherwise). True when removed."""
    path = path or bridge_info_path()
    try:
        if json.loads(path.read_text()).get("port") != port:
            return False
        path.unlink()
    except (OSError, ValueError, AttributeError):
        return False
    return True


def default_jobs_db() -> Path:
    """The render queue's database (jobs survive restarts)."""
    return config_dir() / JOBS_DB_FILE
