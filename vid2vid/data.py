"""Training clips from one or more dataset directories.

A sample is a clip of T frames `start, start + s, ..., start + (T-1) s` of one
video (stride s drawn from `1..max_stride`), returned as a `Clip` of tensors
in the `[T, C, H, W]` layout (the DataLoader adds B):

- maps: the conditioning of the dataset's task (`vid2vid.tasks`: pose
  skeleton, face sketch + background edges, or one-hot labels + instance
  boundaries), drawn here from the stored keypoints and per-frame images by
  the task's `maps` (the function transfer uses), so changing the drawing
  style never needs a new preprocessing run. For bodies, limbs, hands and
  face are dropped at random as augmentation (vid2vid's `random_drop_prob`).
- frames in [-1, 1], person masks in [0, 1], backward flow in output pixels
  (t -> t-1, strides composed from the stored per-frame flows) with its valid
  mask (0 for the first frame of the clip), keypoints in output pixels.

Without augmentation a frame is scaled to cover the output size and its
centre cropped (`centered_geometry`); transfer and evaluation draw their maps
through the same function (`keypoints_to_maps`), so a pose lands on the same
model pixels in training, evaluation and transfer.

Augmentation is temporally consistent: one random scale, crop and (optional)
flip for every frame of a clip, applied to frames, masks, flow (vectors
scaled and mirrored too) and keypoints (left/right swapped on flips); colour
jitter on frames only, the same for the whole clip.

Held-out frames (the last `holdout` share of each video) never appear in a
training clip, nor do frames whose person was missing (a missing person is
never the target of a loss). Randomness comes from `(seed, sample id)`, so a
clip is the same whatever the number of workers or processes, which makes
resumed runs repeat their data exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

from vid2vid.config import AugmentConfig
from vid2vid.dataset_dir import frame_path, load_dataset
from vid2vid.errors import UserError
from vid2vid.flow_png import read_flow_png
from vid2vid.pose import BODY_MIRROR, Pose, read_openpose_json
from vid2vid.pose_rarity import clip_weights, pose_rarity
from vid2vid.render import LIMB_WIDTH, render_pose
from vid2vid.tasks import Task, same_task, task_of_dataset

MAP_CHANNELS = 3  # the pose task's map is an RGB skeleton drawing (other tasks: vid2vid.tasks)
N_KEYPOINTS = 25 + 70 + 21 + 21

# dlib-68 + pupils under a horizontal flip.
_FLIP_FACE = np.array(
    list(range(16, -1, -1)) + list(range(26, 21, -1)) + list(range(21, 16, -1))
    + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65] + [69, 68]
)


class Clip(NamedTuple):
    """One training clip. Shape (per sample; the loader stacks a batch dim in front):

    - maps: [T, C, H, W] float in [0, 1], C = the task's channels
    - frames: [T, 3, H, W] float in [-1, 1]
    - masks: [T, 1, H, W] float in [0, 1] (person / face / foreground classes)
    - flow: [T, 2, H, W] float, pixels, frame t -> t-1 (zeros at t = 0)
    - flow_valid: [T, 1, H, W] float 0/1
    - keypoints: [T, 137, 3] body 25, face 70, left hand 21, right hand 21; (x, y, conf);
      all zero for tasks without keypoints (labels)
    - person: [T] bool, the frame's person was detected or interpolated
    - source: [3] long (dataset index, first frame, stride)
    - part_boxes: [T, 4] float, the box D_face crops (the task's `part_boxes`: the face
      of a body, the mouth of a talking head), x0 y0 x1 y1 in model pixels; found
      here, in the loader, so the training step never waits for it
    - part_found: [T] bool, that frame's box was found (all false without a part)
    """

    maps: torch.Tensor
    frames: torch.Tensor
    masks: torch.Tensor
    flow: torch.Tensor
    flow_valid: torch.Tensor
    keypoints: torch.Tensor
    person: torch.Tensor
    source: torch.Tensor
    part_boxes: torch.Tensor
    part_found: torch.Tensor


def no_augment() -> AugmentConfig:
    return AugmentConfig(scale=0.0, flip=False, brightness=0.0, contrast=0.0, saturation=0.0,
                         drop_limb=0.0)


@dataclass(frozen=True)
class VideoIndex:
    """What the loader needs to know of one dataset directory."""

    root: Path
    frames: int
    train_frames: int            # frames [0, train_frames) are for training
    person: np.ndarray           # [frames] bool
    size: tuple[int, int]        # stored (w, h)
    task: Task


def index_dataset(root: Path, holdout: float) -> VideoIndex:
    meta = load_dataset(Path(root))
    n = meta["frames"]
    person = np.asarray(meta["per_frame"]["person"], bool)
    train = int(np.floor(n * (1.0 - holdout)))
    return VideoIndex(Path(root), n, train, person, tuple(meta["size"]), task_of_dataset(meta))


def read_stored(root: Path, task: Task, k: int) -> dict[str, np.ndarray]:
    """The per-frame images frame `k`'s maps are drawn from (stored size, unchanged)."""
    out = {}
    for item in task.stored:
        path = frame_path(root, item.folder, k)
        if item.optional and not path.exists():
            continue
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise UserError(f"{path} is missing or unreadable; run vid2vid preprocess again on "
                            "that video with --overwrite")
        out[item.folder] = img
    return out


