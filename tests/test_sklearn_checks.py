"""scikit-learn's own estimator checks, every one, with no expected failures."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from mlpx.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Checks that compare two mathematically equal fits to rtol=1e-7 run in float64, as
# scikit-learn's own suite runs its MLPs with per-check parameters
# (sklearn/utils/_test_common/instance_generator.py, PER_ESTIMATOR_CHECK_PARAMS). A float32
# fit on weights (2, 1, ...) and one on repeated rows sum in different orders and differ
# by one float32 ulp (~1e-7 relative); tests/test_sklearn.py checks float32 to 1e-5.
FLOAT64_CHECKS = {"check_sample_weight_equivalence_on_dense_data"}


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_compatible_estimator(estimator, check):
    if _check_name(check) in FLOAT64_CHECKS:
        estimator.set_params(dtype="float64")
    check(estimator)
