"""A real user of the derivatives: XGBoost trained with a custom objective whose gradient and
Hessian come from a live ``lossd serve`` must equal XGBoost's built-in ``binary:logistic``.

The script is docs/derivatives.md's example ("an XGBoost custom objective"), extracted and run
as written (its address pointed at the live server through ``LOSSD_URL``), so the page cannot
go stale. Binary cross-entropy from logits, reduction ``sum``, ``y_pred`` as ``(n, 1)``, has
gradient ``sigmoid(x) - t`` and Hessian ``sigmoid(x) (1 - sigmoid(x))`` per row: XGBoost's own
logistic objective. 20 rounds, margins within 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_readme import doc_example

xgb = pytest.importorskip("xgboost", reason="xgboost-cpu (the conformance extra) is not installed")

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


def test_the_docs_xgboost_example_equals_binary_logistic(live_server: str, tmp_path: Path) -> None:
    script = tmp_path / "xgboost_lossd.py"
    script.write_text(doc_example("derivatives.md", "python", "# xgboost_lossd.py"))
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "LOSSD_URL": live_server},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["max_margin_difference"] <= 1e-5, summary
    low, high = summary["margins"]
    assert low < -2 and high > 2, summary  # 20 rounds moved the margins far from 0


def test_base_score_zero_for_the_custom_objective_is_binary_logistic_at_one_half() -> None:
    # binary:logistic takes base_score as a probability and starts from its logit,
    # logit(0.5) = 0; a custom objective takes it as a margin. Untrained, both give margin 0,
    # while binary:logistic at 0.8 starts at logit(0.8) = ln 4.
    rng = np.random.default_rng(0)
    data = xgb.DMatrix(rng.normal(size=(20, 5)), label=(rng.random(20) > 0.5).astype(float))

    def margins(params: dict[str, object]) -> np.ndarray:
        booster = xgb.train({"tree_method": "hist", **params}, data, num_boost_round=0)
        return np.asarray(booster.predict(data, output_margin=True))

    assert np.all(margins({"objective": "binary:logistic", "base_score": 0.5}) == 0)
    assert np.all(margins({"base_score": 0.0}) == 0)
    np.testing.assert_allclose(
        margins({"objective": "binary:logistic", "base_score": 0.8}), np.log(4), rtol=1e-6
    )
