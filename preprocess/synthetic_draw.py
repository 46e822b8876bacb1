"""Drawing the synthetic dancer of `preprocess.synthetic_dancer`: background, shaded parts, face.

Parts are anti-aliased distance fields in numpy (capsules, ellipses, convex
4-gons) lit by one light from the top left; the face details are OpenCV
anti-aliased drawing. All colours are RGB floats in [0, 1]; all positions
and sizes are frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

LIGHT = np.array([-0.45, -0.55, 0.70]) / np.linalg.norm([-0.45, -0.55, 0.70])  # from top left


def noise(rng: np.random.Generator, shape, blur: float) -> np.ndarray:
    n = rng.standard_normal(shape).astype(np.float32)
    if blur > 0:
        n = cv2.GaussianBlur(n, (0, 0), blur)
    return n / (n.std() + 1e-6)


def background(size: int, floor_y: float, rng: np.random.Generator) -> np.ndarray:
    """A wall (vertical gradient, blotchy noise) above a planked floor: `[H, W, 3]` float."""
    h = w = size
    y = np.arange(h, dtype=np.float32)[:, None, None] / h
    wall = rng.uniform(0.55, 0.8, 3).astype(np.float32)
    img = wall * (1.05 - 0.35 * y) * np.ones((h, w, 3), np.float32)
    img *= 1 + 0.05 * noise(rng, (h, w), size / 24)[..., None]
    horizon = int(floor_y - 0.12 * size)
    floor = rng.uniform(0.35, 0.6, 3).astype(np.float32) * [1.0, 0.8, 0.6]
    fy = np.clip((y[horizon:] - horizon / h) / max(1 - horizon / h, 1e-3), 0, 1)
    img[horizon:] = floor * (0.8 + 0.3 * fy)
    # Planks: lines denser towards the horizon, as a floor seen in perspective.
    for k in range(1, 12):
        yy = horizon + (h - horizon) * (k / 12) ** 1.6
        cv2.line(img, (0, int(yy)), (w, int(yy)), tuple(float(v) * 0.8 for v in floor), 1)
    img[horizon:horizon + max(1, size // 80)] *= 0.55  # skirting board shadow
    img *= 1 + 0.04 * noise(rng, (h, w), 0.7)[..., None]
    return np.clip(img, 0, 1)


class Canvas:
    """An RGB float image `[H, W, 3]` in [0, 1] that shaded parts are blended onto.

    Each part is a signed distance (pixels) plus a surface normal per pixel; the
    alpha is the distance clipped to one pixel (anti-aliasing) and the colour is the
    material's (pattern in the part's own coordinates, so it moves with the body)
    times a Lambert term with the light from the top left.
    """

    def __init__(self, image: np.ndarray, tile: np.ndarray, unit: float):
        self.image, self.tile, self.unit = image, tile, unit

    def _window(self, lo, hi):
        h, w = self.image.shape[:2]
        x0, y0 = max(int(lo[0]) - 1, 0), max(int(lo[1]) - 1, 0)
        x1, y1 = min(int(hi[0]) + 2, w), min(int(hi[1]) + 2, h)
        if x1 <= x0 or y1 <= y0:
            return None
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        return (slice(y0, y1), slice(x0, x1)), xs + 0.5, ys + 0.5

    def _pattern(self, kind: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Brightness multiplier of a material at part coordinates (u across, v along; units)."""
        n = self.tile[(v * 40).astype(int) % 64, (u * 40).astype(int) % 64]
        if kind == "stripes":
            return (0.8 + 0.2 * (np.sin(2 * np.pi * v / 0.45) > 0)) * (1 + 0.05 * n)
        if kind == "twill":
            return (0.9 + 0.08 * np.sin(2 * np.pi * (u + v) / 0.12)) * (1 + 0.06 * n)
        return 1 + 0.03 * n

    def _blend(self, win, alpha, normal_xy, color, pattern) -> None:
        sl = win
        nz = np.sqrt(np.clip(1 - (normal_xy ** 2).sum(-1), 0, 1))
        lambert = np.clip(normal_xy[..., 0] * LIGHT[0] + normal_xy[..., 1] * LIGHT[1]
                          + nz * LIGHT[2], 0, 1)
        shade = (0.35 + 0.75 * lambert) * pattern
        rgb = np.asarray(color, np.float32) * shade[..., None]
        a = alpha[..., None]
        self.image[sl] = self.image[sl] * (1 - a) + np.clip(rgb, 0, 1) * a

    def capsule(self, p0, p1, r0: float, r1: float, color, kind: str = "plain") -> None:
        """A limb from `p0` to `p1` (pixels), radius `r0` to `r1` (pixels)."""
        p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
        r = max(r0, r1)
        got = self._window(np.minimum(p0, p1) - r, np.maximum(p0, p1) + r)
        if got is None:
            return
        win, xs, ys = got
        d = p1 - p0
        length2 = float(d @ d) + 1e-6
        t = np.clip(((xs - p0[0]) * d[0] + (ys - p0[1]) * d[1]) / length2, 0, 1)
        ox, oy = xs - (p0[0] + t * d[0]), ys - (p0[1] + t * d[1])
        dist = np.sqrt(ox ** 2 + oy ** 2)
        rad = r0 + (r1 - r0) * t
        alpha = np.clip(rad - dist + 0.5, 0, 1)
        normal = np.stack([ox, oy], -1) / rad[..., None]
        across = (ox * -d[1] + oy * d[0]) / math.sqrt(length2) / self.unit
        self._blend(win, alpha, normal, color,
                    self._pattern(kind, across, t * math.sqrt(length2) / self.unit))

    def ellipse(self, c, a: float, b: float, angle: float, color, hair=None) -> None:
        """An ellipse (half-axes `a`, `b` px, rotated by `angle`); `hair` colours its top."""
        r = max(a, b)
        got = self._window(np.asarray(c) - r, np.asarray(c) + r)
        if got is None:
            return
        win, xs, ys = got
        cs, sn = math.cos(angle), math.sin(angle)
        u = ((xs - c[0]) * cs + (ys - c[1]) * sn) / a
        v = (-(xs - c[0]) * sn + (ys - c[1]) * cs) / b
        rho = np.sqrt(u ** 2 + v ** 2)
        alpha = np.clip((1 - rho) * min(a, b) + 0.5, 0, 1)
        nu, nv = u * 0.9, v * 0.9
        normal = np.stack([nu * cs - nv * sn, nu * sn + nv * cs], -1)
        if hair is None:
            self._blend(win, alpha, normal, color, self._pattern("plain", u, v))
            return
        # Hair: the top of the head down to a wavy fringe above the brows.
        is_hair = (v < -0.55 + 0.06 * np.cos(9 * u)) | ((np.abs(u) > 0.88) & (v < 0.1))
        col = np.where(is_hair[..., None], np.asarray(hair, np.float32),
                       np.asarray(color, np.float32))
        sl = win
        nz = np.sqrt(np.clip(1 - (normal ** 2).sum(-1), 0, 1))
        lambert = np.clip(normal[..., 0] * LIGHT[0] + normal[..., 1] * LIGHT[1] + nz * LIGHT[2],
                          0, 1)
        rgb = col * (0.45 + 0.65 * lambert)[..., None]
        a = alpha[..., None]
        self.image[sl] = self.image[sl] * (1 - a) + np.clip(rgb, 0, 1) * a

    def quad(self, left_top, right_top, right_bottom, left_bottom, color, kind: str) -> None:
        """A convex 4-gon (torso, pelvis) shaded as a cylinder along its top-bottom axis."""
        pts = np.asarray([left_top, right_top, right_bottom, left_bottom], np.float32)
        got = self._window(pts.min(0), pts.max(0))
        if got is None:
            return
        win, xs, ys = got
        y0, x0 = win[0].start, win[1].start
        mask = np.zeros(xs.shape, np.uint8)
        # 4 bits of sub-pixel precision and LINE_AA: a smooth edge.
        cv2.fillConvexPoly(mask, np.round((pts - [x0, y0]) * 16).astype(np.int32), 255,
                           cv2.LINE_AA, shift=4)
        alpha = mask.astype(np.float32) / 255
        top, bottom = (pts[0] + pts[1]) / 2, (pts[2] + pts[3]) / 2
        axis = bottom - top
        length = float(np.linalg.norm(axis)) + 1e-6
        t = np.clip(((xs - top[0]) * axis[0] + (ys - top[1]) * axis[1]) / length ** 2, 0, 1)
        half = (np.linalg.norm(pts[1] - pts[0]) * (1 - t) + np.linalg.norm(pts[2] - pts[3]) * t) / 2
        lateral = ((xs - top[0]) * -axis[1] + (ys - top[1]) * axis[0]) / length
        nx = np.clip(lateral / (half + 1e-6), -1, 1) * 0.9
        normal = np.stack([nx * -axis[1] / length, nx * axis[0] / length], -1)
        self._blend(win, alpha, normal, color,
                    self._pattern(kind, lateral / self.unit, t * length / self.unit))


