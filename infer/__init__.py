"""Run + driving motion -> video: transfer and evaluation (coming with the transfer issue)."""
