"""Conversion of mediapipe landmarks to OpenPose's keypoint layouts.

Inputs are plain arrays (so the maths is testable without mediapipe):
normalised landmarks `[N, 2+]` with x, y in [0, 1] of the image, and for the
body a visibility column. Outputs are `[N, 3]` (x, y, confidence) in pixels,
confidence 0 (and x = y = 0) for points that are missing, not visible enough,
or outside the frame -- OpenPose never reports a point outside the image.

Body (33 BlazePose points -> BODY_25):
    Nose 0, REye 5, LEye 2, REar 8, LEar 7, shoulders 12/11, elbows 14/13,
    wrists 16/15, hips 24/23, knees 26/25, ankles 28/27, heels 30/29,
    Neck = midpoint of the shoulders, MidHip = midpoint of the hips (their
    confidence the smaller of the two), big toe = foot index point (31/32).
    BlazePose has a single toe point, so the small toe repeats it.
    "Left" and "right" are the person's own, as in both layouts.

Face (468/478-point face mesh -> 70): `MESH_TO_DLIB68` below picks, for each
of the 68 points of dlib's iBUG layout, the mesh vertex at the same
anatomical place (jaw line from the right temple over the chin to the left,
brows outer to inner, nose bridge down to the tip, nostril base, eye corners
and lids, outer and inner lips). Points 68/69 are the right/left pupil: the
iris centres 468/473 of the refined mesh, or the mean of each eye's six
points when the mesh has no irises.

Hands: mediapipe's 21 hand landmarks are already in OpenPose's order. Where
the hand model misses a hand (gloves, blur, small hands), `coarse_hand` can
stand in from the body model's own hand points (BlazePose 15-22: wrist, little
and index finger knuckles, thumb): hand points 0, 17, 5 and 2, with point 1
halfway from the wrist to the thumb, so the map draws three strokes from the
wrist (thumb, index, little finger) that say where the hand points.
Likewise `face70_from_body` stands in for a missed face mesh (a small, turned or
covered face: a quarter of dancer.avi's frames, and those with an arm over the
head) from the body model's face points (BlazePose 0-10): a stroke through
each eye (corner to corner; its centre is the pupil), the nose bridge from between the eyes to the
tip, and the mouth from corner to corner; no jaw or brows.
"""

from __future__ import annotations

import numpy as np

from vid2vid.pose import Pose

# Body points below this visibility are treated as not detected.
VISIBILITY_MIN = 0.3

# BODY_25 index -> BlazePose index; -1 marks the two midpoints computed below.
_BODY25_FROM_BLAZEPOSE = np.array([
    0,   # Nose
    -1,  # Neck
    12, 14, 16,  # RShoulder, RElbow, RWrist
    11, 13, 15,  # LShoulder, LElbow, LWrist
    -1,  # MidHip
    24, 26, 28,  # RHip, RKnee, RAnkle
    23, 25, 27,  # LHip, LKnee, LAnkle
    5, 2, 8, 7,  # REye, LEye, REar, LEar
    31, 31, 29,  # LBigToe, LSmallToe, LHeel
    32, 32, 30,  # RBigToe, RSmallToe, RHeel
])

MESH_TO_DLIB68 = np.array([
    # jaw 0-16: right temple -> chin (8) -> left temple
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30 (top -> tip), nostril base 31-35 (right -> left)
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # right eye 36-41: outer corner, upper lid x2, inner corner, lower lid x2
    33, 160, 158, 133, 153, 144,
    # left eye 42-47: inner corner, upper lid x2, outer corner, lower lid x2
    362, 385, 387, 263, 373, 380,
    # outer lips 48-59: right corner, upper lip to left corner, lower lip back
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # inner lips 60-67: right corner, upper, left corner, lower
    78, 81, 13, 311, 308, 402, 14, 178,
])
_IRIS_CENTERS = (468, 473)  # right, left (the person's own)