@dataclass(frozen=True)
class Look:
    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    shoes: tuple


def pick_look(rng: np.random.Generator) -> Look:
    skins = [(0.96, 0.80, 0.69), (0.88, 0.67, 0.52), (0.72, 0.52, 0.38), (0.52, 0.36, 0.26)]
    shirts = [(0.85, 0.2, 0.2), (0.2, 0.45, 0.85), (0.2, 0.65, 0.3), (0.9, 0.65, 0.15),
              (0.6, 0.25, 0.7)]
    trousers = [(0.15, 0.2, 0.4), (0.25, 0.25, 0.27), (0.45, 0.35, 0.2), (0.1, 0.35, 0.35)]
    pick = lambda options: options[int(rng.integers(len(options)))]  # noqa: E731
    return Look(skin=pick(skins), hair=pick([(0.1, 0.07, 0.05), (0.35, 0.2, 0.1),
                                                (0.75, 0.6, 0.3)]),
                 shirt=pick(shirts), trousers=pick(trousers), shoes=(0.12, 0.1, 0.1))


def draw_face(img: np.ndarray, face: np.ndarray, unit: float, look: Look) -> None:
    """Eyes, brows, nose and lips (OpenCV, anti-aliased) at the 70 face keypoints (px)."""
    def poly(idx) -> np.ndarray:
        return np.round(face[list(idx)] * 16).astype(np.int32)

    line = max(1, int(round(0.05 * unit)))
    hair = tuple(float(c) * 0.8 for c in look.hair)
    for eye, pupil in ((range(36, 42), 68), (range(42, 48), 69)):
        cv2.fillPoly(img, [poly(eye)], (0.97, 0.97, 0.95), cv2.LINE_AA, shift=4)
        c = tuple(int(v) for v in np.round(face[pupil] * 16))
        cv2.circle(img, c, int(0.045 * unit * 16), (0.25, 0.15, 0.08), -1, cv2.LINE_AA, shift=4)
        cv2.circle(img, c, int(0.022 * unit * 16), (0.02, 0.02, 0.02), -1, cv2.LINE_AA, shift=4)
        cv2.polylines(img, [poly(list(eye)[:4])], False, (0.1, 0.07, 0.05), line, cv2.LINE_AA, 4)
    for brow in (range(17, 22), range(22, 27)):
        cv2.polylines(img, [poly(brow)], False, hair, line, cv2.LINE_AA, 4)
    skin_dark = tuple(float(c) * 0.6 for c in look.skin)
    cv2.polylines(img, [poly(range(31, 36))], False, skin_dark, line, cv2.LINE_AA, 4)
    cv2.polylines(img, [poly(range(28, 31))], False, tuple(float(c) * 0.85 for c in look.skin),
                  line, cv2.LINE_AA, 4)
    cv2.fillPoly(img, [poly(range(48, 60))], (0.75, 0.3, 0.3), cv2.LINE_AA, shift=4)
    cv2.polylines(img, [poly(list(range(60, 68)) + [60])], False, (0.35, 0.1, 0.1), line,
                  cv2.LINE_AA, 4)
