import cv2
import numpy as np
import pytest

from preprocess.flow import DISFlow
from vid2vid.flow_png import (FLOW_LIMIT_PX, STEP, decode_flow, encode_flow, read_flow_png,
                              write_flow_png)
from vid2vid.png import encode_png


def test_round_trip_within_the_stored_precision(tmp_path):
    rng = np.random.default_rng(0)
    flow = (rng.standard_normal((31, 47, 2)) * 40).astype(np.float32)
    write_flow_png(tmp_path / "f.png", flow)
    back, valid = read_flow_png(tmp_path / "f.png")
    assert valid.all()
    assert np.abs(back - flow).max() <= STEP / 2 + 1e-6
    assert back.dtype == np.float32 and back.shape == flow.shape


def test_kitti_encoding_values_and_invalid_pixels():
    flow = np.array([[[1.0, -2.0], [np.nan, 0.0]], [[1e6, -1e6], [0.5, 0.25]]], np.float32)
    kitti = encode_flow(flow)
    assert kitti.dtype == np.uint16 and kitti.shape == (2, 2, 3)
    assert tuple(kitti[0, 0]) == (32768 + 64, 32768 - 128, 1)   # KITTI: raw = 64 * v + 2**15
    assert kitti[0, 1, 2] == 0                                  # NaN -> invalid
    back, valid = decode_flow(kitti)
    assert not valid[0, 1] and tuple(back[0, 1]) == (0, 0)
    assert back[1, 0, 0] == pytest.approx(FLOW_LIMIT_PX, abs=STEP)    # clipped, not wrapped
    assert back[1, 0, 1] == pytest.approx(-FLOW_LIMIT_PX, abs=STEP)


def test_file_is_a_standard_kitti_png_in_rgb_order(tmp_path):
    flow = np.zeros((4, 5, 2), np.float32)
    flow[..., 0] = 3.0
    write_flow_png(tmp_path / "f.png", flow)
    raw = cv2.imread(str(tmp_path / "f.png"), cv2.IMREAD_UNCHANGED)   # BGR as OpenCV reads
    assert raw.dtype == np.uint16
    assert (raw[..., 2] == 32768 + 3 * 64).all()                   # R holds u
    assert (raw[..., 0] == 1).all()                                # B holds valid


def test_stored_flow_is_backward_frame_n_to_n_minus_1():
    """frame_N[p] ~ frame_N-1[p + flow[p]]: content moving right gives negative u."""
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (80, 120), dtype=np.uint8), (5, 5), 0)
    prev = texture[:, 10:100]
    cur = texture[:, 7:97]          # content moved 3 px to the right
    flow = DISFlow()(np.ascontiguousarray(cur), np.ascontiguousarray(prev))
    inner = flow[20:-20, 20:-20]
    assert np.median(inner[..., 0]) == pytest.approx(-3, abs=0.3)
    assert np.median(inner[..., 1]) == pytest.approx(0, abs=0.3)


@pytest.mark.parametrize("shape,dtype", [((7, 5), np.uint8), ((6, 9, 3), np.uint16),
                                         ((4, 4, 3), np.uint8), ((3, 8, 4), np.uint8)])
def test_png_encoder_is_lossless_for_standard_readers(shape, dtype):
    rng = np.random.default_rng(2)
    img = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    back = cv2.imdecode(np.frombuffer(encode_png(img), np.uint8), cv2.IMREAD_UNCHANGED)
    if back.ndim == 3:
        back = back[..., [2, 1, 0, 3][:back.shape[2]]]
    assert back.dtype == dtype and np.array_equal(back, img)
