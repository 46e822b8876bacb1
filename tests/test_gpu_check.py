"""benchmarks/gpu_check.sh's CPU dry run: every step of the GPU check, tiny, on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers_video import make_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_on_the_cpu_and_writes_its_numbers(tmp_path):
    data = make_synthetic_dataset(tmp_path / "data", n=40, w=64, h=64)
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu",
                           str(tmp_path / "out"), "--data", str(data)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert [s["step"] for s in result["steps"]] == [
        "env", "tests", "bench", "train", "transfer_model", "transfer_eager"]
    assert all(s["rc"] == 0 for s in result["steps"])
    assert result["train"]["steps_per_s"] > 0 and result["train_tflops_per_s"] > 0
    assert result["transfer_eager_frames_per_s"] > 0
    assert {r["phase"] for r in result["bench"]["rows"]} == {"inference", "train"}
    assert "train tiny 64px" in done.stdout
    assert (tmp_path / "out" / "gpu_check.log").stat().st_size > 0


def test_the_gpu_check_names_a_missing_dataset(tmp_path):
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu",
                           str(tmp_path / "out"), "--data", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "--prepare" in done.stderr
    assert "Traceback" not in done.stderr
