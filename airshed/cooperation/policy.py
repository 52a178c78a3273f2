"""Policy file for the cooperation analysis: the game, abatement cost curves, options, health valuation.

The policy file is TOML (see ``examples/policy_jjj.toml`` and ``examples/policy_jjj_targets.toml``)::

    game = "gamma"             # or "targets"
    [costs.Hebei.SO2]          # source region -> precursor -> marginal abatement cost curve
    max_fraction = 0.8
    marginal_cost = [[0.0, 2000.0], [0.4, 8000.0], [0.8, 60000.0]]
    [costs.default.NOx]        # "default" applies to every region without its own entry for that precursor
    ...
    [options]
    cost_basis = "period"
    [health]                   # optional: every key has a cited default
    vsl_yuan = 4.76e6

``game = "gamma"`` (the default) is the welfare game of Chander and Tulkens: each region weighs its
abatement cost against its health damage (:mod:`airshed.cooperation.gamma`). ``game = "targets"`` is a
regulator's game: coalitions meet PM2.5 targets at least cost (:mod:`airshed.cooperation.abatement`); it
needs a ``[targets]`` table (receptor region -> period-mean PM2.5, ug m-3), which the gamma game rejects.

Every table rejects unknown keys (``extra="forbid"``). Errors are raised as
:class:`airshed.errors.ConfigError` whose message names the file and the dotted key path
(``costs.Hebei.SO2.marginal_cost``) and what was expected.

Time basis of costs and damages (``options.cost_basis``):

``"period"`` (default)
    Marginal costs are yuan per tonne removed *during the run period*, applied to the run's period
    tonnes: the abatement is an event-style control switched on for the modelled window (APEC 2014,
    a heavy-pollution alert). Damages are the acute deaths during the run. Money is yuan per run period.
``"annual"``
    Marginal costs are annualised yuan per tonne per year; the run's period tonnes are scaled to a year by
    ``365.25 d / period length`` and the run's period mean is taken as the annual mean (the run stands
    for a year, which the output states). Damages are the chronic (GEMM) deaths per year. Money is yuan
    per year.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from airshed.errors import ConfigError

#: Precursor names of the source-receptor tables; abatement is set per source region and precursor.
Precursor = Literal["SO2", "NOx", "PM2.5", "NH3", "NMVOC"]
PRECURSORS: tuple[str, ...] = get_args(Precursor)
#: Cost-table key that applies to every region without its own entry for a precursor.
DEFAULT_REGION = "default"
#: Source region that stands for everything outside the modelled regions; it cannot be abated.
OUTSIDE_REGION = "outside"


def _health_valuation_rows() -> list[dict[str, str]]:
    """Rows of the packaged ``health_valuation.csv`` (its ``#`` provenance header skipped)."""
    text = resources.files("airshed.data").joinpath("policy/health_valuation.csv").read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return list(csv.DictReader(io.StringIO(body)))


def health_valuation_default(quantity: str) -> tuple[float, str]:
    """First value of ``quantity`` in the packaged ``health_valuation.csv`` and its citation.

    Parameters
    ----------
    quantity
        The ``quantity`` column, e.g. ``"VSL"`` or ``"HR_PM25_nonaccidental_per10"``.

    Returns
    -------
    value, source
        The central value and ``"<source>, <doi>"``.
    """
    for row in _health_valuation_rows():
        if row["quantity"] == quantity and row["value"]:
            return float(row["value"]), f"{row['source']}, {row['url_or_doi']}"
    raise KeyError(quantity)


_VSL_YUAN, _VSL_SOURCE = health_valuation_default("VSL")
_ACUTE_PERCENT, _ACUTE_SOURCE = health_valuation_default("ER_PM25_daily_nonaccidental_per10")

#: Keys of earlier policy files and why they went, for the error message that rejects them.
REMOVED_KEYS = {
    "infeasible_penalty": "no penalty enters the game any more: a coalition that cannot meet its targets "
    "meets the attainable part (see the README, 'The target game')",
    "baseline_mortality": "baseline death rates ship with airshed (GBD 2015, GEMM calculator)",
    "baseline_mortality_source": "baseline death rates ship with airshed (GBD 2015, GEMM calculator)",
    "hazard_ratio_per_10ugm3": "the log-linear cohort hazard ratio was replaced by the GEMM (chronic) and "
    "the Chen et al. 2017 coefficient (acute)",
    "hazard_ratio_source": "the log-linear cohort hazard ratio was replaced by the GEMM",
    "counterfactual_ugm3": "use acute_counterfactual_ugm3 (the GEMM keeps its own 2.4 ug m-3)",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CostCurve(_Strict):
    """Marginal abatement cost of one precursor in one source region.

    The marginal cost is piecewise linear in the abated fraction ``a`` between the given points
    ``[a_k, mc_k]`` (yuan per tonne), so the total cost ``E * integral_0^a mc`` is piecewise quadratic.
    Fractions must start at 0 and strictly increase; marginal costs must be non-negative and
    non-decreasing (a convex total cost, which the least-cost LP needs). The last point must reach
    ``max_fraction``, the largest fraction that can be abated.
    """

    max_fraction: float = Field(gt=0.0, le=1.0, description="largest abatable fraction of emissions")
    marginal_cost: list[tuple[float, float]] = Field(
        min_length=2, description="[abated fraction, yuan per tonne] points, piecewise linear"
    )

    @field_validator("marginal_cost")
    @classmethod
    def _curve_is_convex(cls, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        fractions = [p[0] for p in points]
        costs = [p[1] for p in points]
        if not all(math.isfinite(v) for v in fractions + costs):
            raise ValueError("all fractions and costs must be finite numbers")
        if fractions[0] != 0.0:
            raise ValueError(f"the first point must be at fraction 0.0, got {fractions[0]}")
        if any(b <= a for a, b in zip(fractions, fractions[1:], strict=False)):
            raise ValueError(f"abated fractions must strictly increase, got {fractions}")
        if fractions[-1] > 1.0:
            raise ValueError(f"abated fractions must not exceed 1.0, got {fractions[-1]}")
        if any(c < 0.0 for c in costs):
            raise ValueError(f"marginal costs must be >= 0 yuan per tonne, got {costs}")
        if any(b < a for a, b in zip(costs, costs[1:], strict=False)):
            raise ValueError(
                f"marginal costs must not decrease with the abated fraction (convex total cost), got {costs}"
            )
        return points

    @model_validator(mode="after")
    def _curve_covers_max_fraction(self) -> CostCurve:
        if self.marginal_cost[-1][0] < self.max_fraction:
            raise ValueError(
                f"marginal_cost must extend to max_fraction={self.max_fraction}; "
                f"its last point is at {self.marginal_cost[-1][0]}"
            )
        return self


class Options(_Strict):
    """Solver and game options."""

    cost_basis: Literal["period", "annual"] = "period"
    segments_per_piece: int = Field(
        8, ge=1, le=200,
        description="target game: LP secant segments per linear piece of each marginal-cost curve",
    )
    exact_shapley_max_players: int = Field(
        20, ge=1, le=22,
        description="exact Shapley values and core check over all 2^n coalitions up to this many players",
    )
    shapley_permutations: int = Field(1000, ge=10, description="permutations when sampling Shapley values")
    seed: int = Field(0, ge=0, description="seed of the Shapley permutation sampler")
    players: list[str] | None = Field(
        None, min_length=1, description="source regions in the game (default: all but 'outside')"
    )


class Health(_Strict):
    """Health valuation: value of a statistical life and the acute exposure-response coefficient.

    The chronic function (GEMM) and the baseline death rates are the shipped data files; see
    :mod:`airshed.cooperation.health`.
    """

    vsl_yuan: float = Field(_VSL_YUAN, gt=0.0, description="value of a statistical life, yuan")
    vsl_source: str = _VSL_SOURCE
    acute_percent_per_10ugm3: float = Field(
        _ACUTE_PERCENT, gt=0.0, lt=10.0,
        description="percent more daily non-accidental deaths per 10 ug m-3 (short-term exposure)",
    )
    acute_source: str = _ACUTE_SOURCE
    acute_counterfactual_ugm3: float = Field(
        2.4, ge=0.0, allow_inf_nan=False,
        description="concentration below which no acute excess risk is counted (as the GEMM's 2.4)",
    )


RegionName = Annotated[str, Field(min_length=1)]
TargetUgm3 = Annotated[float, Field(gt=0.0, allow_inf_nan=False, description="period-mean PM2.5, ug m-3")]


GameName = Literal["gamma", "targets"]


class Policy(_Strict):
    """A cooperation-analysis policy: the game, cost curves, options, health valuation (and targets)."""

    game: GameName = "gamma"
    targets: dict[RegionName, TargetUgm3] | None = Field(None, min_length=1)
    costs: dict[RegionName, dict[Precursor, CostCurve]] = Field(min_length=1)
    options: Options = Options()
    health: Health = Health()

    @field_validator("costs")
    @classmethod
    def _outside_not_abatable(cls, costs: dict[str, dict[str, CostCurve]]) -> dict[str, dict[str, CostCurve]]:
        if OUTSIDE_REGION in costs:
            raise ValueError(
                f"costs.{OUTSIDE_REGION}: stands for sources outside the domain and cannot be abated"
            )
        return costs

    @model_validator(mode="after")
    def _targets_match_the_game(self) -> Policy:
        if self.game == "targets" and not self.targets:
            raise ValueError("game = 'targets' needs a [targets] table (receptor region -> ug m-3)")
        if self.game == "gamma" and self.targets:
            raise ValueError(
                "[targets] is used only by game = 'targets'; the gamma game weighs costs against health "
                "damages and has no targets"
            )
        return self

    def curve(self, region: str, species: str) -> CostCurve | None:
        """Return the cost curve of ``species`` in ``region`` (falling back to ``default``), or None."""
        own = self.costs.get(region, {})
        if species in own:
            return own[species]
        return self.costs.get(DEFAULT_REGION, {}).get(species)

    def players_in(self, sources: list[str]) -> list[str]:
        """Players of the game: ``options.players`` in run order, or every source region but ``outside``."""
        chosen = self.options.players
        return [s for s in sources if s != OUTSIDE_REGION and (chosen is None or s in chosen)]

    def check_regions(self, receptors: list[str], sources: list[str], origin: str = "policy") -> None:
        """Raise :class:`ConfigError` if a target or cost names a region the run does not have.

        Parameters
        ----------
        receptors, sources
            Receptor and source region names of the run's source-receptor table.
        origin
            File name used in messages.
        """
        players = self.players_in(sources)
        for k, region in enumerate(self.options.players or []):
            if region not in sources or region == OUTSIDE_REGION:
                raise ConfigError(
                    f"{origin}: options.players[{k}]: {region!r} is not a source region that can abate; "
                    f"the run's source regions are {sources}"
                )
        for region in self.targets or {}:
            if region not in receptors:
                raise ConfigError(
                    f"{origin}: targets.{region}: unknown receptor region; the run has {receptors}"
                )
            if region not in players:
                raise ConfigError(
                    f"{origin}: targets.{region}: a target needs a player that can abate; "
                    f"the players are {players}"
                )
        for region in self.costs:
            if region != DEFAULT_REGION and region not in sources:
                raise ConfigError(
                    f"{origin}: costs.{region}: unknown source region; expected one of {sources} "
                    f"or {DEFAULT_REGION!r}"
                )


def _key_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _valid_keys(parent: tuple[int | str, ...]) -> list[str]:
    """Keys of the policy table at ``parent`` (empty where the path leaves the nested models)."""
    model: type[BaseModel] = Policy
    for part in parent:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def policy_from_dict(data: dict, origin: str = "policy") -> Policy:
    """Validate a parsed policy mapping; errors become :class:`ConfigError` naming the key path."""
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        # pydantic appends the validator's name to the path of a dict value; drop what is not a key
        path = _key_path(tuple(p for p in loc if p not in ("function-after", "[key]")))
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            match = difflib.get_close_matches(str(loc[-1]), _valid_keys(loc[:-1]), n=1, cutoff=0.6)
            if match:
                msg = f"unknown key; did you mean `{match[0]}`?"
            if loc and str(loc[-1]) in REMOVED_KEYS:
                msg = f"removed key: {REMOVED_KEYS[str(loc[-1])]}"
        elif err["type"] == "literal_error" and loc and loc[-1] == "[key]":
            msg = f"unknown precursor; expected one of {PRECURSORS}"
        where = "" if path == "(top level)" else f"{path}: "
        raise ConfigError(f"{origin}: {where}{msg}{more}") from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy TOML file.

    Raises
    ------
    ConfigError
        If the file is missing, not valid TOML, or fails validation; the message names the key path.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: policy file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return policy_from_dict(data, origin=str(path))
