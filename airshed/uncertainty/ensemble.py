"""The ensemble part of a run file: quantiles and the variance by source of every attribution.

``airshed run`` with ``[uncertainty] members > 0`` (or ``airshed uncertainty RUN.nc`` afterwards) adds to
the run file:

===================================  ========================================================================
``quantile``                         coordinate: 0.05, 0.5, 0.95
``uncertainty_source``               coordinate: inventory, meteorology, sampling
``source_receptor_quantile``         (quantile, receptor_region, source_region, species), ug m-3
``transboundary_share_quantile``     (quantile, receptor_region, species), 1
``net_export_exposure_quantile``     (quantile, receptor_region, species), person ug m-3
``receptor_concentration_quantile``  (quantile, time, receptor_region, species), ug m-3
``source_receptor_variance``         (uncertainty_source, receptor_region, source_region, species), ug2 m-6
``transboundary_share_variance``     (uncertainty_source, receptor_region, species), 1
===================================  ========================================================================

The quantiles span every source sampled (global attribute ``uncertainty_sources_sampled``); the variance
of a source not sampled is NaN (:mod:`.statistics`). The additions are a few hundred kilobytes for the
default case (its run file holds the hourly fields), so the run file stays well under twice its size.

They are written into a copy of the run file beside it, renamed over the original only when complete (the
run file is never half-written); recomputing them (another seed, more members) overwrites them.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from airshed.atomic_files import atomic_path
from airshed.errors import AirshedInputError
from airshed.outputs.netcdf import encoding_for
from airshed.uncertainty.members import TaggedRun, draw_factors
from airshed.uncertainty.statistics import (
    QUANTILES,
    UNCERTAINTY_SOURCES,
    ensemble_quantiles,
    variance_by_source,
)

log = logging.getLogger(__name__)

__all__ = ["ENSEMBLE_VARIABLES", "InventoryEnsemble", "add_inventory_ensemble", "add_to_run_file",
           "config_of_run", "ensemble_statistics", "inventory_ensemble", "inventory_ensemble_part",
           "sampling_variances", "write_ensemble_part"]

ENSEMBLE_VARIABLES = ("source_receptor_quantile", "transboundary_share_quantile",
                      "net_export_exposure_quantile", "receptor_concentration_quantile",
                      "source_receptor_variance", "transboundary_share_variance")
"""Variables of the ensemble part of a run file."""

_HOURS_PER_BLOCK = 24
"""Hours of member series held at once (1000 members x 24 h x 13 regions x 8 species: 20 MB)."""


@dataclass(frozen=True)
class InventoryEnsemble:
    """How the inventory members are drawn (``[uncertainty]``)."""

    members: int
    seed: int = 0
    correlation: float = 0.0
    inventory: str = "builtin"

    @classmethod
    def from_config(cls, cfg) -> InventoryEnsemble:
        """Read the ensemble of a config's ``[uncertainty]`` table."""
        u = cfg.uncertainty
        return cls(u.members, u.seed, u.correlation, str(u.inventory))


def inventory_ensemble(ds: xr.Dataset, ensemble: InventoryEnsemble) -> xr.Dataset:
    """Quantiles and variance by source of a run's attributions over its inventory members.

    Parameters
    ----------
    ds
        A run file (its tagged receptor contributions are re-weighted; :mod:`.members`).
    ensemble
        Members, seed, correlation and the table of intervals.

    Returns
    -------
    xarray.Dataset
        The variables of the module docstring, with their attributes and the ``uncertainty_*`` global
        attributes.
    """
    return ensemble_statistics([ds], ensemble)


