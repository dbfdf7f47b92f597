"""Low-precision kernels at LiveEdit's shapes, in isolation (issue 19): attention and GEMMs.

Run on a CUDA machine (Hopper): python3 scripts/fp8_probe.py [--json out.json]
Optional packages: cudnn (nvidia-cudnn-frontend) for cuDNN's FP8 attention, sageattention
(1.0.6, Triton) for 8-bit QK attention. Each candidate is timed (median of CUDA-event
timings after warm-up) and compared with an fp32 reference by relative error
||out - ref|| / ||ref||, next to bf16 cuDNN's own error. Random inputs of the real
statistics: q and k come out of an RMS norm (unit RMS per token, so ~N(0, 1)), v of a
linear layer (~N(0, 1)).
"""

from __future__ import annotations

import argparse
import json
import math

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

H, D = 12, 128
SHAPES = {  # name: (queries, keys)
    "steady (4 steps + refresh, full window)": (4680, 32760),
    "first chunk": (4680, 4680),
    "mask cache fixed rule (468/frame)": (1404, 32760),
    "mask cache reference rule (~250/frame)": (750, 32760),
}
E4M3_MAX = 448.0


def median_ms(fn, warmup=5, iters=20) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def rel(out: torch.Tensor, ref: torch.Tensor) -> float:
    out = out.float()
    if not torch.isfinite(out).all():
        return float("nan")
    return float((out - ref).norm() / ref.norm())


def sdpa(q, k, v, backend):
    with sdpa_kernel([backend]):
        return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def reference(q, k, v) -> torch.Tensor:
    """fp32 attention, 1024 queries at a time (the whole score matrix would be 7 GB)."""
    out = []
    qf, kf, vf = q.float().transpose(1, 2), k.float().transpose(1, 2), v.float().transpose(1, 2)
    for i in range(0, qf.shape[2], 1024):
        s = qf[:, :, i:i + 1024] @ kf.transpose(-1, -2) / math.sqrt(D)
        out.append(torch.softmax(s, -1) @ vf)
    return torch.cat(out, 2).transpose(1, 2)


class CudnnFP8:
    """cuDNN's FP8 SDPA forward (cudnn-frontend graph API), per-tensor scales; [B, S, H, D]
    layout through strides. On Hopper the output is FP8 too (scale_o)."""

    def __init__(self, lq, lk, device):
        import cudnn

        self.cudnn = cudnn
        e4m3, fp32 = cudnn.data_type.FP8_E4M3, cudnn.data_type.FLOAT
        self.handle = cudnn.create_handle()
        cudnn.set_stream(handle=self.handle, stream=torch.cuda.current_stream().cuda_stream)
        g = cudnn.pygraph(io_data_type=e4m3, intermediate_data_type=fp32, compute_data_type=fp32, handle=self.handle)

        def t(name, s):
            return g.tensor(name=name, dim=(1, H, s, D), stride=(s * H * D, D, H * D, 1), data_type=e4m3)

        self.q, self.k, self.v = t("q", lq), t("k", lk), t("v", lk)
        scalar = dict(dim=(1, 1, 1, 1), stride=(1, 1, 1, 1), data_type=fp32)
        self.scales = [g.tensor(name=n, **scalar) for n in ("dq", "dk", "dv", "ds", "ss", "so")]
        o, _, amax_s, amax_o = g.sdpa_fp8(q=self.q, k=self.k, v=self.v, descale_q=self.scales[0],
                                          descale_k=self.scales[1], descale_v=self.scales[2],
                                          descale_s=self.scales[3], scale_s=self.scales[4], scale_o=self.scales[5],
                                          is_inference=True, attn_scale=1.0 / math.sqrt(D), use_causal_mask=False)
        o.set_output(True).set_dim((1, H, lq, D)).set_stride((lq * H * D, D, H * D, 1)).set_data_type(e4m3)
        for a in (amax_s, amax_o):
            a.set_output(True).set_dim((1, 1, 1, 1)).set_stride((1, 1, 1, 1)).set_data_type(fp32)
        g.validate()
        g.build_operation_graph()
        g.create_execution_plans([cudnn.heur_mode.A, cudnn.heur_mode.FALLBACK])
        g.check_support()
        g.build_plans()
        self.g, self.o, self.amax = g, o, (amax_s, amax_o)
        self.out = torch.empty(1, lq, H, D, dtype=torch.float8_e4m3fn, device=device)
        self.amax_t = [torch.zeros(1, 1, 1, 1, device=device) for _ in range(2)]
        self.workspace = torch.empty(g.get_workspace_size(), dtype=torch.uint8, device=device)

    def __call__(self, q8, k8, v8, scale_values):
        pack = {self.q: q8, self.k: k8, self.v: v8, self.o: self.out,
                self.amax[0]: self.amax_t[0], self.amax[1]: self.amax_t[1]}
        pack.update(dict(zip(self.scales, scale_values)))
        self.g.execute(pack, self.workspace, handle=self.handle)
        return self.out


def quant(x: torch.Tensor, amax: float):
    scale = E4M3_MAX / amax
    return (x.float() * scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn), 1.0 / scale


