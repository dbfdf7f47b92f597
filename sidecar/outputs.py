"""Checks on the paths a command or a job will read and write, made before anything
expensive runs (loading a model) and before any folder is made, and the hidden partial
files an interrupted write leaves behind.

- `check_path_length` refuses a path the file system cannot hold (a name over its name
  limit, a path over its path limit) with a message that shows only the start of it.
- `check_output_dir` finds the folder that stops an output folder from being created or
  written (a file in the way, no write permission, a read-only or immutable folder) and
  names it; it creates nothing.
- `partial_path` names a writer's temporary file with the writing process's id and host, so
  that `remove_dead_partials` can tell a file some running process is writing from one left
  by a process of this machine that was killed (SIGKILL, power loss), and remove only the
  latter; other machines' partials (shared storage) are never removed, only reported when
  old. `parse_partial` is the one reader of those names.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
import re
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from liveedit.errors import InputError, Kind

log = logging.getLogger(__name__)

# What messages and logs show of a value a user or client sent: enough to recognise it.
SHOWN_CHARS = 120
# POSIX's usual limits; pathconf gives the real ones where the path's file system is reachable.
DEFAULT_NAME_MAX = 255
DEFAULT_PATH_MAX = 4096


class OutputFolderError(InputError):
    """The output folder cannot be created or written; the message names the folder at fault."""

    kind = Kind.INVALID


def cut(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` as text for a message or a log line, cut to about `limit` characters with
    its full length said, so one huge request cannot fill a log or a status message."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def _limits(path: Path) -> tuple[int, int]:
    probe = path
    while probe != probe.parent:
        try:
            if probe.exists():
                break
        except OSError:  # this part is itself too long: look further up
            pass
        probe = probe.parent
    try:
        return os.pathconf(probe, "PC_NAME_MAX"), os.pathconf(probe, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):  # Windows has no pathconf
        return DEFAULT_NAME_MAX, DEFAULT_PATH_MAX


def check_path_length(path: str | os.PathLike, what: str) -> Path:
    """`path` as a Path, or an InputError when the file system cannot hold it."""
    path = Path(path)
    name_max, path_max = _limits(path)
    longest = max((len(os.fsencode(part)) for part in path.parts), default=0)
    if longest > name_max:
        raise InputError(f"{what} {cut(path)} has a name of {longest} bytes, too long for the file system "
                         f"(the limit is {name_max}); use a shorter name")
    if len(os.fsencode(str(path))) >= path_max:
        raise InputError(f"{what} {cut(path)} is too long for the file system (the limit is {path_max} bytes); "
                         "use a shorter path")
    return path


def is_name_too_long(exc: OSError) -> bool:
    return exc.errno == errno.ENAMETOOLONG


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Raise OutputFolderError (naming the folder at fault) unless `path` is, or can be
    created as, a folder this process can write into. Creates nothing that stays: the
    nearest existing folder is tried with a temporary file, removed at once, since
    permissions alone do not tell (root, read-only mounts, immutable folders)."""
    path = check_path_length(Path(path).expanduser(), what)
    existing = path
    while not existing.exists():
        if existing == existing.parent:
            break
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            raise OutputFolderError(f"{what} {cut(path)} is a file, not a folder; choose a folder")
        raise OutputFolderError(f"{what} {cut(path)} cannot be created: {cut(existing)} is a file, not a folder")
    # Where the trouble is: the folder itself, or the existing folder it would be made in.
    at_fault = f"{what} {cut(path)}" if existing == path else \
        f"{what} {cut(path)} cannot be created: {cut(existing)}"
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{at_fault} is not writable; choose a folder you can write to")
    try:
        fd, probe = tempfile.mkstemp(prefix=".liveedit-write-check-", dir=existing)
    except OSError as exc:
        raise OutputFolderError(f"{at_fault} does not take new files ({exc.strerror or type(exc).__name__}); "
                                "choose a folder you can write to") from None
    os.close(fd)
    os.unlink(probe)
    return path


# -- partial files ----------------------------------------------------------------------------

# `.<final name>.<8 hex>.<pid>@<host>.partial[<suffix>]`: hidden, unique, and it says who writes
# it. The host matters because output folders may be on storage shared by several machines (a
# Ray cluster, docs/scale-out.md): a pid means something only on the machine that gave it out.
# `@` keeps the new names apart from the old ones: an older version's pattern (`...\.<pid>\.partial`,
# tests/test_partials.py) does not match them, so it never removes a partial another machine writes.
_PARTIAL = re.compile(r"\.(?P<name>.+)\.(?P<tag>[0-9a-f]{8})(?:\.(?P<pid>[0-9]+)(?:@(?P<host>[A-Za-z0-9-]+))?)?"
                      r"\.partial(?P<suffix>\.[A-Za-z0-9]+)?")