def clip_starts(video: VideoIndex, length: int, stride: int) -> np.ndarray:
    """First frames of every training clip of `length` frames at `stride` with a person in all."""
    span = (length - 1) * stride + 1
    last = video.train_frames - span
    if last < 0:
        return np.zeros(0, np.int64)
    bad = np.concatenate([[0], np.cumsum(~video.person[:video.train_frames])])
    starts = np.arange(last + 1)
    ok = np.ones(len(starts), bool)
    for j in range(length):
        idx = starts + j * stride
        ok &= (bad[idx + 1] - bad[idx]) == 0
    return starts[ok]


def pose_to_array(pose: Pose | None) -> np.ndarray:
    if pose is None:
        return np.zeros((N_KEYPOINTS, 3), np.float32)
    return np.concatenate([pose.body, pose.face, pose.left_hand, pose.right_hand])


def array_to_pose(a: np.ndarray) -> Pose:
    return Pose(body=a[:25], face=a[25:95], left_hand=a[95:116], right_hand=a[116:137])


def flip_keypoints(kp: np.ndarray, width: int) -> np.ndarray:
    """Mirror `[137, 3]` keypoints in a frame `width` wide, swapping left and right."""
    out = kp.copy()
    present = out[:, 2] > 0
    out[present, 0] = width - 1 - out[present, 0]
    body, face, lh, rh = out[:25], out[25:95], out[95:116], out[116:137]
    return np.concatenate([body[list(BODY_MIRROR)], face[_FLIP_FACE], rh, lh])


