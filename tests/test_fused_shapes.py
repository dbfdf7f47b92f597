"""The fused (compiled) elementwise functions with many token counts, as the mask cache's
bucketed pruned steps bring them: no recompile-limit failure, same values as eager."""

from __future__ import annotations

import torch

from liveedit.engine import transformer


def test_many_token_counts_share_a_dynamic_kernel_after_the_first_few():
    w = torch.randn(8)
    for n in [10, 10, 5, 7, 9, 11, 13, 2, 3, 17, 19, 23]:  # more shapes than dynamo's recompile limit (8)
        x = torch.randn(1, 3, n, 8)
        want = transformer._rms_norm(x, w, 1e-6)  # fusion off: eager
        token = transformer._fused.set(True)
        try:
            got = transformer._rms_norm(x, w, 1e-6)
        finally:
            transformer._fused.reset(token)
        torch.testing.assert_close(got, want)
