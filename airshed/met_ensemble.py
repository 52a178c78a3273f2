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

Members run in this process (``serial``, ``threads``) share what does not depend on the meteorology
(:class:`SharedInputs`): the grid, region masks, population and tagged emissions are read once, and the
meteorology files are opened once, their windows kept for the next member that reads the same source
window (:class:`~airshed.inputs.meteorology.shared_reader.SharedWindowsReader`: a vertically displaced
member reads the unperturbed window, horizontally displaced ones by the same points read the same
displaced window; the members run grouped so). Each member's run file is bit for bit the one it writes
alone (tested). Dask members read their inputs in their worker.

``airshed run --members N`` (``members=N`` here) runs the first N members only (with offsets, the first is
the unperturbed one): a quick look at the spread, not the ensemble.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import xarray as xr

from airshed.atomic_files import atomic_path
from airshed.config import AirshedConfig
from airshed.errors import AirshedInputError
from airshed.inputs.meteorology.shared_reader import SharedWindowsReader
from airshed.pipeline.inputs import Inputs, met_paths, open_met, open_met_reader, read_inputs
from airshed.preflight import check_output_writable, output_path
from airshed.scale import SERIAL, THREADS, map_members
from airshed.uncertainty.ensemble import (
    InventoryEnsemble,
    add_to_run_file,
    ensemble_statistics,
    sampling_variances,
)
from airshed.uncertainty.meteorology import MetMember, member_config, met_members

log = logging.getLogger(__name__)

__all__ = ["SharedInputs", "run_member", "run_with_members"]


def _without_ensemble(cfg: AirshedConfig, serial: bool) -> AirshedConfig:
    """Return the config of one run of the ensemble: no ensemble of its own, no figures, units in series."""
    u = cfg.uncertainty
    no_members = u.meteorology.model_copy(update={"ensemble": "none", "member_paths": []})
    update = {"uncertainty": u.model_copy(update={"members": 0, "meteorology": no_members}),
        "outputs": cfg.outputs.model_copy(update={"maps": False, "report": False})}
    if serial:
        update["compute"] = cfg.compute.model_copy(update={"scheduler": "serial"})
    return cfg.model_copy(update=update)


@dataclasses.dataclass
class SharedInputs:
    """The inputs of an ensemble's runs that do not depend on the meteorology member, read once.

    ``central`` holds the central run's grid, region masks, population and tagged emissions (and its
    meteorology); ``reader`` the configured meteorology files, opened once for every member that reads
    them (the offset members; a member with files of its own opens those).
    """

    central: Inputs
    emission_files: list[Path]
    reader: SharedWindowsReader

    @classmethod
    def read(cls, cfg: AirshedConfig, progress: bool = False) -> SharedInputs:
        """Read the inputs of ``cfg`` (the central run), its meteorology through a shared reader."""
        reader = SharedWindowsReader(open_met_reader(cfg))
        central = read_inputs(cfg, progress, met_reader=reader)
        return cls(central, central.input_files[len(met_paths(cfg)):], reader)

    def for_member(self, cfg: AirshedConfig, member: MetMember) -> Inputs:
        """Return the inputs of ``member``'s config (:func:`member_config`): shared ones, its meteorology."""
        met, met_files = open_met(cfg, self.central.grid, None if member.paths else self.reader)
        return dataclasses.replace(self.central, met=met, input_files=met_files + self.emission_files)


def run_member(cfg: AirshedConfig, zero_out: str | None, scenario: str | None,
               inputs: Inputs | None = None) -> Path:
    """Run one member's config (a Dask task or a serial step; ``inputs`` already read); return its file."""
    return _run_study(cfg, None, zero_out, False, scenario, inputs)


def _run_study(cfg: AirshedConfig, output: Path | None, zero_out: str | None, progress: bool,
               scenario: str | None, inputs: Inputs | None = None) -> Path:
    from airshed.runner import run_study  # looked up at the call: the CLI tests stand in for the runner

    extra = {} if scenario is None else {"scenario": scenario}
    if inputs is not None:
        extra["inputs"] = inputs
    return run_study(cfg, output=output, zero_out=zero_out, progress=progress, **extra)


