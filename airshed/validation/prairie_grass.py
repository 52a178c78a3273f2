"""Project Prairie Grass (Barad 1958) validation of the plume core.

Data (packaged copy in ``airshed/data/prairie_grass``, '#' headers give provenance): SO2 released at
0.46 m for 10 minutes, 10-min mean concentrations on arcs at 50-800 m, sampled at 1.5 m; one met row per
run. Each run is modelled as one steady-state plume hour (the 10-min release is treated as steady state:
the travel time to 800 m is ~3 min, so the arcs saw a quasi-steady plume; no averaging-time correction is
applied to any option, also not to the Briggs curves, which are nominally 10-min-to-1-h values).

Meteorology is used exactly as given; nothing is fitted to these data:

- wind speed at z_ref = 2 m (header: "probably 2 m"); roughness z0 = 0.008 m; the plume wind is the 2 m
  wind (no extrapolation below the anemometer, ISC3 convention) -- see
  :func:`airshed.model.plume.prepare_point_sources`;
- u* and L as tabulated. The header warns the tabulated u* may assume k = 0.35; we use it unchanged
  (the "u* as tabulated" reading of the shared README, for which AERMOD scores FAC2 0.83 on arc maxima);
- mixing height: tabulated for unstable runs; for stable runs (none given) the Zilitinkevich/neutral
  diagnosis of :func:`airshed.physics.boundary_layer.diagnosed_mixing_height` at 42.49 N;
- Pasquill-Gifford class (Briggs options) from L and z0 by Golder (1972),
  :func:`airshed.physics.boundary_layer.pasquill_class_from_obukhov`;
- SO2 evaporation-loss factors (arc summary) are not applied to the observations.

Measured turbulence, an explicit option (``observed_sigma_theta``): the met file's 10-minute standard
deviation of the wind azimuth sigma_theta is then given to the boundary-layer option as on-site lateral
turbulence, sigma_v = sigma_theta u (sigma_theta in radians, u the 2 m wind), as AERMOD accepts sigma_theta or
sigma_v from on-site data in place of its u*/w* estimate. Those rows carry the option name
:data:`OBSERVED_SIGMA_THETA_OPTION`. The Briggs options have no sigma_v input and are not rerun.

Observed quantities per run and arc: the arc maximum over samplers, and the crosswind integral CY by the
trapezoid rule over arc length (missing samplers skipped). Modelled: the maximum over a 0.25-degree arc of
receptors (the plume centre line) and the trapezoid integral over the same fine arc (+-90 degrees about the
mean wind), both from the point-receptor kernel. Runs without a met row are skipped.
"""

from __future__ import annotations

import importlib
import importlib.resources
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

from airshed.errors import DataError
from airshed.model import plume as pk
from airshed.physics import boundary_layer as bl
from airshed.physics.dispersion_schemes import DISPERSION_SCHEMES
from airshed.validation.statistics import performance_measures

ARCS_FILE = "prairie_grass_arcs_long.csv"
METEO_FILE = "prairie_grass_meteo.csv"
ROUGHNESS_LENGTH_M = 0.008
WIND_HEIGHT_M = 2.0
LATITUDE_DEG = 42.49333
DISTANCES_M = (50, 100, 200, 400, 800)
OBSERVED_SIGMA_THETA_OPTION = "boundary-layer+sigma-theta"
"""Option name of the boundary-layer rows run with the measured sigma_theta as lateral turbulence."""
_ARC_STEP_DEG = 0.25


