"""`vid2vid bench` on the tiny preset at 64 px: the JSON's shape and its arithmetic.

Speed itself is not tested (DESIGN.md section 9): only that every rate is a
positive finite number and that the derived columns follow from the rates.
"""

import json
import math

import pytest
from click.testing import CliRunner

from train.bench import bf16_peak_tflops
from vid2vid.cli import cli

VARIANTS = ["eager fp32", "bf16", "bf16 + channels_last"]   # CPU, compile off by default


@pytest.fixture(scope="module")
def result():
    args = ["bench", "--json", "--presets", "tiny", "--sizes", "64", "--frames", "2",
            "--repeats", "2", "--device", "cpu"]
    # One thread per measurement process: two threads spin-wait for each other whenever
    # another process (a parallel test run) takes a core, which can make this 5x slower.
    out = CliRunner(env={"OMP_NUM_THREADS": "1"}).invoke(cli, args)
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_json_has_one_row_per_phase_and_variant(result):
    assert result["device"] == "cpu"
    assert result["bf16_peak_tflops"] is None
    assert result["settings"]["frames"] == 2 and result["settings"]["sizes"] == [64]
    rows = result["rows"]
    assert [(r["phase"], r["variant"]) for r in rows] == (
        [("inference", v) for v in VARIANTS] + [("train", v) for v in VARIANTS])
    for r in rows:
        assert "error" not in r, r
        assert (r["preset"], r["size"]) == ("tiny", 64)
        for key in ("frames_per_s", "peak_memory_bytes", "flops_per_frame", "tflops_per_s",
                    "speedup"):
            assert _finite_positive(r[key]), (key, r)
        assert r["peak_fraction"] is None          # no bf16 peak for a CPU
        assert r["iterations"] == 2
    for r in rows:
        if r["phase"] == "train":
            assert _finite_positive(r["steps_per_s"])
            assert r["frames_per_s"] == pytest.approx(2 * r["steps_per_s"])
            assert r["reconstruction_loss"] in ("vgg19", "l1")


def test_speedups_are_rates_over_the_fp32_rate(result):
    for phase in ("inference", "train"):
        rows = [r for r in result["rows"] if r["phase"] == phase]
        fp32 = rows[0]
        assert fp32["variant"] == "eager fp32" and fp32["speedup"] == 1.0
        for r in rows:
            assert r["speedup"] == pytest.approx(r["frames_per_s"] / fp32["frames_per_s"])
            assert r["flops_per_frame"] == fp32["flops_per_frame"]
            assert r["tflops_per_s"] == pytest.approx(
                r["flops_per_frame"] * r["frames_per_s"] / 1e12)


def test_training_step_costs_more_flops_than_a_forward_pass(result):
    g, t = (next(r for r in result["rows"] if r["phase"] == p) for p in ("inference", "train"))
    # backward ~2x forward, plus the Ds: a training frame is several generator forwards
    assert t["flops_per_frame"] > 2 * g["flops_per_frame"]


def test_bf16_peak_lookup():
    assert bf16_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bf16_peak_tflops("NVIDIA H200") == 989.0
    assert bf16_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert bf16_peak_tflops("Some Future GPU") is None


def test_bad_sizes_are_one_line_errors():
    out = CliRunner().invoke(cli, ["bench", "--sizes", "66", "--presets", "small",
                                   "--device", "cpu"])
    assert out.exit_code == 2 and "multiple of 8" in out.output
