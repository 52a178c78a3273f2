"""The mechanism table: composition, origins, and the closed-form first-order chain."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from airshed.physics.mechanism import (
    EMITTED_SPECIES,
    OUTPUT_SPECIES,
    SULFATE_PER_SO2,
    TRACERS,
    default_mechanism,
    first_order_chain,
)


def test_default_mechanism_composition_and_origins():
    m = default_mechanism()
    assert m.tracers == TRACERS and m.emitted == EMITTED_SPECIES and m.output_species == OUTPUT_SPECIES
    assert m.precursor_of("sulfate") == "SO2"
    assert m.precursor_of("nitrate") == "NOx"
    assert m.precursor_of("PM2.5_primary") == "PM2.5"
    assert m.precursor_of("PM2.5") is None
    out = m.output_matrix()
    pm = out[OUTPUT_SPECIES.index("PM2.5")]
    assert {TRACERS[i] for i in np.flatnonzero(pm)} == {"PM2.5", "sulfate", "nitrate"}
    assert out.sum() == 3 + 7  # PM2.5 sums three tracers, every other output species is one tracer
    # a core that does not carry the secondary tracers gets zero columns for them
    assert m.output_matrix(EMITTED_SPECIES)[OUTPUT_SPECIES.index("sulfate")].sum() == 0.0


def test_conversion_arrays_and_overrides():
    m = default_mechanism().with_overrides(conversion_rates_per_s={("SO2", "sulfate"): 1e-4},
                                           decay_per_s={"NMVOC": 1e-6})
    src, dst, rate, yld = m.conversion_arrays()
    assert TRACERS[src[0]] == "SO2" and TRACERS[dst[0]] == "sulfate"
    assert rate[0] == 1e-4 and yld[0] == pytest.approx(96.0 / 64.0)
    assert m.decay_per_s["NMVOC"] == 1e-6 and m.decay_per_s["SO2"] == 0.0
    with pytest.raises(ValueError, match="no conversion"):
        default_mechanism().with_overrides(conversion_rates_per_s={("NH3", "sulfate"): 1.0})


@pytest.mark.parametrize(("a", "b"), [(3e-5, 1e-5), (1e-5, 3e-5), (2e-5, 2e-5), (2e-5, 2e-5 + 1e-15)])
def test_first_order_chain_matches_ode(a, b):
    k = 1e-5  # conversion part of the precursor's loss a
    t = np.array([0.0, 600.0, 3600.0, 36000.0, 86400.0])
    p, s = first_order_chain(t, k, SULFATE_PER_SO2, a, b)
    sol = solve_ivp(lambda _, y: [-a * y[0], SULFATE_PER_SO2 * k * y[0] - b * y[1]], (0, t[-1]), [1.0, 0.0],
                    t_eval=t, rtol=1e-12, atol=1e-15, method="DOP853")
    np.testing.assert_allclose(p, sol.y[0], rtol=1e-9)
    np.testing.assert_allclose(s, sol.y[1], rtol=1e-8, atol=1e-15)
