"""Per-subject pose statistics for global pose normalisation (Everybody Dance Now).

To map one person's motion onto another, EDN scales and shifts poses by
comparing where each subject's feet are in the image and how tall they
appear there. Half-body videos (a talking head, a creator filmed from the
waist up) never show the feet, so an upper-body reference is measured as
well, and `infer.normalize` picks one of the two for both subjects.

For each frame with a visible person we measure

- ankle: the larger (lower in the image) y of the two ankles;
- height: the distance from the nose (or the ears' midpoint) to the ankles' midpoint;
- neck: the y of the neck (or of the shoulders' midpoint);
- shoulder width: the distance between the two shoulders;
- head: the y of the nose (or of the eyes' midpoint), and the head width: the
  distance between the ears (or twice the distance between the eyes), for
  close-ups that show neither feet nor shoulders (a talking head);

and summarise a whole video as

- close: the largest ankle y (the subject nearest the camera), after dropping
  rare high outliers (`robust_max`): one bad detection must not set it;
- far: `median - median_frac * (close - median)`, not above the smallest ankle y
  kept (the subject's farthest position, robust to a few outliers);
- height_close / height_far: the tallest height among frames whose ankle lies
  within `window * (close - far)` of close / far (or the nearest frames, when
  none is that near). A close height more than 10 %
  below the tallest overall is replaced by the tallest (a crouch near the
  camera must not set the scale);
- neck_close / neck_far: close and far as above, of the neck y;
- head_close / head_far, head_width: the same for the head's y and width;
- shoulder_width: the largest shoulder width, after dropping high outliers.
  Turning sideways only ever narrows the shoulders, so the largest is the
  frontal width; one scale for the whole clip, because half-body videos
  seldom move in depth and the neck's y says little about depth;
- frames / upper_frames / persons: how many frames gave the ankle measures,
  the upper-body measures, and had a person at all (so a reader can tell
  "ankles in most frames" from "ankles in a few").

The transform that uses these lives in `infer/` (transfer); the statistics are
computed here because preprocessing stores the target's in meta.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from vid2vid.pose import BODY, Pose

# Ankles must be seen in at least this share of a subject's frames for the ankle reference.
ANKLE_MAJORITY = 0.5
_MAD_K = 3.5         # outlier threshold, in robust standard deviations (Iglewicz and Hoaglin)
_MAD_SIGMA = 1.4826  # MAD -> standard deviation of a normal distribution
_OUTLIER_SHARE = 0.02  # at most this share of a clip's frames can be bad detections


@dataclass(frozen=True)
class PoseStats:
    """One subject's statistics, in its frame's pixels (see the module docstring).

    `ankle_*` and `height_*` are None when no frame showed the head and an
    ankle, `neck_*` and `shoulder_width` when none showed the neck and both
    shoulders. `persons` is None in statistics written before it was counted
    (meta.json of older datasets): such statistics hold the ankle ones only.
    """

    ankle_close: float | None
    ankle_far: float | None
    height_close: float | None
    height_far: float | None
    frames: int                 # frames with the head and an ankle
    median_frac: float
    window: float
    persons: int | None = None  # frames with a person
    neck_close: float | None = None
    neck_far: float | None = None
    shoulder_width: float | None = None
    upper_frames: int = 0       # frames with the neck and both shoulders
    head_close: float | None = None
    head_far: float | None = None
    head_width: float | None = None
    head_frames: int = 0        # frames with the nose (or eyes) and a head width

    @property
    def has_upper(self) -> bool:
        return self.neck_close is not None and self.shoulder_width is not None

    @property
    def has_head(self) -> bool:
        return self.head_close is not None and self.head_width is not None

    @property
    def mostly_ankles(self) -> bool:
        """Ankles were seen in most frames with a person (assumed for old statistics)."""
        if self.ankle_close is None:
            return False
        return self.persons is None or self.frames >= ANKLE_MAJORITY * self.persons

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "PoseStats":
        """Reads `to_dict` output, and the older dicts without the upper-body keys."""
        return PoseStats(**d)


def robust_max(x: np.ndarray) -> tuple[float, np.ndarray]:
    """(largest value, mask of the values kept) after dropping rare high outliers.

    A value is an outlier when it lies more than 3.5 robust standard
    deviations (1.4826 x the median absolute deviation) above the median and
    such values are rare (at most 2 % of the frames, or one frame): a bad
    detection is an isolated event, while many frames beyond the threshold
    are a real position (a subject that stands still, then steps closer for
    a while) and are kept. Why not a high percentile: on a clean clip this is
    exactly the maximum (the closest position really reached), while a
    percentile pulls it in on every clip and still moves with one outlier when
    the clip is short. When more than half the values are equal (MAD 0) the
    mean absolute deviation stands in, so a still subject keeps its few real
    steps.
    """
    med = float(np.median(x))
    dev = np.abs(x - med)
    spread = float(np.median(dev)) or float(dev.mean())
    high = x > med + _MAD_K * _MAD_SIGMA * spread
    if high.sum() > max(1.0, _OUTLIER_SHARE * len(x)):
        high[:] = False
    keep = ~high
    return float(x[keep].max()), keep


def ankle_and_height(pose: Pose | None) -> tuple[float, float] | None:
    """(ankle y, height) of one pose, or None when ankles or head are missing."""
    if pose is None:
        return None
    b = pose.body
    ankles = [b[BODY[k]] for k in ("RAnkle", "LAnkle") if b[BODY[k], 2] > 0]
    if not ankles:
        return None
    if b[BODY["Nose"], 2] > 0:
        head = b[BODY["Nose"], :2]
    elif b[BODY["REar"], 2] > 0 and b[BODY["LEar"], 2] > 0:
        head = (b[BODY["REar"], :2] + b[BODY["LEar"], :2]) / 2
    else:
        return None
    ankle_mid = np.mean([a[:2] for a in ankles], axis=0)
    return float(max(a[1] for a in ankles)), float(np.linalg.norm(head - ankle_mid))


def _point_or_midpoint(pose: Pose | None, point: str, pair: tuple[str, str]
                       ) -> tuple[float, float] | None:
    """(x, y) of body point `point`, or of the midpoint of `pair` without it; None without
    either."""
    if pose is None:
        return None
    b = pose.body
    if b[BODY[point], 2] > 0:
        return float(b[BODY[point], 0]), float(b[BODY[point], 1])
    r, l = b[BODY[pair[0]]], b[BODY[pair[1]]]
    if r[2] > 0 and l[2] > 0:
        return float(r[0] + l[0]) / 2, float(r[1] + l[1]) / 2
    return None


def neck_point(pose: Pose | None) -> tuple[float, float] | None:
    """(x, y) of the neck, or of the shoulders' midpoint without one; None without either."""
    return _point_or_midpoint(pose, "Neck", ("RShoulder", "LShoulder"))


