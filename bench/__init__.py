"""Benchmarks: each script measures a goal of an issue against a baseline taken in the same run."""
