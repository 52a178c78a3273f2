"""A small, self-consistent run file following the run-file contract (synthetic, built in code).

Emissions follow the 2020 census population of the jjj-cities regions (people-driven sectors) plus an
area-uniform rural part; each source region's emissions are smoothed by a Gaussian kernel and carried
north-east by two cells (a southerly haze episode), so Hebei pollutes Beijing as it does in December.
Each source region has its own normalised hourly modulation (mean exactly 1), so the hourly
concentration averages to the sum of the period-mean contributions. The numbers are plausible in size
(tens of ug m-3 of PM2.5 over the plain), not a simulation; they exercise every table and figure.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr
from scipy import ndimage

from airshed.grids import builtin_case
from airshed.grids.cf import GRID_VARIABLE_ATTRS, regions_to_dataset
from airshed.grids.grid import Grid
from airshed.grids.regions import build_regions
from airshed.inputs.population import builtin_population
from airshed.model.apportionment import receptor_weights, source_receptor_matrix, transboundary_metrics
from airshed.outputs.runfile import BUDGET_TERMS

SPECIES = ["PM2.5", "PM2.5_primary", "sulfate", "nitrate", "SO2", "NOx", "NH3", "NMVOC"]
EMITTED = ["SO2", "NOx", "PM2.5", "NH3", "NMVOC"]
SECTORS = ["power", "industry", "residential", "transport", "agriculture"]
TRACERS = [*EMITTED, "sulfate", "nitrate"]
START = np.datetime64("2017-12-01T00:00")
HOURS = 48

# tonnes per million people over the period (people-driven part) and per 1000 km2 (rural part),
# sector x emitted species (SO2, NOx, PM2.5, NH3, NMVOC); sizes after MEIC 2017 national shares
_PER_MILLION = np.array(
    [
        [40.0, 60.0, 8.0, 0.0, 2.0],
        [90.0, 80.0, 40.0, 1.0, 60.0],
        [30.0, 8.0, 45.0, 2.0, 30.0],
        [1.0, 70.0, 5.0, 1.0, 40.0],
        [0.0, 2.0, 3.0, 50.0, 1.0],
    ]
)
_PER_1000KM2 = np.array(
    [
        [2.0, 3.0, 0.5, 0.0, 0.1],
        [4.0, 4.0, 2.0, 0.0, 3.0],
        [3.0, 1.0, 4.0, 0.2, 2.0],
        [0.0, 2.0, 0.2, 0.0, 1.0],
        [0.0, 0.2, 0.5, 12.0, 0.1],
    ]
)
# (emitted species index, smoothing sigma in cells, ug m-3 per (t per cell)) for each output species
# except PM2.5 (the sum of its parts): secondary aerosol forms downwind, so it spreads further
_SPECIES_SOURCE = {
    "PM2.5_primary": (2, 1.5, 0.9),
    "sulfate": (0, 4.0, 0.25),
    "nitrate": (1, 4.0, 0.3),
    "SO2": (0, 1.2, 1.0),
    "NOx": (1, 1.0, 1.2),
    "NH3": (3, 1.0, 0.8),
    "NMVOC": (4, 1.5, 0.6),
}
_SHIFT_CELLS = (2.0, 1.0)  # (y, x): transport towards the north-north-east

_CONFIG_TOML = """[run]
name = "synthetic_jjj"
start = 2017-12-01T00:00:00
end = 2017-12-03T00:00:00
core = "lagrangian"
seed = 42
species = ["SO2", "NOx", "PM2.5", "NH3", "NMVOC"]

[grid]
bbox = [110.0, 34.0, 124.0, 44.0]
cell_km = {cell_km}

