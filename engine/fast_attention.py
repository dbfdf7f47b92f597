"""Fast numerics (opt-in, ``--numerics fast``): self-attention in FP8 through cuDNN.

What it is. cuDNN's FP8 scaled-dot-product attention forward (through the
``nvidia-cudnn-frontend`` package's graph API) instead of cuDNN's bf16 kernel, for the
dense attention of full forwards (every denoising step and the refresh pass) on Hopper.
Queries, keys and values are cast to e4m3 with unit scale (they come out of an RMS norm
and a linear layer, far inside e4m3's ±448; values beyond are clamped), the softmax
probabilities are held in e4m3 scaled by 448, and the output comes back in e4m3 (Hopper's
cuDNN has no bf16 output for this kernel) scaled so that the largest |v| maps to 448, then
goes back to bf16 for the output projection. Cross-attention (512 keys), masked attention
(the mask cache's bucketed pruned steps) and anything off Hopper keep the bf16 path.

What it costs. In isolation at 4680 queries x 32760 keys, 12 heads of 128 (H200): 1.36 ms
instead of 1.89 ms per call, at 6% relative error per call on unit-variance random inputs
against an fp32 reference (bf16 cuDNN: 0.23%). `liveedit bench --what check-fast-numerics`
measures what that does to a forward, to each chunk's latents and to decoded frames over
a 177-frame stream (docs/benchmarks.md). These numerics are never the default and are
never called "reference".
"""

from __future__ import annotations

import torch

from liveedit.errors import InputError

NUMERICS = ("reference", "fast")
E4M3_MAX = 448.0

_numerics = "reference"


def set_numerics(name: str) -> None:
    """"reference" (bf16 everywhere, the default) or "fast" (FP8 self-attention on Hopper).
    Set it before a stream starts: CUDA graphs a stream has already captured keep replaying
    what they recorded (engine.stream.release_idle_buffers drops pooled ones)."""
    global _numerics
    if name not in NUMERICS:
        raise InputError(f"unknown numerics {name!r}; choose one of {', '.join(NUMERICS)}")
    _numerics = name


def numerics() -> str:
    return _numerics


def available(device: torch.device | None = None) -> tuple[bool, str]:
    """Whether FP8 attention can run here, and why not."""
    if not torch.cuda.is_available():
        return False, "no CUDA device"
    try:
        device = torch.device(device or "cuda")
    except RuntimeError:
        return False, f"{device!r} is not a device name (cuda, cuda:1, ...)"
    if device.type != "cuda":
        return False, f"FP8 attention runs on a CUDA GPU, not on {device}"
    if torch.cuda.get_device_capability(device)[0] != 9:
        return False, f"FP8 attention here is built for Hopper (compute capability 9.x), not {torch.cuda.get_device_name(device)}"
    try:
        import cudnn  # noqa: F401  (the nvidia-cudnn-frontend package)
    except Exception as exc:  # noqa: BLE001 (an import of a compiled extension can fail many ways)
        return False, (f"the nvidia-cudnn-frontend package does not import ({exc}); install it with "
                       "pip install 'liveedit-sidecar[fast]'")
    return True, ""


def wanted(q: torch.Tensor, mask) -> bool:
    """attention() asks: use FP8 for this call?"""
    return (_numerics == "fast" and mask is None and q.is_cuda and q.dtype in (torch.bfloat16, torch.float16)
            and q.shape[-1] % 16 == 0 and _state.usable(q.device))


def _quantise_eager(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)  # a plain cast would turn > 448 into NaN


def _output_scale_eager(v: torch.Tensor) -> torch.Tensor:
    """scale_o: the output is a convex combination of value rows, so |o| <= max |v|."""
    return (E4M3_MAX / v.abs().amax().float().clamp_min(1e-6)).view(1, 1, 1, 1)


