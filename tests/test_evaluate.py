"""`vid2vid evaluate` on tiny runs trained here (CPU, seconds).

The dataset is a synthetic figure whose arms move one way only, so no two
frames share a posture: the retrieval baseline then has one right answer.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from infer.eval_frames import DEFAULT_GAP
from infer.evaluate import evaluate
from infer.redetect import PoseProbe
from tests.helpers_video import figure_frame, synthetic_pose
from train.trainer import train
from vid2vid.checkpoint import load_checkpoint
from vid2vid.cli import cli
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose, write_openpose_json

N = 40          # frames; the runs hold out the last 40 %: frames 24..39, evaluated from 32
DRIFT = ("PSNR dB", "SSIM", "PSNR dB background", "SSIM background",
         "PSNR dB background seen", "SSIM background seen")


def dancing_pose(i: int, w: int, h: int):
    """The swaying figure of the other tests, arms rising steadily: a new posture each frame."""
    pose = synthetic_pose(i / 3, w, h)
    lift = 0.3 * h * i / N
    for side, sign in (("R", -1), ("L", 1)):
        sx, sy = pose.body[BODY[f"{side}Shoulder"], :2]
        pose.body[BODY[f"{side}Elbow"]] = (sx + sign * 0.12 * h, sy + 0.13 * h - lift / 2, 0.9)
        pose.body[BODY[f"{side}Wrist"]] = (sx + sign * 0.15 * h, sy + 0.25 * h - lift, 0.9)
    return pose


def make_dataset(root: Path, w: int = 64, h: int = 64) -> Path:
    import cv2

    from preprocess.dataset_writer import PreprocessOptions
    from preprocess.pose_pipeline import preprocess_video

    frames, poses = root / "dancer_frames", root / "dancer_openpose"
    frames.mkdir(parents=True)
    poses.mkdir()
    for i in range(N):
        pose = dancing_pose(i, w, h)
        write_openpose_json(poses / f"{i:06d}.json", pose)
        cv2.imwrite(str(frames / f"{i:06d}.png"), figure_frame(pose, w, h)[..., ::-1])
    out = root / "dancer"
    preprocess_video(frames, out, PreprocessOptions(keypoints=str(poses), smooth=False),
                     progress=False)
    return out


class NoDetector:
    """Stands in for mediapipe where pose consistency is not what is tested: finds nobody."""

    def __call__(self, rgb):
        return None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    data = make_dataset(root)
    common = dict(data=(str(data),), preset="tiny", model=ModelConfig.preset("tiny"), size=64,
                  frames=2, bptt=2, steps=3, workers=0, log_every=1, sample_every=100,
                  checkpoint_minutes=60.0, holdout=0.4)
    torch.manual_seed(0)
    model = train(TrainConfig(**common), run_dir=root / "runs" / "model", progress=False)
    per_frame = train(TrainConfig(**common, temporal=False), run_dir=root / "runs" / "per-frame",
                      progress=False)
    return {"root": root, "data": data, "model": model, "per_frame": per_frame}


def test_evaluate_writes_the_table_json_and_report(runs):
    result = CliRunner().invoke(cli, ["evaluate", str(runs["model"]), "--baseline",
                                      str(runs["per_frame"])])
    assert result.exit_code == 0, result.output
    assert "retrieval" in result.output and "PSNR dB" in result.output
    run = runs["model"]
    record = json.loads((run / "eval.json").read_text())
    rows = ["model", "baseline per-frame", "retrieval", "real video"]
    assert list(record["table"]) == rows
    # Training frames 0..23, a gap of 8, then frames 32..39.
    assert DEFAULT_GAP == 8 and record["gap"] == 8
    assert record["frames"] == 8 and record["per_frame"]["frame"] == [[0, k] for k in range(32, 40)]
    data = record["data"][0]
    assert data["frames"] == [32, 40] and record["frame_size"] == [64, 64]
    assert (data["first_held_out"], data["last_training_frame"], data["gap"]) == (24, 23, 8)
    assert data["first_third"] == [32, 34] and data["last_third"] == [38, 40]
    assert record["baseline"]["temporal"] is False and record["temporal"] is True
    for name in rows[:3]:
        row = record["table"][name]
        for column in ("PSNR dB", "PSNR dB person", "PSNR dB background", "SSIM", "SSIM person",
                       "SSIM background", "PSNR dB background seen", "SSIM background seen",
                       "warp error", "warp error person"):
            assert math.isfinite(row[column]), (name, column, row[column])
        assert 0 <= row["pose found"] <= 1
        assert len(record["per_frame"][name]["psnr"]) == 8
        assert len(record["per_frame"][name]["ssim_background"]) == 8
        assert record["per_frame"][name]["warp_error"][0] is None    # no frame before the first
        # Drift: the first 2 and the last 2 of the 8 frames, first minus last.
        for metric, key in zip(DRIFT, ("psnr", "ssim", "psnr_background", "ssim_background",
                                       "psnr_background_seen", "ssim_background_seen")):
            values = record["per_frame"][name][key]
            d = record["drift"][name][metric]
            assert d["first third"] == pytest.approx(np.mean(values[:2]))
            assert d["last third"] == pytest.approx(np.mean(values[-2:]))
            assert d["drift"] == pytest.approx(d["first third"] - d["last third"])
    assert list(record["drift"]) == rows[:3] and list(record["drift"]["model"]) == list(DRIFT)
    assert "PSNR dB" not in record["table"]["real video"]
    assert "PSNR dB background" not in record["table"]["real video"]
    assert math.isfinite(record["table"]["real video"]["warp error"])
    assert 0 < record["table"]["model"]["SSIM"] < 1
    assert "background" in record["settings"] and record["settings"]["background_grow_px"] == 1
    assert "drift: first vs last third" in result.output
    head = next(line for line in result.output.splitlines() if "PSNR dB person" in line)
    assert "PSNR dB background" in head and "SSIM background" in head
    assert "model, PSNR dB background" in result.output
    page = (run / "report.html").read_text()
    assert "data:video/mp4;base64," in page and "baseline per-frame" in page
    assert page.count('<figure class="plot">') == 12     # 8 image metrics (2 on the seen background) + 4 pose
    assert 'id="table-1"' in page and "Drift: first vs last third" in page
    assert "frames 32-39, a gap of 8 after the last training frame, 23" in page
    assert (run / "eval_compare.mp4").stat().st_size > 0


def test_retrieval_on_training_frames_is_exact(runs, tmp_path):
    """On its own training frames the retrieval baseline returns each frame itself: PSNR at
    the cap, SSIM 1, and the real video's warp error, frame by frame."""
    result = evaluate(runs["model"], split="train", max_frames=6, out=tmp_path,
                      detector=NoDetector(), progress=False)
    row = result.table["retrieval"]
    assert row["PSNR dB"] == 100.0 and row["PSNR dB person"] == 100.0
    assert row["SSIM"] == 1.0 and row["SSIM person"] == 1.0
    assert row["PSNR dB background"] == 100.0 and row["SSIM background"] == 1.0
    assert result.drift["retrieval"]["PSNR dB background"] == {
        "first third": 100.0, "last third": 100.0, "drift": 0.0}
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["per_frame"]["frame"] == [[0, k] for k in range(6)]
    assert record["gap"] is None and record["data"][0]["gap"] == 0
    assert record["per_frame"]["retrieval"]["warp_error"] == \
        record["per_frame"]["real video"]["warp_error"]
    assert row["warp error"] == result.table["real video"]["warp error"]
    assert result.table["model"]["PSNR dB"] < 100
    assert (tmp_path / "report.html").exists() and (tmp_path / "eval_compare.mp4").exists()


