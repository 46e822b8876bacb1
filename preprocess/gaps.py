"""Filling short runs of frames where no person was found, while streaming.

A run of at most `max_gap` frames without a person, between two frames with
one, is filled by linear interpolation of each keypoint present at both ends
(confidence: the smaller of the two) and flagged `interpolated`. Longer runs,
and runs at the start or end of the video, stay empty and are flagged as
missing so training never uses them as targets. Only the open run is held
(at most `max_gap` poses), so memory stays flat.
"""

from __future__ import annotations

from typing import Iterator, Literal

import numpy as np

from vid2vid.pose import Pose

Status = Literal["found", "interpolated", "missing"]


def interpolate(a: Pose, b: Pose, t: float) -> Pose:
    """The pose a fraction `t` of the way from `a` to `b`."""
    parts = {}
    for name, pa in a.parts().items():
        pb = getattr(b, name)
        both = (pa[:, 2] > 0) & (pb[:, 2] > 0)
        out = np.zeros_like(pa)
        out[both, :2] = (1 - t) * pa[both, :2] + t * pb[both, :2]
        out[both, 2] = np.minimum(pa[both, 2], pb[both, 2])
        parts[name] = out
    return Pose(**parts)


class GapFiller:
    """Push poses in frame order; get back (index, pose, status) once each is decided."""

    def __init__(self, max_gap: int):
        self.max_gap = max_gap
        self.last: Pose | None = None
        self.last_index = -1
        self.pending: list[int] = []

    def push(self, index: int, pose: Pose | None) -> Iterator[tuple[int, Pose | None, Status]]:
        if pose is None or not pose.found:
            self.pending.append(index)
            if len(self.pending) > self.max_gap:
                yield from self._flush_missing()
            return
        if self.pending and self.last is not None and len(self.pending) <= self.max_gap:
            span = index - self.last_index
            for j in self.pending:
                yield j, interpolate(self.last, pose, (j - self.last_index) / span), "interpolated"
            self.pending = []
        else:
            yield from self._flush_missing()
        self.last, self.last_index = pose, index
        yield index, pose, "found"

    def finish(self) -> Iterator[tuple[int, Pose | None, Status]]:
        yield from self._flush_missing()

    def _flush_missing(self) -> Iterator[tuple[int, Pose | None, Status]]:
        for j in self.pending:
            yield j, None, "missing"
        self.pending = []
        # A frame after a long run must not be interpolated back to the pose before it.
        self.last = None
