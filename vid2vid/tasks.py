"""The task: what a model is conditioned on, chosen once at preprocessing.

vid2vid serves three kinds of data through the same preprocess / train /
transfer / evaluate commands:

    pose    a person's body, hands and face keypoints -> a dancer (Everybody Dance Now)
    face    face landmarks + background edges         -> a talking head (edge-to-face)
    labels  semantic labels + instance boundaries     -> a street scene (label-to-scene)

`vid2vid preprocess --task` writes the task into meta.json; the training run
copies it into every checkpoint. This module is the one place that turns a
task into conditioning: how many map channels, how one frame's maps are drawn
(from its keypoints and the stored per-frame images the task names), and
which crops a part discriminator looks at, and which model options its maps
call for (`model_defaults`, applied by `TrainConfig.resolve` under the config
file and the command line). The generator and the training loop only see
`[B, T, C, H, W]` maps and boxes; they never ask which task they serve.

The person/face/foreground mask each task stores as `seg/` is the target of
the generator's foreground mask, so the foreground/background split works
alike for all three: the person for bodies, the face for faces, the
foreground classes (persons and vehicles for Cityscapes) for scenes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import Tensor

from vid2vid.body_surface import CHANNELS as SURFACE_CHANNELS, render_surface
from vid2vid.crops import face_boxes
from vid2vid.errors import UserError
from vid2vid.label_maps import (CITYSCAPES_FG_CLASSES, CITYSCAPES_NUM_CLASSES,
                                instance_boundary, one_hot)
from vid2vid.pose import BODY_LIMBS, Pose
from vid2vid.render import LIMB_WIDTH, draw_face_sketch, render_pose, stroke_width

TASKS = ("pose", "face", "labels")
MOUTH = slice(48, 68)         # outer and inner lips of the 70-point face layout


@dataclass(frozen=True)
class Stored:
    """A per-frame image of the dataset directory that a task's maps are drawn from."""

    folder: str            # e.g. "edges" -> edges/NNNNNN.png
    interpolation: int     # how it is resized: class IDs must never be blended
    optional: bool = False


