"""`--keypoints DIR`: OpenPose JSON from elsewhere instead of our detector."""

from __future__ import annotations

from pathlib import Path

from vid2vid.errors import UserError
from vid2vid.pose import Pose, read_openpose_json
from vid2vid.video import natural_key


class KeypointFolder:
    """One OpenPose JSON per frame, in natural sort order, in source-video pixels."""

    def __init__(self, folder: str | Path, source_size: tuple[int, int],
                 stored_size: tuple[int, int]):
        self.folder = Path(folder)
        self.files = sorted((p for p in self.folder.iterdir() if p.suffix.lower() == ".json"),
                            key=lambda p: natural_key(p.name))
        if not self.files:
            raise UserError(f"{self.folder} holds no .json files; --keypoints expects one "
                            "OpenPose JSON per frame (e.g. OpenPose's --write_json output)")
        self.sx = stored_size[0] / source_size[0]
        self.sy = stored_size[1] / source_size[1]
        # Fail now, not after an hour of processing, on a folder of the wrong kind.
        read_openpose_json(self.files[0])

    def check_count(self, n_frames: int, truncated: bool = False) -> None:
        """Exactly one JSON file per frame; a truncated video may have fewer frames than
        the JSON made from its whole (the surplus files are its lost tail)."""
        if len(self.files) != n_frames and not (truncated and len(self.files) > n_frames):
            raise UserError(
                f"{self.folder} holds {len(self.files)} JSON files but the video has {n_frames} "
                "frames; pass the keypoints of exactly these frames (same --start/--end/--fps)"
            )

    def __call__(self, index: int) -> Pose | None:
        if index >= len(self.files):
            raise UserError(
                f"{self.folder} holds {len(self.files)} JSON files but the video has more "
                "frames; pass the keypoints of exactly these frames (same --start/--end/--fps)"
            )
        pose = read_openpose_json(self.files[index])
        return None if pose is None else pose.scaled(self.sx, self.sy)