[regions]
set = "jjj-cities"
population = "builtin"
"""


def _hourly_factors(nsource: int) -> np.ndarray:
    """(time, source) positive modulation with mean exactly 1 over time for every source."""
    t = np.arange(HOURS, dtype=float)
    phase = np.linspace(0.0, 2.0 * np.pi, nsource, endpoint=False)
    build_up = 0.5 + t / HOURS  # haze builds over the episode
    g = build_up[:, None] * (1.0 + 0.4 * np.sin(2.0 * np.pi * t[:, None] / 24.0 + phase[None, :]))
    return g / g.mean(axis=0, keepdims=True)


def synthetic_run_dataset(grid_km: float = 27, *, scenarios: bool = False) -> xr.Dataset:
    """A run dataset laid out exactly as the run-file contract says, on the default JJJ domain.

    Parameters
    ----------
    grid_km
        Cell size, km.
    scenarios
        Add the optional scenario part (two emission-cut scenarios).
    """
    grid = Grid.from_bbox(*builtin_case.BBOX, grid_km, crs=builtin_case.PROJECTION)
    regions = build_regions(grid, "jjj-cities")
    sources = list(regions.names)
    receptors = sources[:-1]
    ns, nr, nsec, nsp = len(sources), len(receptors), len(SECTORS), len(SPECIES)
    population = builtin_population(grid, "jjj-cities")
    fractions = np.asarray(regions.fractions)

    # emissions per tag, tonnes per cell over the period: (source, sector, emitted, y, x)
    people = population / 1.0e6
    area = grid.cell_area / 1.0e9
    density = people * _PER_MILLION[:, :, None, None] + area * _PER_1000KM2[:, :, None, None]
    emissions = fractions[:, None, None] * density[None]

    contribution = np.zeros((ns, nsec, nsp, grid.ny, grid.nx))
    for name, (e, sigma, scale) in _SPECIES_SOURCE.items():
        field = ndimage.gaussian_filter(emissions[:, :, e], sigma=(0, 0, sigma, sigma), mode="constant")
        field = ndimage.shift(field, (0, 0, *_SHIFT_CELLS), order=1, mode="constant")
        contribution[:, :, SPECIES.index(name)] = scale * np.clip(field, 0.0, None)
    parts = [SPECIES.index(p) for p in ("PM2.5_primary", "sulfate", "nitrate")]
    contribution[:, :, 0] = contribution[:, :, parts].sum(axis=2)

    factors = _hourly_factors(ns)  # (time, source)
    concentration = np.einsum("ts,skvji->tvji", factors, contribution)

    weights = receptor_weights(fractions[:-1], grid.cell_area, population)
    area_weights = receptor_weights(fractions[:-1], grid.cell_area)
    flat = contribution.reshape(ns * nsec, nsp, grid.ny, grid.nx)
    sr_tag = source_receptor_matrix(flat, weights).reshape(nr, ns, nsec, nsp)
    sr = sr_tag.sum(axis=2)
    sr_area = source_receptor_matrix(flat, area_weights).reshape(nr, ns, nsec, nsp).sum(axis=2)
    receptor_contribution = np.einsum("ts,rskv->trskv", factors, sr_tag)
    receptor_concentration = receptor_contribution.sum(axis=(2, 3))

    population_region = np.einsum("kji,ji->k", fractions[:-1], population)
    own = np.array([sources.index(r) for r in receptors])
    metrics = [transboundary_metrics(sr[:, :, v], own, population_region) for v in range(nsp)]

    def per_species(key: str) -> np.ndarray:
        return np.stack([m[key] for m in metrics], axis=-1)

    precursor_of = {"PM2.5": "PM2.5_primary", "SO2": "sulfate", "NOx": "nitrate"}
    pm25_sr = np.zeros((nr, ns, len(EMITTED)))
    for p, precursor in enumerate(EMITTED):
        if precursor in precursor_of:
            pm25_sr[:, :, p] = sr[:, :, SPECIES.index(precursor_of[precursor])]

    emission_total = emissions.sum(axis=(3, 4))
    emitted_kg = emission_total.sum(axis=(0, 1)) * 1000.0
    # particle-style budget per tracer: emitted + produced = airborne + sinks (terms as the pipeline writes)
    budget = np.zeros((len(BUDGET_TERMS), len(TRACERS)))
    shares = {  # dry, wet, converted, left domain; the rest is airborne
        "SO2": (0.25, 0.05, 0.30, 0.15),
        "NOx": (0.10, 0.02, 0.35, 0.20),
        "PM2.5": (0.15, 0.05, 0.0, 0.25),
        "NH3": (0.30, 0.05, 0.0, 0.15),
        "NMVOC": (0.05, 0.01, 0.0, 0.30),
    }
    term = {t: k for k, t in enumerate(BUDGET_TERMS)}
    for e, name in enumerate(EMITTED):
        dry, wet, converted, left = shares[name]
        m = emitted_kg[e]
        budget[[term["emitted"], term["dry_deposited"], term["wet_deposited"], term["converted"],
                term["left_domain"], term["airborne"]], e] = (
            m, m * dry, m * wet, m * converted, m * left, m * (1.0 - dry - wet - converted - left))
    for product, precursor, ratio in (("sulfate", "SO2", 96.0 / 64.0), ("nitrate", "NOx", 62.0 / 46.0)):
        made = budget[term["converted"], EMITTED.index(precursor)] * ratio
        budget[[term["produced"], term["dry_deposited"], term["airborne"]], TRACERS.index(product)] = (
            made, 0.1 * made, 0.9 * made)

    time_end = START + np.arange(1, HOURS + 1).astype("timedelta64[h]")
    time_bnds = np.stack([time_end - np.timedelta64(1, "h"), time_end], axis=-1)

    ds = regions_to_dataset(regions)
    ds = ds.assign_coords(
        time=("time", time_end, {"standard_name": "time", "long_name": "end of the hourly averaging "
                                 "interval", "bounds": "time_bnds"}),
        species=("species", np.array(SPECIES), {"long_name": "species"}),
        emitted_species=("emitted_species", np.array(EMITTED), {"long_name": "emitted species"}),
        source_region=("source_region", np.array(sources), {"long_name": "source region"}),
        receptor_region=("receptor_region", np.array(receptors), {"long_name": "receptor region"}),
        sector=("sector", np.array(SECTORS), {"long_name": "emission sector"}),
        budget_term=("budget_term", np.array(BUDGET_TERMS), {"long_name": "mass budget term"}),
        tracer=("tracer", np.array(TRACERS), {"long_name": "transported tracer"}),
    )
    ds["time_bnds"] = (("time", "nv"), time_bnds)
    ds = ds.set_coords("time_bnds")
    for name in ("time", "time_bnds"):
        ds[name].encoding.update(units="hours since 2017-12-01 00:00:00", calendar="standard")
    conc = {"units": "ug m-3"}
    grid_attrs = dict(GRID_VARIABLE_ATTRS)
    ds["concentration"] = (
        ("time", "species", "y", "x"),
        concentration,
        {**conc, "long_name": "hourly mean near-surface concentration", "cell_methods": "time: mean",
         **grid_attrs},
    )
    ds["contribution"] = (
        ("source_region", "sector", "species", "y", "x"),
        contribution,
        {**conc, "long_name": "period-mean concentration caused by each source region and sector",
         **grid_attrs},
    )
    ds["receptor_concentration"] = (
        ("time", "receptor_region", "species"),
        receptor_concentration,
        {**conc, "long_name": "population-weighted mean concentration in each receptor region"},
    )
    ds["receptor_contribution"] = (
        ("time", "receptor_region", "source_region", "sector", "species"),
        receptor_contribution,
        {**conc, "long_name": "population-weighted receptor concentration by source region and sector"},
    )
    ds["source_receptor"] = (
        ("receptor_region", "source_region", "species"),
        sr,
        {**conc, "long_name": "period-mean population-weighted source-receptor matrix"},
    )
    ds["source_receptor_area"] = (
        ("receptor_region", "source_region", "species"),
        sr_area,
        {**conc, "long_name": "period-mean area-weighted source-receptor matrix"},
    )
    ds["transboundary_share"] = (
        ("receptor_region", "species"),
        per_species("transboundary_share"),
        {"units": "1", "long_name": "share of the receptor's concentration emitted outside it"},
    )
    ds["import_concentration"] = (("receptor_region", "species"), per_species("import_concentration"),
                                  {**conc, "long_name": "concentration caused by other source regions"})
    for key, long_name in (
        ("import_exposure", "population exposure to other regions' emissions"),
        ("export_exposure", "population exposure of other regions to this region's emissions"),
        ("net_export_exposure", "export minus import exposure"),
    ):
        ds[key] = (("receptor_region", "species"), per_species(key),
                   {"units": "person ug m-3", "long_name": long_name})
    ds["pm25_source_receptor"] = (
        ("receptor_region", "source_region", "emitted_species"),
        pm25_sr,
        {**conc, "long_name": "PM2.5 in each receptor from each source region's emissions of each precursor"},
    )
    ds["pm25_total"] = (("receptor_region",), sr[:, :, 0].sum(axis=1),
                        {**conc, "long_name": "period-mean population-weighted PM2.5"})
    ds["emission_total"] = (
        ("source_region", "sector", "emitted_species"),
        emission_total,
        {"units": "t", "long_name": "emissions over the run period"},
    )
    ds["population"] = (("y", "x"), population, {"units": "1", "long_name": "persons per cell", **grid_attrs})
    ds["population_region"] = (("receptor_region",), population_region,
                               {"units": "1", "long_name": "persons in each receptor region"})
    ds["mass_budget"] = (("budget_term", "tracer"), budget,
                         {"units": "kg", "long_name": "particle mass budget over the run"})

    if scenarios:
        names = ["Beijing -30%", "Hebei -30%"]
        hebei = [k for k, r in enumerate(receptors) if r not in ("Beijing", "Tianjin")
                 and sources.index(r) < 13]
        cut = np.zeros((2, ns))
        cut[0, sources.index("Beijing")] = 0.3
        cut[1, hebei] = 0.3
        delta = -np.einsum("cs,rsv->crv", cut, sr)
        own_mask = np.zeros((nr, ns), dtype=bool)
        own_mask[np.arange(nr), own] = True
        delta_own = -np.einsum("cs,rsv->crv", cut, np.where(own_mask[:, :, None], sr, 0.0))
        ds = ds.assign_coords(scenario=("scenario", np.array(names), {"long_name": "emission scenario"}))
        ds["scenario_receptor_concentration"] = (
            ("scenario", "receptor_region", "species"),
            sr.sum(axis=1)[None] + delta,
            {**conc, "long_name": "period-mean receptor concentration under each scenario"},
        )
        ds["scenario_delta_own"] = (("scenario", "receptor_region", "species"), delta_own,
                                    {**conc, "long_name": "change caused by the receptor's own cuts"})
        ds["scenario_delta_others"] = (("scenario", "receptor_region", "species"), delta - delta_own,
                                       {**conc, "long_name": "change caused by other regions' cuts"})

    ds.attrs.update(
        title="airshed run synthetic_jjj",
        institution="airshed test suite",
        source="airshed 0.1.0",
        history="synthetic run file built by tests/runfile_fixture.py",
        Conventions="CF-1.8",
        airshed_config=_CONFIG_TOML.replace("{cell_km}", f"{float(grid_km)}"),
        run_name="synthetic_jjj",
        core="lagrangian",
        seed=42,
        start="2017-12-01T00:00:00",
        end="2017-12-03T00:00:00",
        numba_threads=2,
        wall_time_s=12.5,
        input_files=json.dumps(
            [
                {"path": "/data/met/era5_201712.nc", "sha256": "0" * 63 + "1"},
                {"path": "/data/emis/meic_2017.nc", "sha256": "ab" * 32},
            ]
        ),
        mass_budget_max_relative_error=3.2e-13,
    )
    return ds
