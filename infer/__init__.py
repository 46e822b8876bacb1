"""Run + driving motion -> video: `vid2vid transfer`, and `vid2vid evaluate` with its report."""
