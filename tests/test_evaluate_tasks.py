"""`vid2vid evaluate` on face and label runs trained here (CPU, seconds).

Both datasets are written by hand, file by file, as preprocessing writes them
(meta.json with the task, frames/, seg/, flow/, and labels/ or pose/ + edges/).
Each frame's conditioning is new (a car that keeps driving right, a mouth that
keeps opening), so on its training frames the retrieval baseline finds each
frame itself.
"""

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from infer.evaluate import evaluate
from infer.retrieval import FaceIndex, normalized_face
from tests.helpers_video import make_synthetic_dataset
from train.trainer import train
from vid2vid.cli import cli
from vid2vid import metrics
from vid2vid.config import ModelConfig, TrainConfig
from vid2vid.data import ClipDataset, index_dataset, no_augment
from vid2vid.dataset_dir import frame_path, write_json_atomic
from vid2vid.flow_png import write_flow_png
from vid2vid.pose import Pose, write_openpose_json
from vid2vid.render import draw_face_sketch

N = 15            # frames; the runs hold out the last 20 %: frames 12..14 (a gap of 1: 13, 14)
CLASSES = 4       # 0 sky, 1 road, 2 building, 3 car (the foreground class)
CAR = 3


def _meta(task: str, size: tuple[int, int], **extra) -> dict:
    return {"format": "vid2vid-dataset", "version": 1, "complete": True, "task": task,
            "fps": 10.0, "size": list(size), "frames": N,
            "counts": {"found": N, "interpolated": 0, "missing": 0},
            "per_frame": {"person": [True] * N, "interpolated": [False] * N},
            "flow": {"method": "dis-medium"}, **extra}


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 60, (h, w, 3), dtype=np.uint8), (5, 5), 0)


def _write_frame(root: Path, k: int, rgb: np.ndarray, seg: np.ndarray) -> None:
    cv2.imwrite(str(frame_path(root, "frames", k)), rgb[..., ::-1])
    cv2.imwrite(str(frame_path(root, "seg", k)), seg)
    if k:     # the true motion is small; zero flow, valid everywhere, is a fine stand-in
        write_flow_png(frame_path(root, "flow", k), np.zeros((*seg.shape, 2), np.float32))


