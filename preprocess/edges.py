"""Edge maps: Canny edges of the frame plus the face sketch (vid2vid's edge2face input)."""

from __future__ import annotations

import cv2
import numpy as np

from vid2vid.pose import Pose
from vid2vid.render import draw_face_sketch, stroke_width

CANNY_LOW, CANNY_HIGH = 50, 150


def edge_map(gray: np.ndarray, pose: Pose | None) -> np.ndarray:
    """uint8 `[H, W]`: 255 on Canny edges of `gray` and on the face contours of `pose`."""
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), CANNY_LOW, CANNY_HIGH)
    if pose is not None and (pose.face[:, 2] > 0).any():
        draw_face_sketch(edges, pose.face, stroke_width(gray.shape[0], 1 / 400), color=255)
    return edges
