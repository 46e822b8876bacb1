import json

import numpy as np
import pytest

from preprocess.mediapipe_to_openpose import (MESH_TO_DLIB68, VISIBILITY_MIN, assemble_pose,
                                              body25_from_blazepose, coarse_hand,
                                              face70_from_body, face70_from_mesh, hand21)
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose, read_openpose_json, write_openpose_json
from vid2vid.render import render_pose


def blazepose(w=100, h=200):
    """33 landmarks at distinct places inside the frame, all visible."""
    lm = np.zeros((33, 3), np.float32)
    lm[:, 0] = np.linspace(0.1, 0.9, 33)
    lm[:, 1] = np.linspace(0.05, 0.95, 33)
    lm[:, 2] = 0.9
    return lm


def test_body25_mapping_and_midpoints():
    w, h = 100, 200
    lm = blazepose(w, h)
    body = body25_from_blazepose(lm, w, h)
    px = lambda i: (lm[i, 0] * w, lm[i, 1] * h)  # noqa: E731
    for name, mp_index in {"Nose": 0, "RShoulder": 12, "LShoulder": 11, "RWrist": 16,
                           "LWrist": 15, "RHip": 24, "LHip": 23, "RAnkle": 28, "LAnkle": 27,
                           "REye": 5, "LEye": 2, "REar": 8, "LEar": 7, "LHeel": 29,
                           "RHeel": 30, "LBigToe": 31, "RBigToe": 32, "LSmallToe": 31}.items():
        assert body[BODY[name], :2] == pytest.approx(px(mp_index), abs=1e-3), name
    neck = np.mean([px(11), px(12)], axis=0)
    midhip = np.mean([px(23), px(24)], axis=0)
    assert body[BODY["Neck"], :2] == pytest.approx(neck, abs=1e-3)
    assert body[BODY["MidHip"], :2] == pytest.approx(midhip, abs=1e-3)
    assert (body[:, 2] == pytest.approx(0.9))


def test_body25_drops_invisible_and_outside_points():
    lm = blazepose()
    lm[0, 2] = VISIBILITY_MIN / 2          # nose barely visible
    lm[27, 0] = 1.3                         # left ankle right of the frame
    lm[11, 2] = 0.4                         # left shoulder: neck takes the lower confidence
    body = body25_from_blazepose(lm, 100, 200)
    assert tuple(body[BODY["Nose"]]) == (0, 0, 0)
    assert tuple(body[BODY["LAnkle"]]) == (0, 0, 0)
    assert body[BODY["Neck"], 2] == pytest.approx(0.4)


def test_face70_takes_the_listed_mesh_vertices_and_pupils():
    mesh = np.zeros((478, 3), np.float32)
    mesh[:, 0] = np.arange(478) / 1000.0    # x encodes the vertex number
    mesh[:, 1] = 0.5
    face = face70_from_mesh(mesh, 1000, 10)
    assert np.allclose(face[:68, 0], MESH_TO_DLIB68)
    assert face[68, 0] == pytest.approx(468) and face[69, 0] == pytest.approx(473)
    # Without irises the pupils are the centres of the eye contours.
    face468 = face70_from_mesh(mesh[:468], 1000, 10)
    assert face468[68, 0] == pytest.approx(MESH_TO_DLIB68[36:42].mean())
    assert len(set(MESH_TO_DLIB68.tolist())) == 68


def test_face70_is_anatomically_ordered_on_a_real_mesh_layout():
    # The canonical mesh is symmetric: the right side of the face (image left in a
    # frontal view) must come first along the jaw and the chin sits at point 8.
    from mediapipe.python.solutions import face_mesh_connections as fmc

    oval = {i for pair in fmc.FACEMESH_FACE_OVAL for i in pair}
    assert set(MESH_TO_DLIB68[:17].tolist()) <= oval
    right_eye = {i for pair in fmc.FACEMESH_RIGHT_EYE for i in pair}
    left_eye = {i for pair in fmc.FACEMESH_LEFT_EYE for i in pair}
    assert set(MESH_TO_DLIB68[36:42].tolist()) <= right_eye
    assert set(MESH_TO_DLIB68[42:48].tolist()) <= left_eye
    lips = {i for pair in fmc.FACEMESH_LIPS for i in pair}
    assert set(MESH_TO_DLIB68[48:68].tolist()) <= lips


def test_hands_keep_order_and_swap_when_on_the_wrong_wrist():
    w, h = 200, 200
    lm = blazepose(w, h)
    left_wrist, right_wrist = lm[15, :2], lm[16, :2]
    hand_at = lambda p: np.tile(p, (21, 1)) + np.linspace(0, 0.01, 21)[:, None]  # noqa: E731
    pose = assemble_pose(lm, None, hand_at(left_wrist), hand_at(right_wrist), w, h)
    assert pose.left_hand[0, :2] == pytest.approx(left_wrist * w, abs=1e-3)
    assert pose.right_hand[0, :2] == pytest.approx(right_wrist * w, abs=1e-3)
    assert (np.diff(pose.left_hand[:, 0]) > 0).all()   # order 0..20 kept
    swapped = assemble_pose(lm, None, hand_at(right_wrist), hand_at(left_wrist), w, h)
    assert swapped.left_hand[0, :2] == pytest.approx(left_wrist * w, abs=1e-3)
    one = assemble_pose(lm, None, None, hand_at(left_wrist), w, h)   # labelled right, on left
    assert one.left_hand[0, 2] > 0 and one.right_hand[0, 2] == 0
    assert hand21(hand_at(left_wrist), w, h).shape == (21, 3)