def test_the_gap_can_be_changed_and_must_fit(runs, tmp_path):
    def frames(gap):
        evaluate(runs["model"], gap=gap, max_frames=2, out=tmp_path, detector=NoDetector(),
                 progress=False)
        record = json.loads((tmp_path / "eval.json").read_text())
        assert record["gap"] == gap and record["data"][0]["gap"] == gap
        return [k for _, k in record["per_frame"]["frame"]]

    assert frames(0) == [24, 25]          # right after the last training frame, 23
    assert frames(15) == [39]
    with pytest.raises(UserError, match="leaves none of its 16 held-out frames"):
        frames(16)
    with pytest.raises(UserError, match="at least 0"):
        frames(-1)


def test_bad_inputs_are_one_line_errors(runs, tmp_path):
    def run(*args):
        r = CliRunner().invoke(cli, ["evaluate", *map(str, args)])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
        return r.output

    assert "is not a training run" in run(tmp_path)
    assert "does not exist" in run(tmp_path / "nope")
    # a baseline trained on other data
    state = load_checkpoint(runs["per_frame"])
    state["config"]["data"] = [str(tmp_path / "elsewhere")]
    (tmp_path / "other").mkdir()
    torch.save(state, tmp_path / "other" / "ckpt-00000003.pt")
    assert "was not trained on" in run(runs["model"], "--baseline", tmp_path / "other")


def test_pose_probe_maps_detections_back_to_frame_pixels():
    """Small frames and box crops are enlarged to 256 px for the detector; what it finds is
    mapped back to the frame's own pixels."""
    seen = []

    def centre(rgb):       # "finds" a neck at the centre of whatever it is shown
        seen.append(rgb.shape)
        pose = Pose()
        pose.body[BODY["Neck"]] = ((rgb.shape[1] - 1) / 2, (rgb.shape[0] - 1) / 2, 0.9)
        return pose

    # box 16 x 32 centred at (16, 32): a square crop of 40 px from (-4, 12), enlarged 6.4 times
    full, boxed = PoseProbe(centre)(np.zeros((64, 48, 3), np.uint8), (8.0, 16.0, 24.0, 48.0))
    assert seen == [(256, 192, 3), (256, 256, 3)]
    assert tuple(full.body[BODY["Neck"], :2]) == pytest.approx((23.875, 31.875))
    assert tuple(boxed.body[BODY["Neck"], :2]) == pytest.approx((-4 + 127.5 / 6.4,
                                                                  12 + 127.5 / 6.4))
    assert full.body[0, 2] == 0 and tuple(full.body[0, :2]) == (0, 0)
    assert PoseProbe(centre)(np.zeros((64, 48, 3), np.uint8), None)[1] is None
