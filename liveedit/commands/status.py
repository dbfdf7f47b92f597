"""`liveedit status`: what the running sidecar is (or that none is running, and how to start one)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("status", help="show the running sidecar's version, model, device and queue",
                       description="Connect to the sidecar and print what it serves.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, help="Unix socket path (default: the per-user runtime folder)")
    where.add_argument("--port", type=int, help="loopback TCP port (uses the per-install token)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the server")
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts) instead of the table")
    p.set_defaults(func=run)


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def run(args) -> int:
    from google.protobuf.json_format import MessageToDict

    from liveedit.clients.python import LiveEditClient, ServerError, ServerNotRunningError

    try:
        if args.port is not None:
            host = f"[{args.host}]" if ":" in args.host else args.host
            client = LiveEditClient.connect(address=f"{host}:{args.port}", timeout=args.timeout)
        elif args.socket is None and os.environ.get("LIVEEDIT_SIDECAR", "").strip():
            from liveedit.commands.render import resolve_sidecar_address

            client = LiveEditClient.connect(address=resolve_sidecar_address(""), timeout=args.timeout)
        else:
            client = LiveEditClient.connect(args.socket, timeout=args.timeout)
    except ServerNotRunningError as exc:
        if args.json:
            print(json.dumps({"running": False, "error": str(exc)}))
        else:
            print(f"liveedit: {exc}", file=sys.stderr)
        return 1
    with client:
        info = client.info()
        try:
            jobs = client.list_jobs()
        except ServerError:
            jobs = None
    if args.json:
        doc = {"running": True, "address": client.target,
               **MessageToDict(info, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)}
        doc["jobs"] = None if jobs is None else {
            "total": len(jobs), "queued_or_running": sum(1 for j in jobs if j.state in (1, 2))}
        print(json.dumps(doc, indent=2))
        return 0
    print(f"server      liveedit {info.version} at {client.target}")
    print(f"model       {info.model_preset}: {info.model_description}")
    if info.random_weights:
        print("            WARNING: RANDOM weights - output is not a real edit")
    print(f"device      {info.device}{' (' + info.device_name + ')' if info.device_name else ''}")
    if info.gpu_memory_total_bytes:
        print(f"gpu memory  {_gib(info.gpu_memory_free_bytes)} free of {_gib(info.gpu_memory_total_bytes)}")
    caps = info.capabilities
    print(f"transport   shared memory {'yes' if caps.shared_memory else 'no'}, "
          f"messages up to {caps.max_message_bytes // 2**20} MiB")
    if jobs is None:
        print("jobs        no render queue")
    else:
        active = sum(1 for j in jobs if j.state in (1, 2))
        print(f"jobs        {len(jobs)} ({active} queued or running)")
    if info.render_executor:
        print(f"renders     {info.render_executor}")
    for worker in info.render_workers:
        print(worker_line(worker))
    return 0


def worker_line(w) -> str:
    """One GPU worker of a Ray cluster: where it runs, on which GPU, what it renders."""
    gpus = ",".join(w.gpu_ids) or "-"
    device = w.device_name or w.device or "not loaded yet"
    where = f"{w.host or '?'}" + (f" ({w.node_ip})" if w.node_ip else "") + (f" pid {w.pid}" if w.pid else "")
    line = f"  worker {w.index:<3} {where}, GPU {gpus} [{device}]: {w.state}"
    if w.job_id:
        total = f"/{w.frame_count}" if w.frame_count else ""
        line += f" job {w.job_id[:12]} region {w.region_index} ({w.frames_done}{total} frames)"
    if w.regions_done:
        line += f", {w.regions_done} region(s) done"
    if w.error:
        line += f" - {w.error}"
    return line