def attention_probe(results: list, device):
    try:
        import sageattention
    except Exception as exc:  # noqa: BLE001
        sageattention = None
        print(f"sageattention unavailable: {exc}")
    cudnn_ok = True
    for name, (lq, lk) in SHAPES.items():
        g = torch.Generator(device=device).manual_seed(lq + lk)
        q = torch.randn(1, lq, H, D, generator=g, device=device).bfloat16()
        k = torch.randn(1, lk, H, D, generator=g, device=device).bfloat16()
        v = torch.randn(1, lk, H, D, generator=g, device=device).bfloat16()
        ref = reference(q, k, v)
        flops = 4 * lq * lk * H * D
        row = {"shape": name, "lq": lq, "lk": lk}

        def record(label, fn):
            try:
                out = fn()
                ms = median_ms(fn)
                row[label] = {"ms": ms, "tflops": flops / ms / 1e9, "rel_err": rel(out, ref)}
            except Exception as exc:  # noqa: BLE001
                row[label] = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}

        record("bf16 cuDNN", lambda: sdpa(q, k, v, SDPBackend.CUDNN_ATTENTION))
        record("bf16 flash (FA2)", lambda: sdpa(q, k, v, SDPBackend.FLASH_ATTENTION))
        if sageattention is not None:
            record("sage 1.0.6 int8 QK (smooth k)", lambda: sageattention.sageattn(q, k, v, tensor_layout="NHD"))
            record("sage 1.0.6 int8 QK (no smoothing)",
                   lambda: sageattention.sageattn(q, k, v, tensor_layout="NHD", smooth_k=False))
        if cudnn_ok:
            try:
                fp8 = CudnnFP8(lq, lk, device)
                q8, dq = quant(q, float(q.abs().max()))
                k8, dk = quant(k, float(k.abs().max()))
                v8, dv = quant(v, float(v.abs().max()))
                scale_o = E4M3_MAX / float(v.abs().max())
                sc = [torch.full((1, 1, 1, 1), x, device=device) for x in (dq, dk, dv, 1 / E4M3_MAX, E4M3_MAX, scale_o)]
                record("fp8 cuDNN (per-tensor, fp8 out)", lambda: fp8(q8, k8, v8, sc).float() / scale_o)
                # Unit scales (inputs already in range, no amax pass): what a fixed-scale path costs in error.
                one = [torch.ones(1, 1, 1, 1, device=device) for _ in range(3)]
                q1, k1, v1 = (t.to(torch.float8_e4m3fn) for t in (q, k, v))
                sc1 = one + [torch.full((1, 1, 1, 1), x, device=device) for x in (1 / E4M3_MAX, E4M3_MAX, 16.0)]
                record("fp8 cuDNN (unit scales)", lambda: fp8(q1, k1, v1, sc1).float() / 16.0)
                row["quantise q,k,v (torch ops, not fused)"] = {"ms": median_ms(lambda: [t.to(torch.float8_e4m3fn) for t in (q, k, v)])}
            except Exception as exc:  # noqa: BLE001
                row["fp8 cuDNN"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
                cudnn_ok = "No module" not in str(exc)
        results.append(row)
        del ref
        torch.cuda.empty_cache()


def ragged_probe(results: list, device):
    """cuDNN's ragged attention with a device-side key count (what a bucketed mask-cache
    step replays in a CUDA graph) vs the exact-length call."""
    g = torch.Generator(device=device).manual_seed(1)
    lq_real, lq_pad, hist, cur_real, cur_pad = 747, 768, 28080, 747, 768
    q = torch.randn(1, lq_pad, H, D, generator=g, device=device).bfloat16()
    k = torch.randn(1, hist + cur_pad, H, D, generator=g, device=device).bfloat16()
    v = torch.randn_like(k)
    exact = sdpa(q[:, :lq_real], k[:, :hist + cur_real], v[:, :hist + cur_real], SDPBackend.CUDNN_ATTENTION)
    row = {"probe": "ragged cuDNN attention, device-side key count"}
    try:
        cu_q = torch.tensor([0, lq_pad], dtype=torch.int32, device=device)
        cu_k = torch.tensor([0, hist + cur_real], dtype=torch.int32, device=device)

        def run():
            return torch.ops.aten._cudnn_attention_forward(q[0], k[0], v[0], None, cu_q, cu_k, lq_pad, k.shape[1], False)[0]

        out = run().view(1, lq_pad, H, D)
        row["bitwise_equal_to_exact"] = bool(torch.equal(out[:, :lq_real], exact))
        row["rel_err_vs_exact"] = rel(out[:, :lq_real], exact.float())
        row["ms"] = median_ms(run)
        row["exact_ms"] = median_ms(lambda: sdpa(q[:, :lq_real], k[:, :hist + cur_real], v[:, :hist + cur_real],
                                                 SDPBackend.CUDNN_ATTENTION))
        graph = torch.cuda.CUDAGraph()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            run()
        torch.cuda.current_stream().wait_stream(s)
        with torch.cuda.graph(graph):
            held = run()
        cu_k.fill_(hist + 700)
        graph.replay()
        want = sdpa(q[:, :lq_real], k[:, :hist + 700], v[:, :hist + 700], SDPBackend.CUDNN_ATTENTION)
        row["graph_replay_with_new_count_rel_err"] = rel(held.view(1, lq_pad, H, D)[:, :lq_real], want.float())
    except Exception as exc:  # noqa: BLE001
        row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    mask = torch.arange(k.shape[1], device=device) < hist + cur_real
    masked = lambda: F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),  # noqa: E731
                                                    attn_mask=mask.view(1, 1, 1, -1)).transpose(1, 2)
    row["masked_sdpa_rel_err_vs_exact"] = rel(masked()[:, :lq_real], exact.float())
    row["masked_sdpa_ms"] = median_ms(masked)
    results.append(row)


