"""Names of renders, computed once: the model's identity, the settings key (everything
that decides a segment's pixels), the output names of segments and job regions, and the
temporary files an interrupted render leaves behind. The CLI, the queue and the renderer all
ask here, so a segment rendered one way is recognised and reused by the others.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable

from liveedit.engine.config import SamplerConfig
from liveedit.errors import Kind, LiveEditError
from liveedit.sidecar.outputs import parse_partial


class OutputNameError(LiveEditError):
    """An output name that would land outside the output folder."""

    kind = Kind.INVALID


# -- the model and the settings that decide a segment's pixels ------------------------


def sampler_settings(sampler) -> dict:
    """A SamplerConfig (or its fields as a dict; None: the default) as plain data for settings
    keys and the provenance record."""
    if sampler is None:
        sampler = SamplerConfig()
    if dataclasses.is_dataclass(sampler):
        sampler = dataclasses.asdict(sampler)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(sampler).items()}


def model_identity(models) -> str:
    """Names the weights: preset plus checkpoint hash, or "random" for random weights."""
    return model_identity_of(getattr(getattr(models, "preset", None), "name", None),
                             bool(getattr(models, "random_weights", False)), getattr(models, "checkpoint_hash", None))


def model_identity_of(preset: str | None, random_weights: bool, checkpoint_hash: str | None) -> str:
    """The same identity from a model's description (a ServerInfo, a ModelCard), so names and
    settings keys agree between a sidecar and a local render."""
    if random_weights:
        return f"{preset or 'model'}:random"
    return f"{preset or 'model'}:{checkpoint_hash or 'unhashed'}"


def mask_cache_settings(mask_cache) -> dict | None:
    """The mask cache settings that decide pixels (save_masks only adds a file)."""
    if mask_cache is None:
        return None
    settings = sampler_settings(mask_cache)
    settings.pop("save_masks", None)
    return settings


def detail_settings(detail) -> dict:
    """The detail delivery settings that decide pixels (a DetailConfig; None: the default,
    "transfer"), as settings keys and the provenance record hold them."""
    from liveedit.engine.config import DetailConfig

    return (detail or DetailConfig()).pixel_settings()


def settings_key(region, model: str, seed: int, sampler=None, *, handles: int = 0, format: str = "prores",
                 mask_cache=None, detail=None) -> str:
    """A short, deterministic hash of everything that decides the pixels of a segment:
    the same key means the same render, so finished regions are recognised and skipped.
    The source file's size and modification time are in it, so a replaced source re-renders.
    ``detail`` (a DetailConfig; None = the default, "transfer") is in it unless it is "off":
    renders made before detail delivery existed scaled the model picture up, which is "off"."""
    try:
        stat = os.stat(region.media_path)
        source = [str(Path(region.media_path).resolve()), stat.st_size, stat.st_mtime_ns]
    except OSError:
        source = [region.media_path, None, None]
    payload = {
        "source": source,
        "first_frame": region.first_frame,
        "frame_count": region.frame_count,
        "instruction": region.instruction,
        "model": model,
        "seed": int(seed),
        "sampler": sampler_settings(sampler),
        "handles": int(handles),
        "format": format,
    }
    if mask_cache is not None:  # only when on, so keys of renders without it stay as they were
        payload["mask_cache"] = mask_cache_settings(mask_cache)
    detail = detail_settings(detail)
    if detail["mode"] != "off":
        payload["detail"] = detail
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def segment_name(region, key: str) -> str:
    """<clip>_<first>-<last>_<key>: readable in a bin, unique per settings."""
    clip = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(region.clip_name or Path(region.media_path).stem).stem).strip("._") or "clip"
    last = region.first_frame + region.frame_count - 1
    return f"{clip[:60]}_{region.first_frame:06d}-{last:06d}_{key}"


# -- output names ---------------------------------------------------------------------


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def confined_path(output_dir: str | Path, name: str, where: str = "output name") -> Path:
    """``output_dir/name`` (absolute, resolved), refusing any name that could land outside
    ``output_dir``: empty, absolute, with a drive or a backslash, with ``..``, or through a
    symlink that points elsewhere. The one rule for segment names and job region names."""
    root = Path(output_dir).resolve()
    if not name.strip() or Path(name).is_absolute() or "\\" in name or ":" in name:
        raise OutputNameError(f"{where} {name!r} must be a relative file name inside the output folder {root}")
    if ".." in Path(name).parts:
        raise OutputNameError(f"{where} {name!r} points outside output_dir {str(root)!r}; "
                              "outputs must stay inside the output folder")
    candidate = (root / name).resolve()
    if candidate == root or not candidate.is_relative_to(root):
        raise OutputNameError(f"{where} {name!r} resolves to {candidate}, outside the output folder {root}; "
                              "remove the symlink or choose another name")
    return candidate


def default_stem(output_dir: Path, job_id: str, index: int, region) -> Path:
    last = region.first_frame + region.frame_count - 1
    media = _UNSAFE.sub("_", region.media.stem)[:80] or "clip"
    return output_dir / f"{media}_f{region.first_frame}-{last}_liveedit-{job_id[:8]}-r{index}"


def stable_names(regions: Iterable, *, model: str, seed: int, handles: int, format: str,
                 settings) -> list[str | None]:
    """The output name render_region gives each timeline Region when it picks one itself
    (segment_name + settings_key): a job that sends these finds segments rendered earlier with
    the same settings, by a job or in-process, and skips them. A region that repeats an earlier
    one's name gets None (a job-derived name), since one job never writes one output twice."""
    sampler, mask_cache = settings.sampler_config(), settings.mask_cache
    names: list[str | None] = []
    for region in regions:
        key = settings_key(region, model, seed, sampler, handles=handles, format=format, mask_cache=mask_cache,
                           detail=settings.detail)
        name = segment_name(region, key)
        names.append(None if name in names else name)
    return names


# -- what an interrupted render leaves behind ------------------------------------------


def region_leftovers(output_stem: Path) -> list[Path]:
    """Hidden temporary files and folders a render of `output_stem` leaves behind when its
    process dies, and nothing else: SegmentWriter's partials (outputs.partial_path, any host,
    any pid, and the older names without them) and `.<folder>.<8 hex>.old` for the segment
    (`<name>.mov` or the PNG folder `<name>`) and its token-mask video (`<name>.masks.mov`),
    and write_otio's `.<name>.otio.<random>.tmp`."""
    finals = {output_stem.name, f"{output_stem.name}.mov", f"{output_stem.name}.masks.mov"}
    name = re.escape(output_stem.name)
    others = re.compile(rf"\.{name}(?:(?:\.mov|\.masks\.mov)?\.[0-9a-f]{{8}}\.old|\.otio\.[A-Za-z0-9_]+\.tmp)")
    try:
        entries = list(output_stem.parent.iterdir())
    except OSError:
        return []

    def leftover(entry: Path) -> bool:
        partial = parse_partial(entry.name)
        if partial is not None:
            return partial.name in finals and partial.suffix in ("", ".mov")
        return others.fullmatch(entry.name) is not None

    return sorted(p for p in entries if leftover(p))
