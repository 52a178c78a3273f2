"""Meteorology members: each member is a config, and a member run is ``(config, member) -> run file``.

``[uncertainty.meteorology]`` names the ensemble:

* ``ensemble = "offsets"`` -- HYSPLIT's meteorological grid offset ensemble, 27 members (9 without a
  vertical offset): the meteorology displaced by -1, 0, +1 source grid points in x and y and by -1, 0, +1
  vertical offsets (:mod:`airshed.inputs.meteorology.offsets`). A member sets ``[meteorology.offset]``;
* ``ensemble = "members"`` -- given member meteorologies, e.g. the 10 members of the ERA5 ensemble (EDA),
  one list of files per member (``member_paths``); a member replaces ``meteorology.paths``.

A member's config reproduces it with ``airshed run`` (its run file's ``airshed_config`` says which member
it is). Members differ in transport, so they need full runs (``airshed.runner.run_study`` of
:func:`member_config`). The
ensemble statistics over met members x inventory members are :func:`airshed.uncertainty.statistics.
variance_by_source` and :func:`~airshed.uncertainty.statistics.ensemble_quantiles`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from airshed.config import AirshedConfig, dump_config, parse_config
from airshed.inputs.meteorology.offsets import MetOffset, offset_members

__all__ = ["MetMember", "member_config", "met_members"]


@dataclass(frozen=True)
class MetMember:
    """One meteorology member: a name, and either an offset or the member's files."""

    name: str
    offset: MetOffset = MetOffset()
    paths: tuple[Path, ...] = ()


def met_members(cfg: AirshedConfig, subset: int | None = None) -> list[MetMember]:
    """List the meteorology members of a config's ``[uncertainty.meteorology]`` (the first ``subset``).

    Offset members come in :func:`~airshed.inputs.meteorology.offsets.offset_members` order (member 0
    unperturbed), so a subset always holds the unperturbed meteorology.
    """
    m = cfg.uncertainty.meteorology
    if m.ensemble == "offsets":
        members = [MetMember(f"offset_{o.label}", offset=o)
                   for o in offset_members(m.horizontal_grid_points, m.vertical_offset_m)]
    elif m.ensemble == "members":
        members = [MetMember(f"member{j:02d}", paths=tuple(p)) for j, p in enumerate(m.member_paths)]
    else:
        members = []
    return members if subset is None else members[:subset]


def member_config(cfg: AirshedConfig, member: MetMember) -> AirshedConfig:
    """Return the config whose run is ``member``: its meteorology, output ``<stem>_<member>.nc``."""
    met = cfg.meteorology
    update: dict = {"offset": met.offset.model_copy(update={
        "x_grid_points": member.offset.x_grid_points, "y_grid_points": member.offset.y_grid_points,
        "height_m": member.offset.height_m})}
    if member.paths:
        update["paths"] = list(member.paths)
    output = Path(cfg.run.output)
    named = output.with_name(f"{output.stem}_{member.name}{output.suffix}")
    run = cfg.run.model_copy(update={"output": named})
    changed = cfg.model_copy(update={"meteorology": met.model_copy(update=update), "run": run})
    # through the validation again: the member is a config like any other (paths absolute in the dump)
    return parse_config(tomllib.loads(dump_config(changed)), config_dir=output.parent)

