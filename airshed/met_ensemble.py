"""A run with its meteorology members: the central run, each member's rerun, one ensemble in the run file.

``[uncertainty.meteorology] ensemble`` names the members (:mod:`airshed.uncertainty.meteorology`): the 27
HYSPLIT-style offsets of the meteorology (one grid point horizontally, ~250 m vertically), or given member
meteorologies such as the ERA5 ensemble (``member_paths``, one list of files each). Members differ in
transport, so each is a full run of the study (:func:`airshed.runner.run_study` of its config):

1. the central run writes the run file as ``airshed run`` always does (its sampling classes included);
2. every member runs, one after the other (``[compute] scheduler = "serial"``) or each as one Dask task
   (any other scheduler, :func:`airshed.scale.map_members`), to a run file ``<stem>_<member>.nc`` beside
   the central one. The unperturbed offset member *is* the central run and is not rerun;
3. the quantiles and the variance by source over meteorology members x inventory members (a crossed
   ensemble: every member re-weighted by the same inventory factors; the particle classes' variance as
   the sampling part) are added to the central run file (:func:`airshed.uncertainty.ensemble.
   ensemble_statistics`), which then gets its figures and report;
4. the member files are removed unless ``keep_member_files``.

``airshed run --members N`` (``members=N`` here) runs the first N members only (with offsets, the first is
the unperturbed one): a quick look at the spread, not the ensemble.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import xarray as xr

from airshed.config import AirshedConfig
from airshed.scale import map_members
from airshed.uncertainty.ensemble import (
    InventoryEnsemble,
    add_to_run_file,
    ensemble_statistics,
    sampling_variances,
)
from airshed.uncertainty.meteorology import MetMember, member_config, met_members

log = logging.getLogger(__name__)

__all__ = ["run_member", "run_with_members"]


def _without_ensemble(cfg: AirshedConfig, serial: bool) -> AirshedConfig:
    """Return the config of one run of the ensemble: no ensemble of its own, no figures, units in series."""
    u = cfg.uncertainty
    no_members = u.meteorology.model_copy(update={"ensemble": "none", "member_paths": []})
    update = {"uncertainty": u.model_copy(update={"members": 0, "meteorology": no_members}),
        "outputs": cfg.outputs.model_copy(update={"maps": False, "report": False})}
    if serial:
        update["compute"] = cfg.compute.model_copy(update={"scheduler": "serial"})
    return cfg.model_copy(update=update)


def run_member(cfg: AirshedConfig, zero_out: str | None, scenario: str | None) -> Path:
    """Run one member's config (a Dask task or a serial step); return its run file."""
    return _run_study(cfg, None, zero_out, False, scenario)


def _run_study(cfg: AirshedConfig, output: Path | None, zero_out: str | None, progress: bool,
               scenario: str | None) -> Path:
    from airshed.runner import run_study  # looked up at the call: the CLI tests stand in for the runner

    extra = {} if scenario is None else {"scenario": scenario}
    return run_study(cfg, output=output, zero_out=zero_out, progress=progress, **extra)


def run_with_members(cfg: AirshedConfig, output: Path | None = None, zero_out: str | None = None,
                     progress: bool = True, scenario: str | None = None, members: int | None = None) -> Path:
    """Run a study and, when ``[uncertainty]`` asks for them, its meteorology members; return the run file.

    Without meteorology members this is :func:`airshed.runner.run_study` (inventory members and particle
    classes need no rerun). ``members`` limits the meteorology members to the first N (at least 2).
    """
    if not cfg.uncertainty.meteorology_members:
        return _run_study(cfg, output, zero_out, progress, scenario)
    if members is not None and members < 2:
        raise ValueError(f"--members {members}: a meteorology ensemble needs at least 2 members")
    wall0 = time.perf_counter()
    central_cfg = _without_ensemble(cfg, serial=False)
    path = Path(_run_study(central_cfg, output, zero_out, progress, scenario))
    listed = met_members(cfg, members)
    central_cfg = central_cfg.model_copy(update={"run": cfg.run.model_copy(update={"output": path})})
    member_cfgs = {m.name: member_config(_without_ensemble(central_cfg, serial=True), m) for m in listed
                   if not _is_central(m)}
    files: dict[str, Path] = {m.name: path for m in listed if _is_central(m)}
    ran = map_members(cfg.compute, run_member, [(c, zero_out, scenario) for c in member_cfgs.values()],
                      progress, label=f"{len(member_cfgs)} meteorology members")
    for name, file in zip(member_cfgs, ran, strict=True):
        files[name] = Path(file)
    order = [files[m.name] for m in listed]
    try:
        datasets = [xr.open_dataset(f) for f in order]
        try:
            u = cfg.uncertainty
            inventory = (InventoryEnsemble.from_config(cfg)
                         if "inventory" in u.sources and u.members >= 2 else None)
            part = ensemble_statistics(datasets, inventory, sampling_variances(datasets))
        finally:
            for ds in datasets:
                ds.close()
        part.attrs.update(_member_attrs(cfg, listed))
        add_to_run_file(path, part, cfg.outputs.compression_level)
    finally:
        if not cfg.uncertainty.meteorology.keep_member_files:
            for f in set(order) - {path}:
                f.unlink(missing_ok=True)
    log.info("ran %d meteorology members into %s in %.1f s", len(listed), path, time.perf_counter() - wall0)
    from airshed.runner import write_requested_documents

    write_requested_documents(cfg, path, progress)
    return path


def _is_central(member: MetMember) -> bool:
    """Whether a member is the central run itself (the unperturbed offset member)."""
    return not member.paths and member.offset.is_zero


def _member_attrs(cfg: AirshedConfig, listed: list[MetMember]) -> dict[str, str | int]:
    """Global attributes naming the meteorology members of the ensemble."""
    return {
        "uncertainty_meteorology_ensemble": cfg.uncertainty.meteorology.ensemble,
        "uncertainty_meteorology_member_names": " ".join(m.name for m in listed),
        "uncertainty_meteorology_members_configured": len(met_members(cfg)),
    }