def _mouth_boxes(kp: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Square boxes around the lips (2.2x their extent): the talking head's hardest part."""
    face = kp[..., 25:95, :].clone()
    keep = torch.zeros(face.shape[-2], dtype=torch.bool)
    keep[MOUTH] = True
    face[..., ~keep, 2] = 0
    return face_boxes(None, face, size, scale=2.2, min_side=4.0)


def _person_face_boxes(kp: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    return face_boxes(kp[..., :25, :], kp[..., 25:95, :], size)


@dataclass(frozen=True)
class PoseTask:
    """Bodies: an OpenPose-style colour skeleton of body, hands and face, RGB; with
    `surface`, three more channels saying where on the body each pixel lies
    (vid2vid.body_surface); with `subpixel`, lines end at 1/16 px, not whole pixels."""

    name: str = "pose"
    keypoints: bool = True              # the dataset has pose/NNNNNN.json
    stored: tuple[Stored, ...] = ()
    n_drop: int = len(BODY_LIMBS) + 3   # limbs, both hands and the face can be left out
    part: str | None = "face"           # what the part discriminator crops
    # How a run draws its maps, not what the data are: datasets of any width train together.
    limb_width: float = field(default=LIMB_WIDTH, compare=False)
    surface: bool = field(default=False, compare=False)
    subpixel: bool = field(default=False, compare=False)

    @property
    def channels(self) -> int:
        return 3 + (SURFACE_CHANNELS if self.surface else 0)

    def maps(self, kp: np.ndarray, stored: dict[str, np.ndarray], size: tuple[int, int],
             drop: np.ndarray | None = None) -> np.ndarray:
        """`[137, 3]` keypoints in model pixels -> `[H, W, C]` float32 in [0, 1]; size (H, W)."""
        pose = Pose(body=kp[:25], face=kp[25:95], left_hand=kp[95:116], right_hand=kp[116:137])
        skeleton = render_pose(pose, (size[1], size[0]), drop=drop,
                               limb_width=self.limb_width,
                               subpixel=self.subpixel).astype(np.float32) / 255.0
        if not self.surface:
            return skeleton
        return np.concatenate([skeleton, render_surface(kp[:25], size, drop)], axis=-1)

    def part_boxes(self, kp: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        return _person_face_boxes(kp, size)

    def picture(self, maps: Tensor) -> Tensor:
        """Maps [N, C, H, W] -> what a person looks at, RGB [N, 3, H, W] in [0, 1]: the
        skeleton (the surface channels are not shown)."""
        return maps[:, :3]

    @property
    def model_defaults(self) -> dict:
        """A skeleton says nothing of the background behind the person: G gets the
        videos' still background (RESULTS.md, fourth ablation: SSIM +0.04 on dancer.avi,
        +0.12 on the synthetic dancer's textured room), and draws h_bg over it from the
        first step (sixth ablation: SSIM +0.055 and background +3 dB on the textured
        room, dancer.avi within the spread), with the plate's hidden pixels filled from
        the background around them, not the body's colours (plate_inpaint: the demo
        +0.15 to +0.63 dB in three seeds, pianist.avi +0.6 dB in two, dancer.avi within
        the spread; RESULTS.md, thirty-first ablation)."""
        return {"background_plate": True, "plate_base": True, "plate_inpaint": True}

    def to_dict(self) -> dict:
        return {"name": self.name, "limb_width": self.limb_width,
                **({"surface": True} if self.surface else {}),
                **({"subpixel": True} if self.subpixel else {})}


@dataclass(frozen=True)
class FaceTask:
    """Talking heads (vid2vid's edge2face): channel 0 the face sketch drawn from the
    landmarks, channel 1 the Canny edges of everything outside the face, as stored by
    preprocessing. The sketch is drawn here, not stored, so transfer can draw a
    driver's landmarks aligned to the target's face into the same channel."""

    name: str = "face"
    channels: int = 2
    keypoints: bool = True
    stored: tuple[Stored, ...] = (Stored("edges", cv2.INTER_AREA),)
    n_drop: int = 0
    part: str | None = "mouth"

    def maps(self, kp: np.ndarray, stored: dict[str, np.ndarray], size: tuple[int, int],
             drop: np.ndarray | None = None) -> np.ndarray:
        h, w = size
        out = np.zeros((h, w, 2), np.float32)
        sketch = np.zeros((h, w), np.uint8)
        draw_face_sketch(sketch, kp[25:95], stroke_width(h, 1 / 256), color=255)
        out[..., 0] = sketch / 255.0
        out[..., 1] = stored["edges"] / 255.0
        return out

    def part_boxes(self, kp: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        return _mouth_boxes(kp, size)

    def picture(self, maps: Tensor) -> Tensor:
        """The sketch in white over the background edges in blue-grey."""
        sketch, edges = maps[:, :1], maps[:, 1:2]
        tint = torch.tensor([0.45, 0.55, 0.8], device=maps.device).view(1, 3, 1, 1)
        return torch.maximum(sketch.expand(-1, 3, -1, -1), edges * tint)

    @property
    def model_defaults(self) -> dict:
        """None: the edge channel already draws the background, and the plate (the
        median head) measured worse on talk.mp4 (RESULTS.md, fifth ablation)."""
        return {}

    def to_dict(self) -> dict:
        return {"name": self.name}


@dataclass(frozen=True)
class LabelTask:
    """Scenes (label-to-scene): one channel per class (one-hot) plus the instance
    boundaries (where instances touch, e.g. two cars, which the labels alone merge);
    without instance maps the class boundaries stand in."""

    num_classes: int = CITYSCAPES_NUM_CLASSES
    fg_classes: tuple[int, ...] = CITYSCAPES_FG_CLASSES
    instances: bool = True
    name: str = "labels"
    keypoints: bool = False
    n_drop: int = 0
    part: str | None = None
    stored: tuple[Stored, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "stored", (
            Stored("labels", cv2.INTER_NEAREST),
            Stored("instances", cv2.INTER_NEAREST, optional=not self.instances)))

    @property
    def channels(self) -> int:
        return self.num_classes + 1

    def maps(self, kp: np.ndarray, stored: dict[str, np.ndarray], size: tuple[int, int],
             drop: np.ndarray | None = None) -> np.ndarray:
        labels = stored["labels"]
        ids = stored.get("instances")
        return np.concatenate([one_hot(labels, self.num_classes),
                               instance_boundary(labels if ids is None else ids)[..., None]],
                              axis=-1)

    def part_boxes(self, kp: Tensor, size: tuple[int, int]) -> None:
        return None

    def picture(self, maps: Tensor) -> Tensor:
        """Classes in the Cityscapes colours, instance boundaries in white."""
        palette = torch.from_numpy(class_colors(self.num_classes)).to(maps.device)
        classes = maps[:, :self.num_classes].argmax(1)                 # [N, H, W]
        rgb = palette[classes].permute(0, 3, 1, 2).float() / 255.0
        return torch.maximum(rgb, maps[:, -1:].expand(-1, 3, -1, -1))

    @property
    def model_defaults(self) -> dict:
        """None: label maps draw the whole scene, and a street camera moves (no still
        background to give G)."""
        return {}

    def to_dict(self) -> dict:
        return {"name": self.name, "num_classes": self.num_classes,
                "fg_classes": list(self.fg_classes), "instances": self.instances}


Task = PoseTask | FaceTask | LabelTask

# Cityscapes' published colours by label ID (0-33), so previews read like its figures.
_CITYSCAPES_COLORS = {
    5: (111, 74, 0), 6: (81, 0, 81), 7: (128, 64, 128), 8: (244, 35, 232),
    9: (250, 170, 160), 10: (230, 150, 140), 11: (70, 70, 70), 12: (102, 102, 156),
    13: (190, 153, 153), 14: (180, 165, 180), 15: (150, 100, 100), 16: (150, 120, 90),
    17: (153, 153, 153), 18: (153, 153, 153), 19: (250, 170, 30), 20: (220, 220, 0),
    21: (107, 142, 35), 22: (152, 251, 152), 23: (70, 130, 180), 24: (220, 20, 60),
    25: (255, 0, 0), 26: (0, 0, 142), 27: (0, 0, 70), 28: (0, 60, 100), 29: (0, 0, 90),
    30: (0, 0, 110), 31: (0, 80, 100), 32: (0, 0, 230), 33: (119, 11, 32),
}


def class_colors(num_classes: int) -> np.ndarray:
    """[num_classes, 3] uint8: Cityscapes' colours, fixed pseudo-random ones beyond them."""
    rng = np.random.default_rng(1234)
    colors = rng.integers(40, 256, (max(num_classes, 34), 3)).astype(np.uint8)
    colors[:5] = 0
    for k, c in _CITYSCAPES_COLORS.items():
        colors[k] = c
    return colors[:num_classes]


def task_from_dict(d: dict | str | None) -> Task:
    """A task from meta.json's / a checkpoint's record ("pose" when there is none:
    datasets and runs made before tasks existed are all bodies)."""
    if d is None:
        d = {"name": "pose"}
    if isinstance(d, str):
        d = {"name": d}
    name = d.get("name", "pose")
    if name == "pose":     # runs saved before limb_width drew 1/100, whole pixels, no surface
        return PoseTask(limb_width=float(d.get("limb_width", LIMB_WIDTH)),
                        surface=bool(d.get("surface", False)),
                        subpixel=bool(d.get("subpixel", False)))
    if name == "face":
        return FaceTask()
    if name == "labels":
        return LabelTask(int(d.get("num_classes", CITYSCAPES_NUM_CLASSES)),
                         tuple(int(c) for c in d.get("fg_classes", CITYSCAPES_FG_CLASSES)),
                         bool(d.get("instances", True)))
    raise UserError(f"unknown task {name!r}; this vid2vid knows {', '.join(TASKS)} "
                    "(upgrade vid2vid?)")


def task_of_dataset(meta: dict) -> Task:
    """The task a dataset's meta.json records."""
    name = meta.get("task", "pose")
    if name == "labels":
        labels = meta.get("labels", {})
        return task_from_dict({"name": "labels", **labels})
    return task_from_dict({"name": name})


def same_task(tasks: list[Task], names: list[str]) -> Task:
    """The one task of several datasets trained together; a clear error if they differ."""
    first = tasks[0]
    for task, name in zip(tasks[1:], names[1:]):
        if task != first:
            raise UserError(f"{name} is a {task.name!r} dataset ({task.to_dict()}) but "
                            f"{names[0]} is {first.name!r} ({first.to_dict()}); train one "
                            "task at a time (choose the datasets with --data)")
    return first
