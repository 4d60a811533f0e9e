"""Benchmarks: each prints a table of ratios measured in one run and writes results/bench/<name>.json."""