def gemm_probe(results: list, device):
    """bf16 F.linear vs torch._scaled_mm (e4m3, per-row activation and per-column weight
    scales, bf16 out) at the transformer's GEMMs, 4680 rows; and the cost of emitting the
    FP8 activation from a compiled producer (modulated LayerNorm) vs a bf16 one."""
    rows = 4680
    shapes = {"q/k/v stacked 1536->4608": (1536, 4608), "o / cross q,o 1536->1536": (1536, 1536),
              "ffn up 1536->8960": (1536, 8960), "ffn down 8960->1536": (8960, 1536)}
    g = torch.Generator(device=device).manual_seed(2)
    for name, (kdim, n) in shapes.items():
        x = torch.randn(rows, kdim, generator=g, device=device).bfloat16()
        w = (torch.randn(n, kdim, generator=g, device=device) / math.sqrt(kdim)).bfloat16()
        b = torch.randn(n, generator=g, device=device).bfloat16() * 0.1
        ref = (x.double() @ w.double().t() + b.double()).float()
        xs = x.float().abs().amax(1, keepdim=True) / E4M3_MAX
        ws = w.float().abs().amax(1, keepdim=True) / E4M3_MAX
        x8 = (x.float() / xs).to(torch.float8_e4m3fn)
        w8t = (w.float() / ws).to(torch.float8_e4m3fn).t()  # column-major [K, N]
        row = {"gemm": name, "rows": rows}
        flops = 2 * rows * kdim * n
        fns = {"bf16": lambda: F.linear(x, w, b),
               "fp8 rowwise": lambda: torch._scaled_mm(x8, w8t, scale_a=xs, scale_b=ws.t(), bias=b, out_dtype=torch.bfloat16)}
        for label, fn in fns.items():
            try:
                out = fn()
                ms = median_ms(fn, iters=50)
                row[label] = {"ms": ms, "tflops": flops / ms / 1e9, "rel_err": rel(out, ref)}
            except Exception as exc:  # noqa: BLE001
                row[label] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        results.append(row)

    # Producer: modulated LayerNorm of [1, 3, 1560, 1536] fp32 math, emitting bf16 vs e4m3 + row scales.
    x = torch.randn(1, 3, 1560, 1536, generator=g, device=device).bfloat16()
    scale = torch.randn(1, 3, 1, 1536, generator=g, device=device) * 0.1
    shift = torch.randn(1, 3, 1, 1536, generator=g, device=device) * 0.1

    def norm_bf16(x, scale, shift):
        return (F.layer_norm(x.float(), x.shape[-1:], eps=1e-6) * (1 + scale) + shift).to(x.dtype)

    def norm_fp8(x, scale, shift):
        y = F.layer_norm(x.float(), x.shape[-1:], eps=1e-6) * (1 + scale) + shift
        s = y.abs().amax(-1, keepdim=True).clamp_min(1e-12) / E4M3_MAX
        return (y / s).to(torch.float8_e4m3fn), s

    cb, c8 = torch.compile(norm_bf16, fullgraph=True), torch.compile(norm_fp8, fullgraph=True)
    results.append({"producer": "modulated LayerNorm 4680x1536, compiled",
                    "bf16 out ms": median_ms(lambda: cb(x, scale, shift), iters=50),
                    "e4m3 + row scale out ms": median_ms(lambda: c8(x, scale, shift), iters=50)})

    def gelu_fp8(h):
        y = F.gelu(h.float(), approximate="tanh")
        s = y.abs().amax(-1, keepdim=True).clamp_min(1e-12) / E4M3_MAX
        return (y / s).to(torch.float8_e4m3fn), s

    h = torch.randn(rows, 8960, generator=g, device=device).bfloat16()
    cg = torch.compile(gelu_fp8, fullgraph=True)
    results.append({"producer": "tanh-GELU 4680x8960 -> e4m3 + row scale, compiled",
                    "ms": median_ms(lambda: cg(h), iters=50)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--what", default="attention,ragged,gemm")
    args = ap.parse_args()
    device = torch.device("cuda")
    print(torch.cuda.get_device_name(device), torch.__version__, "cuDNN", torch.backends.cudnn.version())
    results: list = []
    for what in args.what.split(","):
        {"attention": attention_probe, "ragged": ragged_probe, "gemm": gemm_probe}[what](results, device)
    for r in results:
        print(json.dumps(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
