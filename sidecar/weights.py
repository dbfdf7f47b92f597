"""The released weights on disk: fetch them from the Hugging Face Hub, check them and find
them (reading them into the engine's modules is sidecar/weight_files.py).

Two places weights can live:

1. **The Hugging Face hub cache** (default; `liveedit weights fetch` fills it, and
   `HF_HOME` / `HF_HUB_CACHE` / `--cache-dir` move it). Nothing here touches the network
   except `fetch`; `locate` reads the cache only, so `HF_HUB_OFFLINE=1` machines work.
2. **A folder given with `--weights DIR`**, flat layout, the files named as on the Hub:

       DIR/Wan2.1_VAE.pth
       DIR/models_t5_umt5-xxl-enc-bf16.pth
       DIR/google/umt5-xxl/           (tokenizer: tokenizer.json, spiece.model, configs)
       DIR/ar-forcing_002000.pt       (or a slim file from `liveedit weights convert`,
                                       named liveedit-transformer.safetensors)
       DIR/taew2_1.pth                (optional tiny VAE for previews)

Integrity: the Hub names every large (LFS) file's blob in the cache by its sha256, so a
cached file is checked by hashing it against its own blob name. Any file is also checked
for its approximate size, and `.pt`/`.pth` files (zip archives since torch 1.6) for an
intact zip directory, which a truncated download lacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from liveedit.errors import LiveEditError

log = logging.getLogger(__name__)

WAN_REPO = "Wan-AI/Wan2.1-T2V-1.3B"
LIVEEDIT_REPO = "cp-cp/LiveEdit"
TOKENIZER_FOLDER = "google/umt5-xxl"
SLIM_TRANSFORMER = "liveedit-transformer.safetensors"
TINY_VAE_FILE = "taew2_1.pth"

FETCH_COMMAND = "liveedit weights fetch"


@dataclass(frozen=True)
class WeightFile:
    role: str  # vae | text_encoder | tokenizer | transformer
    repo_id: str
    filename: str  # path in the repository, and in a --weights folder
    approx_bytes: int | None  # as the Hub's file list shows it (3 significant digits), if known
    description: str
    required: bool = True  # optional files are fetched when the repository has them

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/blob/main/{self.filename}"


# Sizes from the Hub's file lists (backbone-and-peers.md §A5); None where not known.
WEIGHT_FILES: tuple[WeightFile, ...] = (
    WeightFile("vae", WAN_REPO, "Wan2.1_VAE.pth", 508_000_000, "Wan2.1 VAE (fp32)"),
    WeightFile("text_encoder", WAN_REPO, "models_t5_umt5-xxl-enc-bf16.pth", 11_400_000_000, "umT5-XXL encoder (bf16)"),
    WeightFile("tokenizer", WAN_REPO, f"{TOKENIZER_FOLDER}/spiece.model", 4_550_000, "umT5 tokenizer model"),
    WeightFile("tokenizer", WAN_REPO, f"{TOKENIZER_FOLDER}/tokenizer.json", 16_800_000, "umT5 tokenizer"),
    WeightFile("tokenizer", WAN_REPO, f"{TOKENIZER_FOLDER}/tokenizer_config.json", None, "umT5 tokenizer settings"),
    WeightFile("tokenizer", WAN_REPO, f"{TOKENIZER_FOLDER}/special_tokens_map.json", None, "umT5 special tokens", False),
    WeightFile("transformer", LIVEEDIT_REPO, "ar-forcing_002000.pt", None, "LiveEdit transformer (DMD step 2000)"),
)
SIZE_TOLERANCE = 0.01  # the Hub rounds sizes to 3 significant digits


# -- checking files ------------------------------------------------------------------------
@dataclass
class FileCheck:
    file: WeightFile
    path: Path | None
    problems: list[str] = field(default_factory=list)
    sha256: str | None = None

    @property
    def ok(self) -> bool:
        return self.path is not None and not self.problems


def blob_sha256(path: Path) -> str | None:
    """The sha256 the hub cache names this file's blob by (LFS files only)."""
    target = Path(os.path.realpath(path))
    return target.name if target.parent.name == "blobs" and re.fullmatch(r"[0-9a-f]{64}", target.name) else None


