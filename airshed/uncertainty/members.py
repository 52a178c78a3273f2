"""Inventory members of a finished run: the stored tagged contributions re-weighted by emission factors.

airshed is linear in emissions, so a run whose emissions of source region ``r``, sector ``k`` and emitted
species ``e`` were ``f[r, k, e]`` times larger would have given the contributions

    c'(t, q, r, k, s) = f[r, k, precursor(s)] * c(t, q, r, k, s),

with the precursors of the mechanism (:meth:`~airshed.physics.mechanism.Mechanism.precursor_of`: sulfate
follows SO2, nitrate NOx, primary PM2.5 follows PM2.5) and PM2.5 the sum of its parts. This is the
re-weighting that ``airshed scenario`` applies (:func:`airshed.scenarios.species_factors`,
:func:`airshed.scenarios.recompose_sums`) with constant factors, and it equals a full rerun with the same
factors to rounding (tests/test_uncertainty.py, both cores) because the factors cover the whole run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from airshed.config import ScenarioConfig
from airshed.errors import AirshedInputError
from airshed.model.apportionment import transboundary_metrics
from airshed.physics.mechanism import EMITTED_SPECIES, default_mechanism
from airshed.scenarios import composite_parts, recompose_sums, species_factors, stored_contributions
from airshed.uncertainty.inventory import read_inventory_uncertainty, sample_factors

__all__ = ["TaggedRun", "draw_factors", "factors_as_scenario", "inventory_members", "member_run_tables"]

_METRICS = ("transboundary_share", "import_concentration", "import_exposure", "export_exposure",
            "net_export_exposure")


@dataclass(frozen=True)
class TaggedRun:
    """A run file's tagged receptor contributions and the tables needed to re-weight them.

    Shapes: T hours, Q receptor regions, R source regions (``outside`` included), K sectors, S output
    species, E emitted species.
    """

    regions: tuple[str, ...]
    receptors: tuple[str, ...]
    sectors: tuple[str, ...]
    species: tuple[str, ...]
    hourly: np.ndarray  # (T, Q, R, K, S) ug m-3, population-weighted receptor means per tag
    own: np.ndarray  # (Q,) index of each receptor region on the source-region axis
    population: np.ndarray  # (Q,) persons
    emission_total: np.ndarray  # (R, K, E) tonnes over the run, EMITTED_SPECIES order
    attrs: dict

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> TaggedRun:
        """Read a run file written by ``airshed run``.

        Raises
        ------
        AirshedInputError
            For a file without the tagged receptor contributions or the tables named.
        """
        hourly = stored_contributions(ds)
        missing = [v for v in ("population_region", "emission_total") if v not in ds.variables]
        if missing:
            raise AirshedInputError(
                f"run file has no {', '.join(missing)}: rerun with this version of airshed")
        regions = tuple(str(r) for r in ds["source_region"].values)
        receptors = tuple(str(q) for q in ds["receptor_region"].values)
        unknown = [q for q in receptors if q not in regions]
        if unknown:
            raise AirshedInputError(f"run file: receptor regions {unknown} are not source regions")
        emitted = [str(e) for e in ds["emission_total"]["emitted_species"].values]
        emission = np.zeros((len(regions), ds.sizes["sector"], len(EMITTED_SPECIES)))
        et = ds["emission_total"].transpose("source_region", "sector", "emitted_species").values
        for j, e in enumerate(emitted):
            emission[..., EMITTED_SPECIES.index(e)] = et[..., j]
        return cls(
            regions=regions, receptors=receptors,
            sectors=tuple(str(k) for k in ds["sector"].values),
            species=tuple(str(s) for s in ds["species"].values),
            hourly=hourly,
            own=np.array([regions.index(q) for q in receptors]),
            population=ds["population_region"].values.astype(float),
            emission_total=emission,
            attrs=dict(ds.attrs),
        )

    @property
    def mean(self) -> np.ndarray:
        """Period-mean tagged receptor contributions (Q, R, K, S), ug m-3."""
        return self.hourly.mean(axis=0)

    def output_factors(self, factors: np.ndarray) -> np.ndarray:
        """Emission factors (..., R, K, E) as factors of the output species (..., R, K, S)."""
        return species_factors(factors, self.species)

    def source_receptor(self, factors: np.ndarray) -> np.ndarray:
        """Period-mean source-receptor tables of members (N, Q, R, S) for factors (N, R, K, E), ug m-3."""
        g = self.output_factors(factors)
        return recompose_sums(np.einsum("nrks,qrks->nqrs", g, self.mean), self.species)

    def receptor_series(self, factors: np.ndarray, hours: slice = slice(None)) -> np.ndarray:
        """Hourly receptor concentrations of members (N, T, Q, S) for factors (N, R, K, E), ug m-3."""
        g = self.output_factors(factors)
        hourly = self.hourly[hours]
        T, Q, R, K, S = hourly.shape
        out = np.empty((g.shape[0], T, Q, S))
        for s in range(S):  # one matrix product per species: (N, R K) @ (R K, T Q)
            rows = hourly[..., s].reshape(T * Q, R * K)
            out[..., s] = (g[..., s].reshape(-1, R * K) @ rows.T).reshape(-1, T, Q)
        return recompose_sums(out, self.species)

    def metrics(self, source_receptor: np.ndarray) -> dict[str, np.ndarray]:
        """Cross-border metrics (share, imports, exports) of tables (..., Q, R, S), each (..., Q, S).

        The definitions are :func:`~airshed.model.apportionment.transboundary_metrics`'.
        """
        lead = source_receptor.shape[:-3]
        flat = source_receptor.reshape(-1, *source_receptor.shape[-3:])
        out = {k: np.empty((flat.shape[0], flat.shape[1], flat.shape[3])) for k in _METRICS}
        for n in range(flat.shape[0]):
            for s in range(flat.shape[3]):
                m = transboundary_metrics(flat[n, :, :, s], self.own, self.population)
                for k in _METRICS:
                    out[k][n, :, s] = m[k]
        return {k: v.reshape(*lead, *v.shape[1:]) for k, v in out.items()}

    def pm25_source_receptor(self, factors: np.ndarray) -> np.ndarray:
        """PM2.5 caused by each region's emissions of each precursor (N, Q, R, E), ug m-3."""
        mechanism = default_mechanism()
        pm = self.species.index("PM2.5")
        parts = composite_parts(self.species)[pm]
        g = self.output_factors(factors)
        out = np.zeros((factors.shape[0], len(self.receptors), len(self.regions), len(EMITTED_SPECIES)))
        for s in parts:
            e = EMITTED_SPECIES.index(mechanism.precursor_of(self.species[s]))
            out[..., e] += np.einsum("nrk,qrk->nqr", g[..., s], self.mean[..., s])
        return out


