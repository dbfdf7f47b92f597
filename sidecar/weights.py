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
intact zip directory, which a truncated download lacks. A `--weights DIR` file is checked
against its known sha256 when one is known (`WeightFile.sha256`, or the hash `fetch`
recorded for it).

Pinning: every download names a commit of its repository (`REVISIONS`), never a branch, so
a changed upload cannot change what `fetch` takes. A repository whose commit this release
does not know is downloaded only when the user names one (`--revision REPO=COMMIT`) or says
to take the current `main` (`--unpinned`); `fetch` records the commit it got (PINS_FILE in
the config folder), and every later run finds the files of that same commit.
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

# The commit of each repository this release downloads. None: not known to this release
# (no published commit of cp-cp/LiveEdit could be checked when it was made); `fetch` then
# needs --revision REPO=COMMIT or --unpinned, and records what it got.
REVISIONS: dict[str, str | None] = {
    WAN_REPO: "37ec512624d61f7aa208f7ea8140a131f93afc9a",
    LIVEEDIT_REPO: None,
}
PINS_FILE = "weights-pins.json"  # in the config folder: {"revisions": {repo: commit}, "sha256": {file: hex}}
COMMIT_PATTERN = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class WeightFile:
    role: str  # vae | text_encoder | tokenizer | transformer
    repo_id: str
    filename: str  # path in the repository, and in a --weights folder
    approx_bytes: int | None  # as the Hub's file list shows it (3 significant digits), if known
    description: str
    required: bool = True  # optional files are fetched when the repository has them
    sha256: str | None = None  # the file's hash at the pinned commit, where it is known

    @property
    def url(self) -> str:
        revision = cached_revision(self.repo_id) or "main"
        return f"https://huggingface.co/{self.repo_id}/blob/{revision}/{self.filename}"


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


# -- pins -----------------------------------------------------------------------------------
def pins_path() -> Path:
    from liveedit.sidecar import config

    return config.config_dir() / PINS_FILE


def read_pins() -> dict:
    """What the last `fetch` recorded: {"revisions": {repo: commit}, "sha256": {filename: hex}}."""
    try:
        pins = json.loads(pins_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"revisions": {}, "sha256": {}}
    if not isinstance(pins, dict):
        return {"revisions": {}, "sha256": {}}
    return {key: dict(pins.get(key) or {}) for key in ("revisions", "sha256")}


def _write_pins(pins: dict) -> None:
    from liveedit.sidecar import config

    path = pins_path()
    config.ensure_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def pinned_revisions(overrides: dict[str, str] | None = None) -> dict[str, str | None]:
    """The commit to download per repository: --revision, else this release's pin, else the
    one the last fetch recorded; None where none is known."""
    recorded = read_pins()["revisions"]
    revisions = {repo: pin or recorded.get(repo) for repo, pin in REVISIONS.items()}
    for repo, commit in recorded.items():
        revisions.setdefault(repo, commit)
    revisions.update(overrides or {})
    return revisions


def cached_revision(repo_id: str) -> str | None:
    """The commit whose files a run uses from the hub cache: the one the last fetch got (so a
    --revision given to fetch holds for later runs), else this release's pin."""
    return read_pins()["revisions"].get(repo_id) or REVISIONS.get(repo_id)


def parse_revision(text: str) -> tuple[str, str]:
    """`REPO=COMMIT` from the command line; the commit must be a full commit id, not a branch."""
    repo, sep, commit = text.partition("=")
    commit = commit.strip().lower()
    if not sep or not repo.strip() or not COMMIT_PATTERN.fullmatch(commit):
        raise LiveEditError(f"--revision {text!r}: give REPO=COMMIT with the repository's full 40-character commit "
                            f"id, e.g. {LIVEEDIT_REPO}=<commit>; a branch name would follow whatever is uploaded next")
    return repo.strip(), commit


def _commit_of(path: Path) -> str | None:
    """The commit a hub-cache path belongs to (.../snapshots/<commit>/<file>)."""
    parts = Path(path).parts
    if "snapshots" in parts[:-1]:
        commit = parts[len(parts) - 1 - parts[::-1].index("snapshots") + 1]
        return commit if COMMIT_PATTERN.fullmatch(commit) else None
    return None