def compose_flows(flows: list[np.ndarray]) -> np.ndarray:
    """Backward flows N->N-1, N-1->N-2, ... (each [H, W, 2]) -> the flow N->N-k.

    Each step follows the displacement so far: F(p) = F1(p) + F2(p + F1(p)).
    """
    total = flows[0].copy()
    h, w = total.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    for f in flows[1:]:
        total += cv2.remap(f, grid_x + total[..., 0], grid_y + total[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return total


@dataclass(frozen=True)
class CropGeometry:
    """How a stored frame becomes a model frame: scale, crop, optional mirror.

    The stored frame (dataset pixels) is scaled by `scale` to `scaled` = (w, h),
    the `out` = (H, W) window at `offset` = (x0, y0) is kept, and the result is
    mirrored when `flip`. Frames, masks, flow and keypoints all go through the
    same geometry, so they stay aligned.
    """

    scale: float
    scaled: tuple[int, int]     # (w, h) after scaling
    offset: tuple[int, int]     # (x0, y0) of the crop in the scaled frame
    out: tuple[int, int]        # (H, W) of the model frame
    flip: bool = False

    def image(self, img: np.ndarray, interp: int = cv2.INTER_AREA) -> np.ndarray:
        """A stored-size image `[h, w, ...]` -> the model frame `[H, W, ...]`."""
        (x0, y0), (out_h, out_w) = self.offset, self.out
        out = cv2.resize(img, self.scaled, interpolation=interp)[y0:y0 + out_h, x0:x0 + out_w]
        return out[:, ::-1] if self.flip else out

    def keypoints(self, kp: np.ndarray) -> np.ndarray:
        """`[137, 3]` keypoints in stored pixels -> model pixels (missing ones stay 0, 0, 0)."""
        out = np.asarray(kp, np.float32).copy()
        present = out[:, 2] > 0
        out[present, 0] = out[present, 0] * self.scale - self.offset[0]
        out[present, 1] = out[present, 1] * self.scale - self.offset[1]
        return flip_keypoints(out, self.out[1]) if self.flip else out


def centered_geometry(src_size: tuple[int, int], out_size: tuple[int, int]) -> CropGeometry:
    """The geometry without augmentation: scale to cover the model frame, crop the centre.

    `src_size` is the stored frame's (w, h) (meta.json "size"), `out_size` the
    model frame's (H, W) (a run's frame size). Training without augmentation,
    evaluation and transfer all use this one, so a pose lands on the same model
    pixels in all three.
    """
    out_h, out_w = out_size
    src_w, src_h = src_size
    a = max(out_w / src_w, out_h / src_h)
    scaled_w, scaled_h = int(np.ceil(src_w * a)), int(np.ceil(src_h * a))
    return CropGeometry(a, (scaled_w, scaled_h), ((scaled_w - out_w) // 2,
                                                  (scaled_h - out_h) // 2), (out_h, out_w))


def render_maps(kp: np.ndarray, out_size: tuple[int, int], drop: np.ndarray | None = None,
                limb_width: float = LIMB_WIDTH) -> np.ndarray:
    """`[137, 3]` keypoints in model pixels -> the pose map, RGB uint8 `[H, W, 3]`.

    `out_size` is (H, W). The one place keypoints become conditioning maps;
    `limb_width` is the run's (`TrainConfig.limb_width`, kept in its pose task).
    """
    out_h, out_w = out_size
    return render_pose(array_to_pose(kp), (out_w, out_h), drop=drop, limb_width=limb_width)


def keypoints_to_maps(kp: np.ndarray, src_size: tuple[int, int], out_size: tuple[int, int]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints in a dataset's stored pixels -> (pose map `[H, W, 3]` uint8, keypoints in
    model pixels `[137, 3]`), through `centered_geometry(src_size, out_size)`: exactly
    what `ClipDataset` without augmentation gives for that frame.
    """
    model_kp = centered_geometry(src_size, out_size).keypoints(kp)
    return render_maps(model_kp, out_size), model_kp


class ClipDataset(torch.utils.data.Dataset):
    """Clips of `length` frames at output size `(height, width)` from dataset directories.

    Item `i` is sample `i % len(self)` of epoch `i // len(self)`, in an order
    shuffled per epoch, and draws stride, crop and augmentation from
    `(seed, i)`: a sampler handing out growing ids gets every clip once per
    epoch with fresh augmentation, and the same id always gives the same clip.
    """

    def __init__(self, videos: list[VideoIndex], length: int, size: tuple[int, int],
                 max_stride: int = 1, augment: AugmentConfig = AugmentConfig(), seed: int = 0,
                 with_flow: bool = True, balance: float = 0.0):
        if length < 1:
            raise ValueError("clip length must be >= 1")
        self.videos = videos
        self.length = length
        self.size = size  # (H, W)
        self.max_stride = max_stride
        self.augment = augment
        self.seed = seed
        self.with_flow = with_flow
        self.task = same_task([v.task for v in videos], [str(v.root) for v in videos])
        self._starts = {}
        self._epoch_order: tuple[int, np.ndarray] = (-1, np.zeros(0, np.int64))
        self.items = [(v, int(s)) for v, video in enumerate(videos)
                      for s in self._valid_starts(v, 1)]
        if not self.items:
            raise UserError(
                "no training clip of {} frames fits the data ({}); use fewer frames per clip "
                "(--frames) or more data".format(
                    length, ", ".join(f"{v.root}: {v.train_frames} training frames"
                                      for v in videos)))
        # Per-item draw weights (None: every clip once per epoch); `vid2vid.pose_rarity`.
        self.weights = self._balance_weights(balance) if balance > 0 else None

    def _valid_starts(self, v: int, stride: int) -> np.ndarray:
        key = (v, stride)
        if key not in self._starts:
            self._starts[key] = clip_starts(self.videos[v], self.length, stride)
        return self._starts[key]

    def __len__(self) -> int:
        return len(self.items)

    def _balance_weights(self, balance: float) -> np.ndarray:
        if not self.task.keypoints:
            raise UserError(f"balance needs body poses; the {self.task.name} task has none "
                            "(leave balance at 0)")
        weights = []
        for v, video in enumerate(self.videos):
            poses = [read_openpose_json(frame_path(video.root, "pose", k)) if video.person[k]
                     else None for k in range(video.train_frames)]
            rarity = pose_rarity(poses)
            if not np.isfinite(rarity).any():
                raise UserError(f"balance needs body poses with a neck and hips; {video.root} "
                                "has none in its training frames (leave balance at 0)")
            weights.append(clip_weights(rarity, self._valid_starts(v, 1), self.length, balance))
        w = np.concatenate(weights)
        return w / w.sum()

    def _order(self, epoch: int) -> np.ndarray:
        if self._epoch_order[0] != epoch:
            rng = np.random.default_rng([self.seed, 1 << 20, epoch])
            n = len(self.items)
            # Balanced: as many draws per epoch, with replacement, rarer postures more often.
            perm = rng.permutation(n) if self.weights is None else rng.choice(n, n, p=self.weights)
            self._epoch_order = (epoch, perm)
        return self._epoch_order[1]

    def __getitem__(self, i: int) -> Clip:
        rng = np.random.default_rng([self.seed, int(i)])
        epoch, j = divmod(int(i), len(self.items))
        v, start = self.items[self._order(epoch)[j]]
        video = self.videos[v]
        stride = 1
        if self.max_stride > 1:
            stride = int(rng.integers(1, self.max_stride + 1))
            starts = self._valid_starts(v, stride)
            if len(starts):
                # keep the clip near the one item i names, at the drawn stride
                start = int(starts[np.argmin(np.abs(starts - start))])
            else:
                stride = 1
        frames_idx = [start + j * stride for j in range(self.length)]
        return self._load(video, v, frames_idx, stride, rng)

    # -- loading --------------------------------------------------------------------

    def _geometry(self, video: VideoIndex, rng: np.random.Generator) -> CropGeometry:
        """Scale factor, crop offset and flip shared by the whole clip."""
        # Drawn even without augmentation, so the later draws of a clip never depend on it.
        zoom = 1.0 + rng.uniform(0, self.augment.scale)
        if self.augment.scale == 0:
            # No augmentation (evaluation, transfer): the centred crop, always the same.
            return centered_geometry(video.size, self.size)
        out_h, out_w = self.size
        src_w, src_h = video.size
        a = max(out_w / src_w, out_h / src_h) * zoom
        scaled_w, scaled_h = int(np.ceil(src_w * a)), int(np.ceil(src_h * a))
        x0 = int(rng.integers(0, scaled_w - out_w + 1))
        # Keep the feet in: the crop's vertical slack goes mostly to the top (people stand).
        y0 = int(rng.integers(0, max(1, (scaled_h - out_h) // 4) + 1))
        y0 = min(y0, scaled_h - out_h)
        flip = bool(self.augment.flip and rng.random() < 0.5)
        return CropGeometry(a, (scaled_w, scaled_h), (x0, y0), self.size, flip)

    def frames_at(self, v: int, idx: list[int]) -> Clip:
        """The frames `idx` of video `v` as one clip (any frames, held-out ones too)."""
        return self._load(self.videos[v], v, list(idx), 1, np.random.default_rng(self.seed))

    def _load(self, video: VideoIndex, v: int, idx: list[int], stride: int,
              rng: np.random.Generator) -> Clip:
        out_h, out_w = self.size
        g = self._geometry(video, rng)
        aug = self.augment
        jitter = (1 + rng.uniform(-aug.brightness, aug.brightness),
                  1 + rng.uniform(-aug.contrast, aug.contrast),
                  1 + rng.uniform(-aug.saturation, aug.saturation))
        task = self.task
        geom = g.image
        interpolation = {item.folder: item.interpolation for item in task.stored}

        maps, frames, masks, flows, valid, kps, person = [], [], [], [], [], [], []
        for t, k in enumerate(idx):
            bgr = cv2.imread(str(frame_path(video.root, "frames", k)), cv2.IMREAD_COLOR)
            if bgr is None:
                raise UserError(f"{frame_path(video.root, 'frames', k)} is unreadable; run "
                                f"vid2vid preprocess again on that video with --overwrite")
            frames.append(geom(bgr[..., ::-1]))
            mask = cv2.imread(str(frame_path(video.root, "seg", k)), cv2.IMREAD_UNCHANGED)
            masks.append(geom(mask))
            kp = pose_to_array(read_openpose_json(frame_path(video.root, "pose", k))
                               if task.keypoints else None)
            kp = g.keypoints(kp)
            kps.append(kp)
            drop = rng.random(task.n_drop) < aug.drop_limb
            stored = {name: geom(img, interpolation[name])
                      for name, img in read_stored(video.root, task, k).items()}
            maps.append(task.maps(kp, stored, self.size, drop=drop))
            person.append(bool(video.person[k]))
            if not self.with_flow or t == 0:
                flows.append(np.zeros((out_h, out_w, 2), np.float32))
                valid.append(np.zeros((out_h, out_w), np.float32))
                continue
            steps = [read_flow_png(frame_path(video.root, "flow", k - j)) for j in range(stride)]
            flow = compose_flows([f for f, _ in steps])
            ok = np.logical_and.reduce([m for _, m in steps]).astype(np.float32)
            flow = geom(flow, cv2.INTER_LINEAR) * g.scale
            if g.flip:
                flow = flow * np.array([-1.0, 1.0], np.float32)
            flows.append(np.ascontiguousarray(flow, dtype=np.float32))
            valid.append(geom(ok, cv2.INTER_NEAREST))

        frames_np = np.stack(frames).astype(np.float32) / 255.0
        frames_np = _color_jitter(frames_np, *jitter)

        def chw(x: np.ndarray) -> torch.Tensor:
            x = np.ascontiguousarray(x)
            return torch.from_numpy(x).permute(0, 3, 1, 2) if x.ndim == 4 else \
                torch.from_numpy(x)[:, None]

        keypoints = torch.from_numpy(np.stack(kps))
        if task.part:
            part_boxes, part_found = task.part_boxes(keypoints, self.size)
        else:
            part_boxes = torch.zeros(len(idx), 4)
            part_found = torch.zeros(len(idx), dtype=torch.bool)
        return Clip(
            maps=chw(np.stack(maps)),
            frames=chw(frames_np * 2.0 - 1.0),
            masks=chw(np.stack(masks).astype(np.float32) / 255.0),
            flow=chw(np.stack(flows)),
            flow_valid=chw(np.stack(valid).astype(np.float32)),
            keypoints=keypoints,
            person=torch.tensor(person),
            source=torch.tensor([v, idx[0], stride]),
            part_boxes=part_boxes.float(),
            part_found=part_found.bool(),
        )


def _color_jitter(frames: np.ndarray, brightness: float, contrast: float,
                  saturation: float) -> np.ndarray:
    """One brightness/contrast/saturation change for all frames `[T, H, W, 3]` in [0, 1]."""
    if brightness == contrast == saturation == 1.0:
        return frames
    out = frames * brightness
    mean = out.mean()  # the clip's mean, so every frame changes alike
    out = (out - mean) * contrast + mean
    gray = out.mean(axis=3, keepdims=True)
    out = (out - gray) * saturation + gray
    return np.clip(out, 0.0, 1.0)


def holdout_range(video: VideoIndex) -> tuple[int, int]:
    """The held-out frames [first, stop) of a video, for evaluation."""
    return video.train_frames, video.frames

