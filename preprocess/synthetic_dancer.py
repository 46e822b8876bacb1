"""`vid2vid sample`: a procedurally animated dancer with ground-truth OpenPose keypoints.

A test video for every stage that needs no download and no detector: a
cartoon person (skin-toned head with a face, hands with fingers, a striped
shirt, twill trousers, shoes) dances in front of a textured wall and floor.
Its skeleton is known exactly, so the keypoints are written beside the video
as OpenPose JSON (`OUT_stem_openpose/NNNNNN.json`: BODY_25, face 70 and both
hands 21, in frame pixels, confidence 1), ready for
`vid2vid preprocess OUT.mp4 --keypoints OUT_stem_openpose`.

The skeleton is 2-D with a little depth: every limb has an angle in the image
plane and a swing towards the camera, which shortens its projection (a squat
shortens the thighs) and gives each part a depth, so parts are drawn far to
near (the near arm covers the torso, the far arm goes behind it). Joint angles
are smooth periodic functions of time, one set per motion (`MOTIONS`). Parts
are shaded, anti-aliased distance fields (capsules, ellipses, polygons) in
numpy; the face details are OpenCV anti-aliased drawing at the very keypoints
that are written, so image and keypoints agree. Frames are square (width =
height = `size`): a dancer with outstretched arms is as wide as tall.

Everything is deterministic for a given seed: the seed picks the colours,
the background and small variations of the motion's phases and amplitudes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from preprocess.synthetic_draw import Canvas, background, draw_face, noise, pick_look
from vid2vid.errors import UserError
from vid2vid.pose import BODY, Pose, write_openpose_json

MOTIONS = {
    "sway": "side steps with waving arms, 0.5 Hz (calm; a training video)",
    "groove": "bouncing hops, torso twists and arms pumped overhead, 1 Hz (a driving video)",
}

# Body proportions in head units (about 1/8 of the standing height).
NECK_ABOVE_HIP, SHOULDER_HALF, HIP_HALF = 2.75, 0.95, 0.5
UPPER_ARM, FOREARM, HAND = 1.45, 1.25, 0.75
THIGH, SHIN, ANKLE_HEIGHT = 1.95, 1.85, 0.35
HEAD_A, HEAD_B, HEAD_ABOVE_NECK = 0.40, 0.50, 0.95   # head ellipse half-width, half-height


@dataclass(frozen=True)
class SampleOptions:
    """What `vid2vid sample` renders: motion name, length (s), frame height (px), seed, fps."""

    motion: str = "sway"
    seconds: float = 8.0
    size: int = 256
    seed: int = 0
    fps: float = 25.0

    @property
    def frames(self) -> int:
        return int(round(self.seconds * self.fps))

    def check(self) -> None:
        if self.motion not in MOTIONS:
            raise UserError(f"unknown motion {self.motion!r}; choose one of {', '.join(MOTIONS)}")
        if self.size % 2 or self.size < 64:
            raise UserError(f"--size {self.size}: pass an even height >= 64 "
                            "(H.264 frames need even sides)")
        if self.frames < 1:
            raise UserError(f"--seconds {self.seconds} at --fps {self.fps} is less than one frame")


# ---------------------------------------------------------------------------- motion

def _joint_angles(motion: str, t: float, var: np.ndarray) -> dict:
    """Joint parameters at time `t` (s); angles in radians, lengths in head units.

    `var` ([8] numbers near 0, from the seed) shifts phases and scales amplitudes a little.
    Arms: `abduct` from hanging down (outwards positive), `swing` towards the camera,
    `elbow` rotating the forearm further outwards/up. Legs: `abduct`, `knee` flexion.
    """
    amp = 1.0 + 0.1 * var[0]
    if motion == "sway":
        ph = 2 * math.pi * 0.5 * t + var[1]
        s, s2 = math.sin(ph), math.sin(2 * ph + var[2])
        knee = 0.25 + 0.2 * (1 - math.cos(2 * ph)) / 2
        return dict(
            x=0.9 * amp * s, lift=0.0, lean=0.12 * s, yaw=0.12 * s, head_roll=0.1 * s,
            arm_r=(1.2 + 0.6 * amp * s, 0.2 * s, 0.6 + 0.5 * s2),
            arm_l=(1.2 - 0.6 * amp * s, -0.2 * s, 0.6 + 0.5 * math.sin(2 * ph + 2 + var[3])),
            leg_r=(0.08 + 0.16 * (0.5 - 0.5 * s), knee),
            leg_l=(0.08 + 0.16 * (0.5 + 0.5 * s), knee),
        )
    if motion == "groove":
        ph = 2 * math.pi * 1.0 * t + var[1]
        s, c = math.sin(ph), math.cos(ph)
        knee = 0.3 + 0.45 * (1 + math.cos(2 * ph)) / 2
        lift = 0.5 * amp * max(0.0, math.sin(2 * ph + 1.2)) ** 2
        return dict(
            x=0.4 * math.sin(ph / 2 + var[4]), lift=lift, lean=0.08 * math.sin(2 * ph),
            yaw=0.45 * s, head_roll=-0.15 * s,
            arm_r=(2.0 + 0.9 * amp * s, 0.5 * c, 0.9 * (1 - s) / 2 + 0.2),
            arm_l=(2.0 - 0.9 * amp * s, -0.5 * c, 0.9 * (1 + s) / 2 + 0.2),
            leg_r=(0.22 + 0.1 * math.sin(2 * ph), knee + 0.3 * max(0.0, s) ** 3),
            leg_l=(0.22 - 0.1 * math.sin(2 * ph), knee + 0.3 * max(0.0, -s) ** 3),
        )
    raise UserError(f"unknown motion {motion!r}; choose one of {', '.join(MOTIONS)}")


def _rot(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _face_template() -> np.ndarray:
    """The 70 face points of a frontal face, `[70, 2]` in units of the head's half-axes.

    x right in the image (the person's right side is image-left), y down, 0 at the
    head ellipse's centre (eye level); dlib's iBUG order plus the two pupils.
    """
    pts = [(0.95 * math.cos(a), 0.97 * math.sin(a)) for a in np.linspace(math.pi, 0, 17)]
    for sign in (-1, 1):  # brows: the person's right (image-left) first
        xs = np.linspace(0.75, 0.15, 5) if sign < 0 else np.linspace(0.15, 0.75, 5)
        pts += [(sign * abs(x), -0.33 + 0.08 * ((abs(x) - 0.45) / 0.3) ** 2) for x in xs]
    pts += [(0.0, y) for y in np.linspace(-0.2, 0.25, 4)]
    pts += [(x, 0.33 + 0.03 * (1 - abs(x) / 0.2)) for x in np.linspace(-0.2, 0.2, 5)]
    for cx in (-0.38, 0.38):  # eyes: corner, 2 top, corner, 2 bottom
        pts += [(cx - 0.16, -0.08), (cx - 0.06, -0.14), (cx + 0.06, -0.14), (cx + 0.16, -0.08),
                (cx + 0.06, -0.03), (cx - 0.06, -0.03)]
    outer = [(-0.3, 0.58), (-0.18, 0.52), (-0.07, 0.5), (0.0, 0.52), (0.07, 0.5), (0.18, 0.52),
             (0.3, 0.58), (0.18, 0.67), (0.07, 0.7), (0.0, 0.71), (-0.07, 0.7), (-0.18, 0.67)]
    inner = [(-0.24, 0.58), (-0.08, 0.56), (0.0, 0.565), (0.08, 0.56), (0.24, 0.58),
             (0.08, 0.61), (0.0, 0.615), (-0.08, 0.61)]
    pts += outer + inner + [(-0.38, -0.085), (0.38, -0.085)]
    return np.asarray(pts, np.float64)


FACE_TEMPLATE = _face_template()


def _hand(wrist: np.ndarray, direction: np.ndarray, side: int, length: float) -> np.ndarray:
    """21 hand points (OpenPose order), `[21, 2]`, an open hand along `direction`.

    `side` is -1 for the person's right hand (image-left), +1 for the left; the
    thumb points away from the body when the arm hangs down (palm to the camera).
    """
    d = direction / (np.linalg.norm(direction) + 1e-9)
    out = np.array([side * d[1], -side * d[0]])       # outwards when the hand hangs down
    pts = [wrist]
    base = wrist + 0.15 * length * d + 0.22 * length * out      # thumb
    fd = d * 0.6 + out * 0.8                                   # the thumb points outwards
    fd /= np.linalg.norm(fd)
    for seg in (0.0, 0.22, 0.17, 0.14):
        base = base + seg * length * fd
        pts.append(base)
    for spread, across, seg_len in ((0.15, 0.2, 0.19), (0.0, 0.06, 0.21),
                                    (-0.12, -0.08, 0.19), (-0.25, -0.2, 0.15)):
        fd = d + spread * out
        fd /= np.linalg.norm(fd)
        p = wrist + 0.5 * length * d + across * length * out
        pts.append(p)
        for _ in range(3):
            p = p + seg_len * length * fd
            pts.append(p)
    return np.asarray(pts)


def skeleton(motion: str, t: float, var: np.ndarray) -> dict:
    """The figure at time `t` in head units (x right, y down, floor at y=0).

    Returns named `[2]` joints, `face` `[70, 2]`, `hand_r`/`hand_l` `[21, 2]`, the
    per-part depths `z` (towards the camera positive) and `roll` of the head.
    """
    q = _joint_angles(motion, t, var)
    legs = {}
    for name, side in (("r", -1), ("l", 1)):
        abduct, knee = q["leg_" + name]
        swing = knee / 2                       # thigh forward, shin back: the foot stays below
        thigh = THIGH * math.cos(swing) * np.array([side * math.sin(abduct), math.cos(abduct)])
        shin_a = abduct - 0.5 * abduct         # the shin comes back under the body
        shin = SHIN * math.cos(swing - knee) * np.array([side * math.sin(shin_a), math.cos(shin_a)])
        legs[name] = (side, thigh, shin, THIGH * math.sin(swing))
    # The lower foot stands on the floor; `lift` raises both for hops.
    drop = max(th[1] + sh[1] for _, th, sh, _ in legs.values()) + ANKLE_HEIGHT
    hip = np.array([q["x"], -drop - q["lift"]])
    yaw, lean = q["yaw"], q["lean"]
    up = _rot(np.array([0.0, -1.0]), lean)
    across = _rot(np.array([1.0, 0.0]), lean)
    neck = hip + NECK_ABOVE_HIP * up
    j: dict = {"MidHip": hip, "Neck": neck}
    z: dict = {}
    for name, side in (("r", -1), ("l", 1)):
        s = "R" if side < 0 else "L"
        _, thigh, shin, zk = legs[name]
        j[s + "Hip"] = hip + side * HIP_HALF * math.cos(yaw) * across
        j[s + "Knee"] = j[s + "Hip"] + thigh
        j[s + "Ankle"] = j[s + "Knee"] + shin
        a = j[s + "Ankle"]
        j[s + "Heel"] = a + np.array([-side * 0.05, 0.3])
        j[s + "BigToe"] = a + np.array([side * 0.2, 0.38])
        j[s + "SmallToe"] = a + np.array([side * 0.42, 0.3])
        z["leg_" + name] = -0.2 + side * math.sin(yaw) * -HIP_HALF + 0.2 * zk
        j[s + "Shoulder"] = neck + side * SHOULDER_HALF * math.cos(yaw) * across
        abduct, swing, elbow = q["arm_" + name]
        a1 = abduct - side * lean
        upper = UPPER_ARM * math.cos(swing) * np.array([side * math.sin(a1), math.cos(a1)])
        a2 = a1 + elbow
        fore = FOREARM * math.cos(swing) * np.array([side * math.sin(a2), math.cos(a2)])
        j[s + "Elbow"] = j[s + "Shoulder"] + upper
        j[s + "Wrist"] = j[s + "Elbow"] + fore
        # Shoulders turn with the torso (yaw); an arm swung forwards is nearer the camera.
        z["arm_" + name] = (0.15 - side * SHOULDER_HALF * math.sin(yaw)
                            + (UPPER_ARM + 0.5 * FOREARM) * math.sin(swing))
        j["hand_" + name] = _hand(j[s + "Wrist"], fore, side, HAND)
    roll = q["head_roll"] + lean
    centre = neck + HEAD_ABOVE_NECK * _rot(np.array([0.0, -1.0]), roll)
    face = FACE_TEMPLATE * np.array([HEAD_A, HEAD_B])
    face = np.stack([_rot(p, roll) for p in face]) + centre
    j.update(face=face, head=centre, roll=roll, z=z)
    j["Nose"], j["REye"], j["LEye"] = face[30], face[68], face[69]
    j["REar"] = centre + _rot(np.array([-HEAD_A * 1.02, -0.05]), roll)
    j["LEar"] = centre + _rot(np.array([HEAD_A * 1.02, -0.05]), roll)
    return j


def _extent(j: dict) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (min, max) of everything drawn, head units, with the parts' thickness."""
    pts = [v for k, v in j.items() if k[0].isupper()]
    pts = np.concatenate([np.asarray(pts), j["face"], j["hand_r"], j["hand_l"],
                          [j["head"] + [0, -HEAD_B * 1.1]]])
    return pts.min(0) - 0.3, pts.max(0) + 0.3


def to_pose(j: dict, scale: float, offset: np.ndarray) -> Pose:
    """The skeleton in frame pixels (`pixel = scale * head_units + offset`), confidence 1."""
    def px(a) -> np.ndarray:
        a = np.asarray(a, np.float64).reshape(-1, 2) * scale + offset
        return np.concatenate([a, np.ones((len(a), 1))], 1).astype(np.float32)
    body = px([j[name] for name in BODY])
    return Pose(body=body, face=px(j["face"]), left_hand=px(j["hand_l"]),
                right_hand=px(j["hand_r"]))


def render_frames(options: SampleOptions) -> Iterator[tuple[np.ndarray, Pose]]:
    """Yields `options.frames` pairs (RGB uint8 `[size, size, 3]`, its `Pose` in pixels)."""
    options.check()
    rng = np.random.default_rng(options.seed)
    var = rng.uniform(-1, 1, 8)
    look = pick_look(rng)
    size = options.size
    times = np.arange(options.frames) / options.fps
    skeletons = [skeleton(options.motion, float(t), var) for t in times]
    # One placement for the whole clip: the union of every frame's extent fits with a
    # 5% margin, so keypoints (and the drawn parts around them) never leave the frame.
    lo = np.min([_extent(j)[0] for j in skeletons], 0)
    hi = np.max([_extent(j)[1] for j in skeletons], 0)
    lo[1], hi[1] = min(lo[1], -8.6), max(hi[1], 0.3)   # room for a standing head, the floor
    margin = 0.05 * size
    scale = min((size - 2 * margin) / (hi[0] - lo[0]), (size - 2 * margin) / (hi[1] - lo[1]))
    offset = np.array([size / 2 - scale * (lo[0] + hi[0]) / 2,
                       size - margin - scale * hi[1]])
    floor_y = offset[1]
    backdrop = background(size, floor_y, rng)
    tile = noise(rng, (64, 64), 1.0)
    for j in skeletons:
        pose = to_pose(j, scale, offset)
        img = backdrop.copy()
        px = lambda p: np.asarray(p) * scale + offset  # noqa: E731
        # A soft contact shadow that fades as the figure hops.
        hip_x = px(j["MidHip"])[0]
        lift = -(max(j["RHeel"][1], j["LHeel"][1]) + 0.05)
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        sh = np.exp(-(((xs - hip_x) / (1.6 * scale)) ** 2 + ((ys - floor_y) / (0.3 * scale)) ** 2))
        img *= 1 - (0.35 / (1 + 2 * max(lift, 0))) * sh[..., None]
        canvas = Canvas(img, tile, scale)
        u = scale
        parts = []
        for name, s in (("r", "R"), ("l", "L")):
            def leg(s=s):
                canvas.capsule(px(j[s + "Hip"]), px(j[s + "Knee"]), 0.36 * u, 0.3 * u,
                               look.trousers, "twill")
                canvas.capsule(px(j[s + "Knee"]), px(j[s + "Ankle"]), 0.3 * u, 0.24 * u,
                               look.trousers, "twill")
                toe = (px(j[s + "BigToe"]) + px(j[s + "SmallToe"])) / 2
                canvas.capsule(px(j[s + "Heel"]) - [0, 0.1 * u], toe, 0.2 * u, 0.16 * u,
                               look.shoes)

            def arm(s=s, name=name):
                canvas.capsule(px(j[s + "Shoulder"]), px(j[s + "Elbow"]), 0.26 * u, 0.2 * u,
                               look.shirt, "stripes")
                canvas.capsule(px(j[s + "Elbow"]), px(j[s + "Wrist"]), 0.16 * u, 0.12 * u,
                               look.skin)
                hand = px(j["hand_" + name])
                palm = hand[[0, 1, 5, 9, 13, 17]]
                canvas.ellipse(palm.mean(0), 0.16 * u, 0.2 * u,
                               math.atan2(*(hand[9] - hand[0])[::-1]) - math.pi / 2, look.skin)
                for f in range(5):  # thumb CMC..tip, then each finger MCP..tip
                    chain = hand[4 * f + 1:4 * f + 5]
                    for a, b in zip(chain[:-1], chain[1:]):
                        canvas.capsule(a, b, 0.055 * u, 0.045 * u, look.skin)

            parts += [(j["z"]["leg_" + name], leg), (j["z"]["arm_" + name], arm)]

        def body():
            hip_l, hip_r = px(j["LHip"]), px(j["RHip"])
            sh_l, sh_r = px(j["LShoulder"]), px(j["RShoulder"])
            waist_r = hip_r + (sh_r - hip_r) * 0.22
            waist_l = hip_l + (sh_l - hip_l) * 0.22
            wide = (hip_l - hip_r) * 0.25
            canvas.quad(waist_r - wide * 0.6, waist_l + wide * 0.6, hip_l + wide, hip_r - wide,
                        look.trousers, "twill")
            canvas.quad(sh_r - (sh_l - sh_r) * 0.05, sh_l + (sh_l - sh_r) * 0.05,
                        waist_l + wide * 0.4, waist_r - wide * 0.4, look.shirt, "stripes")
            neck, head = px(j["Neck"]), px(j["head"])
            canvas.capsule(neck, neck + (head - neck) * 0.6, 0.2 * u, 0.18 * u, look.skin)

        def head():
            c, roll = px(j["head"]), j["roll"]
            for ear in ("REar", "LEar"):
                canvas.ellipse(px(j[ear]), 0.09 * u, 0.15 * u, roll, look.skin)
            canvas.ellipse(c, HEAD_A * u, HEAD_B * u, roll, look.skin, hair=look.hair)
            draw_face(canvas.image, px(j["face"]), u, look)

        parts += [(0.0, body), (0.05, head)]
        for _, draw in sorted(parts, key=lambda p: p[0]):
            draw()
        yield (np.clip(canvas.image * 255 + 0.5, 0, 255)).astype(np.uint8), pose


def keypoints_folder(video: Path) -> Path:
    """Where the keypoints of `video` go: `<folder>/<stem>_openpose/`."""
    return video.with_name(video.stem + "_openpose")


@dataclass
class SampleResult:
    video: Path
    keypoints: Path
    frames: int
    fps: float
    size: int

    def line(self) -> str:
        return (f"wrote {self.video} ({self.frames} frames, {self.size}x{self.size} at "
                f"{self.fps:g} fps) and {self.keypoints}/ (OpenPose JSON)")


def write_sample(out: str | Path, options: SampleOptions) -> SampleResult:
    """Renders the sample to `out` (H.264 mp4) and its keypoints beside it."""
    from vid2vid.video_writer import VideoWriter

    options.check()
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise UserError(f"{out} should end in .mp4 (the sample is written as H.264 mp4)")
    folder = keypoints_folder(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {folder} ({e.strerror}); "
                        "choose another output path") from None
    # Files of an earlier, longer sample would be read as extra frames by --keypoints.
    for old in folder.iterdir():
        if re.fullmatch(r"\d{6}\.json", old.name):
            old.unlink()
    with VideoWriter(out, options.fps, (options.size, options.size)) as video:
        for k, (frame, pose) in enumerate(render_frames(options)):
            video.write(frame)
            write_openpose_json(folder / f"{k:06d}.json", pose)
    return SampleResult(out, folder, options.frames, options.fps, options.size)