def ensemble_statistics(runs: Sequence[xr.Dataset], ensemble: InventoryEnsemble | None,
                        sampling: Sequence[Mapping[str, np.ndarray]] | None = None) -> xr.Dataset:
    """Quantiles and variance by source over meteorology members x inventory members.

    Parameters
    ----------
    runs
        The run files of the meteorology members (one: no meteorology ensemble). They must share regions,
        sectors, species and hours; every member is re-weighted by the same inventory members (a crossed
        ensemble), so the inventory and meteorology parts of the variance separate
        (:func:`~airshed.uncertainty.statistics.variance_by_source`).
    ensemble
        The inventory members (at least 2), or None with 2 or more ``runs``: the meteorology members alone
        (each taken with the inventory as it is).
    sampling
        Optional, per meteorology member: the variance of its Monte Carlo estimate of
        ``source_receptor`` (Q, R, S) and ``transboundary_share`` (Q, S) under those keys, from particle
        classes (:func:`~airshed.uncertainty.statistics.batch_means`); None when not assessed.

    Returns
    -------
    xarray.Dataset
        The variables of the module docstring (quantiles over all M x N members together).
    """
    if not runs:
        raise ValueError("no run to take the ensemble of")
    if ensemble is not None and ensemble.members < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {ensemble.members}")
    if ensemble is None and len(runs) < 2:
        raise ValueError("an ensemble needs at least 2 inventory or 2 meteorology members")
    if sampling is not None and len(sampling) != len(runs):
        raise ValueError(f"{len(sampling)} sampling variances for {len(runs)} meteorology members")
    tagged = [TaggedRun.from_dataset(ds) for ds in runs]
    first = tagged[0]
    for j, other in enumerate(tagged[1:], start=1):
        if (other.regions, other.sectors, other.species, other.receptors) != (
                first.regions, first.sectors, first.species, first.receptors) or \
                other.hourly.shape != first.hourly.shape:
            raise AirshedInputError(f"meteorology member {j}: regions, sectors, species or hours differ from "
                                    "member 0; members must be runs of one study")
    if ensemble is None:  # the inventory as it is: one member with every factor 1
        factors = np.ones((1, len(first.regions), len(first.sectors), first.emission_total.shape[-1]))
    else:
        factors = draw_factors(first, ensemble.members, ensemble.seed, ensemble.correlation,
                               ensemble.inventory)
    sr = np.stack([run.source_receptor(factors) for run in tagged])  # (M, N, Q, R, S)
    metrics = [run.metrics(m) for run, m in zip(tagged, sr, strict=True)]
    share = np.stack([m["transboundary_share"] for m in metrics])
    net_export = np.stack([m["net_export_exposure"] for m in metrics])
    T = first.hourly.shape[0]
    series_q = np.concatenate([
        ensemble_quantiles(np.stack([run.receptor_series(factors, slice(t, t + _HOURS_PER_BLOCK))
                                     for run in tagged]), axis=(0, 1))
        for t in range(0, T, _HOURS_PER_BLOCK)
    ], axis=1)
    sr_var = variance_by_source(sr, None if sampling is None else [s["source_receptor"] for s in sampling])
    share_var = variance_by_source(share, None if sampling is None else
                                   [s["transboundary_share"] for s in sampling])
    n_inventory = 1 if ensemble is None else ensemble.members
    sampled = ", ".join([*(["inventory"] if ensemble is not None else []),
                         *(["meteorology"] if len(runs) > 1 else []),
                         *(["sampling"] if sampling is not None else [])])
    q, src = ("quantile",), ("uncertainty_source",)
    dims_sr = ("receptor_region", "source_region", "species")
    dims_share = ("receptor_region", "species")
    total = len(runs) * n_inventory
    note = (f"over {total} members ({len(runs)} meteorology x {n_inventory} inventory); "
            f"sampled: {sampled}")
    ds = runs[0]
    out = xr.Dataset(
        {
            "source_receptor_quantile": (q + dims_sr, ensemble_quantiles(sr, axis=(0, 1)), {
                "units": "ug m-3", "long_name": "quantiles of the period-mean population-weighted "
                "concentration in each receptor region caused by each source region", "comment": note}),
            "transboundary_share_quantile": (q + dims_share, ensemble_quantiles(share, axis=(0, 1)), {
                "units": "1", "long_name": "quantiles of the transboundary share (1 - own / total)",
                "comment": note}),
            "net_export_exposure_quantile": (q + dims_share, ensemble_quantiles(net_export, axis=(0, 1)), {
                "units": "person ug m-3", "long_name": "quantiles of the net export exposure "
                "(export_exposure - import_exposure; positive: a net exporter)", "comment": note}),
            "receptor_concentration_quantile": (q + ("time",) + dims_share, series_q, {
                "units": "ug m-3", "long_name": "quantiles of the population-weighted hourly mean "
                "concentration in each receptor region", "cell_methods": "time: mean", "comment": note}),
            "source_receptor_variance": (src + dims_sr, np.stack([sr_var[k] for k in UNCERTAINTY_SOURCES]), {
                "units": "ug2 m-6", "long_name": "variance of source_receptor by source of uncertainty "
                "(NaN: source not sampled)"}),
            "transboundary_share_variance": (src + dims_share,
                                             np.stack([share_var[k] for k in UNCERTAINTY_SOURCES]), {
                "units": "1", "long_name": "variance of transboundary_share by source of uncertainty "
                "(NaN: source not sampled)"}),
        },
        coords={
            "quantile": ("quantile", np.array(QUANTILES), {"long_name": "quantile level of the ensemble",
                                                           "units": "1"}),
            "uncertainty_source": ("uncertainty_source", np.array(UNCERTAINTY_SOURCES, dtype=object),
                                   {"long_name": "source of uncertainty"}),
            "receptor_region": ds["receptor_region"].values, "source_region": ds["source_region"].values,
            "species": ds["species"].values, "time": ds["time"].values,
        },
        attrs={
            "uncertainty_members": 0 if ensemble is None else ensemble.members,
            "uncertainty_meteorology_members": len(runs),
            "uncertainty_seed": 0 if ensemble is None else ensemble.seed,
            "uncertainty_correlation": 0.0 if ensemble is None else ensemble.correlation,
            "uncertainty_inventory": "none" if ensemble is None else ensemble.inventory,
            "uncertainty_sources_sampled": sampled,
            "uncertainty_method": "inventory members: two-piece lognormal emission factors per (source "
                                  "region, sector, emitted species) re-weighting the stored tagged "
                                  "contributions of each meteorology member's run (airshed.uncertainty)",
        },
    )
    return out


