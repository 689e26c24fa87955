"""Runlater benchmarks (``python -m bench``): throughput, lateness and their baselines.

Not part of the test suite: figures are goals, not gates (docs/quality.md, Benchmarks).
Everything runs on 127.0.0.1 against a throwaway Postgres cluster, with bounded load, and
every process and cluster started here is stopped again.
"""
