"""What `vid2vid evaluate` measures besides PSNR, SSIM and warp error, per task.

Each task has one small class with the same methods: the focus region (the
person, the face, the foreground classes) whose box gets its own columns, the
retrieval baseline's look-up (nearest training frame by pose, by face
landmarks, by label map), and the consistency detector run on every frame
(body pose found again, face landmarks found again, none for scenes). The
frame loop in `infer.evaluate` asks only these, so it reads the same for all
tasks; `MEASURES` is the one place a task picks its class. `thirds` and
`drift_table` summarise any method's per-frame values over the start and the
end of a generated sequence, whatever the task.
"""

from __future__ import annotations

import math
from typing import Callable, Protocol

import numpy as np
import torch

from infer.eval_frames import EvalVideo
from infer.redetect import DETECT_MIN_HEIGHT, PoseProbe
from infer.retrieval import FaceIndex, PoseIndex
from vid2vid import metrics
from vid2vid.data import Clip, array_to_pose, centered_geometry, read_stored
from vid2vid.dataset_dir import frame_path
from vid2vid.pose import Pose, read_openpose_json
from vid2vid.tasks import FaceTask, LabelTask, PoseTask

BOX_MARGIN = 0.1   # focus boxes grow by this share of their size on each side

POSE_COLUMNS = {
    "pose_found": "pose found", "pose_found_person": "pose found person",
    "pose_distance": "pose distance", "pose_distance_person": "pose distance person",
}


def nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def thirds(positions: list[int]) -> tuple[list[int], list[int]]:
    """The first and the last third (`len // 3` items each) of one sequence's frames;
    both empty when it has fewer than 3."""
    n = len(positions) // 3
    return (positions[:n], positions[len(positions) - n:]) if n else ([], [])


def drift_table(series: dict[str, list[float]], first: list[int], last: list[int]
                ) -> dict[str, dict[str, float]]:
    """Per metric: its NaN-aware mean over the frames at positions `first` and at `last`,
    and "drift", first minus last (positive: worse at the end, for PSNR and SSIM)."""
    out = {}
    for name, values in series.items():
        a = nanmean([values[i] for i in first])
        b = nanmean([values[i] for i in last])
        out[name] = {"first third": a, "last third": b, "drift": a - b}
    return out


Nearest = Callable[[int, Clip], "int | None"]   # (frame number, its clip) -> training frame


class Measures(Protocol):
    """The per-task parts of the protocol; the frame loop asks only these.

    region: the focus region's name, the suffix of its columns.
    columns: consistency key -> table column (none for labels).
    plotted: the consistency keys drawn in the report.
    notes: lines for the report (what is not measured, and why).
    """

    region: str
    columns: dict[str, str]
    plotted: tuple[str, ...]
    notes: tuple[str, ...]

    def retrieval(self, video: EvalVideo, size: tuple[int, int]) -> Nearest:
        """The retrieval baseline's look-up over the video's training frames."""

    def focus(self, clip: Clip, size: tuple[int, int]) -> torch.Tensor:
        """The driving frame's focus box `[1, 4]` in model pixels; keeps its driving signal."""

    def observe(self, method: str, rgb: np.ndarray, box: torch.Tensor) -> None:
        """Runs the detector on one method's frame (RGB uint8 `[H, W, 3]`)."""

    def summary(self, method: str) -> tuple[dict[str, list[float]], dict[str, float]]:
        """(per-frame values, table values) of the consistency keys for one method."""

    def settings(self) -> dict:
        """eval.json's record of the detector, the retrieval and the units."""

    def close(self) -> None:
        ...


class _PoseMeasures:
    """Bodies: the person's box, the nearest training pose, re-detected body vs driving pose."""

    region = "person"
    columns = POSE_COLUMNS
    plotted = ("pose_distance", "pose_distance_person")
    notes = ()

    def __init__(self, task: PoseTask, detector: Callable | None):
        self.detector_name = ("mediapipe pose (BlazePose, model_complexity 1, static images)"
                              if detector is None else type(detector).__name__)
        self.probe = PoseProbe(detector)
        self.driving: list[Pose | None] = []
        self.found: dict[str, list[Pose | None]] = {}
        self.found_box: dict[str, list[Pose | None]] = {}

    def retrieval(self, video: EvalVideo, size: tuple[int, int]) -> Nearest:
        index = PoseIndex.from_dataset(video.root, 0, video.index.train_frames)
        return lambda k, clip: index.nearest(read_openpose_json(frame_path(video.root,
                                                                           "pose", k)))

    def focus(self, clip: Clip, size: tuple[int, int]) -> torch.Tensor:
        kp = clip.keypoints[-1].numpy()
        pose = array_to_pose(kp) if (kp[:25, 2] > 0).any() else None
        self.driving.append(pose)
        return metrics.pose_boxes([pose], (size[1], size[0]), BOX_MARGIN)

    def observe(self, method: str, rgb: np.ndarray, box: torch.Tensor) -> None:
        found, found_box = self.probe(rgb, tuple(box[0].tolist()))
        self.found.setdefault(method, []).append(found)
        self.found_box.setdefault(method, []).append(found_box)

    def summary(self, method: str) -> tuple[dict[str, list[float]], dict[str, float]]:
        pc = metrics.pose_consistency(self.found[method], self.driving)
        pcb = metrics.pose_consistency(self.found_box[method], self.driving)
        has = [p is not None and p.found for p in self.driving]
        values = {
            "pose_found": [float(f) if d else math.nan for f, d in zip(pc.detected, has)],
            "pose_found_person": [float(f) if d else math.nan for f, d in zip(pcb.detected, has)],
            "pose_distance": list(pc.per_frame),
            "pose_distance_person": list(pcb.per_frame),
        }
        table = {"pose_found": pc.detection_rate, "pose_found_person": pcb.detection_rate,
                 "pose_distance": pc.distance, "pose_distance_person": pcb.distance}
        return values, table

    def settings(self) -> dict:
        return {"detect_min_height": DETECT_MIN_HEIGHT,
                "region": "person: the driving pose's keypoints, grown by box_margin",
                "detector": self.detector_name, "pose_detector": self.detector_name,
                "retrieval": "nearest training frame by torso-normalised body pose",
                "units": "frames in [0, 1]; warp error: mean squared difference; pose distance: "
                         "torso lengths"}

    def close(self) -> None:
        self.probe.close()


