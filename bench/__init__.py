"""Benchmarks: memory and speed figures, measured as ratios against anchors in the same run."""
