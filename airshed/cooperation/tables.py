"""Rich tables of a cooperation result for the terminal (``airshed cooperate`` without ``--json``)."""

from __future__ import annotations

from rich.table import Table

from airshed.cooperation.analysis import CooperationResult

MONEY_UNITS: tuple[tuple[float, str], ...] = (
    (1e9, "billion yuan"), (1e6, "million yuan"), (1e3, "thousand yuan"), (1.0, "yuan")
)
"""Units money is printed in; :func:`money_unit` picks the largest that keeps the main costs >= 1."""


def money_unit(*amounts_yuan: float) -> tuple[float, str]:
    """Scale and name of the unit in which the largest of ``amounts_yuan`` is at least 1 (2 decimals)."""
    largest = max((abs(a) for a in amounts_yuan if a is not None), default=0.0)
    for scale, name in MONEY_UNITS:
        if largest >= scale:
            return scale, name
    return MONEY_UNITS[-1]


def render_tables(result: CooperationResult) -> list[Table]:
    """Tables summarising ``result``: targets and costs, cost allocation, abatement, health.

    Money is shown in one unit per table (billion, million or thousand yuan, chosen from the larger of the
    independent and cooperative totals; health values from the largest damage), per run period or per
    year as the policy's ``cost_basis`` says.
    """
    data = result.to_json_dict()
    basis = "per run period" if result.cost_basis == "period" else "per year"
    pb = result.problem
    scale, unit = money_unit(data["independent_total_cost_yuan"], data["cooperative"]["total_cost_yuan"])

    def _yuan(value: float | None, scale: float = scale) -> str:
        # + 0.0 prints a value that rounds to zero from below as 0.00, not -0.00
        return "-" if value is None else f"{round(value / scale, 2) + 0.0:,.2f}"

    targets = Table(title=f"Targets: independent action vs cooperation ({unit} {basis})")
    for col in (
        "region",
        "baseline",
        "target",
        "alone: cost",
        "alone: shortfall",
        "joint: cost",
        "joint: PM2.5",
        "met",
    ):
        targets.add_column(col, justify="left" if col == "region" else "right")
    for region, ind in data["independent"].items():
        coop = data["cooperative"]["regions"][region]
        targets.add_row(
            region,
            f"{coop['baseline_ugm3']:.1f}",
            f"{coop['target_ugm3']:.1f}",
            _yuan(ind["cost_yuan"]),
            "met" if ind["feasible"] else f"{ind['shortfall']:.2f} ug/m3",
            _yuan(coop["cost_yuan"]),
            f"{coop['pm25_after_ugm3']:.1f}",
            "yes" if coop["target_met"] else "NO",
        )
    coop = data["cooperative"]
    targets.caption = (
        f"cooperative total {_yuan(coop['total_cost_yuan'])} "
        f"(the LP over-states it by at most {coop['linearisation_error_bound_yuan']:,.0f} yuan),"
        f" independent total {_yuan(data['independent_total_cost_yuan'])}"
    )

    alloc = Table(title=f"Cost allocation ({unit} {basis}; transfer > 0 = receives)")
    for col in ("region", "own cost", "Shapley", "transfer", "polluter pays", "transfer (PP)"):
        alloc.add_column(col, justify="left" if col == "region" else "right")
    for region in pb.players:
        alloc.add_row(
            region,
            _yuan(coop["regions"][region]["cost_yuan"]),
            _yuan(data["shapley"][region]),
            _yuan(data["transfers"][region]),
            _yuan(data["polluter_pays"][region]),
            _yuan(data["polluter_pays_transfers"][region]),
        )
    core = "not checked (sampled)" if data["in_core"] is None else ("yes" if data["in_core"] else "NO")
    alloc.caption = (
        f"Shapley {data['shapley_method']}; Shapley in core: {core}; core non-empty: {data['core_nonempty']}"
    )

    abate = Table(title="Cooperative plan: abated fraction of emissions")
    abate.add_column("region")
    for species in pb.precursors:
        abate.add_column(species, justify="right")
    for region in pb.players:
        fr = coop["regions"][region]["abatement"]
        abate.add_row(region, *(f"{fr[s]:.2f}" for s in pb.precursors))
    tables = [targets, alloc, abate]

    if data["health"] is not None:
        health_scale, health_unit = money_unit(
            *(entry["total"]["value_yuan"] for entry in data["health"]["receptors"].values())
        )
        health = Table(title="Health: premature deaths per year attributable to PM2.5")
        for col in (
            "receptor",
            "PM2.5",
            "deaths",
            f"value ({health_unit} per year)",
            "own share",
            "largest other source",
        ):
            health.add_column(col, justify="left" if col == "receptor" else "right")
        for receptor, entry in data["health"]["receptors"].items():
            total = entry["total"]
            sources = entry["sources"]
            own = sources.get(receptor, {"deaths": 0.0})["deaths"]
            others = {k: v["deaths"] for k, v in sources.items() if k != receptor}
            top = max(others, key=others.get) if others else "-"
            health.add_row(
                receptor,
                f"{total['pm25_ugm3']:.1f}",
                f"{total['deaths']:,.0f}",
                _yuan(total["value_yuan"], health_scale),
                f"{own / total['deaths']:.0%}" if total["deaths"] > 0 else "-",
                f"{top} ({others.get(top, 0.0):,.0f})" if others else "-",
            )
        tables.append(health)
    return tables
