"""Issue 15, point 15: casting the Wan VAE prints diffusers' "kept in float32: []" notice
on every run although nothing is kept in float32; it is silenced, other diffusers warnings not."""

from __future__ import annotations

import logging

import torch


def test_casting_the_vae_prints_no_empty_float32_notice(capfd, caplog):
    from liveedit.engine.presets import get_preset
    from liveedit.engine.vae import build_vae

    with caplog.at_level(logging.WARNING):
        build_vae(get_preset("tiny").vae).to(dtype=torch.float32)
        build_vae(get_preset("tiny").vae).to("cpu", torch.float32)
    text = capfd.readouterr().err + caplog.text
    assert "kept in float32" not in text


def test_other_diffusers_warnings_still_show(caplog):
    import liveedit.engine.vae  # noqa: F401 - installs the filter

    logger = logging.getLogger("diffusers.models.modeling_utils")
    with caplog.at_level(logging.WARNING):
        logger.warning("There are modules in X that should be kept in float32: ['norm']. Casting...")
    assert "['norm']" in caplog.text
