"""Benchmarks runnable as modules (`python -m bench.linkage`); `gsp bench` lives in gsp/bench.py."""