def check_file(wf: WeightFile, path: Path, *, hash: bool = True, progress: bool = False,
               known_sha256: str | None = None) -> FileCheck:
    """Truncation and corruption checks for one file (see the module docstring). The file is
    hashed against its hub blob name and against `known_sha256` / `wf.sha256` when known."""
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
    known = wf.sha256 or known_sha256
    if hash and (expected is not None or known is not None):
        check.sha256 = sha256_of(path, progress)
        if expected is not None and check.sha256 != expected:
            check.problems.append(f"sha256 {check.sha256[:12]}... differs from the Hub's {expected[:12]}... (corrupt)")
        elif known is not None and check.sha256 != known:
            check.problems.append(f"sha256 {check.sha256[:12]}... differs from the known {known[:12]}... of the "
                                  "pinned release (corrupt, or another version of the file)")
    return check


# -- finding files ---------------------------------------------------------------------------
def _offline(offline: bool | None) -> bool:
    if offline is not None:
        return offline
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached_path(wf: WeightFile, cache_dir: str | Path | None) -> Path | None:
    """The file of the pinned commit in the hub cache (none while no commit is known)."""
    from huggingface_hub import try_to_load_from_cache

    revision = cached_revision(wf.repo_id)
    if revision is None:
        return None
    found = try_to_load_from_cache(wf.repo_id, wf.filename, cache_dir=str(cache_dir) if cache_dir else None,
                                   revision=revision)
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
    elif cached_revision(wf.repo_id) is None:
        fix = (f"run `{FETCH_COMMAND} --revision {wf.repo_id}=COMMIT` with the commit to trust (or --unpinned to "
               f"take its current main; see docs) or pass --weights DIR")
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
    """Check every manifest file (missing ones included) and return one FileCheck each; in a
    --weights folder against the known hashes (this release's, or those fetch recorded)."""
    checks = []
    recorded = read_pins()["sha256"]
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
            known = recorded.get(wf.filename) if path.name == Path(wf.filename).name else None
            checks.append(check_file(wf, path, hash=hash, progress=progress, known_sha256=known))
    return checks


Downloader = Callable[..., str]  # hf_hub_download's signature: (repo_id=, filename=, revision=, cache_dir=) -> path


def fetch_revisions(files: tuple[WeightFile, ...] = WEIGHT_FILES, *, revisions: dict[str, str] | None = None,
                    unpinned: bool = False) -> dict[str, str]:
    """The revision each repository is downloaded at: a commit, or "main" only with `unpinned`.
    Refuses a repository whose commit is unknown unless the user named one or said so."""
    known = pinned_revisions(revisions)
    chosen = {}
    for repo in dict.fromkeys(wf.repo_id for wf in files):
        if known.get(repo) is not None:
            chosen[repo] = known[repo]
        elif unpinned:
            log.warning("%s has no known commit: taking its current main (recorded for later runs)", repo)
            chosen[repo] = "main"
        else:
            raise LiveEditError(
                f"this release does not know which commit of {repo} to trust, and takes none silently. Pass "
                f"`{FETCH_COMMAND} --revision {repo}=COMMIT` with the commit id from the repository's history "
                f"(https://huggingface.co/{repo}/commits/main), or `--unpinned` to take its current main; the commit "
                "it gets is recorded and used from then on.")
    return chosen


def fetch(
    *,
    cache_dir: str | Path | None = None,
    download: Downloader | None = None,
    hash: bool = True,
    progress: bool = True,
    files: tuple[WeightFile, ...] = WEIGHT_FILES,
    revisions: dict[str, str] | None = None,
    unpinned: bool = False,
) -> list[FileCheck]:
    """Download the manifest's files at their pinned commits into the hub cache (resuming any
    interrupted download, skipping files already there), check each one, and record the
    commits and hashes (PINS_FILE). `revisions` overrides the pins ({repo: commit});
    `unpinned` allows the current main of a repository whose commit is unknown. Raises
    LiveEditError if any file fails its check, naming it."""
    if _offline(None):
        raise LiveEditError(
            f"HF_HUB_OFFLINE is set, so `{FETCH_COMMAND}` cannot download; unset it or use --weights DIR"
        )
    chosen = fetch_revisions(files, revisions=revisions, unpinned=unpinned)
    if download is None:
        from huggingface_hub import hf_hub_download as download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    checks = []
    pins = read_pins()
    for wf in files:
        revision = chosen[wf.repo_id]
        log.info("fetching %s from %s at %s", wf.filename, wf.repo_id, revision)
        try:
            path = Path(download(repo_id=wf.repo_id, filename=wf.filename, revision=revision,
                                 cache_dir=str(cache_dir) if cache_dir else None))
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
        commit = _commit_of(path) or (revision if COMMIT_PATTERN.fullmatch(revision) else None)
        if commit is not None:
            pins["revisions"][wf.repo_id] = commit
        if check.sha256:
            pins["sha256"][wf.filename] = check.sha256
    _write_pins(pins)
    return checks
