"""Benchmarks: each module prints a table of figures and runs its baseline in the same run."""