def street(k: int, w: int = 64, h: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Frame k of the street (labels, RGB): the car 2 px further right each frame."""
    colors = np.array([(90, 150, 230), (80, 80, 80), (150, 110, 90), (200, 30, 30)], np.uint8)
    labels = np.zeros((h, w), np.uint8)
    labels[h // 2:] = 1
    labels[4:h // 2, 40:56] = 2
    labels[h // 2 - 4:h // 2 + 6, 4 + 2 * k:16 + 2 * k] = CAR
    rgb = np.clip(colors[labels].astype(int) + _texture(h, w, 0), 0, 255).astype(np.uint8)
    return labels, rgb


def write_street_frame(root: Path, k: int, labels: np.ndarray, rgb: np.ndarray) -> None:
    cv2.imwrite(str(frame_path(root, "labels", k)), labels)
    _write_frame(root, k, rgb, np.where(labels == CAR, 255, 0).astype(np.uint8))


def make_labels_dataset(root: Path, w: int = 64, h: int = 32) -> Path:
    """A street: sky, building and road, and a car driving right 2 px a frame."""
    for d in ("frames", "labels", "seg", "flow"):
        (root / d).mkdir(parents=True)
    for k in range(N):
        write_street_frame(root, k, *street(k, w, h))
    write_json_atomic(root / "meta.json", _meta(
        "labels", (w, h), labels={"num_classes": CLASSES, "fg_classes": [CAR],
                                  "instances": False, "class_ids": [0, 1, 2, 3]}))
    return root


def face_landmarks(k: int, size: int) -> np.ndarray:
    """70 face landmarks (OpenPose layout) of a face whose mouth opens a little more each
    frame, drifting sideways."""
    cx, cy, r = size / 2 + 3 * np.sin(k / 3), size * 0.48, size * 0.3
    pts = np.zeros((70, 3), np.float32)
    a = np.linspace(0, np.pi, 17)
    pts[0:17, :2] = np.stack([cx - r * np.cos(a), cy + r * np.sin(a)], 1)            # jaw
    pts[17:22, :2] = np.stack([np.linspace(cx - 0.7 * r, cx - 0.15 * r, 5),
                               np.full(5, cy - 0.5 * r)], 1)                          # brows
    pts[22:27, :2] = np.stack([np.linspace(cx + 0.15 * r, cx + 0.7 * r, 5),
                               np.full(5, cy - 0.5 * r)], 1)
    pts[27:31, :2] = np.stack([np.full(4, cx), np.linspace(cy - 0.4 * r, cy, 4)], 1)  # nose
    pts[31:36, :2] = np.stack([np.linspace(cx - 0.2 * r, cx + 0.2 * r, 5),
                               np.full(5, cy + 0.1 * r)], 1)
    e = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    for first, ex in ((36, cx - 0.4 * r), (42, cx + 0.4 * r)):                       # eyes
        pts[first:first + 6, :2] = np.stack([ex - 0.15 * r * np.cos(e),
                                             cy - 0.3 * r + 0.06 * r * np.sin(e)], 1)
        pts[68 if first == 36 else 69, :2] = (ex, cy - 0.3 * r)                      # pupils
    opening = r * (0.03 + 0.2 * k / N)
    o = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    pts[48:60, :2] = np.stack([cx - 0.35 * r * np.cos(o),
                               cy + 0.55 * r + (0.08 * r + opening) * np.sin(o)], 1)   # lips
    i = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    pts[60:68, :2] = np.stack([cx - 0.25 * r * np.cos(i), cy + 0.55 * r + opening * np.sin(i)], 1)
    pts[:, 2] = 0.9
    return pts


def make_face_dataset(root: Path, size: int = 32) -> Path:
    """A talking head: the face sketch drawn over skin and a textured background."""
    for d in ("frames", "pose", "seg", "edges", "flow"):
        (root / d).mkdir(parents=True)
    for k in range(N):
        face = face_landmarks(k, size)
        rgb = _texture(size, size, 1) + 100
        hull = cv2.convexHull(face[:68, :2].astype(np.int32))
        seg = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(seg, hull, 255)
        rgb[seg > 0] = (210, 160, 130)
        draw_face_sketch(rgb, face, 1, color=(60, 30, 30))
        write_openpose_json(frame_path(root, "pose", k), Pose(face=face))   # face only
        edges = cv2.Canny(rgb, 50, 150)
        edges[seg > 0] = 0
        cv2.imwrite(str(frame_path(root, "edges", k)), edges)
        _write_frame(root, k, rgb, seg)
    write_json_atomic(root / "meta.json", _meta("face", (size, size)))
    return root


class FakeFaceDetector:
    """Stands in for mediapipe's face mesh: "finds" a fixed face in the middle of the image,
    and none on every fourth call."""

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        if self.calls % 4 == 0:
            return np.zeros((70, 3), np.float32)
        return face_landmarks(0, rgb.shape[0])


class NoDetector:
    def __call__(self, rgb):
        return None


def _train(data: Path, run_dir: Path) -> Path:
    cfg = TrainConfig(data=(str(data),), preset="tiny", model=ModelConfig.preset("tiny"),
                      size=32, frames=2, bptt=2, steps=2, workers=0, log_every=1,
                      sample_every=100, checkpoint_minutes=60.0)
    torch.manual_seed(0)
    return train(cfg, run_dir=run_dir, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate_tasks")
    labels = make_labels_dataset(root / "street")
    face = make_face_dataset(root / "head")
    return {"labels_data": labels, "face_data": face,
            "labels": _train(labels, root / "runs" / "street"),
            "face": _train(face, root / "runs" / "head")}


def _image(region: str) -> list[str]:
    return ["PSNR dB", f"PSNR dB {region}", "PSNR dB background", "PSNR dB background seen",
            "SSIM", f"SSIM {region}", "SSIM background", "SSIM background seen", "warp error",
            f"warp error {region}"]


def _check_rows(record: dict, region: str, consistency: tuple[str, ...]) -> None:
    rows = ["model", "retrieval", "real video"]
    assert list(record["table"]) == rows
    for name in rows[:2]:
        row = record["table"][name]
        expected = _image(region) + list(consistency)
        assert list(row) == expected, (name, list(row))
        for column, value in row.items():
            assert value is not None and math.isfinite(value), (name, column, value)
    real = record["table"]["real video"]
    assert list(real) == ["warp error", f"warp error {region}", *consistency]
    assert list(record["columns"].values()) == _image(region) + list(consistency)
    assert list(record["drift"]) == rows[:2]


def test_labels_run_is_scored_on_the_foreground(runs, tmp_path):
    result = evaluate(runs["labels"], out=tmp_path, progress=False)
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["task"] == {"name": "labels", "num_classes": CLASSES, "fg_classes": [CAR],
                              "instances": False}
    # 3 held-out frames: the default gap of 8 shrinks to 1 (half of them), and says so.
    assert record["frames"] == 2 and record["per_frame"]["frame"] == [[0, 13], [0, 14]]
    assert record["gap"] == 8 and record["data"][0]["gap"] == 1
    assert any("only 3 held-out frames" in n and "is 1 frames, not 8" in n
               for n in record["notes"])
    _check_rows(record, "foreground", ())
    # Two frames have no thirds: no drift, and a note.
    assert record["data"][0]["first_third"] is None
    assert record["drift"]["model"]["PSNR dB"] == {"first third": None, "last third": None,
                                                   "drift": None}
    assert any("no drift" in n for n in record["notes"])
    settings = record["settings"]
    assert settings["detector"] is None and "label map" in settings["retrieval"]
    assert "foreground" in settings["region"]
    assert any("no consistency metric" in n for n in record["notes"])
    assert "PSNR dB foreground" in result.format_table()
    assert "pose found" not in result.format_table()
    page = (tmp_path / "report.html").read_text()
    assert page.count('<figure class="plot">') == 10 and "no consistency metric" in page
    assert (tmp_path / "eval_compare.mp4").stat().st_size > 0


def test_labels_retrieval_on_training_frames_is_exact(runs, tmp_path):
    """Each training label map is its own nearest neighbour, so retrieval returns the frame."""
    result = evaluate(runs["labels"], split="train", max_frames=4, out=tmp_path, progress=False)
    row = result.table["retrieval"]
    assert row["PSNR dB"] == 100.0 and row["PSNR dB foreground"] == 100.0
    assert row["SSIM"] == 1.0
    assert row["warp error"] == result.table["real video"]["warp error"]


def test_labels_background_is_outside_the_foreground_classes(runs, tmp_path):
    """The held-out frames repeat training frames 0-2 with the background 25 grey levels
    darker: retrieval finds those frames (same label maps), so it is exact on the car and
    off by 25/255 everywhere outside it, 20.2 dB."""
    import shutil

    data = tmp_path / "street_dark"
    shutil.copytree(runs["labels_data"], data)
    for k in range(12, N):
        labels, rgb = street(k - 12)
        dark = np.where((labels == CAR)[..., None], rgb, rgb.astype(int) - 25).astype(np.uint8)
        write_street_frame(data, k, labels, dark)
    result = evaluate(runs["labels"], data=str(data), gap=0, out=tmp_path / "e",
                      progress=False)
    row = result.table["retrieval"]
    assert row["PSNR dB background"] == pytest.approx(20 * math.log10(255 / 25), abs=0.1)
    assert row["PSNR dB"] > row["PSNR dB background"] + 0.15      # the car's pixels agree
    assert row["SSIM background"] < 1
    # One frame per third: frames 12 and 14; the background moves alike in both.
    record = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert record["data"][0]["first_third"] == [12, 13]
    assert record["data"][0]["last_third"] == [14, 15]
    bg = result.drift["retrieval"]["PSNR dB background"]
    assert bg["first third"] == pytest.approx(record["per_frame"]["retrieval"]
                                              ["psnr_background"][0])
    assert abs(bg["drift"]) < 0.3


def test_face_clips_carry_the_landmarks(runs):
    """What the face rows stand on: a face dataset's pose/ files hold a person with face
    points only, and the loader must still read them (the driving landmarks, the focus
    box and the sketch all come from them)."""
    video = index_dataset(runs["face_data"], 0.2)
    clip = ClipDataset([video], 1, (32, 32), augment=no_augment(),
                       with_flow=False).frames_at(0, [0])
    assert (clip.keypoints[0, 25:95, 2] > 0).all(), "face landmarks were read as missing"
    assert clip.maps[0, 0].sum() > 0                  # the sketch is drawn


def test_face_run_measures_landmarks_with_an_injected_detector(runs, tmp_path):
    detector = FakeFaceDetector()
    result = evaluate(runs["face"], out=tmp_path, detector=detector, progress=False, gap=0)
    assert detector.calls == 3 * 3        # three held-out frames, three methods each
    record = json.loads((tmp_path / "eval.json").read_text())
    assert record["task"] == {"name": "face"}
    _check_rows(record, "face", ("landmarks found", "landmark distance"))
    assert record["settings"]["detector"] == "FakeFaceDetector"
    assert "inter-ocular" in record["settings"]["units"]
    # the detector's calls go real, model, retrieval for each frame: every fourth finds nothing
    found = {n: record["per_frame"][n]["landmarks_found"] for n in ("real video", "model",
                                                                    "retrieval")}
    assert found == {"real video": [1.0, 0.0, 1.0], "model": [1.0, 1.0, 0.0],
                     "retrieval": [1.0, 1.0, 1.0]}
    assert result.table["model"]["landmarks found"] == pytest.approx(2 / 3)
    assert record["per_frame"]["model"]["landmark_distance"][2] is None
    assert record["data"][0]["frames"] == [12, 15] and record["data"][0]["gap"] == 0
    # The background is outside the face mask (seg/), grown by a pixel.
    assert math.isfinite(result.table["model"]["SSIM background"])
    page = (tmp_path / "report.html").read_text()
    assert page.count('<figure class="plot">') == 11


def test_face_retrieval_on_training_frames_is_exact(runs, tmp_path):
    result = evaluate(runs["face"], split="train", max_frames=4, out=tmp_path,
                      detector=FakeFaceDetector(), progress=False)
    row = result.table["retrieval"]
    assert row["PSNR dB"] == 100.0 and row["PSNR dB face"] == 100.0 and row["SSIM face"] == 1.0


def test_face_index_ignores_position_and_size():
    a = face_landmarks(5, 32)
    moved = a.copy()
    moved[:, :2] = moved[:, :2] * 2 + 7
    index = FaceIndex([10, 11, 12], [face_landmarks(0, 32), a, face_landmarks(14, 32)])
    assert index.nearest(moved) == 11
    assert index.distances(moved)[1] == pytest.approx(0, abs=1e-5)
    no_eyes = a.copy()
    no_eyes[36:42, 2] = 0
    assert normalized_face(no_eyes) is None and index.nearest(no_eyes) is None


def test_a_run_evaluated_on_another_tasks_data_is_a_one_line_error(runs, tmp_path):
    def fails(*args):
        r = CliRunner().invoke(cli, ["evaluate", *map(str, args)])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
        return r.output

    figure = make_synthetic_dataset(tmp_path, n=N, w=32, h=32)
    pose_run = _train(figure, tmp_path / "runs" / "figure")
    out = fails(pose_run, "--data", runs["labels_data"], "--out", tmp_path / "e")
    assert "'labels' dataset" in out and "'pose' run" in out
    out = fails(runs["face"], "--data", runs["labels_data"], "--out", tmp_path / "e")
    assert "'labels' dataset" in out and "'face' run" in out
    # a baseline of another task
    out = fails(runs["labels"], "--baseline", runs["face"], "--out", tmp_path / "e")
    assert "draws its maps as {'name': 'face'}" in out


def test_mask_boxes_grow_and_clip_and_leave_empty_masks_nan():
    masks = torch.zeros(2, 1, 10, 20)
    masks[0, 0, 2:5, 3:9] = 1          # 6 wide, 3 tall: grown by 0.6 on every side
    boxes = metrics.mask_boxes(masks, 0.1)
    assert boxes[0].tolist() == pytest.approx([2.4, 1.4, 9.6, 5.6])
    assert torch.isnan(boxes[1]).all()
    masks[0, 0, 0:10, 15:20] = 1       # reaches the edges: clipped to the frame
    assert metrics.mask_boxes(masks.bool(), 0.5)[0].tolist() == [0.0, 0.0, 20.0, 10.0]
