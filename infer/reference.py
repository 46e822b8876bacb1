"""The controlled benchmark: a generated video against the true frames of the same motion.

The synthetic dancer (`vid2vid sample`) is rendered exactly, so a model
trained on one of its motions and driven by another can be compared frame by
frame with the true renders of the driving motion (same figure, same
camera). `vid2vid demo` reports this beside the run's own evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

from infer.report import write_report
from vid2vid.errors import UserError


def compare_to_reference(generated: Path, reference: Path) -> dict:
    """PSNR and SSIM of a generated video against the true frames of the same motion.

    For the synthetic sample, whose driving clip is rendered exactly (same figure,
    same camera): the reference is resized to the generated frames' size with
    area averaging, then both are compared frame by frame, in constant memory.
    """
    import cv2

    from vid2vid.metrics import psnr, ssim, to_tensor
    from vid2vid.video import probe, read_frames

    gen_info = probe(Path(generated), 10**6, None)
    ref_info = probe(Path(reference), 10**6, None)
    w, h = gen_info.size
    scores_psnr, scores_ssim = [], []
    for g, r in zip(read_frames(gen_info), read_frames(ref_info)):
        r = cv2.resize(r, (w, h), interpolation=cv2.INTER_AREA)
        gt, rt = to_tensor([g]), to_tensor([r])
        scores_psnr.append(float(psnr(gt, rt)[0]))
        scores_ssim.append(float(ssim(gt, rt)[0]))
    if not scores_psnr:
        raise UserError(f"{generated} or {reference} has no frames to compare")
    return {"frames": len(scores_psnr), "psnr_db": sum(scores_psnr) / len(scores_psnr),
            "ssim": sum(scores_ssim) / len(scores_ssim), "generated": str(generated),
            "reference": str(reference),
            "per_frame": {"psnr_db": scores_psnr, "ssim": scores_ssim}}


def controlled_report(generated: Path, reference: Path, compare_video: Path, out: Path,
                      notes: str) -> tuple[dict, Path]:
    """Scores `generated` against `reference`; writes out/controlled.json and its own page,
    out/report.html, with `compare_video` embedded. Returns (the scores, the page)."""
    controlled = compare_to_reference(generated, reference)
    (out / "controlled.json").write_text(json.dumps(controlled, indent=1))
    page = write_report(
        out / "report.html",
        {"transfer vs true renders": {"PSNR dB": controlled["psnr_db"],
                                      "SSIM": controlled["ssim"],
                                      "frames": controlled["frames"]}},
        {"PSNR dB": controlled["per_frame"]["psnr_db"],
         "SSIM": controlled["per_frame"]["ssim"]},
        {"source | pose | result": compare_video},
        title="vid2vid demo: controlled benchmark", notes=notes)
    return controlled, page
