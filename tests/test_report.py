"""The HTML report: its structure, and in a real headless browser, the table and a playing video."""

import base64
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from infer.report import write_report
from tests.helpers_video import noise_frames
from vid2vid.errors import UserError
from vid2vid.video_writer import VideoWriter, side_by_side

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class Elements(HTMLParser):
    """Collects (tag, attrs) of every start tag and the text of table cells."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data.strip())

    def find(self, tag):
        return [a for t, a in self.tags if t == tag]


def parse(text: str) -> Elements:
    p = Elements()
    p.feed(text)
    return p


def comparison_video(path, frames=10, fps=10):
    """A tiny real | generated side-by-side mp4."""
    real = noise_frames(frames, w=48, h=32, seed=0)
    fake = noise_frames(frames, w=48, h=32, seed=1)
    first = side_by_side([real[0], fake[0]], ["real", "generated"])
    with VideoWriter(path, fps=fps, size=(first.shape[1], first.shape[0])) as video:
        for r, g in zip(real, fake):
            video.write(side_by_side([r, g], ["real", "generated"]))
    return path


TABLE = {"model": {"PSNR": 24.5, "SSIM": 0.81, "warp error": 0.0031},
         "retrieval baseline": {"PSNR": 19.25, "SSIM": 0.62, "warp error": 0.0112},
         "real video": {"warp error": 0.0025}}


def make_report(tmp_path, **kwargs):
    video = comparison_video(tmp_path / "compare.mp4")
    per_frame = {"PSNR": {"model": [24, 25, math.nan, 26, 23.5],
                          "retrieval baseline": [19, 20, 18, 21, 19]},
                 "pose distance": [0.1, 0.12, 0.09, math.inf, 0.11]}
    return write_report(tmp_path / "out" / "report.html", TABLE, per_frame,
                        {"real | generated": video}, title="dancer: self-reenactment", **kwargs)


def test_report_holds_the_table_plots_and_an_embedded_video(tmp_path):
    path = make_report(tmp_path, notes="run runs/dancer, frames 1258..1572")
    text = path.read_text()
    doc = parse(text)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]
    assert doc.find("table")[0]["id"] == "metrics"
    assert doc.cells[:4] == ["method", "PSNR", "SSIM", "warp error"]
    assert doc.cells[4:8] == ["model", "24.5", "0.81", "0.0031"]
    assert doc.cells[12:] == ["real video", "\u2013", "\u2013", "0.0025"]   # dashes when missing
    # Two plots; the NaN splits the model's line into two polylines.
    assert len(doc.find("svg")) == 2
    assert len(doc.find("polyline")) == 2 + 1 + 1
    # The video is inside the page.
    src = doc.find("video")[0]["src"]
    assert src.startswith("data:video/mp4;base64,")
    assert base64.b64decode(src.split(",", 1)[1]) == (tmp_path / "compare.mp4").read_bytes()
    # Self-contained: nothing is fetched from elsewhere (the SVG namespace is only a name).
    outside = re.sub(r"data:video/mp4;base64,[A-Za-z0-9+/=]+", "", text)
    assert "<script>" in text and "http" not in outside.replace("http://www.w3.org/2000/svg", "")


def test_more_tables_follow_the_metrics_under_their_headings(tmp_path):
    drift = {"model, PSNR dB": {"first third": 25.0, "last third": 23.5, "drift": 1.5},
             "retrieval, PSNR dB": {"first third": 20.0, "last third": math.nan, "drift": None}}
    path = make_report(tmp_path, tables={"Drift: first vs last third": drift})
    text = path.read_text()
    doc = parse(text)
    assert [t["id"] for t in doc.find("table")] == ["metrics", "table-1"]
    assert "<h2>Drift: first vs last third</h2>" in text
    assert text.index("<h2>Drift") > text.index('id="metrics"')
    start = doc.cells.index("first third")              # after an empty corner cell
    assert doc.cells[start:start + 11] == [
        "first third", "last third", "drift", "model, PSNR dB", "25", "23.5", "1.5",
        "retrieval, PSNR dB", "20", "\u2013", "\u2013"]


def test_large_videos_are_linked_and_missing_ones_refused(tmp_path):
    path = make_report(tmp_path, max_embed_bytes=100)
    src = parse(path.read_text()).find("video")[0]["src"]
    assert src == "../compare.mp4"
    with pytest.raises(UserError, match="does not exist"):
        write_report(tmp_path / "r.html", TABLE, {}, {"x": tmp_path / "nope.mp4"})


def find_browser():
    for name in BROWSERS:
        exe = shutil.which(name)
        if exe:
            return exe
    pytest.skip("no chromium in PATH (apt-get install chromium) to check the report in a "
                "real browser")


def test_report_plays_in_headless_chromium(tmp_path):
    browser = find_browser()
    path = make_report(tmp_path)
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--mute-audio", f"--user-data-dir={tmp_path / 'profile'}",
           "--autoplay-policy=no-user-gesture-required", "--virtual-time-budget=5000",
           "--dump-dom", path.resolve().as_uri()]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    doc = parse(result.stdout)
    # The table, as the browser built it.
    assert doc.find("table") and doc.find("table")[0].get("id") == "metrics"
    assert "retrieval baseline" in doc.cells and "24.5" in doc.cells
    assert len(doc.find("svg")) == 2
    # The video decoded (H.264 in the browser), has the right length, and played.
    (video,) = doc.find("video")
    assert video.get("data-state") == "loaded", video.get("data-state")
    assert float(video["data-duration"]) == pytest.approx(1.0, abs=0.05)
    assert int(video["data-ready-state"]) >= 2
    assert video.get("data-played") == "true"
