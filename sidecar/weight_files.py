"""Reading weight files into state dicts and handing them to the engine (engine/loading.py
builds the modules), and writing our slim transformer file. Which files exist and where
(hub cache or --weights folder) is sidecar/weights.py; the transformer's layouts themselves
(released dict, FSDP names, Wan base, diffusers names) are engine/checkpoint.py.

Transformer files accepted: the released ``.pt``/``.pth`` (``generator`` / ``generator_ema``
/ ``critic``) or a plain state dict saved with torch; Wan2.1's
``diffusion_pytorch_model.safetensors`` (one file or diffusers shards with an index); our
slim bf16 ``.safetensors``; or a folder holding one of those.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from liveedit.engine import loading
from liveedit.engine.checkpoint import EXPECTED_FORMATS, canonical_state_dict, select_generator
from liveedit.engine.editor import EditorModels
from liveedit.engine.presets import Preset, get_preset
from liveedit.engine.text import ByteTokenizer, HubTokenizer, Tokenizer
from liveedit.errors import CheckpointError, LiveEditError
from liveedit.sidecar.weights import FETCH_COMMAND, WeightPaths, blob_sha256, locate

log = logging.getLogger(__name__)

SLIM_FORMAT = "liveedit-transformer"
TORCH_SUFFIXES = (".pt", ".pth")
# Files of the Wan2.1 release that sit next to the transformer and are not transformers.
_NOT_TRANSFORMER = ("t5", "vae", "clip")


def read_transformer_checkpoint(path: str | os.PathLike, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """The transformer weights in ``path`` as a state dict with Wan names and a 32-channel
    patch embedding, ready for ``engine.loading.load_transformer``. ``use_ema`` takes the
    released file's EMA generator."""
    path = Path(path)
    if path.is_dir():
        path = find_transformer_file(path)
    if not path.is_file():
        raise CheckpointError(f"transformer weights not found: {path} does not exist")
    if path.suffix in TORCH_SUFFIXES:
        return canonical_state_dict(select_generator(read_torch_file(path), use_ema=use_ema))
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


def read_torch_file(path: Path):
    """A torch-saved weights file, with weights_only (no arbitrary code from a downloaded
    pickle) and mmap (an 11 GB file is paged in as its tensors are used, and of the released
    transformer file's three models only the generator's pages are read)."""
    fix = f"run `liveedit weights verify`, then `{FETCH_COMMAND}` to replace it"
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)  # legacy, non-zip file
    except pickle.UnpicklingError as exc:
        if zipfile.is_zipfile(path):  # a whole archive, refused for what it holds
            raise CheckpointError(f"{path} holds Python objects other than tensors, which are not loaded for "
                                  f"safety; {fix}") from exc
        raise CheckpointError(f"cannot read {path}: it is not a torch weights file (damaged or truncated); "
                              f"{fix}") from exc
    except Exception as exc:  # zip, pickle and I/O errors have many types; all mean the same to a user
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot read {path}: {reason}. The file is damaged or not a weights file; "
                              f"{fix}") from exc


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


# -- into the engine ---------------------------------------------------------------------
class FileWeights:
    """The engine's WeightSource over the files `weights.locate` found: each part is read
    when the engine asks for it."""

    def __init__(self, paths: WeightPaths, preset: Preset, *, use_ema: bool = False):
        self.paths, self.preset, self.use_ema = paths, preset, use_ema
        which = "EMA generator" if use_ema else "generator"
        self.description = f"{preset.name}: LiveEdit {paths.transformer.name} ({which}) from {paths.source}"
        self.checkpoint_hash = blob_sha256(paths.transformer)

    def vae(self) -> loading.Weights:
        return _read(self.paths.vae)

    def text_encoder(self) -> loading.Weights:
        return _read(self.paths.text_encoder)

    def tokenizer(self) -> Tokenizer:
        return ByteTokenizer() if self.preset.text_encoder.tokenizer == "bytes" else HubTokenizer(self.paths.tokenizer_dir)

    def transformer(self) -> loading.Weights:
        path = self.paths.transformer
        return loading.Weights(read_transformer_checkpoint(path, use_ema=self.use_ema), str(path))

    def tiny_vae(self) -> loading.Weights | None:
        return None if self.paths.tiny_vae is None else _read(self.paths.tiny_vae)


def _read(path: Path) -> loading.Weights:
    return loading.Weights(read_torch_file(path), str(path))


def load_editor_models(
    preset: Preset | str,
    weights_dir: str | Path | None = None,
    *,
    device="cpu",
    dtype=torch.bfloat16,
    use_ema: bool = False,
    offline: bool | None = None,
    cache_dir: str | Path | None = None,
) -> EditorModels:
    """The released LiveEdit model, read from `weights_dir` or the hub cache, as the
    engine's `EditorModels`. `preset` is a Preset or its name."""
    if isinstance(preset, str):
        preset = get_preset(preset)
    if preset.random_only:
        raise LiveEditError(
            f"the {preset.name!r} preset has no released weights (it exists for tests and CPU runs); "
            "use random weights for it, or choose the liveedit-1.3b preset"
        )
    paths = locate(weights_dir, offline=offline, cache_dir=cache_dir)
    log.info("loading weights from %s", paths.source)
    return loading.load_editor_models(preset, FileWeights(paths, preset, use_ema=use_ema), device=device, dtype=dtype)
