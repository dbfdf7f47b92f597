"""`liveedit bench` on the CPU with the tiny preset: every measurement runs and is recorded
(the real figures come from a GPU; see docs/benchmarks.md)."""

from __future__ import annotations

import json

from liveedit.cli import main


def test_bench_writes_json_and_a_dated_markdown_table(tmp_path, capsys):
    out, record = tmp_path / "bench.json", tmp_path / "benchmarks.md"
    what = "transformer,transformer-mask-cache-0.5,vae,tiny-vae,editor,editor-preview,check-graphs,check-vae,check-overlap"
    assert main(["bench", "--model", "tiny", "--device", "cpu", "--dtype", "fp32", "--window", "6",
                 "--what", what, "--json", str(out), "--record", str(record)]) == 0
    data = json.loads(out.read_text())
    assert data["meta"]["weights"] == "random" and data["meta"]["preset"] == "tiny"
    results = {r["what"]: r for r in data["results"]}
    assert results["check-cuda-graphs"]["bitwise_equal"]  # on CPU: graphs off, trivially equal
    assert results["check-cuda-graphs"]["mask_cache_bitwise_equal"]
    assert results["check-overlap-vae"]["bitwise_equal"]  # on CPU: one stream, trivially equal
    editor = next(r for r in data["results"] if r["what"] == "editor")
    assert editor["frames"] == 81 and editor["fps"] > 0
    assert set(editor["first_chunk_ms"]) == {"encode", "transformer", "decode"}
    cached = [r for r in data["results"] if r["what"] == "transformer" and r["mask_cache"]]
    assert cached and cached[0]["mask_cache"]["keep_ratio"] == 0.5
    table = record.read_text()
    assert "random weights" in table and "| editor |" in table
    assert "RANDOM" in capsys.readouterr().out


def test_bench_detail_entries_run_on_the_cpu(tmp_path):
    """`--what detail` (delivery at UHD 10-bit, 1080p 10-bit and the model size, scaled with the
    tiny preset's picture) and `editor-detail` (the editor with delivery) run and report."""
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "tiny", "--device", "cpu", "--dtype", "fp32", "--window", "6",
                 "--what", "detail,editor-detail", "--json", str(out)]) == 0
    results = {r["what"]: r for r in json.loads(out.read_text())["results"]}
    detail = results["detail"]
    assert detail["uhd-10bit"]["source"] == "517x288"  # 3840x2160 scaled like 480x832 -> 64x112
    assert detail["480x832-8bit"]["source"] == "112x64"
    for label in ("uhd-10bit", "1080p-10bit", "480x832-8bit"):
        assert detail[label]["transfer_ms_per_frame"] > 0 and detail[label]["masked_ms_per_frame"] > 0
    assert detail["uhd-10bit"]["transfer_with_download_ms_per_frame"] > 0
    editor = results["editor-detail (transfer)"]
    assert editor["frames"] == 81 and editor["fps"] > 0


def test_bench_mask_cache_rules_and_bucket_check(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["bench", "--model", "tiny", "--device", "cpu", "--dtype", "fp32", "--window", "6",
                 "--what", "mask-cache-rules-all,check-mask-buckets", "--json", str(out),
                 "--record", str(tmp_path / "b.md")]) == 0
    results = {r["what"]: r for r in json.loads(out.read_text())["results"]}
    rules = results["mask-cache-rules"]
    assert set(rules) == {"what"} | {f"{rule}, {m} change map" for rule in ("reference", "fixed")
                                     for m in ("stand-in", "random")}
    fixed = rules["fixed, stand-in change map"]["kept_tokens_per_frame"]
    assert fixed and set(fixed) == {8}  # round(0.3 · 28) on the tiny preset
    assert all(0 <= k <= 8 for k in rules["reference, stand-in change map"]["kept_tokens_per_frame"])
    check = results["check-mask-buckets"]
    assert check["relative_error"] < 1e-5