def sha256_of(path: Path, progress: bool = False) -> str:
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    with open(path, "rb") as f, tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=f"checking {path.name}", disable=not progress
    ) as bar:
        while chunk := f.read(16 << 20):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def check_file(wf: WeightFile, path: Path, *, hash: bool = True, progress: bool = False) -> FileCheck:
    """Truncation and corruption checks for one file (see the module docstring)."""
    check = FileCheck(wf, path)
    if not path.is_file():
        check.problems.append("missing")
        return check
    size = path.stat().st_size
    if wf.approx_bytes is not None and size < wf.approx_bytes * (1 - SIZE_TOLERANCE):
        check.problems.append(f"only {size:,} bytes, expected about {wf.approx_bytes:,} (truncated download?)")
    if path.suffix in (".pt", ".pth"):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.infolist()
        except (zipfile.BadZipFile, OSError):
            check.problems.append("not a complete torch archive (truncated or corrupt)")
    elif path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            check.problems.append("not valid JSON (truncated or corrupt)")
    expected = blob_sha256(path)
    if hash and expected is not None:
        check.sha256 = sha256_of(path, progress)
        if check.sha256 != expected:
            check.problems.append(f"sha256 {check.sha256[:12]}... differs from the Hub's {expected[:12]}... (corrupt)")
    return check