def test_coarse_hands_stand_in_only_for_missed_hands():
    w, h = 200, 100
    lm = blazepose(w, h)
    px = lambda i: lm[i, :2] * (w, h)  # noqa: E731
    found = np.tile(lm[16, :2], (21, 1))
    plain = assemble_pose(lm, None, None, found, w, h)
    assert plain.left_hand[:, 2].max() == 0          # off: a missed hand stays missing
    pose = assemble_pose(lm, None, None, found, w, h, coarse_hands=True)
    assert np.allclose(pose.right_hand, hand21(found, w, h))   # a found hand is kept
    left = pose.left_hand
    assert left[0, :2] == pytest.approx(px(15), abs=1e-3)      # wrist
    assert left[2, :2] == pytest.approx(px(21), abs=1e-3)      # thumb
    assert left[5, :2] == pytest.approx(px(19), abs=1e-3)      # index knuckle
    assert left[17, :2] == pytest.approx(px(17), abs=1e-3)     # little finger knuckle
    assert left[1, :2] == pytest.approx((px(15) + px(21)) / 2, abs=1e-3)
    assert (left[[0, 1, 2, 5, 17], 2] > 0).all() and (np.delete(left[:, 2], [0, 1, 2, 5, 17]) == 0).all()
    hidden = lm.copy()
    hidden[15, 2] = VISIBILITY_MIN / 2                       # no wrist, no coarse hand
    assert coarse_hand(hidden, "left", w, h) is None
    hidden = lm.copy()
    hidden[21, 2] = VISIBILITY_MIN / 2                       # no thumb: the rest stays
    hand = coarse_hand(hidden, "left", w, h)
    assert hand[[1, 2], 2].max() == 0 and hand[5, 2] > 0


def test_coarse_face_stands_in_only_for_a_missed_face_mesh():
    w, h = 200, 100
    lm = blazepose(w, h)
    px = lambda i: lm[i, :2] * (w, h)  # noqa: E731
    assert assemble_pose(lm, None, None, None, w, h).face[:, 2].max() == 0   # off: stays missing
    mesh = np.tile(lm[0:1, :2], (468, 1)) + np.linspace(0, 0.01, 468)[:, None]
    found = assemble_pose(lm, mesh, None, None, w, h, coarse_face=True)
    assert np.allclose(found.face, face70_from_mesh(mesh, w, h))    # a found mesh is kept
    face = assemble_pose(lm, None, None, None, w, h, coarse_face=True).face
    assert face[30, :2] == pytest.approx(px(0), abs=1e-3)           # nose tip
    assert face[36, :2] == pytest.approx(px(6), abs=1e-3)           # right eye, outer corner
    assert face[39, :2] == pytest.approx(px(4), abs=1e-3)           # right eye, inner corner
    assert face[69, :2] == pytest.approx(px(2), abs=1e-3)           # left pupil: eye centre
    assert face[27, :2] == pytest.approx((px(1) + px(4)) / 2, abs=1e-3)   # between the eyes
    assert face[48, :2] == pytest.approx(px(10), abs=1e-3) and face[54, :2] == pytest.approx(px(9), abs=1e-3)
    assert face[51, :2] == pytest.approx((px(10) + px(9)) / 2, abs=1e-3)  # mouth: a line
    assert face[:17, 2].max() == 0 and face[17:27, 2].max() == 0    # no jaw, no brows
    drawn = render_pose(assemble_pose(lm, None, None, None, w, h, coarse_face=True), (w, h),
                        hands=False)
    body_only = render_pose(assemble_pose(lm, None, None, None, w, h), (w, h), hands=False)
    assert (drawn != body_only).any()                               # the map shows a face
    hidden = lm.copy()
    hidden[5, 2] = VISIBILITY_MIN / 2                               # one eye unseen: no face
    assert face70_from_body(hidden, w, h) is None
    hidden = lm.copy()
    hidden[[9, 10], 2] = VISIBILITY_MIN / 2                         # no mouth: eyes and nose
    part = face70_from_body(hidden, w, h)
    assert part[48:68, 2].max() == 0 and part[[30, 36, 45], 2].min() > 0


def test_openpose_json_round_trip_and_largest_person(tmp_path):
    pose = Pose()
    pose.body[:5] = [(10, 20, 0.9), (12, 30, 0.8), (5, 30, 0.7), (4, 40, 0.6), (3, 50, 0.5)]
    pose.face[3] = (11, 21, 1.0)
    pose.right_hand[0] = (3, 50, 1.0)
    path = tmp_path / "f.json"
    write_openpose_json(path, pose)
    data = json.loads(path.read_text())
    assert len(data["people"][0]["pose_keypoints_2d"]) == 75
    assert len(data["people"][0]["face_keypoints_2d"]) == 210
    back = read_openpose_json(path)
    for part in ("body", "face", "left_hand", "right_hand"):
        assert np.allclose(getattr(back, part), getattr(pose, part), atol=1e-3)
    small = Pose()
    small.body[:2] = [(1, 1, 1), (2, 2, 1)]
    data["people"].insert(0, small.to_openpose())
    path.write_text(json.dumps(data))
    assert read_openpose_json(path).body[0, 0] == pytest.approx(10)
    write_openpose_json(path, None)
    assert read_openpose_json(path) is None


def test_bad_openpose_json_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}')
    with pytest.raises(UserError, match="bad.json"):
        read_openpose_json(bad)
    bad.write_text("not json")
    with pytest.raises(UserError, match="not OpenPose JSON"):
        read_openpose_json(bad)
