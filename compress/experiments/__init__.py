"""Experiment drivers behind the numbers in docs/RESULTS.md (run with `python -m compress.experiments.NAME`)."""