# A host name in a file name: a readable start (host names can be long, or not ASCII) and a hash
# of the whole name, so that two hosts whose names clean or cut to the same start stay apart.
_HOST_CHARS = 16
_HOST_HASH_CHARS = 6
# Another host's partial is never removed here (its pid means nothing on this machine); one left
# unchanged this long is reported, since a writer appends to it as it goes: its writer has most
# likely died, and the user, who can see which machine it names, may remove it.
FOREIGN_PARTIAL_AGE = 24 * 3600


def host_token(hostname: str) -> str:
    """`hostname` as it appears in a partial file's name: [A-Za-z0-9-], at most 23 characters."""
    readable = re.sub(r"[^A-Za-z0-9-]+", "-", hostname).strip("-")[:_HOST_CHARS].strip("-")
    digest = hashlib.sha256(hostname.encode("utf-8", "surrogateescape")).hexdigest()[:_HOST_HASH_CHARS]
    return f"{readable}-{digest}" if readable else digest


@functools.cache
def this_host() -> str:
    """This machine's host token (see host_token)."""
    return host_token(socket.gethostname())


@dataclass(frozen=True)
class Partial:
    """What a partial file's name says. `host` is None for a name written by a version that
    put only the pid in it, and `pid` is None for one older still that put neither."""

    name: str  # the final file's name
    pid: int | None
    host: str | None
    suffix: str  # "" or the extension the writer needed, e.g. ".mov"

    @property
    def local(self) -> bool:
        """Written on this machine. A name without a host counts as this machine's: versions
        that wrote such names ran on one machine only (no shared output folders yet)."""
        return self.host is None or self.host == this_host()


def parse_partial(name: str) -> Partial | None:
    """What a file name made by partial_path (or an older version of it) says; None when it is
    not a partial file's name."""
    match = _PARTIAL.fullmatch(name)
    if match is None:
        return None
    pid = match["pid"]
    return Partial(match["name"], None if pid is None else int(pid), match["host"], match["suffix"] or "")


def partial_path(final: Path, suffix: str = "", pid: int | None = None, host: str | None = None) -> Path:
    """The temporary name a writer of `final` uses in the same folder (same file system, so
    the finished file moves into place atomically). `pid` and `host` (a host name) default to
    this process's and this machine's."""
    pid = os.getpid() if pid is None else pid
    token = this_host() if host is None else host_token(host)
    return final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.{pid}@{token}.partial{suffix}")


def process_running(pid: int) -> bool:
    """Whether a process with this id runs on this machine (ours counts)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


class PartialSweep(NamedTuple):
    removed: list[Path]  # partials of this machine's processes that are gone
    abandoned: list[Path]  # other machines' partials unchanged for FOREIGN_PARTIAL_AGE; left in place


def remove_dead_partials(folder: Path, *, now: float | None = None) -> PartialSweep:
    """Remove the partial files and folders in `folder` that a process of this machine wrote
    and that is no longer running. Another machine's partials are left alone, whatever their
    pid (it may be writing them now); those unchanged for FOREIGN_PARTIAL_AGE are logged and
    returned as `abandoned`, for the user to remove."""
    import shutil

    now = time.time() if now is None else now
    sweep = PartialSweep([], [])
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return sweep
    for entry in entries:
        partial = parse_partial(entry.name)
        if partial is None or partial.pid is None:  # no pid: nothing tells whether its writer lives
            continue
        if not partial.local:
            try:
                unchanged = now - entry.lstat().st_mtime
            except OSError:
                continue
            if unchanged >= FOREIGN_PARTIAL_AGE:
                log.warning("%s was written by process %s on another machine (%s) and has not changed for %.0f "
                            "hours; if nothing there writes it any more, remove it", entry, partial.pid,
                            partial.host, unchanged / 3600)
                sweep.abandoned.append(entry)
            continue
        if process_running(partial.pid):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as exc:
            log.warning("could not remove %s, left by an interrupted write: %s", entry, exc)
            continue
        log.info("removed %s, left by an interrupted write (process %s is gone)", entry, partial.pid)
        sweep.removed.append(entry)
    return sweep
