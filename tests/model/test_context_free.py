import numpy as np
import pytest

from model.context_free import fit_logistic_regression


def test_c_is_picked_on_dev_and_the_fit_is_deterministic():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 2

    def sample(n):
        y = rng.integers(0, 3, n)
        return centers[y] + rng.normal(size=(n, 8)), y

    (xt, yt), (xd, yd) = sample(300), sample(100)
    a = fit_logistic_regression(xt, yt, xd, yd, Cs=[1e-4, 1.0])
    assert set(a.dev_by_C) == {1e-4, 1.0} and a.C == max(a.dev_by_C, key=a.dev_by_C.get)
    assert a.dev_wa_f1 > 0.8                      # separable clusters
    b = fit_logistic_regression(xt, yt, xd, yd, Cs=[1e-4, 1.0])
    np.testing.assert_array_equal(a.classifier.predict(xd), b.classifier.predict(xd))
    with pytest.raises(ValueError, match="baseline.class_weights='x'"):
        fit_logistic_regression(xt, yt, xd, yd, class_weights="x")
    with pytest.raises(ValueError, match="baseline.Cs"):
        fit_logistic_regression(xt, yt, xd, yd, Cs=[])
