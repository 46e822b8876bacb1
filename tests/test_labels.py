"""The label-to-scene import: NVIDIA vid2vid's Cityscapes layout and plain label folders
-> dataset directories, the conditioning maps, the label retrieval baseline, bad input."""

import contextlib
import io
import json
import os
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from infer.label_retrieval import LabelIndex
from preprocess.labels import convert_vid2vid, import_labels
from vid2vid.label_maps import (CITYSCAPES_FG_CLASSES, instance_boundary, one_hot,
                                read_label_folder, read_label_png)
from preprocess.dataset_writer import PreprocessOptions
from vid2vid.dataset_dir import PROGRESS, frame_path, load_dataset
from vid2vid.errors import UserError
from vid2vid.flow_png import read_flow_png

LABELS = PreprocessOptions(task="labels")


def cityscapes_root() -> Path:
    path = os.environ.get("VID2VID_TEST_CITYSCAPES")
    root = Path(path) if path else Path(__file__).parents[2] / "shared/data/cityscapes"
    if not (root / "train_A").is_dir():
        pytest.skip(f"no Cityscapes sample in vid2vid's layout at {root} (set "
                    "VID2VID_TEST_CITYSCAPES to a folder with train_A/ train_B/ train_inst/)")
    return root


def read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The shared Cityscapes sample converted once at 128 px wide (fast, still 4 x 30 frames)."""
    root = cityscapes_root()
    out = tmp_path_factory.mktemp("cityscapes") / "city"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summaries = convert_vid2vid(root, out, replace(LABELS, max_size=128), progress=False)
    return root, out, summaries, printed.getvalue()


def test_convert_vid2vid_writes_one_complete_dataset_per_sequence(converted):
    root, out, summaries, printed = converted
    seqs = sorted(p.name for p in (root / "train_A").iterdir() if p.is_dir())
    assert [s.out.name for s in summaries] == seqs and len(seqs) == 4
    fg = np.array(CITYSCAPES_FG_CLASSES)
    for seq in seqs:
        ds = out / seq
        meta = load_dataset(ds)
        assert meta["task"] == "labels" and meta["frames"] == 30
        assert meta["size"] == [128, 64]
        assert meta["counts"] == {"found": 30, "interpolated": 0, "missing": 0}
        assert meta["labels"]["num_classes"] == 35
        assert meta["labels"]["fg_classes"] == list(CITYSCAPES_FG_CLASSES)
        assert meta["labels"]["instances"] is True
        assert meta["options"]["labels"] == str((root / "train_A" / seq).resolve())
        for sub, n in (("frames", 30), ("labels", 30), ("instances", 30), ("seg", 30),
                       ("flow", 29)):
            assert len(list((ds / sub).iterdir())) == n, (seq, sub)
        assert not (ds / "pose").exists() and not (ds / "edges").exists()
        assert not (ds / PROGRESS).exists()
        source_ids = set(np.unique(read(sorted((root / "train_A" / seq).iterdir())[0])))
        present = set()
        for k in range(30):
            labels = read(frame_path(ds, "labels", k))
            assert labels.dtype == np.uint8 and labels.shape == (64, 128)
            present |= set(np.unique(labels).tolist())
            seg = read(frame_path(ds, "seg", k))
            np.testing.assert_array_equal(seg, np.where(np.isin(labels, fg), 255, 0))
            inst = read(frame_path(ds, "instances", k))
            assert inst.dtype == np.uint16 and inst.shape == (64, 128)
            if k == 0:  # nearest neighbour: only IDs of the source map, never a blend
                assert set(np.unique(labels).tolist()) <= source_ids
        assert meta["labels"]["class_ids"] == sorted(present)
        assert read(frame_path(ds, "frames", 0)).shape == (64, 128, 3)
        flow, valid = read_flow_png(frame_path(ds, "flow", 1))
        assert flow.shape == (64, 128, 2) and valid.all()
    assert "test_A" in printed and "vid2vid transfer" in printed
    assert printed.count("30 frames with label maps") == 4


def test_convert_rerun_says_already_complete(converted, capsys):
    root, out, _, _ = converted
    again = convert_vid2vid(root, out, replace(LABELS, max_size=128), progress=False)
    assert all(s.skipped and s.frames == 30 for s in again)
    assert capsys.readouterr().out.count("already complete") == 4


def test_label_index_finds_the_training_frame_of_an_exact_copy(converted):
    _, out, _, _ = converted
    ds = out / "seq0001"
    index = LabelIndex.from_dataset(ds, stop=20)
    assert len(index) == 20
    query = read(frame_path(ds, "labels", 13))
    assert index.nearest(query) == 13
    assert index.distance(query, query) == 0.0
    assert index.distances(query)[13] == 0.0 and (index.distances(query) >= 0).all()
    with pytest.raises(UserError, match="frame range"):
        LabelIndex.from_dataset(ds, start=40)


# --------------------------------------------------------------------------- a folder of frames

def write_sequence(root: Path, n: int = 8, size=(64, 32), instances: bool = True):
    """A car (class 26) driving right over road (7) under sky (23), as frames + maps."""
    w, h = size
    for d in ("frames", "labels", "inst"):
        (root / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (h, w + 3 * n, 3), np.uint8)
    for k in range(n):
        labels = np.full((h, w), 23, np.uint8)
        labels[h // 2:] = 7
        x = 4 + 3 * k
        labels[h // 2 - 4:h // 2 + 6, x:x + 12] = 26
        inst = np.zeros((h, w), np.uint16)
        inst[labels == 26] = 26001
        frame = np.ascontiguousarray(texture[:, 3 * k:3 * k + w])
        frame[labels == 26] = (200, 30, 30)
        cv2.imwrite(str(root / "frames" / f"f{k}.png"), frame)
        cv2.imwrite(str(root / "labels" / f"f{k}.png"), labels)  # natural order: f2 < f10
        if instances:
            cv2.imwrite(str(root / "inst" / f"f{k}.png"), inst)
    return root / "frames", root / "labels", root / "inst"


def test_import_labels_from_a_frame_folder(tmp_path):
    frames, labels, inst = write_sequence(tmp_path / "in")
    out = tmp_path / "ds"
    options = replace(LABELS, labels=str(labels), instances=str(inst), fg_classes=(26,))
    summary = import_labels(frames, out, options, progress=False)
    assert summary.frames == 8 and "8 frames with label maps (3 classes" in summary.line()
    # A frame folder carries no rate: the summary says which one the dataset got.
    assert "25 fps assumed for a frame folder, pass --fps" in summary.line()
    given = import_labels(frames, tmp_path / "ds25", replace(options, fps=25.0), progress=False)
    assert "assumed" not in given.line()
    meta = load_dataset(out)
    assert meta["labels"]["class_ids"] == [7, 23, 26] and meta["labels"]["fg_classes"] == [26]
    assert meta["source"]["kind"] == "frames" and meta["size"] == [64, 32]
    for k in range(8):
        src = read(labels / f"f{k}.png")
        np.testing.assert_array_equal(read(frame_path(out, "labels", k)), src)
        np.testing.assert_array_equal(read(frame_path(out, "seg", k)), (src == 26) * 255)
        assert read(frame_path(out, "instances", k)).max() == 26001
    # The car moves 3 px right per frame: backward flow on the car points 3 px left.
    flow, _ = read_flow_png(frame_path(out, "flow", 4))
    car = read(frame_path(out, "labels", 4)) == 26
    assert abs(float(np.median(flow[car][:, 0])) + 3) < 1.0

    # Interrupted after 3 frames: the next run resumes and ends with the same dataset.
    meta["complete"] = False
    (out / "meta.json").write_text(json.dumps(meta))
    (out / PROGRESS).write_text("".join(json.dumps({"i": k, "status": "found"}) + "\n"
                                        for k in range(3)) + '{"i": 3, "sta')
    for k in range(3, 8):
        for sub in ("frames", "labels", "seg", "instances", "flow"):
            frame_path(out, sub, k).unlink()
    resumed = import_labels(frames, out, options, progress=False)
    assert not resumed.skipped and resumed.frames == 8
    assert load_dataset(out)["labels"]["class_ids"] == [7, 23, 26]
    assert len(list((out / "flow").iterdir())) == 7

    # Edited maps are not mistaken for the finished dataset of the old ones.
    edited = read(labels / "f5.png")
    edited[0, 0] = 11
    cv2.imwrite(str(labels / "f5.png"), edited)
    with pytest.raises(UserError, match="other label maps.*--overwrite"):
        import_labels(frames, out, options, progress=False)
    import_labels(frames, out, options, overwrite=True, progress=False)
    assert load_dataset(out)["labels"]["class_ids"] == [7, 11, 23, 26]


def test_downscaled_frames_get_nearest_neighbour_labels(tmp_path):
    frames, labels, _ = write_sequence(tmp_path / "in", n=3, size=(128, 64), instances=False)
    out = tmp_path / "ds"
    import_labels(frames, out, replace(LABELS, labels=str(labels), max_size=64, flow=None,
                                       end="2"), progress=False)
    meta = load_dataset(out)
    assert meta["size"] == [64, 32] and meta["frames"] == 2
    assert meta["labels"]["instances"] is False and not (out / "instances").exists()
    small = read(frame_path(out, "labels", 1))
    assert small.shape == (32, 64) and set(np.unique(small).tolist()) == {7, 23, 26}
    expected = cv2.resize(read(labels / "f1.png"), (64, 32), interpolation=cv2.INTER_NEAREST_EXACT)
    np.testing.assert_array_equal(small, expected)


# --------------------------------------------------------------------------- maps

def test_one_hot_and_instance_boundary():
    labels = np.array([[0, 2], [1, 2]], np.uint8)
    oh = one_hot(labels, 3)
    assert oh.shape == (2, 2, 3) and oh.dtype == np.float32
    np.testing.assert_array_equal(oh.argmax(-1), labels)
    np.testing.assert_array_equal(oh.sum(-1), 1.0)
    with pytest.raises(UserError, match="class ID 2 .* 2 classes"):
        one_hot(labels, 2)

    inst = np.zeros((4, 5), np.int32)
    inst[1:3, 1:3] = 7
    edge = instance_boundary(inst)
    assert edge.dtype == np.float32
    expected = np.array([[0, 1, 1, 0, 0],
                         [1, 1, 1, 1, 0],
                         [1, 1, 1, 1, 0],
                         [0, 1, 1, 0, 0]], np.float32)
    np.testing.assert_array_equal(edge, expected)
    assert instance_boundary(np.full((3, 3), 5)).sum() == 0


def test_label_index_on_hand_made_maps():
    a = np.zeros((64, 128), np.uint8)
    b = a.copy()
    b[:, :64] = 7                      # half the picture differs from a
    c = a.copy()
    c[:8, :8] = 7                      # a corner (1/128 of the picture) differs from a
    index = LabelIndex([b, c], frames=[10, 20])
    assert index.nearest(a) == 20
    assert index.distance(a, b) == pytest.approx(0.5)
    assert index.distance(a, c) == pytest.approx(1 / 128)
    np.testing.assert_allclose(index.distances(a), [0.5, 1 / 128])


def test_read_label_png_accepts_palette_and_refuses_colour_and_16_bit(tmp_path):
    ids = np.array([[3, 4], [5, 33]], np.uint8)
    pal = Image.fromarray(ids, mode="L").convert("P")
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 7)])
    Image.fromarray(ids).save(tmp_path / "gray.png")
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(read_label_png(tmp_path / "gray.png"), ids)
    np.testing.assert_array_equal(read_label_png(tmp_path / "pal.png"), ids)
    cv2.imwrite(str(tmp_path / "rgb.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(UserError, match="rgb.png is a colour image"):
        read_label_png(tmp_path / "rgb.png")
    cv2.imwrite(str(tmp_path / "deep.png"), ids.astype(np.uint16))
    with pytest.raises(UserError, match="deep.png is a 16/32-bit image.*8-bit"):
        read_label_png(tmp_path / "deep.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="junk.png is not a readable PNG"):
        read_label_png(tmp_path / "junk.png")


# --------------------------------------------------------------------------- bad input

def test_bad_inputs_are_one_line_user_errors(tmp_path):
    frames, labels, inst = write_sequence(tmp_path / "in", n=4)
    out = tmp_path / "ds"

    def run(**kw):
        import_labels(frames, out, replace(LABELS, **{"labels": str(labels), "flow": None, **kw}),
                      progress=False)

    with pytest.raises(UserError, match="nowhere does not exist"):
        run(labels=str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="needs --labels"):
        import_labels(frames, out, LABELS, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="empty holds no .png label maps"):
        run(labels=str(empty))
    jpgs = tmp_path / "jpgs"
    jpgs.mkdir()
    cv2.imwrite(str(jpgs / "a.jpg"), np.zeros((32, 64), np.uint8))
    with pytest.raises(UserError, match="lossless PNG"):
        run(labels=str(jpgs))
    with pytest.raises(UserError, match="class ID 26 but there are 20 classes.*--num-classes 27"):
        run(num_classes=20, fg_classes=(1,))
    with pytest.raises(UserError, match="foreground class 40"):
        run(fg_classes=(40,))
    few = tmp_path / "inst3"
    few.mkdir()
    for k in range(3):
        (few / f"f{k}.png").write_bytes((inst / f"f{k}.png").read_bytes())
    with pytest.raises(UserError, match="3 instance maps but .* 4 label maps"):
        run(instances=str(few))
    (labels / "f3.png").unlink()
    with pytest.raises(UserError, match="3 label maps but .*frames holds 4 frames"):
        run()
    cv2.imwrite(str(labels / "f3.png"), np.zeros((16, 64), np.uint8))
    with pytest.raises(UserError, match="f3.png is 64x16 but the frames .* are 64x32"):
        run(start="3")
    assert not (out / "labels").exists()  # every check above ran before anything was written

    # A bad map further on stops the import there; once it is fixed, the next run starts over.
    cv2.imwrite(str(labels / "f3.png"), np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(UserError, match="f3.png is a colour image"):
        run()
    assert len(list((out / "labels").iterdir())) == 3
    cv2.imwrite(str(labels / "f3.png"), np.full((32, 64), 9, np.uint8))
    run()
    assert load_dataset(out)["labels"]["class_ids"] == [7, 9, 23, 26]


def test_convert_refuses_roots_outside_vid2vids_layout(tmp_path):
    with pytest.raises(UserError, match="no train_A folder"):
        convert_vid2vid(tmp_path, tmp_path / "out", LABELS, progress=False)
    (tmp_path / "train_A" / "seq0000").mkdir(parents=True)
    with pytest.raises(UserError, match="train_B/seq0000 is missing"):
        convert_vid2vid(tmp_path, tmp_path / "out", LABELS, progress=False)
    with pytest.raises(UserError, match="nothing is not a folder"):
        convert_vid2vid(tmp_path / "nothing", tmp_path / "out", LABELS, progress=False)


def test_read_label_folder_sorts_naturally(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in read_label_folder(tmp_path)] == ["f1.png", "f2.png", "f10.png"]
    with pytest.raises(UserError, match="is a file, not a folder"):
        read_label_folder(tmp_path / "f1.png")