def neck_and_width(pose: Pose | None) -> tuple[float, float] | None:
    """(neck y, shoulder width) of one pose, or None when a shoulder is missing."""
    if pose is None:
        return None
    b = pose.body
    r, l = b[BODY["RShoulder"]], b[BODY["LShoulder"]]
    if r[2] <= 0 or l[2] <= 0:
        return None
    return neck_point(pose)[1], float(np.linalg.norm(r[:2] - l[:2]))


def head_and_width(pose: Pose | None) -> tuple[float, float] | None:
    """(head y, head width) of one pose: nose (or eyes' midpoint) y, and the ears' distance
    (or twice the eyes'); None when the head is not seen well enough."""
    point = head_point(pose)
    if point is None:
        return None
    b = pose.body
    ears = [b[BODY[k]] for k in ("REar", "LEar")]
    eyes = [b[BODY[k]] for k in ("REye", "LEye")]
    if ears[0][2] > 0 and ears[1][2] > 0:
        width = float(np.linalg.norm(ears[0][:2] - ears[1][:2]))
    elif eyes[0][2] > 0 and eyes[1][2] > 0:
        width = 2.0 * float(np.linalg.norm(eyes[0][:2] - eyes[1][:2]))  # ears ~ 2x eyes apart
    else:
        return None
    return point[1], width


