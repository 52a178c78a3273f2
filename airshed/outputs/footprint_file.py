"""The footprint file of a backward run: footprints and folded concentrations as one CF-1.8 dataset.

Layout (README, "Receptor-oriented runs"): coordinates of the model grid (``x``, ``y``, ``lat``, ``lon``,
``crs``), ``time`` (end of each averaging period, with ``time_bnds``), ``station`` (ids, with
``station_name``, ``station_lon``, ``station_lat``, ``station_height``), ``pathway`` (``air`` and
``receptor<-emitted`` pairs), ``stack``, and the coordinates of a forward run file (``species``,
``emitted_species``, ``source_region``, ``receptor_region``, ``sector``). Variables: ``footprint`` (s) and
``footprint_per_emission`` (ug m-3 per kg s-1) on the grid, ``stack_footprint`` (s) per stack, the
folded ``station_contribution`` / ``station_concentration`` and, for the regions holding stations, the
forward run file's receptor variables (``receptor_contribution``, ``receptor_concentration``,
``source_receptor``, ``pm25_source_receptor``, ``pm25_total``, ``emission_total``, ``population_region``
and the cross-border metrics).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import xarray as xr

from airshed.outputs.runfile import (
    _EXPOSURE_COMMENT,
    _METRIC_ATTRS,
    EXPOSURE_UNITS,
    PM25_STANDARD_NAME,
    RUN_FILE_FORMAT,
    run_file_skeleton,
    with_stations,
)
from airshed.version import __version__

FOLDING_RULE = (
    "concentration_at_station (kg m-3) = sum over cells and emission hours of footprint (s) * emission rate "
    "of the cell (kg s-1) / (cell_area_m2 * source_layer_depth_m); the pathway 'R<-E' gives species R at the "
    "station from emissions of E (PM2.5 = PM2.5<-PM2.5 + sulfate<-SO2 + nitrate<-NOx); 'air' is the "
    "residence time without removal. The footprint here is summed over the emission hours of the whole "
    "run, so folding it with constant emissions is exact; the file's station_contribution was folded hour by "
    "hour with the time-varying emissions. Stacks are folded with stack_footprint in the same way, taken in "
    "a box of cell_area_m2 centred on the stack and source_layer_depth_m deep around each hour's effective "
    "release height."
)


def per_emission(footprint_s, cell_area_m2: float, source_layer_m: float):
    """Concentration per emission rate, ug m-3 per (kg s-1), of a footprint in s: 1e9 F / (A H).

    An emission of E kg/s in a cell's source layer (area A, depth H) adds F E / (A H) kg m-3 to the
    station's period mean (:data:`FOLDING_RULE`); 1e9 turns kg into ug.
    """
    return footprint_s * (1e9 / (cell_area_m2 * source_layer_m))


def footprint_dataset(study, receptors, result, station_mean: np.ndarray, station_stderr: np.ndarray | None,
                      source_layer_m: float, metrics, config_text: str, attrs: dict) -> xr.Dataset:
    """Return the footprint file of a backward run (see the module docstring).

    ``study`` (:class:`airshed.pipeline.study.Study`), ``receptors`` (:class:`airshed.footprint.Receptors`),
    and ``result`` (:class:`airshed.footprint.BackwardResult`) of the run; ``station_mean`` and
    ``station_stderr`` ([P, Q, ntag, S] ug m-3, :func:`airshed.footprint.station_series`);
    ``source_layer_m`` the depth of the footprint's layer, m; ``metrics(sr, own, population)`` the
    cross-border metrics of a source-receptor matrix
    (:func:`airshed.model.apportionment.transboundary_metrics`); ``config_text`` the resolved config (TOML);
    ``attrs`` extra global attributes.
    """
    mechanism = study.mechanism
    output_species, emitted_species = mechanism.output_species, mechanism.emitted
    cfg, grid, em = study.cfg, study.grid, study.emissions
    regions = tuple(study.inputs.regions.names)
    fractions = np.asarray(study.inputs.regions.fractions)
    population = study.inputs.population if study.inputs.population is not None else np.zeros(grid.shape)
    per_avg = cfg.footprint.averaging_h // study.period_h
    edges = study.edges[::per_avg]
    n_avg, nq = result.particles.shape
    R, K = len(regions), em.nsector
    skeleton = run_file_skeleton(grid, edges, regions, tuple(em.sectors), mechanism, population, fractions)
    skeleton = with_stations(skeleton, receptors.ids, receptors.names, receptors.lon, receptors.lat)
    skeleton["time"].attrs["long_name"] = "end of the averaging period"
    held = sorted({int(r) for r in receptors.region if r >= 0})
    receptor_regions = tuple(regions[r] for r in held)
    ds = skeleton.drop_vars("receptor_region").assign_coords(
        receptor_region=("receptor_region", np.array(receptor_regions, dtype=object),
                         {"long_name": "region where the concentration is felt (mean over its stations)"}),
        station_height=("station", receptors.height, {"units": "m", "long_name": "station intake height "
                                                                                 "above ground"}),
    )
    slots = result.slots
    path_names = [slots.names[s] for s in result.pathways]
    ds = ds.assign_coords(
        pathway=("pathway", np.array(path_names, dtype=object),
                 {"long_name": "receptor species <- emitted species whose emissions it is sensitive to "
                               "('air': no removal)"}),
        stack=("stack", np.array([str(i) for i in em.points.ids], dtype=object),
               {"long_name": "point source (stack) id"}),
    )
    ds["stack_x"] = (("stack",), em.points.x, {"units": "m", "long_name": "stack x (grid projection)"})
    ds["stack_y"] = (("stack",), em.points.y, {"units": "m", "long_name": "stack y (grid projection)"})
    cell_area = float(grid.dx * grid.dx)
    fp = result.footprint.reshape(n_avg, nq, result.pathways.size, grid.ny, grid.nx)
    fp_attrs = dict(grid_mapping="crs", coordinates="lat lon", source_layer_depth_m=source_layer_m,
                    cell_area_m2=cell_area, folding_rule=FOLDING_RULE)
    ds["footprint"] = (("time", "station", "pathway", "y", "x"), fp, dict(
        units="s", long_name="footprint: time the station's air spent in each cell's source layer (0 to "
        f"{source_layer_m:g} m) per unit of air, weighted by the share of an emission there that reaches the "
        "station as the pathway's species (source-receptor sensitivity, FLEXPART backward output in s)",
        cell_methods="time: sum", **fp_attrs))
    ds["footprint_per_emission"] = (("time", "station", "pathway", "y", "x"),
                                    per_emission(fp, cell_area, source_layer_m), dict(
        units="ug m-3 (kg s-1)-1", long_name="period-mean concentration at the station per kg s-1 emitted "
        f"in the cell's lowest {source_layer_m:g} m over the whole run (footprint * 1e9 / (cell_area_m2 * "
        "source_layer_depth_m))", **fp_attrs))
    ds["stack_footprint"] = (("time", "station", "pathway", "stack"), result.stack_footprint, dict(
        units="s", long_name="footprint at each stack: time in a box one cell wide centred on the stack, "
        f"{source_layer_m:g} m deep around each hour's effective release height", folding_rule=FOLDING_RULE,
        source_layer_depth_m=source_layer_m, cell_area_m2=cell_area))
    mean, stderr = station_mean, station_stderr
    ns = len(output_species)
    sc = mean.reshape(n_avg, nq, R, K, ns)
    ds["station_contribution"] = (("time", "station", "source_region", "sector", "species"), sc, dict(
        units="ug m-3", long_name="mean concentration over the averaging period in the station's receptor "
        "volume caused by each tag (footprints folded with the hourly emissions)",
        coordinates="station_lon station_lat"))
    station_total = np.zeros((n_avg, nq, ns))
    for r in range(R):  # region by region, in order (the sum order of every other sum over tags)
        station_total += sc[:, :, r].sum(axis=2)
    ds["station_concentration"] = (("time", "station", "species"), station_total, dict(
        units="ug m-3", long_name="mean concentration over the averaging period in the station's receptor "
        "volume from the emissions inside the domain during the run", coordinates="station_lon station_lat"))
    if stderr is not None:
        ds["station_contribution_stderr"] = (("time", "station", "source_region", "sector", "species"),
                                             stderr.reshape(n_avg, nq, R, K, ns), dict(
            units="ug m-3", long_name="Monte-Carlo standard error of station_contribution (spread of "
            f"{result.contribution.shape[2]} independent batches of particles)"))
    ds["released_particles"] = (("time", "station"), result.particles.astype(np.int32), dict(
        units="1", long_name="backward particles released in the station's receptor volume over the period"))
    ds["air_in_domain_at_start"] = (("time", "station"), result.in_domain_at_start, dict(
        units="1", long_name="fraction of the station's air still inside the domain at the start of the run "
        "(the rest left through the sides or the top going back in time): the share whose sources before "
        "the run the folding does not see"))
    # receptor regions: the mean over the stations each holds
    rc = np.zeros((n_avg, len(held), R, K, ns))
    for q, r in enumerate(held):
        members = np.flatnonzero(receptors.region == r)
        rc[:, q] = sc[:, members].mean(axis=1)
    dims = ("time", "receptor_region", "source_region", "sector", "species")
    ds["receptor_contribution"] = (dims, rc, dict(
        units="ug m-3", long_name="mean concentration over the averaging period at the stations of each "
        "receptor region (their mean) caused by each tag"))
    rtotal = np.zeros((n_avg, len(held), ns))
    for r in range(R):
        rtotal += rc[:, :, r].sum(axis=2)
    ds["receptor_concentration"] = (("time", "receptor_region", "species"), rtotal, dict(
        units="ug m-3", long_name="mean concentration over the averaging period at the stations of each "
        "receptor region (their mean)"))
    sr = rc.mean(axis=0).sum(axis=2)  # (Q, R, S)
    ds["source_receptor"] = (("receptor_region", "source_region", "species"), sr, dict(
        units="ug m-3", long_name="run-mean concentration at each receptor region's stations caused by each "
        "source region"))
    pm25_sr = np.zeros((len(held), R, len(emitted_species)))
    for part, origin in mechanism.components("PM2.5"):
        pm25_sr[:, :, emitted_species.index(origin)] += sr[:, :, output_species.index(part)]
    ds["pm25_source_receptor"] = (("receptor_region", "source_region", "emitted_species"), pm25_sr, dict(
        units="ug m-3", long_name="run-mean PM2.5 at each receptor region's stations caused by each source "
        "region's emissions of each precursor"))
    ds["pm25_total"] = (("receptor_region",), sr[:, :, output_species.index("PM2.5")].sum(axis=1), dict(
        units="ug m-3", standard_name=PM25_STANDARD_NAME,
        long_name="run-mean PM2.5 at each receptor region's stations"))
    ds["emission_total"] = (("source_region", "sector", "emitted_species"),
                            result.emitted.reshape(R, K, -1) / 1000.0,
                            dict(units="t", long_name="mass emitted over the run period"))
    pop_region = np.array([(fractions[r] * population).sum() for r in held])
    ds["population_region"] = (("receptor_region",), pop_region, dict(
        units="1", long_name="resident population of each receptor region inside the domain"))
    own = np.array(held, dtype=np.int64)
    for name, (units, long_name) in _METRIC_ATTRS.items():
        values = np.zeros((len(held), ns))
        for s in range(ns):
            values[:, s] = metrics(sr[:, :, s], own, pop_region)[name]
        ds[name] = (("receptor_region", "species"), values, {"units": units, "long_name": long_name}
                    | ({"comment": _EXPOSURE_COMMENT} if units == EXPOSURE_UNITS else {}))
    ds.attrs.update(
        Conventions="CF-1.8",
        title=f"airshed footprints {cfg.run.name}: receptor-oriented (backward) particle run",
        source=f"airshed {__version__}",
        airshed_version=__version__,
        run_file_format=RUN_FILE_FORMAT,
        history=f"{datetime.now().astimezone().isoformat(timespec='seconds')}: airshed {__version__} "
                "footprint",
        run_name=cfg.run.name,
        core="lagrangian-backward",
        direction="backward",
        seed=cfg.run.seed,
        start=cfg.run.start.isoformat(),
        end=cfg.run.end.isoformat(),
        time_coverage_start=cfg.run.start.isoformat(),
        time_coverage_end=cfg.run.end.isoformat(),
        averaging_h=cfg.footprint.averaging_h,
        particles_per_period=int(result.particles[0, 0]) if result.particles.size else 0,
        batches=cfg.footprint.batches,
        source_layer_depth_m=source_layer_m,
        folding_rule=FOLDING_RULE,
        species_long_names="; ".join(f"{k}: {v}" for k, v in mechanism.output_long_names.items()),
        airshed_config=config_text,
        **attrs,
    )
    return ds


__all__ = ["FOLDING_RULE", "footprint_dataset", "per_emission"]
