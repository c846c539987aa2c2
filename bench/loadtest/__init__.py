"""The load test: mixed traffic from wrk against ``lossd serve --workers 2`` on loopback.

``python -m bench.loadtest`` (``make loadtest``) runs the long version and writes its figures to
bench/RESULTS.md; tests/e2e/test_loadtest_short.py runs a short one in CI. See runner.py.
"""
