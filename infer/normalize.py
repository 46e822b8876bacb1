"""Global pose normalisation between two people (Everybody Dance Now).

The source dancer and the target person are filmed by different cameras, at
different distances, and are not equally tall. Drawing the source's
keypoints unchanged would ask the target's generator for a body of the wrong
size in the wrong place. EDN fixes this with one affine map per frame,
`(x, y) -> (cx_t + s * (x - cx_s), a + s * (y - f))`, built from each
subject's `vid2vid.pose_stats.PoseStats`. Three references, one for both
subjects (a map between two different measures would be meaningless):

- ankles (EDN's): f is the source's lower ankle y in the current frame, the
  anchors are the ankle y at the closest and farthest positions, and the
  scale compares the subjects' heights there;
- shoulders and neck, when either subject shows its ankles in fewer than
  half of its frames (a target filmed from the waist up, a source whose
  feet leave the frame): f is the neck y, the anchors are the neck's closest
  and farthest y, and the scale is the ratio of the shoulder widths, one for
  the clip (half-body videos seldom move in depth);
- head, when either subject never shows its shoulders (a close-up of a
  talking head): f is the nose y, the scale the ratio of the head widths
  (ears apart, or twice the eyes).

With S the source's statistics (source pixels), T the target's (target
pixels), close/far/h the chosen reference's anchors and lengths:

    p     = clip((f - S.far) / (S.close - S.far), 0, 1)      where the source stands
    s     = lerp(T.h_far / S.h_far, T.h_close / S.h_close, p)   scale (ankles)
    s     = T.shoulder_width / S.shoulder_width                 scale (shoulders)
    s     = T.head_width / S.head_width                         scale (head)
    g     = min((T.close - T.far) / (S.close - S.far), max_gain * mean scale)
    a     = T.mid + g * (f - S.mid)                           where the target's anchor goes
    y'    = a + s * (y - f);   x' = cx_t + s * (x - cx_s)

So the source's closest position lands on the target's closest and its
farthest on the target's farthest, and the body there gets the target's
size. Choices, and why:

- Scaling is anchored at the current frame's anchor (EDN anchors it at the
  first frame's), so the feet land exactly on `a` and the height is exactly
  the interpolated target height, however far the source walks in depth.
- `p` is clipped for the scale only: a frame above the source's `far` (a
  jump, or a step beyond the robust far estimate) still moves the target up,
  but the scale never extrapolates past the two measured ratios (which could
  otherwise shrink a body to nothing).
- The anchor gain `g` is capped at the body scale (`max_gain=1`). This is
  EDN's "if the source's ankle range is narrower than the target's, shrink the
  target range to the source's span around the target's midpoint", stated
  so that it holds across frame sizes and body sizes: a source that dances on
  the spot (its close-far range is a few pixels of foot lifting) must not
  swing the target across its whole training range. With `max_gain=inf` the
  close and far positions always map to the target's exactly.
- Horizontal placement: x relative to the frame's centre column, scaled by
  `s`, placed about the target frame's centre column (EDN's choice). It keeps
  the source's own travel to the left and right, scaled with the body, and
  needs no horizontal statistic (PoseStats has none). A target filmed far off
  centre will be drawn nearer the centre than in its training frames.
- The body's anchor (the lower ankle, or the neck; the body's mean x when the
  anchor is missing) is kept inside the target frame by shifting the whole
  pose: a landscape source dancing to the edge of its frame would otherwise
  leave a portrait target's frame, and the generator would draw no one.
- Different frame sizes need no other special case: each subject's statistics
  are in its own pixels, so `s` and `g` already convert source pixels to target
  pixels, and each frame's centre column is its own. (The same video at half
  the resolution maps onto the full-size one.)
- Pixel centres sit at integer coordinates, so a frame's centre column is
  `(w - 1) / 2`.
- A frame without a visible anchor reuses the last anchor y seen (EDN reuses
  the last transform); before any, the source's mid anchor position `S.mid`.

The same map is applied to body, face and hands; missing points (confidence
0) stay `(0, 0, 0)`. Limbs far from the anchor may still leave the target
frame (legs below a waist-up target); rendering clips them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Literal

import numpy as np

from vid2vid.dataset_dir import frame_path, load_dataset
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose, read_openpose_json
from vid2vid.pose_stats import PoseStats, PoseStatsAccumulator, head_point, neck_point

__all__ = ["PoseNormalizer", "Reference", "choose_reference", "ankle_y", "stats_from_poses",
           "dataset_pose_stats"]

Reference = Literal["ankles", "shoulders", "head"]
REFERENCE_NAMES = {"ankles": "ankles and height", "shoulders": "shoulders and neck",
                   "head": "head position and width"}

_EPS = 1e-6


def _lower_ankle(pose: Pose) -> tuple[float, float] | None:
    b = pose.body
    ankles = [b[BODY[k], :2] for k in ("RAnkle", "LAnkle") if b[BODY[k], 2] > 0]
    if not ankles:
        return None
    x, y = max(ankles, key=lambda a: a[1])
    return float(x), float(y)


def ankle_y(pose: Pose | None) -> float | None:
    """The source ankle position f of one frame: the larger y of the present ankles."""
    ankle = None if pose is None else _lower_ankle(pose)
    return None if ankle is None else ankle[1]


def choose_reference(source: PoseStats, target: PoseStats) -> tuple[Reference, str]:
    """(reference, why) for a pair: ankles unless either subject mostly lacks them, then
    the shoulders unless either never shows them, then the head (a close-up).

    UserError when not even the head is seen in one of them.
    """
    subjects = (("the source", source), ("the target", target))
    reasons = [f"{name} shows no ankles" if not s.frames else
               f"{name} shows its ankles in only {s.frames} of {s.persons} frames"
               for name, s in subjects if not s.mostly_ankles]
    if not reasons:
        return "ankles", "source and target show their ankles"
    if all(s.has_upper for _, s in subjects):
        return "shoulders", "; ".join(reasons)
    reasons += [f"{name} shows no shoulders" for name, s in subjects if not s.has_upper]
    for name, s in subjects:
        if not s.has_head:
            raise UserError(f"{'; '.join(reasons)}, and {name} never shows its face well "
                            "enough to measure, so poses cannot be normalised; pass "
                            "--no-normalize")
    return "head", "; ".join(reasons)


def _check_stats(stats: PoseStats, name: str, reference: Reference) -> None:
    if reference == "ankles":
        values = (stats.ankle_close, stats.ankle_far, stats.height_close, stats.height_far)
    elif reference == "shoulders":
        values = (stats.neck_close, stats.neck_far, stats.shoulder_width)
    else:
        values = (stats.head_close, stats.head_far, stats.head_width)
    if not all(v is not None and math.isfinite(v) for v in values):
        raise UserError(f"pose statistics of {name} are not finite ({stats}); recompute them")
    if reference == "ankles":
        if stats.height_close <= 0 or stats.height_far <= 0:
            raise UserError(f"pose statistics of {name} have a zero height ({stats}); the "
                            "person's head and ankles were never seen apart; use a clip showing "
                            "the whole body")
        close, far = stats.ankle_close, stats.ankle_far
    elif reference == "shoulders":
        if stats.shoulder_width <= 0:
            raise UserError(f"pose statistics of {name} have a zero shoulder width ({stats}); "
                            "use a clip showing the person facing the camera")
        close, far = stats.neck_close, stats.neck_far
    else:
        if stats.head_width <= 0:
            raise UserError(f"pose statistics of {name} have a zero head width ({stats}); "
                            "use a clip showing the face towards the camera")
        close, far = stats.head_close, stats.head_far
    if close < far:
        raise UserError(f"pose statistics of {name} have close above far ({stats}); recompute them")


def _check_size(size, name: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise UserError(f"{name} frame size {size!r} is not (width, height)") from None
    if w < 1 or h < 1:
        raise UserError(f"{name} frame size {size!r} is not (width, height) in pixels")
    return w, h


class PoseNormalizer:
    """Maps source poses onto the target's size and floor positions, frame by frame.

    Args:
        source: statistics of the source clip, in source-frame pixels
            (`stats_from_poses` over the whole source clip).
        target: statistics of the target's training video, in its pixels (the
            dataset's `meta.json` "pose_stats", `dataset_pose_stats`).
        source_size: (width, height) of the source frames the poses are in.
        target_size: (width, height) of the target's frames.
        max_gain: cap on the anchor gain, in units of the mean body scale (see
            the module docstring); `math.inf` disables it.
        reference: "ankles", "shoulders" or "head"; None picks one with
            `choose_reference` (`description` says which, and why).

    Call it on each source frame in order: it remembers the last anchor seen
    for frames without one (`reset()` forgets it). Returns a new Pose in target
    pixels, or None for None.
    """

    def __init__(self, source: PoseStats, target: PoseStats, source_size: tuple[int, int],
                 target_size: tuple[int, int], max_gain: float = 1.0,
                 reference: Reference | None = None):
        if reference is None:
            reference, self.reason = choose_reference(source, target)
        elif reference in REFERENCE_NAMES:
            self.reason = "as asked"
        else:
            raise ValueError(f"reference must be one of {', '.join(REFERENCE_NAMES)}, got "
                             f"{reference!r}")
        self.reference: Reference = reference
        _check_stats(source, "the source", reference)
        _check_stats(target, "the target", reference)
        if not max_gain > 0:
            raise ValueError(f"max_gain must be positive, got {max_gain}")
        self.source, self.target = source, target
        ws, _ = _check_size(source_size, "source")
        self.target_size = _check_size(target_size, "target")
        self.source_cx = (ws - 1) / 2
        self.target_cx = (self.target_size[0] - 1) / 2
        if reference == "ankles":
            s_close, s_far = source.ankle_close, source.ankle_far
            t_close, t_far = target.ankle_close, target.ankle_far
            self.scale_close = target.height_close / source.height_close
            self.scale_far = target.height_far / source.height_far
        elif reference == "shoulders":
            s_close, s_far = source.neck_close, source.neck_far
            t_close, t_far = target.neck_close, target.neck_far
            self.scale_close = self.scale_far = target.shoulder_width / source.shoulder_width
        else:
            s_close, s_far = source.head_close, source.head_far
            t_close, t_far = target.head_close, target.head_far
            self.scale_close = self.scale_far = target.head_width / source.head_width
        self.source_far = s_far
        self.source_span = s_close - s_far
        self.source_mid = (s_close + s_far) / 2
        self.target_mid = (t_close + t_far) / 2
        cap = max_gain * (self.scale_close + self.scale_far) / 2
        if self.source_span > _EPS:
            self.gain = min((t_close - t_far) / self.source_span, cap)
        else:  # the source never moved in depth: move the target like the scaled body
            self.gain = cap
        self._last_anchor_y: float | None = None

    @property
    def description(self) -> str:
        """One line for the user: which reference, and why."""
        return f"pose normalisation: {REFERENCE_NAMES[self.reference]} ({self.reason})"

    def reset(self) -> None:
        """Forget the last anchor seen (call between unrelated clips)."""
        self._last_anchor_y = None

    def anchor(self, pose: Pose) -> tuple[float, float] | None:
        """(x, y) of the reference point of one source pose: the lower ankle, neck or nose."""
        if self.reference == "ankles":
            return _lower_ankle(pose)
        return neck_point(pose) if self.reference == "shoulders" else head_point(pose)

    def transform(self, anchor_y: float) -> tuple[float, float]:
        """(scale s, target anchor y a) for a source frame whose anchor is at y = `anchor_y`."""
        if self.source_span > _EPS:
            p = min(max((anchor_y - self.source_far) / self.source_span, 0.0), 1.0)
        else:
            p = 0.5
        scale = self.scale_far + p * (self.scale_close - self.scale_far)
        return scale, self.target_mid + self.gain * (anchor_y - self.source_mid)

    def __call__(self, pose: Pose | None) -> Pose | None:
        if pose is None:
            return None
        anchor = self.anchor(pose)
        if anchor is not None:
            ax, f = anchor
        else:
            f = self._last_anchor_y if self._last_anchor_y is not None else self.source_mid
            body = pose.body[pose.body[:, 2] > 0, 0]
            ax = float(body.mean()) if len(body) else self.source_cx
        self._last_anchor_y = f
        s, a = self.transform(f)
        # The anchor stays inside the target frame: shift the whole pose, never clip it apart.
        wt, ht = self.target_size
        tx = self.target_cx + s * (ax - self.source_cx)
        dx = min(max(tx, 0.0), wt - 1.0) - tx
        a = min(max(a, 0.0), ht - 1.0)

        def apply(points: np.ndarray) -> np.ndarray:
            out = np.zeros_like(points, dtype=np.float32)
            present = points[:, 2] > 0
            out[present, 0] = self.target_cx + dx + s * (points[present, 0] - self.source_cx)
            out[present, 1] = a + s * (points[present, 1] - f)
            out[present, 2] = points[present, 2]
            return out

        return pose.map(apply)


def stats_from_poses(poses: Iterable[Pose | None], name: str) -> PoseStats:
    """Statistics of a clip's poses; UserError naming `name` when nothing could be measured."""
    acc = PoseStatsAccumulator()
    for pose in poses:
        acc.add(pose)
    stats = acc.summarize()
    if stats is None:
        raise UserError(f"{name}: no frame shows the head and an ankle, the neck and both "
                        "shoulders, or the face, so poses cannot be normalised; use a clip with "
                        "the person in view or pass --no-normalize")
    return stats


