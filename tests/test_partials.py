"""Partial files on storage several machines share (docs/scale-out.md): a partial's name says
which process on which machine writes it, and the clean-up after a killed run removes only
this machine's dead writers' files. A pid means nothing on another machine, so another
machine's partial is never removed here, only reported once it has sat unchanged for long."""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liveedit.sidecar.naming import region_leftovers
from liveedit.sidecar.outputs import (FOREIGN_PARTIAL_AGE, Partial, host_token, parse_partial, partial_path,
                                      remove_dead_partials, this_host)

OTHER_HOST = "render-b.cluster.local"


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """A pid that belongs to no running process here."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def live_pid():
    """A running process of this machine other than the test's own (whose pid the cleaner
    recognises without asking the system)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_another_machines_partial_is_left_alone_whatever_its_pid(tmp_path, dead_pid, live_pid):
    final = tmp_path / "clip.mov"
    theirs_dead_here = partial_path(final, ".mov", pid=dead_pid, host=OTHER_HOST)
    theirs_dead_here.write_bytes(b"being written on render-b")
    theirs_folder = partial_path(tmp_path / "frames", pid=dead_pid, host=OTHER_HOST)
    theirs_folder.mkdir()
    theirs_live_here = partial_path(final, ".mov", pid=live_pid, host=OTHER_HOST)
    theirs_live_here.write_bytes(b"x")

    sweep = remove_dead_partials(tmp_path)

    assert sweep.removed == [] and sweep.abandoned == []
    assert theirs_dead_here.exists() and theirs_folder.is_dir() and theirs_live_here.exists()


def test_this_machines_partial_goes_only_when_its_process_is_gone(tmp_path, dead_pid, live_pid):
    final = tmp_path / "clip.mov"
    dead = partial_path(final, ".mov", pid=dead_pid)
    dead.write_bytes(b"x")
    dead_named = partial_path(final, ".mov", pid=dead_pid, host=socket.gethostname())  # the same host, spelt out
    dead_named.write_bytes(b"x")
    live = partial_path(final, ".mov", pid=live_pid)
    live.write_bytes(b"x")
    own = partial_path(final, ".mov")
    own.write_bytes(b"x")

    sweep = remove_dead_partials(tmp_path)

    assert sorted(sweep.removed) == sorted([dead, dead_named]) and sweep.abandoned == []
    assert not dead.exists() and not dead_named.exists()
    assert live.exists() and own.exists()


def test_another_machines_old_partial_is_reported_not_removed(tmp_path, dead_pid, caplog):
    final = tmp_path / "clip.mov"
    stale = partial_path(final, ".mov", pid=dead_pid, host=OTHER_HOST)
    stale.write_bytes(b"x")
    _age(stale, FOREIGN_PARTIAL_AGE + 60)
    stale_folder = partial_path(tmp_path / "frames", pid=dead_pid, host=OTHER_HOST)
    stale_folder.mkdir()
    _age(stale_folder, FOREIGN_PARTIAL_AGE + 60)
    recent = partial_path(final, ".mov", pid=dead_pid, host=OTHER_HOST)
    recent.write_bytes(b"x")
    _age(recent, FOREIGN_PARTIAL_AGE - 60)

    with caplog.at_level(logging.WARNING, logger="liveedit.sidecar.outputs"):
        sweep = remove_dead_partials(tmp_path)

    assert sweep.removed == []
    assert sorted(sweep.abandoned) == sorted([stale, stale_folder])
    assert stale.exists() and stale_folder.is_dir() and recent.exists()
    warned = "\n".join(r.getMessage() for r in caplog.records)
    assert str(stale) in warned and host_token(OTHER_HOST) in warned and str(recent) not in warned


def test_partials_named_by_earlier_versions_count_as_this_machines(tmp_path, dead_pid, live_pid):
    # `.<name>.<8 hex>.<pid>.partial[.mov]`: written by a version that ran on one machine only.
    dead = tmp_path / f".clip.mov.0123abcd.{dead_pid}.partial.mov"
    live = tmp_path / f".clip.mov.89abcdef.{live_pid}.partial.mov"
    dead_folder = tmp_path / f".frames.deadbeef.{dead_pid}.partial"
    # Older still: no pid at all, so nothing tells whether its writer is alive.
    no_pid = tmp_path / ".clip.mov.cafe0123.partial.mov"
    for path in (dead, live, no_pid):
        path.write_bytes(b"x")
    dead_folder.mkdir()
    _age(no_pid, 10 * FOREIGN_PARTIAL_AGE)

    assert parse_partial(dead.name) == Partial("clip.mov", dead_pid, None, ".mov")
    assert parse_partial(dead.name).local

    sweep = remove_dead_partials(tmp_path)

    assert sorted(sweep.removed) == sorted([dead, dead_folder]) and sweep.abandoned == []
    assert live.exists() and no_pid.exists()


