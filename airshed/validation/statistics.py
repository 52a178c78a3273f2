"""Standard dispersion-model performance measures (Chang & Hanna 2004, Meteorol. Atmos. Phys. 87:167).

With observed O and predicted P (paired), overbars for means:

- FB   = 2 (mean O - mean P) / (mean O + mean P)   fractional bias; positive = under-prediction;
- NMSE = mean((O - P)^2) / (mean O * mean P)        normalised mean square error;
- MG   = exp(mean ln O - mean ln P)                 geometric mean bias; > 1 = under-prediction;
- VG   = exp(mean (ln O - ln P)^2)                  geometric variance;
- FAC2 = fraction of pairs with 0.5 <= P/O <= 2.

MG and VG use only pairs with O > 0 and P > 0 (logarithms; Chang & Hanna 2004 section 3 recommend a
threshold for that reason); FAC2 counts a pair with O = 0 as outside the factor of two unless P = 0 too.
Their "acceptable model" ranges: |FB| < 0.3, NMSE < 1.5 (note: < 4 in their later text), 0.7 < MG < 1.3,
VG < 4, FAC2 > 0.5.
"""

from __future__ import annotations

import numpy as np

from airshed.errors import AirshedInputError


def performance_measures(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """FB, NMSE, MG, VG, FAC2 and n of paired observations and predictions (same units, >= 0)."""
    o = np.asarray(observed, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if o.shape != p.shape:
        raise AirshedInputError(f"observed and predicted must pair up, got {o.size} and {p.size} values")
    if o.size == 0:
        return {"n": 0, "FB": np.nan, "NMSE": np.nan, "MG": np.nan, "VG": np.nan, "FAC2": np.nan}
    if np.any(~np.isfinite(o)) or np.any(~np.isfinite(p)) or np.any(o < 0) or np.any(p < 0):
        raise AirshedInputError("observed and predicted values must be finite and >= 0")
    mo, mp = o.mean(), p.mean()
    fb = 2.0 * (mo - mp) / (mo + mp)
    nmse = np.mean((o - p) ** 2) / (mo * mp)
    pos = (o > 0) & (p > 0)
    if pos.any():
        lr = np.log(o[pos]) - np.log(p[pos])
        mg = float(np.exp(lr.mean()))
        vg = float(np.exp(np.mean(lr * lr)))
    else:
        mg = vg = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = p / o
    within = ((ratio >= 0.5) & (ratio <= 2.0)) | ((o == 0) & (p == 0))
    return {
        "n": int(o.size),
        "FB": float(fb),
        "NMSE": float(nmse),
        "MG": mg,
        "VG": vg,
        "FAC2": float(within.mean()),
    }
