"""Takes for editor plug-ins (the OpenFX effect in clients/ofx/): exact, order-independent
edited frames.

- `service`: what a take is (settings, the hash chain of its source frames, the chunk layout)
  and `TakeService`, which edits takes on the GPU worker and answers frame requests.
- `store`: the memory and disk caches of edited chunks and uploaded source frames, at the
  host's precision.
- `pixels`: host pictures (8/16-bit or float, RGB(A), rows bottom-up) to and from the editor's
  frames at the host's precision: colour, alpha, render windows.

Takes build their editors through sidecar/delivery.py with the sidecar's detail setting, like
every other edit: the edit comes back at the source's size and precision.

The HTTP routes are sidecar/api/takes.py.
"""

from liveedit.sidecar.takes.pixels import PixelFormat
from liveedit.sidecar.takes.service import (
    CHUNK_FRAMES,
    FIRST_CHUNK_FRAMES,
    FrameReady,
    FrameRequest,
    FrameWaiting,
    SourceUpload,
    TakeError,
    TakeLimits,
    TakeService,
    TakeSettings,
    TakeUnavailableError,
    chain_hashes,
    chunk_of,
    chunk_span,
    parse_hash,
    take_service_for,
)
from liveedit.sidecar.takes.store import ChunkStore

__all__ = [
    "CHUNK_FRAMES", "FIRST_CHUNK_FRAMES", "ChunkStore", "FrameReady", "FrameRequest", "FrameWaiting", "PixelFormat",
    "SourceUpload", "TakeError", "TakeLimits", "TakeService", "TakeSettings", "TakeUnavailableError", "chain_hashes",
    "chunk_of", "chunk_span", "parse_hash", "take_service_for",
]
