"""Release heights of stacks for an hour's meteorology (shared by the cores)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from airshed.inputs.emissions.sources import PointSources
from airshed.model.plume import plume_wind_speed
from airshed.physics import plume_rise as rise


def stack_release_height(points: PointSources, met: xr.Dataset, row: np.ndarray, col: np.ndarray, *,
                         plume_rise: bool = True, stack_tip_downwash: bool = True,
                         min_wind_speed: float = 1.0) -> np.ndarray:
    """Effective release height of stacks (m): :func:`airshed.physics.plume_rise.effective_stack_height`.

    Wind at the stack top from the 10 m wind by the similarity profile (not below 10 m, floored at
    ``min_wind_speed``), as the plume core does (:func:`airshed.model.plume.plume_wind_speed`).
    """
    t_air = met["t2m"].values[row, col]
    speed10 = np.hypot(met["u10"].values, met["v10"].values)[row, col]
    u_stack = np.maximum(plume_wind_speed(speed10, 10.0, points.stack_height, met["z0"].values[row, col],
                                          met["obukhov_length"].values[row, col]), min_wind_speed)
    stack_temp = np.where(points.exit_temperature > 0, points.exit_temperature, t_air)
    he, _ = rise.effective_stack_height(points.stack_height, points.diameter, points.exit_velocity,
                                        stack_temp, t_air, u_stack, met["pg_class"].values[row, col],
                                        plume_rise=plume_rise, stack_tip_downwash=stack_tip_downwash)
    return he
