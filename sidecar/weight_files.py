"""Reading and writing transformer checkpoint files. The layouts themselves (released dict,
FSDP names, Wan base, diffusers names) are engine/checkpoint.py; this module only finds
files, opens them safely and writes ours atomically.

Accepted: the released ``.pt``/``.pth`` (``generator`` / ``generator_ema`` / ``critic``) or a
plain state dict saved with torch; Wan2.1's ``diffusion_pytorch_model.safetensors`` (one
file or diffusers shards with an index); our slim bf16 ``.safetensors``; or a folder
holding one of those.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from liveedit.engine.checkpoint import EXPECTED_FORMATS, canonical_state_dict, select_generator
from liveedit.errors import CheckpointError

SLIM_FORMAT = "liveedit-transformer"
TORCH_SUFFIXES = (".pt", ".pth")
# Files of the Wan2.1 release that sit next to the transformer and are not transformers.
_NOT_TRANSFORMER = ("t5", "vae", "clip")


def read_transformer_checkpoint(path: str | os.PathLike, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """The transformer weights in ``path`` as a state dict with Wan names and a 32-channel
    patch embedding, ready for ``engine.checkpoint.load_strict``. ``use_ema`` takes the
    released file's EMA generator."""
    path = Path(path)
    if path.is_dir():
        path = find_transformer_file(path)
    if not path.is_file():
        raise CheckpointError(f"transformer weights not found: {path} does not exist")
    if path.suffix in TORCH_SUFFIXES:
        return canonical_state_dict(select_generator(_torch_load(path), use_ema=use_ema))
    if path.name.endswith(".safetensors.index.json"):
        return canonical_state_dict(_read_shards(path))
    if path.suffix == ".safetensors":
        metadata = read_checkpoint_metadata(path)
        if use_ema and metadata.get("ema") != "true":
            what = "from the non-EMA generator" if metadata.get("format") == SLIM_FORMAT else "not an EMA checkpoint"
            raise CheckpointError(
                f"{path} is {what}; drop --ema, or convert the released .pt again with --ema"
            )
        return canonical_state_dict(_safetensors_load(path))
    raise CheckpointError(f"{path}: unknown weights file type {path.suffix!r}. Expected {EXPECTED_FORMATS}.")


def find_transformer_file(folder: Path) -> Path:
    """The one transformer file in a folder (or its ``transformer/`` subfolder): our slim
    file first, then a released ``.pt``, then Wan/diffusers safetensors."""
    for place in (folder, folder / "transformer"):
        if not place.is_dir():
            continue
        files = sorted(p for p in place.iterdir() if p.is_file())
        index = [p for p in files if p.name.endswith(".safetensors.index.json")]
        safetensors = [p for p in files if p.suffix == ".safetensors"]
        slim = [p for p in safetensors if read_checkpoint_metadata(p).get("format") == SLIM_FORMAT]
        torch_files = [
            p for p in files if p.suffix in TORCH_SUFFIXES and not any(w in p.name.lower() for w in _NOT_TRANSFORMER)
        ]
        for group in (slim, torch_files, index, safetensors):
            if len(group) == 1:
                return group[0]
            if len(group) > 1:
                raise CheckpointError(
                    f"{place} holds several candidate transformer files ({', '.join(p.name for p in group)}); "
                    "pass the file itself"
                )
    raise CheckpointError(f"no transformer weights in {folder}. Expected {EXPECTED_FORMATS}.")


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file (empty if it has none)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); download or convert it again") from exc


def write_slim_checkpoint(
    state_dict: Mapping[str, torch.Tensor],
    path: str | os.PathLike,
    dtype: torch.dtype = torch.bfloat16,
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Write the transformer as one safetensors file in ``dtype`` (bf16: 2.8 GB instead of the
    released 3 × 5.7 GB pickle), atomically. ``metadata`` should name the ``source`` file and
    whether it is the ``ema`` generator ("true"/"false"); it is stored as strings."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"slim checkpoints are .safetensors files; got {path.name}")
    meta = {"format": SLIM_FORMAT, "dtype": str(dtype).removeprefix("torch.")}
    meta.update({k: _meta_str(v) for k, v in (metadata or {}).items()})
    source = meta.get("source")
    if source and Path(source).resolve() == path.resolve():
        raise CheckpointError(f"refusing to overwrite the source weights {source}; choose another output path")
    tensors = {
        k: (v.to(dtype, copy=True) if v.is_floating_point() else v.clone()).contiguous()
        for k, v in canonical_state_dict(state_dict).items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _meta_str(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _torch_load(path: Path):
    """torch.load with weights_only (no arbitrary code from a downloaded pickle) and mmap
    (the released file holds three models; only the generator's pages are read)."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy, non-zip file
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors, which are not loaded for safety ({exc}). "
            f"Expected {EXPECTED_FORMATS}."
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} could not be read as a torch checkpoint ({exc}); is the download complete?") from exc


def _safetensors_load(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); download or convert it again") from exc


def _read_shards(index: Path) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{index} is not a safetensors shard index ({exc})") from exc
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        state.update(_safetensors_load(index.parent / shard))
    return state