def head_point(pose: Pose | None) -> tuple[float, float] | None:
    """(x, y) of the nose, or of the eyes' midpoint without one; None without either."""
    return _point_or_midpoint(pose, "Nose", ("REye", "LEye"))


def _close_far(anchor: np.ndarray, median_frac: float) -> tuple[float, float, np.ndarray]:
    """(close, far, mask of the frames kept) of one anchor's y over a clip."""
    close, keep = robust_max(anchor)
    kept = anchor[keep]
    median = float(np.median(kept))
    far = max(float(kept.min()), median - median_frac * (close - median))
    return close, far, keep


class PoseStatsAccumulator:
    """Collects six floats a frame (ankle, height, neck, shoulder width, head, head width),
    so memory stays small."""

    def __init__(self):
        self._values: list[tuple[float, ...]] = []
        self._persons = 0

    def add(self, pose: Pose | None) -> None:
        if pose is None or not pose.found:
            return
        self._persons += 1
        ah = ankle_and_height(pose) or (np.nan, np.nan)
        nw = neck_and_width(pose) or (np.nan, np.nan)
        hw = head_and_width(pose) or (np.nan, np.nan)
        if not (np.isnan(ah[0]) and np.isnan(nw[0]) and np.isnan(hw[0])):
            self._values.append((*ah, *nw, *hw))

    def summarize(self, median_frac: float = 0.5, window: float = 0.05) -> PoseStats | None:
        """The statistics above; None when no frame had head and ankles, neck and shoulders,
        nor a head with its width."""
        if not self._values:
            return None
        v = np.asarray(self._values, np.float64)
        with_ankles, with_upper = ~np.isnan(v[:, 0]), ~np.isnan(v[:, 2])
        ankle_stats: tuple = (None, None, None, None)
        if with_ankles.any():
            ankle_stats = self._ankle_stats(v[with_ankles, 0], v[with_ankles, 1], median_frac,
                                            window)
        neck_close = neck_far = width = None
        if with_upper.any():
            neck_close, neck_far, _ = _close_far(v[with_upper, 2], median_frac)
            width, _ = robust_max(v[with_upper, 3])
        with_head = ~np.isnan(v[:, 4])
        head_close = head_far = head_width = None
        if with_head.any():
            head_close, head_far, _ = _close_far(v[with_head, 4], median_frac)
            head_width, _ = robust_max(v[with_head, 5])
        return PoseStats(*ankle_stats, int(with_ankles.sum()), median_frac, window,
                         persons=self._persons, neck_close=neck_close, neck_far=neck_far,
                         shoulder_width=width, upper_frames=int(with_upper.sum()),
                         head_close=head_close, head_far=head_far, head_width=head_width,
                         head_frames=int(with_head.sum()))

    @staticmethod
    def _ankle_stats(ankle: np.ndarray, height: np.ndarray, median_frac: float, window: float
                     ) -> tuple[float, float, float, float]:
        close, far, keep = _close_far(ankle, median_frac)
        ankle, height = ankle[keep], height[keep]    # an outlier ankle is a bad detection
        span = max(close - far, 1e-6)
        near_close = np.abs(ankle - close) <= window * span
        # No frame may sit right at `far` (it is interpolated): then take the nearest ones.
        dist_far = np.abs(ankle - far)
        near_far = dist_far <= max(window * span, dist_far.min())
        tallest = float(height.max())
        h_close = float(height[near_close].max())
        if h_close < 0.9 * tallest:
            h_close = tallest
        h_far = float(height[near_far].max())
        return close, far, h_close, h_far
