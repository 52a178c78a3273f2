import numpy as np
import pytest

from airshed.model.apportionment import receptor_weights, source_receptor_matrix, transboundary_metrics


def _two_region_setup():
    # a 2 x 4 grid: left half region A, right half region B, one cell split 50/50
    frac = np.zeros((2, 2, 4))
    frac[0, :, :2] = 1.0
    frac[1, :, 2:] = 1.0
    frac[:, 1, 1] = [0.5, 0.5]
    area = np.full((2, 4), 4.0e6)
    return frac, area


def test_area_weights_normalised_and_split_cells_shared():
    frac, area = _two_region_setup()
    w = receptor_weights(frac, area)
    np.testing.assert_allclose(w.sum(axis=(1, 2)), 1.0, rtol=1e-15)
    # region A: 3.5 cells of area; the split cell has half the weight of a whole cell
    assert w[0, 1, 1] == pytest.approx(0.5 / 3.5)


def test_population_weighting_and_fallback():
    frac, area = _two_region_setup()
    pop = np.zeros((2, 4))
    pop[0, 0] = 100.0
    pop[0, 1] = 300.0
    w = receptor_weights(frac, area, pop)
    np.testing.assert_allclose(w[0, 0, :2], [0.25, 0.75])
    # region B has nobody: falls back to its area weights
    np.testing.assert_allclose(w[1], receptor_weights(frac, area)[1])


def test_source_receptor_is_weighted_mean_of_contributions():
    frac, area = _two_region_setup()
    w = receptor_weights(frac, area)
    rng = np.random.default_rng(1)
    contrib = rng.random((3, 2, 2, 4))
    sr = source_receptor_matrix(contrib, w)
    for r in range(2):
        for s in range(3):
            for k in range(2):
                assert sr[r, s, k] == pytest.approx((w[r] * contrib[s, k]).sum(), rel=1e-14)
    # linear: the matrix of the summed field is the sum of the matrices
    np.testing.assert_allclose(source_receptor_matrix(contrib.sum(0, keepdims=True), w)[:, 0],
                               sr.sum(axis=1), rtol=1e-13)


def test_transboundary_metrics_by_hand():
    # receptors A, B; sources A, B, outside
    sr = np.array([[6.0, 3.0, 1.0], [2.0, 8.0, 0.0]])
    pop = np.array([10.0, 20.0])
    m = transboundary_metrics(sr, np.array([0, 1]), pop)
    np.testing.assert_allclose(m["transboundary_share"], [0.4, 0.2])
    np.testing.assert_allclose(m["import_exposure"], [40.0, 40.0])
    # A exports 2 ug/m3 to 20 people, B exports 3 ug/m3 to 10 people
    np.testing.assert_allclose(m["export_exposure"], [40.0, 30.0])
    np.testing.assert_allclose(m["net_export_exposure"], [0.0, -10.0])
