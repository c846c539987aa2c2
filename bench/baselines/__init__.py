"""Baselines the HTTP benchmarks compare lossd with."""
