"""One person's keypoints in OpenPose's layout, and OpenPose JSON files.

The dataset stores poses as OpenPose JSON so that real OpenPose output can be
dropped in place of ours. In memory a pose is a `Pose`: four float32 arrays of
`[N, 3]` rows `(x, y, confidence)` in frame pixels, where confidence 0 means
"missing" (x and y are then 0 as well, as OpenPose writes them).

Layouts (OpenPose's):
- body: BODY_25, names in `BODY_25` below;
- face: 70 points, the 68 of dlib's iBUG layout plus the right and left pupil;
- hands: 21 points each (wrist, then 4 per finger from thumb to little).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vid2vid.errors import UserError

BODY_25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
    "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
BODY = {name: i for i, name in enumerate(BODY_25)}
# Which joint each BODY_25 joint becomes in a mirror image (the person's left becomes their right).
BODY_MIRROR = tuple(BODY[{"R": "L", "L": "R"}.get(n[0], n[0]) + n[1:]] for n in BODY_25)

# Limbs drawn in the pose maps, OpenPose's BODY_25 pairs without the ear-shoulder ones.
BODY_LIMBS = (
    (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
    (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18),
    (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
)

HAND_LIMBS = tuple(
    (0 if j == 0 else 4 * f + j, 4 * f + j + 1) for f in range(5) for j in range(4)
)

# Face parts in the 68-point layout, as polylines (closed ones repeat the start).
FACE_PARTS = {
    "jaw": tuple(range(0, 17)),
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_base": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)) + (36,),
    "left_eye": tuple(range(42, 48)) + (42,),
    "outer_lips": tuple(range(48, 60)) + (48,),
    "inner_lips": tuple(range(60, 68)) + (60,),
}

SIZES = {"body": 25, "face": 70, "left_hand": 21, "right_hand": 21}
_JSON_KEYS = {
    "body": "pose_keypoints_2d",
    "face": "face_keypoints_2d",
    "left_hand": "hand_left_keypoints_2d",
    "right_hand": "hand_right_keypoints_2d",
}


def _empty(n: int) -> np.ndarray:
    return np.zeros((n, 3), np.float32)


@dataclass
class Pose:
    """One person: `[N, 3]` arrays of (x, y, confidence) in frame pixels."""

    body: np.ndarray = field(default_factory=lambda: _empty(25))
    face: np.ndarray = field(default_factory=lambda: _empty(70))
    left_hand: np.ndarray = field(default_factory=lambda: _empty(21))
    right_hand: np.ndarray = field(default_factory=lambda: _empty(21))

    def parts(self) -> dict[str, np.ndarray]:
        return {"body": self.body, "face": self.face,
                "left_hand": self.left_hand, "right_hand": self.right_hand}

    @property
    def found(self) -> bool:
        """A person counts as found when any body keypoint is present."""
        return bool((self.body[:, 2] > 0).any())

    @property
    def present(self) -> bool:
        """Anything to store: body or face keypoints (a talking head has a face only)."""
        return self.found or bool((self.face[:, 2] > 0).any())

    def map(self, fn) -> "Pose":
        """A new Pose with `fn(array)` applied to each part."""
        return Pose(**{k: np.asarray(fn(v), np.float32) for k, v in self.parts().items()})

    def scaled(self, sx: float, sy: float) -> "Pose":
        """Coordinates multiplied by (sx, sy); missing points stay at 0."""
        def scale(a: np.ndarray) -> np.ndarray:
            out = a.copy()
            out[:, 0] *= sx
            out[:, 1] *= sy
            out[a[:, 2] <= 0, :2] = 0
            return out
        return self.map(scale)

    def to_openpose(self) -> dict:
        """The `people[0]` entry of an OpenPose JSON file."""
        person = {"person_id": [-1]}
        for part, key in _JSON_KEYS.items():
            person[key] = [round(float(v), 3) for v in getattr(self, part).reshape(-1)]
        for key in ("pose_keypoints_3d", "face_keypoints_3d",
                    "hand_left_keypoints_3d", "hand_right_keypoints_3d"):
            person[key] = []
        return person

    @staticmethod
    def from_openpose(person: dict) -> "Pose":
        """Reads one `people[i]` entry; a missing part reads as all-missing.

        BODY_18 (COCO) files are refused: their joint order differs from BODY_25.
        """
        parts = {}
        for part, key in _JSON_KEYS.items():
            values = person.get(key) or []
            n = SIZES[part]
            if len(values) == 0:
                parts[part] = _empty(n)
                continue
            if len(values) != 3 * n:
                raise ValueError(f"{key} has {len(values)} values, expected {3 * n}")
            parts[part] = np.asarray(values, np.float32).reshape(n, 3)
        return Pose(**parts)


def normalized_body(pose: Pose | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(points `[25, 2]` in torso units about the torso centre, present `[25]` bool), or None.

    Position and size drop out, only the posture is left: what retrieval matches
    and `vid2vid.pose_rarity` counts. Without a neck or mid-hip there is no torso: None.
    """
    if pose is None:
        return None
    b = pose.body
    neck, hip = BODY["Neck"], BODY["MidHip"]
    if b[neck, 2] <= 0 or b[hip, 2] <= 0:
        return None
    torso = float(np.hypot(*(b[neck, :2] - b[hip, :2])))
    if torso <= 0:
        return None
    centre = (b[neck, :2] + b[hip, :2]) / 2
    present = b[:, 2] > 0
    points = np.where(present[:, None], (b[:, :2] - centre) / torso, 0.0)
    return points.astype(np.float32), present


def shared_point_distance(points_a: np.ndarray, present_a: np.ndarray, points_b: np.ndarray,
                          present_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean distance over the points present in both, how many are shared), over `[..., K, 2]`
    points and `[..., K]` present flags that broadcast; the mean is 0 where none is shared."""
    both = present_a & present_b
    shared = both.sum(-1)
    d = np.linalg.norm(points_a - points_b, axis=-1)
    return (d * both).sum(-1) / np.maximum(shared, 1), shared


def pose_area(pose: Pose) -> float:
    """Area of the bounding box of the present body keypoints, or of the face's for a
    face-only person (to pick the largest person)."""
    part = pose.body if pose.found else pose.face
    pts = part[part[:, 2] > 0, :2]
    if len(pts) < 2:
        return 0.0
    extent = pts.max(0) - pts.min(0)
    return float(extent[0] * extent[1])


def write_openpose_json(path: str | Path, pose: Pose | None) -> None:
    """Writes one frame's OpenPose JSON atomically (temp file + rename).

    `pose=None` (or one with no body or face keypoint) writes a frame with no
    people, as OpenPose does.
    """
    people = [] if pose is None or not pose.present else [pose.to_openpose()]
    data = {"version": 1.3, "people": people}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


def read_openpose_json(path: str | Path) -> Pose | None:
    """Reads an OpenPose JSON file; returns its largest person, or None if it has none.

    Raises UserError naming the file when it is not OpenPose JSON.
    """
    try:
        with open(path) as f:
            data = json.load(f)
        people = data["people"]
        poses = [Pose.from_openpose(p) for p in people]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UserError(
            f"{path} is not OpenPose JSON ({e}); expected "
            '{"people": [{"pose_keypoints_2d": [75 numbers], ...}]} in BODY_25 layout'
        ) from None
    poses = [p for p in poses if p.present]
    if not poses:
        return None
    return max(poses, key=pose_area)
