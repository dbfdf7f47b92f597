"""`liveedit weights fetch | verify | convert`: get the released weights, check them,
and turn the 17 GB training checkpoint into a slim bf16 transformer file."""

from __future__ import annotations

import argparse
from pathlib import Path

from liveedit.errors import LiveEditError


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="download, check or convert the model weights")
    sub = parser.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    fetch = sub.add_parser(
        "fetch",
        help="download the released weights (about 29 GB) into the Hugging Face cache",
        description="Downloads only the files LiveEdit needs from Wan-AI/Wan2.1-T2V-1.3B and "
        "cp-cp/LiveEdit into the standard Hugging Face cache (HF_HOME / HF_HUB_CACHE, or "
        "--cache-dir). Interrupted downloads resume; files already there are skipped; every "
        "file is checked after download.",
    )
    fetch.add_argument("--cache-dir", type=Path, help="Hugging Face cache folder (default: the standard one)")
    fetch.add_argument(
        "--include-ema",
        action="store_true",
        help="also check that the checkpoint's EMA generator (used with --ema) is present and "
        "readable; the released file holds both generators, so nothing extra is downloaded",
    )
    fetch.add_argument("--no-hash", action="store_true", help="skip the sha256 check (faster, catches less)")
    fetch.add_argument("--revision", action="append", default=[], metavar="REPO=COMMIT",
                       help="download REPO at this commit (a full 40-character commit id) instead of the one this "
                       "release pins; needed for cp-cp/LiveEdit, whose commit this release does not know")
    fetch.add_argument("--unpinned", action="store_true",
                       help="take the current main of a repository whose commit is not known (never silently); "
                       "the commit it gets is recorded and every later run uses it")
    fetch.set_defaults(func=_fetch)

    verify = sub.add_parser(
        "verify",
        help="check the weight files for missing, truncated or corrupt ones",
        description="Checks every file the model needs, in the Hugging Face cache or in --weights DIR "
        "(flat layout: Wan2.1_VAE.pth, models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/, "
        "ar-forcing_002000.pt or liveedit-transformer.safetensors, optional taew2_1.pth).",
    )
    verify.add_argument("--weights", metavar="DIR", type=Path, help="folder with the weight files")
    verify.add_argument("--cache-dir", type=Path, help="Hugging Face cache folder (default: the standard one)")
    verify.add_argument("--no-hash", action="store_true", help="skip the sha256 check (faster, catches less)")
    verify.set_defaults(func=_verify)

    convert = sub.add_parser(
        "convert",
        help="write the transformer of a checkpoint as one slim bf16 .safetensors file",
        description="Reads a LiveEdit/Self-Forcing .pt (or any accepted transformer file) and writes "
        "only the generator, in bf16, as .safetensors (2.8 GB instead of 17 GB; no pickle). "
        "Name it liveedit-transformer.safetensors inside a --weights folder to use it there.",
    )
    convert.add_argument("checkpoint", type=Path, help="e.g. ar-forcing_002000.pt")
    convert.add_argument("-o", "--output", type=Path, required=True, help="OUT.safetensors")
    convert.add_argument("--ema", action="store_true", help="take the EMA generator instead of the generator")
    convert.set_defaults(func=_convert)


def _fetch(args: argparse.Namespace) -> int:
    from liveedit.sidecar import weights

    revisions = dict(weights.parse_revision(text) for text in args.revision)
    checks = weights.fetch(cache_dir=args.cache_dir, hash=not args.no_hash, progress=True, revisions=revisions,
                           unpinned=args.unpinned)
    for check in checks:
        print(f"ok  {check.file.repo_id}/{check.file.filename}  ->  {check.path}")
    recorded = weights.read_pins()["revisions"]
    for repo in dict.fromkeys(c.file.repo_id for c in checks):
        print(f"pinned  {repo} at {recorded.get(repo, '?')} (recorded in {weights.pins_path()})")
    if args.include_ema:
        from liveedit.sidecar.weight_files import read_transformer_checkpoint

        transformer = next(c.path for c in checks if c.file.role == "transformer")
        state = read_transformer_checkpoint(transformer, use_ema=True)
        print(f"ok  EMA generator in {transformer.name}: {len(state)} tensors")
    print("weights ready; `liveedit weights verify` re-checks them at any time")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from liveedit.sidecar import weights

    checks = weights.verify(args.weights, cache_dir=args.cache_dir, hash=not args.no_hash, progress=True)
    bad = [c for c in checks if not c.ok]
    for check in checks:
        where = check.path if check.path is not None else "(not found)"
        state = "ok " if check.ok else "BAD"
        detail = "" if check.ok else "  " + "; ".join(check.problems)
        print(f"{state} {check.file.filename}  {where}{detail}")
    if bad:
        fix = (
            f"replace them in {args.weights}"
            if args.weights
            else f"delete the bad files and run `{weights.FETCH_COMMAND}` again"
        )
        raise LiveEditError(f"{len(bad)} of {len(checks)} weight files failed: {fix}")
    print(f"all {len(checks)} weight files ok")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from liveedit.sidecar.weight_files import read_transformer_checkpoint, write_slim_checkpoint

    if args.output.suffix != ".safetensors":
        raise LiveEditError(f"the output must end in .safetensors, got {args.output.name}")
    state = read_transformer_checkpoint(args.checkpoint, use_ema=args.ema)
    out = write_slim_checkpoint(
        state, args.output, metadata={"source": str(args.checkpoint), "ema": "true" if args.ema else "false"}
    )
    size = out.stat().st_size / 1e9
    print(f"wrote {out} ({'EMA generator' if args.ema else 'generator'}, bf16, {size:.2f} GB)")
    return 0