def _read_csv(path: Path, required: set[str]) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, comment="#")
    except FileNotFoundError as exc:
        raise DataError(f"Prairie Grass file not found: {path}") from exc
    missing = required - set(df.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    return df


def load_prairie_grass(data_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read (arcs, meteo) from ``data_dir`` or the packaged copy."""
    if data_dir is None:
        base = importlib.resources.files("airshed") / "data" / "prairie_grass"
        with importlib.resources.as_file(base) as folder:
            return load_prairie_grass(Path(folder))
    data_dir = Path(data_dir)
    arcs = _read_csv(
        data_dir / ARCS_FILE,
        {
            "run",
            "distance_m",
            "Q_g_s",
            "release_height_m",
            "sampler_height_m",
            "azimuth_deg",
            "rel_index",
            "conc_mg_m3",
        },
    )
    meteo = _read_csv(
        data_dir / METEO_FILE,
        {
            "run",
            "Q_g_s",
            "release_height_m",
            "L_m",
            "ustar_m_s",
            "h_i_m",
            "wind_dir_deg",
            "wind_speed_m_s",
            "sigma_azim_deg",
            "stability",
        },
    )
    return arcs, meteo


def observed_arc_statistics(arcs: pd.DataFrame) -> pd.DataFrame:
    """Per run and distance: observed arc maximum (mg/m3) and crosswind integral CY (mg/m2)."""
    rows = []
    for (run, dist), g in arcs[arcs["conc_mg_m3"] >= 0].groupby(["run", "distance_m"]):
        g = g.sort_values("rel_index")  # sampler order along the arc (azimuths may wrap through north)
        az = np.unwrap(np.deg2rad(g["azimuth_deg"].to_numpy()), period=2 * np.pi)
        c = g["conc_mg_m3"].to_numpy()
        cy = float(np.trapezoid(c, az * dist)) if c.size > 1 else 0.0
        rows.append({"run": run, "distance_m": int(dist), "cmax_obs": float(c.max()), "cy_obs": cy})
    return pd.DataFrame(rows)


def _met_for_run(m: pd.Series) -> dict:
    L = float(m["L_m"])
    ustar = float(m["ustar_m_s"])
    h = float(m["h_i_m"])
    if not h > 0:
        h = float(bl.diagnosed_mixing_height(ustar, L, LATITUDE_DEG))
    inv_l = 1.0 / L if L != 0 else 0.0
    pg = int(bl.pasquill_class_from_obukhov(inv_l, ROUGHNESS_LENGTH_M))
    return {
        "L": L,
        "ustar": ustar,
        "h": h,
        "pg": pg,
        "u": float(m["wind_speed_m_s"]),
        "wd": float(m["wind_dir_deg"]),
        "sigma_theta_deg": float(m["sigma_azim_deg"]),
    }


def model_arc_statistics(
    run_arcs: pd.DataFrame, met: dict, option: str, observed_sigma_theta: bool = False
) -> pd.DataFrame:
    """Modelled arc maximum (mg/m3) and CY (mg/m2) for one run and one plume option.

    ``observed_sigma_theta``: lateral turbulence sigma_v = sigma_theta u from the met row (module docstring).
    """
    sigma_v = met["u"] * np.deg2rad(met["sigma_theta_deg"]) if observed_sigma_theta else None
    q = float(run_arcs["Q_g_s"].iloc[0])
    hs = float(run_arcs["release_height_m"].iloc[0])
    zr = float(run_arcs["sampler_height_m"].iloc[0])
    prep = pk.prepare_point_sources(
        np.zeros(1),
        0.0,
        q,
        0,
        hs,
        wind_speed=met["u"],
        wind_direction_deg=met["wd"],
        wind_height=WIND_HEIGHT_M,
        roughness_length=ROUGHNESS_LENGTH_M,
        ustar=met["ustar"],
        obukhov_length=met["L"],
        mixing_height=met["h"],
        pg_class=met["pg"],
        air_temperature=300.0,
        option=option,
        receptor_height=zr,
        x_max=2000.0,
        sigma_y_cutoff=8.0,
        sigma_v=sigma_v,
    )
    downwind_az = np.deg2rad(met["wd"] + 180.0)
    rel = np.deg2rad(np.arange(-90.0, 90.0 + _ARC_STEP_DEG / 2, _ARC_STEP_DEG))
    rows = []
    for dist in sorted(run_arcs["distance_m"].unique()):
        az = downwind_az + rel
        rx, ry = dist * np.sin(az), dist * np.cos(az)
        c = pk.plume_concentration_points(prep, rx, ry, 1)[0] * 1000.0  # g/m3 -> mg/m3
        rows.append(
            {
                "distance_m": int(dist),
                "cmax_mod": float(c.max()),
                "cy_mod": float(np.trapezoid(c, rel * dist)),
            }
        )
    return pd.DataFrame(rows)


#: The particle core's options: its turbulence schemes (``[lagrangian] turbulence``).
PARTICLE_OPTIONS = ("particles-similarity", "particles-hanna")


def _lagrangian_arc_statistics(run: int, run_arcs: pd.DataFrame, met_row: pd.Series,
                               turbulence: str) -> pd.DataFrame:
    """Run the particle core with a turbulence scheme through its validation module (hook)."""
    try:
        module = importlib.import_module("airshed.validation.prairie_grass_lagrangian")
    except ModuleNotFoundError as exc:
        raise NotImplementedError(
            "core 'lagrangian' needs airshed.validation.prairie_grass_lagrangian.simulate_run("
            "run, arcs, meteo_row) returning columns distance_m, cmax_mod (mg/m3), cy_mod (mg/m2); "
            "that module is not installed yet"
        ) from exc
    return module.simulate_run(run, run_arcs, met_row, turbulence=turbulence)


def _summarise(core: str, option: str, table: pd.DataFrame) -> list[dict]:
    rows = []
    for quantity, obs, mod in (
        ("arc_max", "cmax_obs", "cmax_mod"),
        ("crosswind_integrated", "cy_obs", "cy_mod"),
    ):
        for stab in ("stable", "unstable", "all"):
            sub = table if stab == "all" else table[table["stability"] == stab]
            for dist in (*DISTANCES_M, "all"):
                sel = sub if dist == "all" else sub[sub["distance_m"] == dist]
                stats = performance_measures(sel[obs].to_numpy(), sel[mod].to_numpy())
                rows.append(
                    {
                        "core": core,
                        "option": option,
                        "quantity": quantity,
                        "stability": stab,
                        "distance_m": dist,
                        **stats,
                    }
                )
    return rows


Progress = Callable[[int], AbstractContextManager[Callable[[], None]]]
"""``progress(total)``: a context manager yielding ``advance()``, called once per modelled run (a bar)."""


def _single_threaded() -> None:
    """Initialise a validation worker process: one Numba thread (the processes share out the cores)."""
    import numba

    numba.set_num_threads(1)


def _lagrangian_tables(run_ids: list, arcs: pd.DataFrame, meteo: pd.DataFrame, processes: int,
                       advance: Callable[[], None], turbulence: str) -> list[pd.DataFrame]:
    """Model the particle arc statistics of ``run_ids`` with ``turbulence``, in order, on ``processes`` CPUs.

    Every run has its own seed (:func:`~airshed.validation.prairie_grass_lagrangian.simulate_run`), so the
    tables do not depend on the process count. The first run is modelled here, which leaves the Numba cache
    warm before the worker processes (spawned, one Numba thread each) load the kernels from it.
    """

    def one(r) -> pd.DataFrame:
        return _lagrangian_arc_statistics(int(r), arcs[arcs["run"] == r], meteo.loc[r], turbulence)

    tables: list[pd.DataFrame] = []
    rest = list(run_ids)
    if processes > 1 and len(rest) > 1:
        tables.append(one(rest[0]))
        advance()
        rest = rest[1:]
        with ProcessPoolExecutor(min(processes, len(rest)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_single_threaded) as pool:
            futures = [pool.submit(_lagrangian_arc_statistics, int(r), arcs[arcs["run"] == r], meteo.loc[r],
                                   turbulence)
                       for r in rest]
            for future in futures:
                tables.append(future.result())
                advance()
        return tables
    for r in rest:
        tables.append(one(r))
        advance()
    return tables


def run_validation(
    data_dir: Path | None = None,
    cores: list[str] | None = None,
    runs: list[int] | None = None,
    observed_sigma_theta: bool = False,
    processes: int | None = 1,
    progress: Progress | None = None,
) -> list[dict]:
    """Model every Prairie Grass run with met (or only ``runs``) per core and option; return statistics rows.

    Rows: core, option, quantity ("arc_max" | "crosswind_integrated"), stability ("stable" | "unstable" |
    "all"), distance_m (50..800 or "all"), n, FB, NMSE, MG, VG, FAC2 (:mod:`airshed.validation.statistics`).
    Cores: "plume" (each dispersion scheme of
    :data:`~airshed.physics.dispersion_schemes.DISPERSION_SCHEMES`) and "lagrangian" (options
    "particles-similarity" and "particles-hanna", the ``[lagrangian] turbulence`` schemes, through
    ``airshed.validation.prairie_grass_lagrangian.simulate_run``). ``observed_sigma_theta`` adds
    the boundary-layer option with the measured sigma_theta as lateral turbulence (option
    :data:`OBSERVED_SIGMA_THETA_OPTION`, module docstring). The particle runs are shared out among
    ``processes`` processes (None: one per CPU); the rows do not depend on it. ``progress(total)`` is
    entered with the number of modelled runs and its ``advance()`` called after each.
    """
    cores = ["plume"] if cores is None else list(cores)
    unknown = set(cores) - {"plume", "lagrangian"}
    if unknown:
        raise DataError(f"unknown validation core(s) {sorted(unknown)}; expected 'plume' or 'lagrangian'")
    processes = os.cpu_count() or 1 if processes is None else max(1, processes)
    arcs, meteo = load_prairie_grass(data_dir)
    observed = observed_arc_statistics(arcs)
    meteo = meteo.set_index("run")
    run_ids = [r for r in sorted(arcs["run"].unique()) if r in meteo.index and (runs is None or r in runs)]
    jobs = []
    for core in cores:
        options = tuple(DISPERSION_SCHEMES) if core == "plume" else PARTICLE_OPTIONS
        if core == "plume" and observed_sigma_theta:
            options = (*options, OBSERVED_SIGMA_THETA_OPTION)
        jobs.extend((core, option) for option in options)
    rows: list[dict] = []
    bar = progress(len(jobs) * len(run_ids)) if progress is not None else nullcontext(lambda: None)
    with bar as advance:
        for core, option in jobs:
            if core == "lagrangian":
                tables = _lagrangian_tables(run_ids, arcs, meteo, processes, advance,
                                            option.removeprefix("particles-"))
            else:
                tables = []
                measured = option == OBSERVED_SIGMA_THETA_OPTION
                scheme = "boundary-layer" if measured else option
                for run in run_ids:
                    tables.append(model_arc_statistics(arcs[arcs["run"] == run], _met_for_run(meteo.loc[run]),
                                                       scheme, measured))
                    advance()
            for run, mod in zip(run_ids, tables, strict=True):
                mod["run"] = run
                mod["stability"] = meteo.loc[run, "stability"]
            table = pd.concat(tables).merge(observed, on=["run", "distance_m"])
            rows.extend(_summarise(core, option, table))
    return rows
