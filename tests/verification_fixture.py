"""Small run files with station contributions, built in code, for the verification tests.

``toy_run`` builds the run-file variables ``airshed verify`` reads (``station_contribution``,
``emission_total``, station coordinates) for given tagged station series: no grid, no model, so the
Jacobian is known exactly.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from airshed.physics.mechanism import EMITTED_SPECIES, OUTPUT_SPECIES

START = np.datetime64("2017-12-01T00:00", "ns")


def toy_run(contribution: dict[str, np.ndarray], regions: list[str], sectors: list[str], stations: list[str],
            emission: dict[str, np.ndarray]) -> xr.Dataset:
    """A run dataset from per-output-species tagged station series.

    Parameters
    ----------
    contribution
        Output species -> (T, N, R, K) ug m-3 (other output species are zero; PM2.5 is set to the sum of
        its parts).
    regions, sectors, stations
        Names (regions without "outside": it is added with zero contributions and emissions).
    emission
        Emitted species -> (R, K) tonnes over the run.
    """
    shape = next(iter(contribution.values())).shape
    t, n = shape[:2]
    names = [*regions, "outside"]
    values = np.zeros((t, n, len(names), len(sectors), len(OUTPUT_SPECIES)))
    for name, v in contribution.items():
        values[:, :, : len(regions), :, OUTPUT_SPECIES.index(name)] = v
    pm = OUTPUT_SPECIES.index("PM2.5")
    parts = ("PM2.5_primary", "sulfate", "nitrate")
    values[..., pm] = sum(values[..., OUTPUT_SPECIES.index(p)] for p in parts)
    tonnes = np.zeros((len(names), len(sectors), len(EMITTED_SPECIES)))
    for e, v in emission.items():
        tonnes[: len(regions), :, EMITTED_SPECIES.index(e)] = v
    times = START + np.arange(1, t + 1) * np.timedelta64(1, "h")
    return xr.Dataset(
        {
            "station_contribution": (("time", "station", "source_region", "sector", "species"), values),
            "station_concentration": (("time", "station", "species"), values.sum(axis=(2, 3))),
            "emission_total": (("source_region", "sector", "emitted_species"), tonnes),
        },
        coords={"time": times, "station": stations, "source_region": names, "sector": sectors,
                "species": list(OUTPUT_SPECIES), "emitted_species": list(EMITTED_SPECIES),
                "station_lon": ("station", np.linspace(116.0, 117.0, n)),
                "station_lat": ("station", np.full(n, 39.5))},
    )
