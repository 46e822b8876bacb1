"""Dataset -> run directory: the training loop and its schedule (coming with the training issue)."""
