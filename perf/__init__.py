"""Benchmarks and the accuracy lab, run from the repository root as `python -m perf.<name>`."""