def sampling_variances(runs: Sequence[xr.Dataset]) -> list[dict[str, np.ndarray]] | None:
    """Return the variances of the runs' Monte Carlo estimates from their particle classes.

    As :func:`ensemble_statistics` takes them; None unless every run has them (``particle_classes``).
    """
    names = {"source_receptor": "source_receptor_standard_error",
             "transboundary_share": "transboundary_share_standard_error"}
    if not all(v in ds for ds in runs for v in names.values()):
        return None
    return [{k: np.nan_to_num(ds[v].transpose(*ds[k].dims).values) ** 2 for k, v in names.items()}
            for ds in runs]


def write_ensemble_part(path: Path, ensemble_part: xr.Dataset, compression_level: int = 4) -> None:
    """Write the ensemble variables and attributes into the NetCDF file ``path`` in place.

    Values of variables already in the file are replaced; the others are added. For a file nobody else
    sees yet (a run file before it is published, :meth:`~airshed.outputs.netcdf.IncrementalNetCDF.finish`);
    :func:`add_to_run_file` changes a published file atomically.
    """
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        present = [v for v in ensemble_part.variables if v in nc.variables]
        for name in ensemble_part.data_vars:
            if name in nc.variables:
                nc[name][...] = ensemble_part[name].transpose(*nc[name].dimensions).values
                nc[name].setncatts(dict(ensemble_part[name].attrs))
        nc.setncatts({k: v for k, v in ensemble_part.attrs.items()})
    rest = ensemble_part.drop_vars(present)
    rest.attrs = {}
    if rest.variables:
        rest.to_netcdf(path, mode="a", format="NETCDF4", engine="netcdf4",
                       encoding=encoding_for(rest, compression_level))


def add_to_run_file(path: Path, ensemble_part: xr.Dataset, compression_level: int = 4) -> Path:
    """Add (or replace) the ensemble variables and attributes in a run file, atomically.

    The file is copied beside itself, the variables are written into the copy (:func:`write_ensemble_part`)
    and the copy is renamed over the original (:func:`~airshed.atomic_files.atomic_path`): on any error,
    SIGTERM and SIGHUP included, the original is left as it was and the copy removed.
    """
    path = Path(path)
    with atomic_path(path, needed_bytes=path.stat().st_size + int(ensemble_part.nbytes)) as tmp:
        shutil.copyfile(path, tmp)
        write_ensemble_part(tmp, ensemble_part, compression_level)
    return path


def inventory_ensemble_part(path: Path, ensemble: InventoryEnsemble) -> xr.Dataset:
    """Compute the inventory ensemble of the complete run file ``path`` (not yet written into it)."""
    with xr.open_dataset(path) as ds:
        met = int(ds.attrs.get("uncertainty_meteorology_members", 1) or 1)
        if met > 1:
            # the inventory members were crossed with every meteorology member's run, and those runs are
            # not in the file: recomputing from the central run alone would silently drop the meteorology
            raise AirshedInputError(
                f"{path}: holds an ensemble over {met} meteorology members, whose runs are not in the file; "
                "to change its inventory members rerun `airshed run` with the new [uncertainty] settings")
        return ensemble_statistics([ds], ensemble, sampling_variances([ds]))


def add_inventory_ensemble(path: Path, cfg, ensemble: InventoryEnsemble | None = None,
                           in_place: bool = False) -> xr.Dataset:
    """Compute the inventory ensemble of the run file ``path`` and add it to the file; return the part.

    ``ensemble`` defaults to the config's ``[uncertainty]``; the NetCDF compression is ``[outputs]``'.
    A published file is changed atomically (:func:`add_to_run_file`); ``in_place`` writes into ``path``
    directly, for a run file not yet published (the run adds its ensemble before the file appears).
    """
    ensemble = InventoryEnsemble.from_config(cfg) if ensemble is None else ensemble
    wall0 = time.perf_counter()
    part = inventory_ensemble_part(path, ensemble)
    if in_place:
        write_ensemble_part(path, part, cfg.outputs.compression_level)
    else:
        add_to_run_file(path, part, cfg.outputs.compression_level)
    log.info("added %d inventory members' quantiles to %s in %.1f s", ensemble.members, path,
             time.perf_counter() - wall0)
    return part


def config_of_run(ds: xr.Dataset, where: str = "run file"):
    """Return the validated config a run file was made with (its ``airshed_config`` attribute).

    Raises
    ------
    AirshedInputError
        When the attribute is missing or no longer a valid config, naming ``where``.
    """
    import tomllib

    from airshed.config import parse_config

    text = str(ds.attrs.get("airshed_config", ""))
    if text:
        try:
            return parse_config(tomllib.loads(text))
        except (tomllib.TOMLDecodeError, AirshedInputError):
            pass
    raise AirshedInputError(f"{where} holds no readable airshed_config attribute; rerun it with this version "
                            "of airshed")
