"""Cooperation over the inventory members: each Shapley share and transfer as a median and a 5-95 % range.

A cost-sharing game is not linear in the source-receptor table (the coalitions' optimal abatement, the
core), so it is solved once per member: each inventory member's run tables
(:func:`airshed.uncertainty.members.inventory_members`, the run's stored tagged contributions re-weighted
by the member's emission factors) go through the very analysis ``airshed cooperate`` runs on the run file
(:func:`airshed.cooperation.cooperate`). What a negotiator needs from the ensemble:

* every player's Shapley net cost and transfer (of the game's recommended allocation: Chander-Tulkens in
  the gamma game, Shapley in the target game) as 5, 50 and 95 % quantiles;
* how often the ranking of payers is the same as in the run itself (the players ordered by what they
  pay, :func:`airshed.uncertainty.statistics.same_ranking_share`), and how often each player's transfer
  has the sign it has in the run (who pays and who receives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from airshed.cooperation import cooperate
from airshed.cooperation.policy import Policy
from airshed.uncertainty.ensemble import InventoryEnsemble
from airshed.uncertainty.members import TaggedRun, draw_factors, member_run_tables
from airshed.uncertainty.statistics import QUANTILES, ensemble_quantiles, same_ranking_share

__all__ = ["CooperationEnsemble", "cooperation_ensemble"]


@dataclass(frozen=True)
class CooperationEnsemble:
    """The cooperation analysis over inventory members (yuan; quantile rows 5, 50, 95 %)."""

    players: list[str]
    members: int
    seed: int
    transfers_rule: str
    shapley_yuan: np.ndarray  # (members, players) net cost under the Shapley value
    transfers_yuan: np.ndarray  # (members, players) positive = receives
    run_shapley_yuan: np.ndarray  # (players,) the run itself
    run_transfers_yuan: np.ndarray  # (players,)

    @property
    def shapley_quantiles(self) -> np.ndarray:
        """(3, players) 5, 50, 95 % of each player's Shapley net cost, yuan."""
        return ensemble_quantiles(self.shapley_yuan)

    @property
    def transfer_quantiles(self) -> np.ndarray:
        """(3, players) 5, 50, 95 % of each player's transfer (positive = receives), yuan."""
        return ensemble_quantiles(self.transfers_yuan)

    @property
    def same_payer_ranking(self) -> float:
        """Fraction of members that order the players by payment (largest payer first) as the run does."""
        return same_ranking_share(-self.transfers_yuan, -self.run_transfers_yuan)

    @property
    def same_sign(self) -> np.ndarray:
        """(players,) fraction of members in which each player pays (or receives) as in the run."""
        return np.mean(np.sign(self.transfers_yuan) == np.sign(self.run_transfers_yuan), axis=0)

    def to_json_dict(self) -> dict:
        """Plain-JSON summary (yuan)."""
        sq, tq = self.shapley_quantiles, self.transfer_quantiles
        levels = [f"q{round(100 * q):02d}" for q in QUANTILES]

        def by_player(q: np.ndarray) -> dict:
            return {p: dict(zip(levels, map(float, q[:, j]), strict=True))
                    for j, p in enumerate(self.players)}

        return {
            "inventory_members": self.members,
            "seed": self.seed,
            "transfers_rule": self.transfers_rule,
            "shapley_yuan": by_player(sq),
            "transfers_yuan": by_player(tq),
            "same_payer_ranking_share": self.same_payer_ranking,
            "same_transfer_sign_share": dict(zip(self.players, map(float, self.same_sign), strict=True)),
        }


def _allocations(result) -> tuple[list[str], str, np.ndarray, np.ndarray]:
    """Players, recommended rule, Shapley net costs and transfers of one cooperation result."""
    d = result.to_json_dict()
    players = list(d["players"])
    shapley = np.array([d["shapley"][p] for p in players], dtype=float)
    transfers = np.array([d["transfers"][p] for p in players], dtype=float)
    return players, d["transfers_rule"], shapley, transfers


def cooperation_ensemble(ds: xr.Dataset, policy: Policy, ensemble: InventoryEnsemble,
                         workers: int | None = None, origin: str = "policy") -> CooperationEnsemble:
    """Solve the policy's game on the run and on each of its inventory members.

    Parameters
    ----------
    ds
        A run file.
    policy
        The game (:func:`airshed.cooperation.load_policy`).
    ensemble
        The inventory members (members, seed, correlation, table of intervals).
    workers, origin
        As for :func:`airshed.cooperation.cooperate`.
    """
    players, rule, run_shapley, run_transfers = _allocations(cooperate(ds, policy, workers, origin))
    tagged = TaggedRun.from_dataset(ds)
    factors = draw_factors(tagged, ensemble.members, ensemble.seed, ensemble.correlation, ensemble.inventory)
    shapley = np.empty((ensemble.members, len(players)))
    transfers = np.empty_like(shapley)
    for j in range(ensemble.members):
        member = member_run_tables(tagged, factors[j])
        _, _, shapley[j], transfers[j] = _allocations(cooperate(member, policy, workers, origin))
    return CooperationEnsemble(players, ensemble.members, ensemble.seed, rule, shapley, transfers,
                               run_shapley, run_transfers)