def member_run_tables(run: TaggedRun, factors: np.ndarray) -> xr.Dataset:
    """Return the run tables of one inventory member (factors (R, K, E)) as a run-file-like dataset.

    Holds ``pm25_source_receptor``, ``pm25_total``, ``emission_total`` (the member's emissions: factor x
    inventory), ``population_region``, ``source_receptor`` and ``transboundary_share``, with the run file's
    coordinates, dimensions, units and global attributes, so code that reads a run file's tables (such as
    :func:`airshed.cooperation.runfile.run_tables`) reads a member unchanged.
    """
    f = factors[None]
    sr = run.source_receptor(f)[0]
    pm_sr = run.pm25_source_receptor(f)[0]
    share = run.metrics(sr[None])["transboundary_share"][0]
    pm = run.species.index("PM2.5")
    coords = {"receptor_region": list(run.receptors), "source_region": list(run.regions),
              "sector": list(run.sectors), "emitted_species": list(EMITTED_SPECIES),
              "species": list(run.species)}
    conc = {"units": "ug m-3"}
    return xr.Dataset(
        {
            "pm25_source_receptor": (("receptor_region", "source_region", "emitted_species"), pm_sr, conc),
            "pm25_total": (("receptor_region",), sr[:, :, pm].sum(axis=1), conc),
            "emission_total": (("source_region", "sector", "emitted_species"), factors * run.emission_total,
                               {"units": "t"}),
            "population_region": (("receptor_region",), run.population, {"units": "1"}),
            "source_receptor": (("receptor_region", "source_region", "species"), sr, conc),
            "transboundary_share": (("receptor_region", "species"), share, {"units": "1"}),
        },
        coords=coords,
        attrs=run.attrs,
    )


def inventory_members(run: xr.Dataset | TaggedRun, n: int, seed: int, correlation: float = 0.0,
                      inventory: str = "builtin") -> Iterator[xr.Dataset]:
    """Yield ``n`` inventory members of a run, each as re-weighted run tables (:func:`member_run_tables`).

    The API for code that evaluates its results over the inventory uncertainty (cost sharing, transfers):
    call the analysis once per member and collect its outputs. Member ``j`` is the same for a given
    ``seed``, ``correlation`` and ``inventory`` table whatever ``n`` is.

    Parameters
    ----------
    run
        A run file (``xarray.Dataset``) or its :class:`TaggedRun`.
    n, seed, correlation, inventory
        As in ``[uncertainty]`` (members, seed, correlation, inventory).
    """
    tagged = run if isinstance(run, TaggedRun) else TaggedRun.from_dataset(run)
    factors = draw_factors(tagged, n, seed, correlation, inventory)
    for j in range(n):
        yield member_run_tables(tagged, factors[j])


def draw_factors(run: TaggedRun, n: int, seed: int, correlation: float = 0.0, inventory: str = "builtin"
                 ) -> np.ndarray:
    """Inventory factors (n, R, K, E) for a run's regions and sectors (see :mod:`.inventory`)."""
    table = read_inventory_uncertainty(inventory).for_sectors(run.sectors)
    return sample_factors(table, len(run.regions), n, seed, correlation)


def factors_as_scenario(factors: np.ndarray, regions: Sequence[str], sectors: Sequence[str],
                        name: str = "inventory_member") -> ScenarioConfig:
    """Write a member's factors (R, K, E) as a ``[[scenarios]]`` entry covering the whole run.

    ``airshed run CONFIG --scenario NAME`` with it runs the member in full (one change per region, sector
    and species whose factor is not 1): the check that re-weighting equals a rerun, or a member's full
    fields when they are needed.
    """
    changes = [
        {"regions": [regions[r]], "sectors": [sectors[k]], "species": [EMITTED_SPECIES[e]],
         "change_percent": 100.0 * (float(factors[r, k, e]) - 1.0)}
        for r in range(factors.shape[0]) for k in range(factors.shape[1]) for e in range(factors.shape[2])
        if factors[r, k, e] != 1.0
    ]
    if not changes:
        changes = [{"regions": "all", "change_percent": 0.0}]
    return ScenarioConfig.model_validate({"name": name, "changes": changes})
