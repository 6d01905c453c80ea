"""Benchmarks and evaluation, run as `python -m bench.<name>`."""
