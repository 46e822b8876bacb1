"""Hands and a face for dreamed bodies: `infer.details` lends them from the training frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dream.motion_data import read_keypoints
from infer.details import DetailLender


def lender_for(dataset: Path, holdout: float, torso: float, joints: tuple[bool, ...]
               ) -> DetailLender | None:
    """A DetailLender from the training share of a pose dataset; None where the dataset is
    gone (a run copied without its data) or shows no hands or face."""
    if not Path(dataset).exists():
        return None
    _, keypoints = read_keypoints(dataset)
    keypoints = keypoints[:int(np.floor(len(keypoints) * (1.0 - holdout)))]
    lender = DetailLender(keypoints, torso, joints)
    return lender if lender.parts else None
