"""Dataset -> run directory: the training loop, its objective and schedule, and `vid2vid bench`."""