def _to_pixels(xy: np.ndarray, conf: np.ndarray, width: int, height: int) -> np.ndarray:
    out = np.zeros((len(xy), 3), np.float32)
    px = xy[:, 0] * width
    py = xy[:, 1] * height
    inside = (px >= 0) & (px <= width - 1) & (py >= 0) & (py <= height - 1) & (conf > 0)
    out[inside, 0] = px[inside]
    out[inside, 1] = py[inside]
    out[inside, 2] = conf[inside]
    return out


def body25_from_blazepose(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """`[33, 3]` (x, y, visibility), normalised -> BODY_25 `[25, 3]` in pixels."""
    if landmarks.shape != (33, 3):
        raise ValueError(f"expected [33, 3] BlazePose landmarks, got {landmarks.shape}")
    vis = np.where(landmarks[:, 2] >= VISIBILITY_MIN, landmarks[:, 2], 0.0)
    src = np.where(_BODY25_FROM_BLAZEPOSE < 0, 0, _BODY25_FROM_BLAZEPOSE)
    xy = landmarks[src, :2].copy()
    conf = vis[src].copy()
    for dst, (a, b) in ((1, (11, 12)), (8, (23, 24))):
        xy[dst] = (landmarks[a, :2] + landmarks[b, :2]) / 2
        conf[dst] = min(vis[a], vis[b])
    return _to_pixels(xy, conf, width, height)


def face70_from_mesh(mesh: np.ndarray, width: int, height: int) -> np.ndarray:
    """Face mesh `[468 or 478, 2+]`, normalised -> OpenPose face `[70, 3]` in pixels."""
    if mesh.ndim != 2 or mesh.shape[0] not in (468, 478):
        raise ValueError(f"expected a [468|478, 2+] face mesh, got {mesh.shape}")
    xy = np.zeros((70, 2), np.float32)
    xy[:68] = mesh[MESH_TO_DLIB68, :2]
    if mesh.shape[0] == 478:
        xy[68] = mesh[_IRIS_CENTERS[0], :2]
        xy[69] = mesh[_IRIS_CENTERS[1], :2]
    else:
        xy[68] = xy[36:42].mean(0)
        xy[69] = xy[42:48].mean(0)
    return _to_pixels(xy, np.ones(70, np.float32), width, height)


def hand21(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Hand `[21, 2+]`, normalised -> OpenPose hand `[21, 3]` in pixels."""
    if landmarks.shape[0] != 21:
        raise ValueError(f"expected [21, 2+] hand landmarks, got {landmarks.shape}")
    return _to_pixels(landmarks[:, :2], np.ones(21, np.float32), width, height)


# BlazePose (wrist, little finger, index finger, thumb) for the person's left and right hand.
_BLAZEPOSE_HAND = {"left": (15, 17, 19, 21), "right": (16, 18, 20, 22)}


def coarse_hand(body33: np.ndarray, side: str, width: int, height: int) -> np.ndarray | None:
    """The body model's hand points as a `[21, 3]` OpenPose hand (points 0, 1, 2, 5, 17);
    None when the wrist is not visible."""
    wrist, little, index, thumb = _BLAZEPOSE_HAND[side]
    vis = np.where(body33[:, 2] >= VISIBILITY_MIN, body33[:, 2], 0.0)
    if vis[wrist] == 0:
        return None
    xy = np.zeros((21, 2), np.float32)
    conf = np.zeros(21, np.float32)
    for dst, src in ((0, wrist), (2, thumb), (5, index), (17, little)):
        xy[dst] = body33[src, :2]
        conf[dst] = min(vis[src], vis[wrist])
    xy[1] = (body33[wrist, :2] + body33[thumb, :2]) / 2
    conf[1] = conf[2]
    return _to_pixels(xy, conf, width, height)


# Face-70 point -> the BlazePose points it is the mean of.
_FACE_FROM_BLAZEPOSE = {
    36: (6,), 39: (4,), 68: (5,), 42: (1,), 45: (3,), 69: (2,),    # eye corners; centres: pupils
    27: (1, 4), 30: (0,), 48: (10,), 54: (9,), 60: (10,), 64: (9,),  # bridge top, tip; mouth
}
# Face-70 point -> (a, b, f): a fraction f of the way from face point a to b.
_FACE_BETWEEN = {37: (36, 39, 0.5), 38: (36, 39, 0.5), 40: (36, 39, 0.5), 41: (36, 39, 0.5),
                 43: (42, 45, 0.5), 44: (42, 45, 0.5), 46: (42, 45, 0.5), 47: (42, 45, 0.5),
                 28: (27, 30, 1 / 3), 29: (27, 30, 2 / 3),
                 **{k: (48, 54, (k - 48) / 6) for k in (49, 50, 51, 52, 53)},
                 **{k: (54, 48, (k - 54) / 6) for k in (55, 56, 57, 58, 59)},
                 **{k: (60, 64, (k - 60) / 4) for k in (61, 62, 63)},
                 **{k: (64, 60, (k - 64) / 4) for k in (65, 66, 67)}}


def face70_from_body(body33: np.ndarray, width: int, height: int) -> np.ndarray | None:
    """The body model's face points as a `[70, 3]` OpenPose face (a stroke through each eye,
    the nose bridge, the mouth); None unless the nose and both eye centres are visible."""
    vis = np.where(body33[:, 2] >= VISIBILITY_MIN, body33[:, 2], 0.0)
    if min(vis[0], vis[2], vis[5]) == 0:
        return None
    xy = np.zeros((70, 2), np.float32)
    conf = np.zeros(70, np.float32)
    for dst, src in _FACE_FROM_BLAZEPOSE.items():
        xy[dst], conf[dst] = body33[list(src), :2].mean(0), vis[list(src)].min()
    for dst, (a, b, f) in _FACE_BETWEEN.items():
        xy[dst], conf[dst] = (1 - f) * xy[a] + f * xy[b], min(conf[a], conf[b])
    return _to_pixels(xy, conf, width, height)


def assemble_pose(body33: np.ndarray | None, face: np.ndarray | None,
                  left_hand: np.ndarray | None, right_hand: np.ndarray | None,
                  width: int, height: int, coarse_hands: bool = False,
                  coarse_face: bool = False) -> Pose | None:
    """A Pose from mediapipe Holistic's four outputs (each may be None); None if no body.

    Hands are matched to the body's wrists: when the hands found lie nearer the
    other wrist they are swapped, so a mislabelled hand cannot end up on the wrong arm.
    With `coarse_hands`, a hand the hand model missed is `coarse_hand` instead; with
    `coarse_face`, a missed face mesh is `face70_from_body`.
    """
    if body33 is None:
        return None
    pose = Pose(body=body25_from_blazepose(body33, width, height))
    if not pose.found:
        return None
    if face is not None:
        pose.face = face70_from_mesh(face, width, height)
    elif coarse_face:
        body_face = face70_from_body(body33, width, height)
        if body_face is not None:
            pose.face = body_face
    hands = {
        "left": None if left_hand is None else hand21(left_hand, width, height),
        "right": None if right_hand is None else hand21(right_hand, width, height),
    }
    wrists = {"left": body33[15, :2] * (width, height), "right": body33[16, :2] * (width, height)}
    roots = {k: None if v is None else np.array([left_hand, right_hand][k == "right"][0, :2])
             * (width, height) for k, v in hands.items()}

    def nearer_other(side: str) -> bool:
        other = "right" if side == "left" else "left"
        d_own = np.linalg.norm(roots[side] - wrists[side])
        d_other = np.linalg.norm(roots[side] - wrists[other])
        return d_other < d_own

    # Swap only when every hand found sits nearer the other wrist: hands held
    # together near one wrist say nothing about which is which.
    present = [s for s in ("left", "right") if roots[s] is not None]
    if present and all(nearer_other(s) for s in present):
        hands = {"left": hands["right"], "right": hands["left"]}
    for side in ("left", "right"):
        if hands[side] is None and coarse_hands:
            hands[side] = coarse_hand(body33, side, width, height)
    if hands["left"] is not None:
        pose.left_hand = hands["left"]
    if hands["right"] is not None:
        pose.right_hand = hands["right"]
    return pose