def _measure_pose_folder(root: Path, meta: dict) -> PoseStats | None:
    """Statistics of a dataset's stored poses, over the frames preprocess measured."""
    if not (root / "pose").is_dir():
        return None
    interpolated = meta.get("per_frame", {}).get("interpolated") or []
    acc = PoseStatsAccumulator()
    for k in range(int(meta.get("frames") or 0)):
        path = frame_path(root, "pose", k)
        # Preprocess measures detected frames only, not the ones it interpolated.
        if path.exists() and not (k < len(interpolated) and interpolated[k]):
            acc.add(read_openpose_json(path))
    return acc.summarize()


def _stats_from_dict(stats, root: Path) -> PoseStats:
    try:
        return PoseStats.from_dict(stats)
    except TypeError:
        raise UserError(f"{root / 'meta.json'} has malformed pose_stats; run vid2vid "
                        "preprocess again with --overwrite") from None


def dataset_pose_stats(root: str | Path) -> PoseStats:
    """The target statistics of a dataset (written by `vid2vid preprocess`).

    Read from meta.json "pose_stats" when it holds the upper-body statistics;
    for datasets preprocessed before them (ankle statistics only, or null
    when no ankle was seen) measured from the stored poses in pose/.
    """
    root = Path(root)
    meta = load_dataset(root)
    stored = meta.get("pose_stats")
    if isinstance(stored, dict) and "head_width" in stored:   # every reference measured
        return _stats_from_dict(stored, root)
    measured = _measure_pose_folder(root, meta)
    if measured is not None:
        return measured
    if stored:
        return _stats_from_dict(stored, root)
    raise UserError(f"{root / 'meta.json'} has no pose_stats and no frame in {root / 'pose'} "
                    "shows the head and an ankle, the neck and both shoulders, or the face; "
                    "pass --no-normalize or preprocess a video showing the person")