ODD_HOSTS = [
    "gpu-b", "GPU-B", "gpu_b", "gpu-b.cluster.local", "10.0.0.6", "...", "-", "", "a" * 1000,
    "a" * 16 + "-one", "a" * 16 + "-two",  # cut to the same start: the hash keeps them apart
    "ünïcödé-host", "レンダー", "レンダー2", "host with spaces", "host/with\\slashes:and*stars",
    "surrogate-\udcff",  # what gethostname gives for a name that is not valid UTF-8
]


@pytest.mark.parametrize("final_name, suffix", [("clip.mov", ".mov"), ("frames", ""), ("my clip.v2.masks.mov", ".mov"),
                                                ("ü.mov", ".mov")])
def test_a_partials_name_reads_back_for_any_host(tmp_path, final_name, suffix):
    final = tmp_path / final_name
    tokens = set()
    for host in ODD_HOSTS:
        path = partial_path(final, suffix, pid=4194303, host=host)
        token = host_token(host)
        assert re.fullmatch(r"[A-Za-z0-9-]{1,23}", token), (host, token)
        assert path.parent == tmp_path and path.name.startswith(".") and ".partial" in path.name
        # Hidden prefix, 8 hex, pid, host, `.partial` and the suffix: well under 255 bytes' headroom.
        assert len(os.fsencode(path.name)) - len(os.fsencode(final_name)) <= 60
        assert parse_partial(path.name) == Partial(final_name, 4194303, token, suffix)
        assert not parse_partial(path.name).local
        tokens.add(token)
    assert len(tokens) == len(ODD_HOSTS)  # distinct hosts never share a token
    assert host_token(ODD_HOSTS[0]) == host_token(ODD_HOSTS[0])  # the same on every machine, every run


def test_this_machines_names_say_so():
    mine = parse_partial(partial_path(Path("/out/clip.mov"), ".mov").name)
    assert mine.pid == os.getpid() and mine.host == this_host() == host_token(socket.gethostname())
    assert mine.local


def test_earlier_versions_do_not_take_new_names_for_their_own():
    # The pattern of the version that put only the pid in the name: a machine still running it
    # on the same share must not read a new name as one of its own processes' files.
    old = re.compile(r"\.(?P<name>.+)\.(?P<tag>[0-9a-f]{8})\.(?P<pid>[0-9]+)\.partial(?P<suffix>\.[A-Za-z0-9]+)?")
    for host in ODD_HOSTS:
        assert old.fullmatch(partial_path(Path("/out/clip.mov"), ".mov", pid=1234, host=host).name) is None


def test_not_partials(tmp_path):
    for name in ("clip.mov", ".clip.mov", ".clip.mov.0123abcd.old", ".clip.mov.0123abcd.12@.partial",
                 ".clip.mov.0123abcd.12@a.b.partial", ".clip.mov.XYZ12345.12@a.partial", ".clip.otio.k2x.tmp"):
        assert parse_partial(name) is None, name


def test_a_requeued_regions_leftovers_include_every_machines_partials(tmp_path, dead_pid):
    # The queue removes these knowing nothing renders the region any more, so the host does not
    # matter there; other regions' files still do.
    stem = tmp_path / "b"
    mine = [partial_path(tmp_path / "b.mov", ".mov", pid=dead_pid), partial_path(tmp_path / "b", pid=dead_pid)]
    theirs = [partial_path(tmp_path / "b.masks.mov", ".mov", pid=dead_pid, host=OTHER_HOST)]
    others = [partial_path(tmp_path / "bb.mov", ".mov", host=OTHER_HOST), partial_path(tmp_path / "a.mov", ".mov"),
              partial_path(tmp_path / "b.mov", ".mp4", host=OTHER_HOST), tmp_path / "b.mov"]
    for path in (*mine, *theirs, *others):
        path.write_bytes(b"x")
    assert region_leftovers(stem) == sorted([*mine, *theirs])
