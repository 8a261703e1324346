"""Benchmarks (`make bench`): timings measured as ratios and percentiles in one run, never in tests."""
