"""The Python API, for notebooks and scripts: configure and run a study, open run files.

::

    import airshed
    ds = airshed.run("examples/jjj.toml", run__end="2017-12-01T06:00:00", grid__cell_km=27.0)
    ds.airshed.source_receptor("PM2.5")        # pandas: receptor region x source region, ug m-3

Overrides name a config key by its path joined with double underscores: ``grid__cell_km=27.0`` sets
``[grid] cell_km``, ``meteorology__builtin__days=2.0`` sets ``[meteorology.builtin] days``. Values are
what the TOML file would hold (numbers, strings, booleans, lists, dicts for tables). The overridden config
is validated as a whole, with the one-line errors of ``airshed config validate``
(:class:`~airshed.errors.ConfigError`). Config objects validate every assignment as well
(``cfg.grid.cell_km = 0`` raises), so ``cfg = airshed.configure(...)``, edit, ``airshed.run(cfg)`` works
too.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from airshed.config import AirshedConfig, parse_config, read_config_file
from airshed.errors import ConfigError
from airshed.met_ensemble import run_with_members
from airshed.outputs.runfile import open_run_file

__all__ = ["configure", "open_run", "run"]

ConfigLike = str | os.PathLike | AirshedConfig | Mapping[str, Any]


def configure(config: ConfigLike, /, **overrides: Any) -> AirshedConfig:
    """Return a validated config from a TOML file, a config object or a dict, with ``overrides`` applied.

    Parameters
    ----------
    config
        The path of a TOML config (relative paths in it resolve against its folder), an
        :class:`~airshed.config.AirshedConfig` (whose paths are absolute already), or the TOML document
        as nested dicts (relative paths resolve against the current folder).
    **overrides
        ``table__key=value`` (module docstring). A config object keeps its resolved ``run.output``;
        pass ``run__output`` to write elsewhere.

    Raises
    ------
    ConfigError
        For an unreadable file or any invalid key or value, naming the key.
    """
    source: Path | None = None
    if isinstance(config, AirshedConfig):
        data, base, source = config.model_dump(), Path.cwd(), config.source
        if source is not None:
            base = source.resolve().parent
    elif isinstance(config, Mapping):
        data, base = copy.deepcopy(dict(config)), Path.cwd()
    else:
        source = Path(config).expanduser()
        data, base = read_config_file(source), source.resolve().parent
    for key, value in overrides.items():
        *tables, name = key.split("__")
        where = data
        for i, table in enumerate(tables):
            where = where.setdefault(table, {})
            if not isinstance(where, dict):
                raise ConfigError(f"override {key}: `{'.'.join(tables[:i + 1])}` is not a table")
        where[name] = value
    return parse_config(data, config_dir=base, source=source)


def run(config: ConfigLike, /, *, zero_out: str | None = None, scenario: str | None = None,
        progress: bool = False, **overrides: Any) -> xr.Dataset:
    """Run a study and return its run file, opened lazily (``.load()`` reads it into memory).

    Parameters
    ----------
    config
        A TOML path, a config object or a dict (:func:`configure`).
    zero_out
        Name of a region whose emissions are switched off.
    scenario
        Name of a ``[[scenarios]]`` entry to run in full.
    progress
        Show progress bars.
    **overrides
        ``table__key=value`` config overrides, e.g. ``run__core="plume"`` (:func:`configure`).

    Returns
    -------
    xarray.Dataset
        The run file written to ``run.output`` (see README "The run file"), with the ``.airshed``
        accessor for the common questions (:class:`airshed.outputs.accessor.RunAccessor`).
    """
    cfg = configure(config, **overrides)
    return open_run(run_with_members(cfg, zero_out=zero_out, progress=progress, scenario=scenario))


def open_run(path: str | os.PathLike) -> xr.Dataset:
    """Open a run file written by ``airshed run`` (lazily), naming it in a one-line error if unreadable.

    What a reader of the file needs is checked by that reader (the ``ds.airshed`` accessor, scenarios,
    cooperation), each naming the variable it misses.

    Raises
    ------
    AirshedInputError
        When the file is missing, not NetCDF, not an airshed run file or of a format this version cannot read.
    """
    return open_run_file(path, needs=())