def _dequantise_eager(o: torch.Tensor, scale_o: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (o.float() / scale_o).to(dtype)


_kernels: dict[str, object] = {}


def _fused(name: str, fn):
    """One compiled kernel per helper (dynamic shapes: the key count grows with the cache):
    a clamp + cast over the 32760-key cache is one read and one narrow write."""
    if name not in _kernels:
        _kernels[name] = torch.compile(fn, dynamic=True, fullgraph=True)
    return _kernels[name]


class _Graphs:
    """cuDNN FP8 SDPA graphs, one per (batch, queries, keys, heads, dim, device), built on
    first use (outside CUDA graph capture: a stream's first chunks run eagerly) and then
    executed on torch's current stream, so CUDA graphs capture them."""

    def __init__(self):
        self._graphs: dict[tuple, tuple] = {}
        self._usable: dict[torch.device, bool] = {}
        self._compiled = None

    def usable(self, device: torch.device) -> bool:
        if device not in self._usable:
            self._usable[device] = available(device)[0]
        return self._usable[device]

    def _build(self, b, lq, lk, h, d, device):
        import cudnn

        e4m3, fp32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
        handle = cudnn.create_handle()
        graph = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=fp32, compute_data_type=fp32, handle=handle)

        def tensor(name, s):  # [B, H, S, D] dims over a [B, S, H, D] buffer
            return graph.tensor(name=name, dim=(b, h, s, d), stride=(s * h * d, d, h * d, 1), data_type=e4m3)

        q, k, v = tensor("q", lq), tensor("k", lk), tensor("v", lk)
        scalar = dict(dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=fp32)
        scales = [graph.tensor(name=n, **scalar) for n in ("descale_q", "descale_k", "descale_v", "descale_s",
                                                             "scale_s", "scale_o")]
        o, _, amax_s, amax_o = graph.sdpa_fp8(q=q, k=k, v=v, descale_q=scales[0], descale_k=scales[1],
                                              descale_v=scales[2], descale_s=scales[3], scale_s=scales[4],
                                              scale_o=scales[5], is_inference=True, attn_scale=d ** -0.5,
                                              use_causal_mask=False)
        o.set_output(True).set_dim((b, h, lq, d)).set_stride((lq * h * d, d, h * d, 1)).set_data_type(e4m3)
        for amax in (amax_s, amax_o):
            amax.set_output(True).set_dim((1, 1, 1, 1)).set_stride((1, 1, 1, 1)).set_data_type(fp32)
        graph.validate()
        graph.build_operation_graph()
        graph.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        graph.check_support()
        graph.build_plans()
        one = torch.ones(1, 1, 1, 1, device=device)
        constants = {scales[0]: one, scales[1]: one, scales[2]: one,
                     scales[3]: torch.full((1, 1, 1, 1), 1 / E4M3_MAX, device=device),
                     scales[4]: torch.full((1, 1, 1, 1), E4M3_MAX, device=device),
                     amax_s: torch.zeros(1, 1, 1, 1, device=device), amax_o: torch.zeros(1, 1, 1, 1, device=device)}
        workspace = torch.empty(graph.get_workspace_size(), dtype=torch.uint8, device=device)
        return graph, handle, (q, k, v, o, scales[5]), constants, workspace

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        import cudnn

        b, lq, h, d = q.shape
        lk = k.shape[1]
        key = (b, lq, lk, h, d, q.device)
        if key not in self._graphs:
            self._graphs[key] = self._build(b, lq, lk, h, d, q.device)
        graph, handle, (tq, tk, tv, to, t_scale_o), constants, workspace = self._graphs[key]
        quantise = _fused("quantise", _quantise_eager)
        q8, k8, v8 = quantise(q), quantise(k), quantise(v)
        scale_o = _fused("scale", _output_scale_eager)(v)
        out = torch.empty(b, lq, h, d, dtype=torch.float8_e4m3fn, device=q.device)
        cudnn.set_stream(handle=handle, stream=torch.cuda.current_stream(q.device).cuda_stream)
        graph.execute({tq: q8, tk: k8, tv: v8, to: out, t_scale_o: scale_o, **constants}, workspace, handle=handle)
        return _fused("dequantise", _dequantise_eager)(out, scale_o, q.dtype)


_state = _Graphs()


def fp8_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ/√D) v in FP8 (cuDNN), ``[B, L, H, D]`` in and out (bf16 out)."""
    return _state(q, k, v)