# -- finding files ---------------------------------------------------------------------------
def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached_path(wf: WeightFile, cache_dir: str | Path | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(wf.repo_id, wf.filename, cache_dir=str(cache_dir) if cache_dir else None)
    return Path(found) if isinstance(found, str) else None


def _interrupted(wf: WeightFile, cache_dir: str | Path | None) -> bool:
    """An `.incomplete` blob of this repository means a download stopped part way."""
    from huggingface_hub.constants import HF_HUB_CACHE

    root = Path(cache_dir or HF_HUB_CACHE) / f"models--{wf.repo_id.replace('/', '--')}" / "blobs"
    return root.is_dir() and any(root.glob("*.incomplete"))


def _missing_message(wf: WeightFile, where: str, weights_dir: Path | None, offline: bool, interrupted: bool) -> str:
    if weights_dir is not None:
        fix = (
            f"put {wf.filename} from {wf.url} into {weights_dir}, or drop --weights to use the "
            f"Hugging Face cache filled by `{FETCH_COMMAND}`"
        )
    elif interrupted:
        fix = f"a download of {wf.repo_id} was interrupted; run `{FETCH_COMMAND}` again to resume it"
    elif offline:
        fix = (
            f"HF_HUB_OFFLINE is set, so nothing is downloaded: run `{FETCH_COMMAND}` on a connected "
            "machine and copy the cache, or pass --weights DIR"
        )
    else:
        fix = f"run `{FETCH_COMMAND}` (downloads once, about 29 GB) or pass --weights DIR"
    return f"{wf.description} ({wf.filename}) is not in {where}: {fix}."


@dataclass(frozen=True)
class WeightPaths:
    vae: Path
    text_encoder: Path
    tokenizer_dir: Path
    transformer: Path
    tiny_vae: Path | None
    source: str  # where they came from, for messages and EditorModels.description


def locate(
    weights_dir: str | Path | None = None,
    *,
    offline: bool | None = None,
    cache_dir: str | Path | None = None,
    files: tuple[WeightFile, ...] = WEIGHT_FILES,
) -> WeightPaths:
    """Find every file the released model needs, without the network. Raises LiveEditError
    naming the first missing file and the command that fixes it."""
    offline = _offline(offline)
    found: dict[str, Path] = {}
    if weights_dir is not None:
        root = Path(weights_dir).expanduser()
        if not root.is_dir():
            raise LiveEditError(f"--weights {root} is not a folder; give the folder that holds the weight files")
        where = str(root)
        slim = root / SLIM_TRANSFORMER
        for wf in files:
            path = root / wf.filename
            if wf.role == "transformer" and slim.is_file():
                path = slim
            if not path.is_file():
                if not wf.required:
                    continue
                raise LiveEditError(_missing_message(wf, where, root, offline, False))
            found.setdefault(wf.role, path)
        tiny = root / TINY_VAE_FILE
        tiny_vae = tiny if tiny.is_file() else None
    else:
        where = f"the Hugging Face cache ({cache_dir or _default_cache()})"
        for wf in files:
            path = _cached_path(wf, cache_dir)
            if path is None:
                if not wf.required:
                    continue
                raise LiveEditError(_missing_message(wf, where, None, offline, _interrupted(wf, cache_dir)))
            found.setdefault(wf.role, path)
        tiny_vae = None
    return WeightPaths(
        vae=found["vae"],
        text_encoder=found["text_encoder"],
        tokenizer_dir=found["tokenizer"].parent,
        transformer=found["transformer"],
        tiny_vae=tiny_vae,
        source=where,
    )


def _default_cache() -> str:
    from huggingface_hub.constants import HF_HUB_CACHE

    return HF_HUB_CACHE


# -- verify and fetch ----------------------------------------------------------------------------
def verify(
    weights_dir: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    hash: bool = True,
    progress: bool = False,
    files: tuple[WeightFile, ...] = WEIGHT_FILES,
) -> list[FileCheck]:
    """Check every manifest file (missing ones included) and return one FileCheck each."""
    checks = []
    for wf in files:
        if weights_dir is not None:
            path = Path(weights_dir).expanduser() / wf.filename
            if wf.role == "transformer" and (Path(weights_dir).expanduser() / SLIM_TRANSFORMER).is_file():
                path = Path(weights_dir).expanduser() / SLIM_TRANSFORMER
        else:
            path = _cached_path(wf, cache_dir)
        if path is None or not path.is_file():
            if wf.required:
                checks.append(FileCheck(wf, None, ["missing"]))
        else:
            checks.append(check_file(wf, path, hash=hash, progress=progress))
    return checks


Downloader = Callable[..., str]  # hf_hub_download's signature: (repo_id=, filename=, cache_dir=) -> path


def fetch(
    *,
    cache_dir: str | Path | None = None,
    download: Downloader | None = None,
    hash: bool = True,
    progress: bool = True,
    files: tuple[WeightFile, ...] = WEIGHT_FILES,
) -> list[FileCheck]:
    """Download the manifest's files into the hub cache (resuming any interrupted download,
    skipping files already there) and check each one. Raises LiveEditError if any file
    fails its check, naming it."""
    if _offline(None):
        raise LiveEditError(
            f"HF_HUB_OFFLINE is set, so `{FETCH_COMMAND}` cannot download; unset it or use --weights DIR"
        )
    if download is None:
        from huggingface_hub import hf_hub_download as download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    checks = []
    for wf in files:
        log.info("fetching %s from %s", wf.filename, wf.repo_id)
        try:
            path = Path(download(repo_id=wf.repo_id, filename=wf.filename, cache_dir=str(cache_dir) if cache_dir else None))
        except EntryNotFoundError:
            if not wf.required:
                continue
            raise LiveEditError(
                f"{wf.repo_id} has no {wf.filename} any more; the repository changed. Report this, "
                "and meanwhile use --weights DIR with the files listed in `liveedit weights verify --help`."
            ) from None
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
            raise LiveEditError(
                f"could not download {wf.filename} from {wf.repo_id}: {exc}. Check the network (and "
                f"HF_TOKEN if the repository asks for it), then run `{FETCH_COMMAND}` again; it resumes."
            ) from exc
        check = check_file(wf, path, hash=hash, progress=progress)
        if not check.ok:
            raise LiveEditError(
                f"{wf.filename} downloaded to {path} but {'; '.join(check.problems)}. Delete it and run "
                f"`{FETCH_COMMAND}` again."
            )
        checks.append(check)
    return checks