def run_with_members(cfg: AirshedConfig, output: Path | None = None, zero_out: str | None = None,
                     progress: bool = True, scenario: str | None = None, members: int | None = None) -> Path:
    """Run a study and, when ``[uncertainty]`` asks for them, its meteorology members; return the run file.

    Without meteorology members this is :func:`airshed.runner.run_study` (inventory members and particle
    classes need no rerun). ``members`` limits the meteorology members to the first N (at least 2).
    """
    # the members this run would run: none unless an ensemble is configured and "meteorology" is sampled
    configured = len(met_members(cfg)) if cfg.uncertainty.meteorology_members else 0
    if members is not None and not configured:
        raise AirshedInputError(f"--members {members}: the config runs no meteorology members "
                                "([uncertainty.meteorology] ensemble = \"none\", or \"meteorology\" not in "
                                "[uncertainty] sources): no members to pick")
    if members is not None and not 2 <= members <= configured:
        raise AirshedInputError(f"--members {members}: expected 2 to {configured}, the members of the "
                                "config's [uncertainty.meteorology] ensemble")
    if not configured:
        return _run_study(cfg, output, zero_out, progress, scenario)
    wall0 = time.perf_counter()
    central_cfg = _without_ensemble(cfg, serial=False)
    in_process = cfg.compute.scheduler in (SERIAL, THREADS)
    # the central run is written beside the run file and published over it only with its ensemble: a
    # failed or stopped ensemble leaves the file that was there (an earlier run's) as it was
    path = output_path(cfg, output)
    check_output_writable(path)
    central_cfg = central_cfg.model_copy(update={"run": cfg.run.model_copy(update={"output": path})})
    listed = met_members(cfg, members)
    rerun = _by_source_window([m for m in listed if not _is_central(m)])
    member_cfgs = {m.name: member_config(_without_ensemble(central_cfg, serial=True), m) for m in rerun}
    member_files = {Path(c.run.output) for c in member_cfgs.values()}
    try:
        with atomic_path(path) as central:
            shared = SharedInputs.read(central_cfg) if in_process else None
            _run_study(central_cfg, central, zero_out, progress, scenario,
                       shared.central if shared is not None else None)
            files: dict[str, Path] = {m.name: central for m in listed if _is_central(m)}
            arguments = [(member_cfgs[m.name], zero_out, scenario)
                         + ((shared, m) if shared is not None else ()) for m in rerun]
            ran = map_members(cfg.compute, run_member if shared is None else _run_shared_member, arguments,
                              progress, label=f"{len(member_cfgs)} meteorology members")
            for name, file in zip(member_cfgs, ran, strict=True):
                files[name] = Path(file)
            datasets = [xr.open_dataset(files[m.name]) for m in listed]
            try:
                u = cfg.uncertainty
                inventory = (InventoryEnsemble.from_config(cfg)
                             if "inventory" in u.sources and u.members >= 2 else None)
                part = ensemble_statistics(datasets, inventory, sampling_variances(datasets))
            finally:
                for ds in datasets:
                    ds.close()
            part.attrs.update(_member_attrs(cfg, listed))
            add_to_run_file(central, part, cfg.outputs.compression_level)
    except BaseException:
        # a failed or stopped ensemble leaves no file of its own: neither the members written so far nor
        # the central run (atomic_path removes it), which holds no ensemble yet
        for f in member_files:
            f.unlink(missing_ok=True)
        raise
    if not cfg.uncertainty.meteorology.keep_member_files:
        for f in member_files:
            f.unlink(missing_ok=True)
    log.info("ran %d meteorology members into %s in %.1f s", len(listed), path, time.perf_counter() - wall0)
    from airshed.runner import write_requested_documents

    write_requested_documents(cfg, path, progress)
    return path


def _run_shared_member(cfg: AirshedConfig, zero_out: str | None, scenario: str | None, shared: SharedInputs,
                       member: MetMember) -> Path:
    """Run one member in this process on the ensemble's shared inputs; return its run file."""
    return run_member(cfg, zero_out, scenario, shared.for_member(cfg, member))


def _by_source_window(listed: list[MetMember]) -> list[MetMember]:
    """Return the members in the order they run: those reading the same source window one after the other.

    Offset members displaced by the same grid points (any vertical offset) read the same window of the
    files, which :class:`SharedWindowsReader` keeps for the next of them; the unperturbed window (the
    central run's, read first) comes first. The order of the results in the run file is ``listed``'s.
    """
    def window(m: MetMember) -> tuple:
        return (m.paths, m.offset.x_grid_points, m.offset.y_grid_points)

    rank: dict[tuple, int] = {((), 0, 0): 0}
    for m in listed:
        rank.setdefault(window(m), len(rank))
    return sorted(listed, key=lambda m: rank[window(m)])


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