class _FaceMeasures:
    """Talking heads: the face landmarks' box, the nearest training face, re-detected
    landmarks vs the driving ones."""

    region = "face"
    columns = {"landmarks_found": "landmarks found", "landmark_distance": "landmark distance"}
    plotted = ("landmark_distance",)
    notes = ()

    def __init__(self, task: FaceTask, detector: Callable | None):
        if detector is None:
            from infer.face_align import FaceRedetector

            detector = FaceRedetector()
            self.detector_name = ("mediapipe face mesh (static images, enlarged to 256 px on "
                                  "the shorter side)")
        else:
            self.detector_name = type(detector).__name__
        self.detector = detector
        self.driving: list[np.ndarray] = []                # [70, 3] per frame, model pixels
        self.found: dict[str, list[np.ndarray]] = {}

    def retrieval(self, video: EvalVideo, size: tuple[int, int]) -> Nearest:
        # Normalised faces do not change with the centred crop's scale and shift, so the
        # query comes in model pixels, the index in stored ones.
        index = FaceIndex.from_dataset(video.root, 0, video.index.train_frames)
        return lambda k, clip: index.nearest(clip.keypoints[-1, 25:95].numpy())

    def focus(self, clip: Clip, size: tuple[int, int]) -> torch.Tensor:
        face = clip.keypoints[-1, 25:95].numpy()
        self.driving.append(face)
        return metrics.pose_boxes([Pose(face=face)], (size[1], size[0]), BOX_MARGIN)

    def observe(self, method: str, rgb: np.ndarray, box: torch.Tensor) -> None:
        found = np.array(self.detector(rgb), np.float32).reshape(70, 3)
        self.found.setdefault(method, []).append(found)

    def summary(self, method: str) -> tuple[dict[str, list[float]], dict[str, float]]:
        from infer.face_align import landmark_consistency

        found, driving = np.stack(self.found[method]), np.stack(self.driving)
        per_frame, share = landmark_consistency(found, driving)
        values = {"landmarks_found": [float(f) for f in (found[:, :, 2] > 0).any(1)],
                  "landmark_distance": [float(v) for v in per_frame]}
        return values, {"landmarks_found": float(share),
                        "landmark_distance": nanmean(values["landmark_distance"])}

    def settings(self) -> dict:
        return {"region": "face: the driving face landmarks, grown by box_margin",
                "detector": self.detector_name,
                "retrieval": "nearest training frame by face landmarks about their centroid, "
                             "over the inter-ocular distance",
                "units": "frames in [0, 1]; warp error: mean squared difference; landmark "
                         "distance: inter-ocular distances of the driving face"}

    def close(self) -> None:
        if hasattr(self.detector, "close"):
            self.detector.close()


class _LabelMeasures:
    """Scenes: the foreground classes' box, the nearest training label map; no detector."""

    region = "foreground"
    columns: dict[str, str] = {}
    plotted: tuple[str, ...] = ()
    notes = ("no consistency metric for scenes: no detector reads a label map back from a "
             "frame",)

    def __init__(self, task: LabelTask, detector: Callable | None):
        self.task = task

    def retrieval(self, video: EvalVideo, size: tuple[int, int]) -> Nearest:
        import cv2

        from infer.label_retrieval import LabelIndex

        # The training maps through the model's geometry, as the queries come (and at
        # model size, not stored size: Cityscapes' 2975 frames stored would take 6 GB).
        geometry = centered_geometry(video.index.size, size)
        frames = range(video.index.train_frames)
        maps = [geometry.image(read_stored(video.root, self.task, i)["labels"],
                               cv2.INTER_NEAREST) for i in frames]
        index = LabelIndex(maps, frames=frames)
        n = self.task.num_classes
        return lambda k, clip: index.nearest(
            clip.maps[-1, :n].argmax(0).to(torch.uint8).numpy())

    def focus(self, clip: Clip, size: tuple[int, int]) -> torch.Tensor:
        box = metrics.mask_boxes(clip.masks[-1:], BOX_MARGIN)
        if box.isnan().any():                      # no foreground: the whole frame
            box = torch.tensor([[0.0, 0.0, float(size[1]), float(size[0])]])
        return box

    def observe(self, method: str, rgb: np.ndarray, box: torch.Tensor) -> None:
        pass

    def summary(self, method: str) -> tuple[dict[str, list[float]], dict[str, float]]:
        return {}, {}

    def settings(self) -> dict:
        return {"region": "foreground: the foreground classes' mask (seg/), grown by "
                          "box_margin; the whole frame where there is none",
                "detector": None,
                "retrieval": "nearest training frame by label map (share of differing pixels "
                             "on a 32x64 grid)",
                "units": "frames in [0, 1]; warp error: mean squared difference"}

    def close(self) -> None:
        pass


# The one place a task picks its measures.
MEASURES: dict[str, type] = {"pose": _PoseMeasures, "face": _FaceMeasures,
                              "labels": _LabelMeasures}
