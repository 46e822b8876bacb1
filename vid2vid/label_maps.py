"""Semantic label maps: reading them, and turning them into the generator's input.

Torch-free, so preprocessing (`preprocess.labels`) and the task's map drawing
(`vid2vid.tasks.LabelTask`) share one copy: vid2vid's one-hot label channels
plus the instance boundaries, which tell apart two cars the labels alone merge.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vid2vid.errors import UserError
from vid2vid.video import list_images, natural_key

CITYSCAPES_NUM_CLASSES = 35  # vid2vid's label_nc for Cityscapes (label IDs 0..33 and one spare)
# Cityscapes label IDs of person, rider, car, truck, bus, caravan, trailer, train,
# motorcycle and bicycle: the "things" that move and that the foreground mask covers.
CITYSCAPES_FG_CLASSES = (24, 25, 26, 27, 28, 29, 30, 31, 32, 33)

# --------------------------------------------------------------------------- reading maps

def read_label_folder(folder: str | Path, kind: str = "label") -> list[Path]:
    """The PNGs of a per-frame map folder in natural order (`f2.png` before `f10.png`).

    Only PNG: a JPEG's compression turns class boundaries into IDs that were
    never there, so a folder of JPEG "label maps" is refused, not read.
    `kind` ("label" or "instance") only words the error messages.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{folder} does not exist; pass the folder that holds one {kind} "
                        "PNG per frame")
    if not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder; pass the folder that holds one "
                        f"{kind} PNG per frame")
    pngs = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file()),
                  key=lambda p: natural_key(p.name))
    if not pngs:
        others = list_images(folder)
        if others:
            raise UserError(f"{folder} holds {others[0].suffix} images but no PNG; {kind} maps "
                            "must be lossless PNGs (JPEG compression changes the IDs)")
        raise UserError(f"{folder} holds no .png {kind} maps; pass the folder that holds one "
                        f"{kind} PNG per frame")
    return pngs


def read_label_png(path: str | Path) -> np.ndarray:
    """An 8-bit class-ID map `[H, W]` uint8.

    Read with Pillow rather than OpenCV because OpenCV expands a palette PNG to
    its colours, while the palette indices are the class IDs (the PASCAL VOC
    convention); grayscale and palette PNGs are both accepted as they are.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            mode = im.mode
            if mode in ("L", "P"):
                return np.array(im, dtype=np.uint8)
    except FileNotFoundError:
        raise UserError(f"{path} does not exist; check the label folder") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise UserError(f"{path} is not a readable PNG ({e}); re-export it or remove it") from None
    if mode.startswith("I"):
        raise UserError(f"{path} is a 16/32-bit image; label maps must be 8-bit grayscale class "
                        "IDs (0-255): save it as 8-bit")
    if mode in ("RGB", "RGBA", "LA", "CMYK", "YCbCr"):
        raise UserError(f"{path} is a colour image ({mode}); pass the class-ID maps (one 8-bit "
                        "ID per pixel, e.g. Cityscapes' *_labelIds.png), not a colour rendering")
    raise UserError(f"{path} is a {mode!r} image, not an 8-bit class-ID map; save it as 8-bit "
                    "grayscale")


def read_instance_png(path: str | Path) -> np.ndarray:
    """An instance-ID map `[H, W]` uint16 from an 8- or 16-bit grayscale PNG."""
    path = Path(path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"{path} is not a readable image; re-export it or remove it")
    if img.ndim != 2 or img.dtype not in (np.uint8, np.uint16):
        raise UserError(f"{path} is not an 8- or 16-bit grayscale instance map ({img.dtype}, "
                        f"shape {img.shape}); save one instance ID per pixel as grayscale")
    return img.astype(np.uint16, copy=False)


# --------------------------------------------------------------------------- conditioning maps

def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class IDs -> one channel per class, as the generator reads them.

    Shape: `[H, W]` integer -> `[H, W, num_classes]` float32 (1.0 in the pixel's
    class channel, 0.0 elsewhere). An ID >= num_classes is refused: silently
    dropping it would hand the generator an all-zero pixel it never trained on.
    """
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an [H, W] integer array, got {labels.shape} "
                         f"{labels.dtype}")
    top = int(labels.max(initial=0))
    if top >= num_classes or int(labels.min(initial=0)) < 0:
        bad = top if top >= num_classes else int(labels.min())
        raise UserError(f"a label map holds class ID {bad} but there are {num_classes} classes "
                        f"(IDs 0-{num_classes - 1}); preprocess with --num-classes {top + 1}")
    h, w = labels.shape
    out = np.zeros((h * w, num_classes), np.float32)
    out[np.arange(h * w), labels.reshape(-1)] = 1.0
    return out.reshape(h, w, num_classes)


def instance_boundary(instances: np.ndarray) -> np.ndarray:
    """1.0 where a 4-neighbour holds another instance ID (both sides marked), else 0.0.

    vid2vid's `get_edges`: the labels give a car's class, the boundary map tells
    where one car ends and the one parked behind it begins.
    Shape: `[H, W]` integer -> `[H, W]` float32.
    """
    if instances.ndim != 2:
        raise ValueError(f"instances must be [H, W], got {instances.shape}")
    edge = np.zeros(instances.shape, bool)
    dx = instances[:, 1:] != instances[:, :-1]
    dy = instances[1:, :] != instances[:-1, :]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge.astype(np.float32)
