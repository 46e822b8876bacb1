"""benchmarks/bench_quality.py's table rows, from a made-up eval.json (no training)."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_quality.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_quality", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = module   # its dataclasses look themselves up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules["bench_quality"]


def record(step: int, size: int) -> dict:
    metrics = {"PSNR dB": 27.5, "SSIM": 0.84, "PSNR dB person": 22.3, "SSIM person": 0.7,
               "warp error": 1.1e-4, "pose found": 0.8, "pose distance": 0.09}
    return {"step": step, "frame_size": [size, size], "task": {"name": "pose"},
            "settings": {"region": "person: the driving pose's box"},
            "table": {"model": metrics, "retrieval": {"PSNR dB": 25.2, "SSIM": 0.89},
                      "real video": {"warp error": 3.5e-5}},
            "drift": {"model": {"PSNR dB": {"drift": -2.2}, "SSIM": {"drift": -0.03},
                                "PSNR dB background": {"first third": 35.0,
                                                       "last third": 36.2},
                                "PSNR dB background seen": {"first third": 38.0,
                                                            "last third": 37.5}}}}


def test_a_row_names_the_size_of_a_checkpoint_scored_below_the_final_size(bench):
    final = bench.row("dancer", "defaults", record(1750, 128), 21.0, "2-core CPU", 128)
    early = bench.row("dancer", "defaults", record(880, 64), 6.5, "2-core CPU", 128)
    cells = [c.strip() for c in final.strip("|").split("|")]
    assert cells[:3] == ["dancer", "defaults", "1750"]
    assert cells[5] == "27.50 / 0.840" and cells[6] == "22.30 / 0.700"
    assert cells[-2:] == ["35.00 / 36.20", "38.00 / 37.50"]
    assert [c.strip() for c in early.strip("|").split("|")][2] == "880 (64 px)"
    assert len(cells) == bench.TABLE_HEADER.count(" | ") + 1


def test_pianist_comes_from_its_wheel_checked_by_sha256(bench, tmp_path, monkeypatch):
    import hashlib
    import subprocess
    import zipfile

    package, member, _ = bench.PIANIST
    payload = {"bytes": b"not the video"}

    def fake_pip(cmd, **kw):
        out = Path(cmd[cmd.index("-d") + 1])
        with zipfile.ZipFile(out / "musicalgestures-1.32.0-py3-none-any.whl", "w") as z:
            z.writestr(member, payload["bytes"])
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(bench, "SHARED", tmp_path / "no-shared")
    monkeypatch.setattr(bench.subprocess, "run", fake_pip)
    with pytest.raises(SystemExit, match="sha256"):
        bench.pianist_video(tmp_path / "work")
    assert not (tmp_path / "work" / "pianist.avi").exists()

    payload["bytes"] = b"the video"
    monkeypatch.setattr(bench, "PIANIST", (package, member,
                                           hashlib.sha256(b"the video").hexdigest()))
    path = bench.pianist_video(tmp_path / "work")
    assert path == tmp_path / "work" / "pianist.avi" and path.read_bytes() == b"the video"
    monkeypatch.setattr(bench.subprocess, "run", None)      # found in the cache: no download
    assert bench.pianist_video(tmp_path / "work") == path


def test_raw_keypoints_preprocess_the_pose_videos_into_their_own_folder(bench, tmp_path,
                                                                        monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "vid2vid", lambda *args, log=None: calls.append(args))
    monkeypatch.setattr(bench, "SHARED", tmp_path)
    smooth = bench.prepare("dancer", tmp_path, quick=False)
    raw = bench.prepare("dancer", tmp_path, quick=False, raw=True)
    assert smooth == tmp_path / "data" / "dancer" and raw == tmp_path / "data" / "dancer_raw"
    assert "--no-smooth" not in calls[0] and "--no-smooth" in calls[1]
    assert calls[1][calls[1].index("-o") + 1] == str(raw)
    with pytest.raises(SystemExit, match="--raw-keypoints is for the pose videos"):
        bench.prepare("talk", tmp_path, quick=False, raw=True)
