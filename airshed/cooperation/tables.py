"""Rich tables of a cooperation result for the terminal (``airshed cooperate`` without ``--json -``).

The first table names the game, its characteristic function and its assumptions; then the outcomes,
the allocations (with their core and individual-rationality checks), the abatement and the health burden.
"""

from __future__ import annotations

from rich.table import Table

from airshed.cooperation.analysis import CooperationResult

MONEY_UNITS: tuple[tuple[float, str], ...] = (
    (1e9, "billion yuan"), (1e6, "million yuan"), (1e3, "thousand yuan"), (1.0, "yuan")
)
"""Units money is printed in; :func:`money_unit` picks the largest that keeps the main costs >= 1."""

_ALLOCATION_LABEL = {
    "shapley": "Shapley", "chander_tulkens": "Chander-Tulkens", "polluter_pays": "polluter pays"
}


def money_unit(*amounts_yuan: float | None) -> tuple[float, str]:
    """Scale and name of the unit in which the largest of ``amounts_yuan`` is at least 1 (2 decimals)."""
    largest = max((abs(a) for a in amounts_yuan if a is not None), default=0.0)
    for scale, name in MONEY_UNITS:
        if largest >= scale:
            return scale, name
    return MONEY_UNITS[-1]


def _fmt(value: float | None, scale: float) -> str:
    # + 0.0 prints a value that rounds to zero from below as 0.00, not -0.00
    return "-" if value is None else f"{round(value / scale, 2) + 0.0:,.2f}"


def _yes(flag: bool | None) -> str:
    return "not checked" if flag is None else ("yes" if flag else "NO")


def game_table(data: dict) -> Table:
    """Describe the game: its name, characteristic function, money unit and assumptions."""
    table = Table(title=f"Game: {data['game']}", title_justify="left", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("characteristic function", data["characteristic_function"])
    table.add_row("money", data["units"]["money"])
    for k, text in enumerate(data["assumptions"], start=1):
        table.add_row(f"assumption {k}", text)
    table.add_row("penalty", "none: every coalition value is a cost the coalition would bear")
    return table


def allocation_table(data: dict, own_cost: dict[str, float], scale: float, unit: str, basis: str) -> Table:
    """Net cost of each region under each allocation and the transfers that implement them."""
    names = list(data["transfers_by_allocation"])
    table = Table(
        title=f"Cost allocation ({unit} {basis}; net cost after transfers; transfer > 0 = receives)"
    )
    table.add_column("region")
    table.add_column("stand-alone" if data["game_kind"] == "targets" else "Nash", justify="right")
    table.add_column("in the joint plan", justify="right")
    nets = {"shapley": data["shapley"], "chander_tulkens": data.get("chander_tulkens"),
            "polluter_pays": data.get("polluter_pays")}
    for name in names:
        table.add_column(_ALLOCATION_LABEL.get(name, name), justify="right")
        table.add_column(f"transfer ({_ALLOCATION_LABEL.get(name, name)})", justify="right")
    for region in data["players"]:
        row = [region, _fmt(data["nash"][region]["total_cost_yuan"], scale), _fmt(own_cost[region], scale)]
        for name in names:
            transfer = data["transfers_by_allocation"][name][region]
            row += [_fmt(nets[name][region], scale), _fmt(transfer, scale)]
        table.add_row(*row)
    checks = "; ".join(
        f"{_ALLOCATION_LABEL.get(n, n)}: in core {_yes(data['in_core'][n])}, individually rational "
        f"{_yes(data['individually_rational'][n])}"
        for n in names
    )
    table.caption = (
        f"grand coalition value {_fmt(data['grand_coalition_value_yuan'], scale)}; Shapley "
        f"{data['shapley_method']}; {checks}; core non-empty: {_yes(data['core_nonempty'])}; "
        f"{data['coalitions_evaluated']:,} coalitions evaluated. Transfers in `transfers`: "
        f"{_ALLOCATION_LABEL[data['transfers_rule']]}"
    )
    return table


def abatement_table(data: dict, precursors: list[str]) -> Table:
    """Abated fraction of each precursor in the joint plan (and, in the gamma game, at the Nash outcome)."""
    table = Table(title="Abated fraction of emissions: joint plan (Nash or alone in brackets)")
    table.add_column("region")
    for species in precursors:
        table.add_column(species, justify="right")
    for region in data["players"]:
        joint = data["cooperative"]["regions"][region]["abatement"]
        alone = data["nash"][region]["abatement"]
        table.add_row(region, *(f"{joint[s]:.2f} ({alone[s]:.2f})" for s in precursors))
    return table


def gamma_outcome_table(data: dict, scale: float, unit: str, basis: str) -> Table:
    """Abatement cost, damage and PM2.5 of each region, non-cooperative (Nash) and cooperative."""
    table = Table(title=f"Outcomes: Nash equilibrium vs grand coalition ({unit} {basis})")
    md_scale, md_unit = money_unit(*data["marginal_damage_yuan_per_ugm3"].values())
    for col in ("region", "Nash: abatement", "Nash: damage", "Nash: PM2.5", "joint: abatement",
                "joint: damage", "joint: PM2.5", f"marginal damage ({md_unit} per ug/m3)"):
        table.add_column(col, justify="left" if col == "region" else "right")
    for region in data["players"]:
        n, c = data["nash"][region], data["cooperative"]["regions"][region]
        table.add_row(region, _fmt(n["abatement_cost_yuan"], scale), _fmt(n["damage_yuan"], scale),
                      f"{n['pm25_ugm3']:.1f}", _fmt(c["abatement_cost_yuan"], scale),
                      _fmt(c["damage_yuan"], scale), f"{c['pm25_ugm3']:.1f}",
                      _fmt(data["marginal_damage_yuan_per_ugm3"][region], md_scale))
    table.caption = (
        f"sum of Nash costs {_fmt(data['nash_total_cost_yuan'], scale)}, grand coalition "
        f"{_fmt(data['grand_coalition_value_yuan'], scale)}, surplus of cooperation "
        f"{_fmt(data['surplus_yuan'], scale)}; damage linearisation error at the joint outcome "
        f"{100 * data['damage_linearisation_max_relative_error']:.2f} %"
    )
    return table


def target_table(data: dict, scale: float, unit: str, basis: str) -> Table:
    """Targets, each region acting alone, the joint plan."""
    table = Table(title=f"Targets: each region alone vs the joint plan ({unit} {basis})")
    for col in ("region", "baseline", "target", "alone: cost", "alone: shortfall", "joint: PM2.5", "met"):
        table.add_column(col, justify="left" if col == "region" else "right")
    for region, t in data["targets"].items():
        table.add_row(region, f"{t['baseline_ugm3']:.1f}", f"{t['target_ugm3']:.1f}",
                      _fmt(t["alone_cost_yuan"], scale),
                      "met" if t["alone_shortfall_ugm3"] <= 0.0 else f"{t['alone_shortfall_ugm3']:.2f} ug/m3",
                      f"{t['joint_pm25_ugm3']:.1f}", "yes" if t["met"] else "NO")
    coop = data["cooperative"]
    table.caption = (
        f"joint cost {_fmt(coop['total_cost_yuan'], scale)} (the LP over-states it by at most "
        f"{coop['linearisation_error_bound_yuan']:,.0f} yuan); each alone "
        f"{_fmt(data['nash_total_cost_yuan'], scale)}"
    )
    return table


def health_table(health: dict, part: str) -> Table:
    """Deaths attributable to PM2.5 per receptor (``part`` = "acute" or "chronic") and their value."""
    burden = health[part]
    scale, unit = money_unit(*(r["value_yuan"] for r in burden["receptors"].values()))
    title = "Health, short-term exposure" if part == "acute" else "Health, long-term exposure"
    table = Table(title=f"{title}: {burden['unit']}")
    for col in ("receptor", "PM2.5", "deaths", f"value ({unit})", "own share", "largest other source"):
        table.add_column(col, justify="left" if col == "receptor" else "right")
    for receptor, entry in burden["receptors"].items():
        sources = entry["sources"]
        own = sources.get(receptor, 0.0)
        others = {k: v for k, v in sources.items() if k != receptor}
        top = max(others, key=others.get) if others else None
        table.add_row(
            receptor, f"{entry['pm25_ugm3']:.1f}", f"{entry['deaths']:,.1f}",
            _fmt(entry["value_yuan"], scale),
            f"{own / entry['deaths']:.0%}" if entry["deaths"] > 0 else "-",
            f"{top} ({others[top]:,.1f})" if top else "-",
        )
    table.caption = (f"total {burden['total_deaths']:,.1f} deaths; "
                     + (health["parameters"]["acute_function"] if part == "acute"
                        else health["parameters"]["chronic_function"]))
    return table


def render_tables(result: CooperationResult) -> list[Table]:
    """Tables summarising ``result``, the game's description first.

    Money is shown in one unit (billion, million or thousand yuan, the largest that keeps the largest
    region's figure at least 1), per run period or per year as the policy's ``cost_basis`` says.
    """
    data = result.to_json_dict()
    basis = "per run period" if data["cost_basis"] == "period" else "per year"
    precursors = list(next(iter(data["cooperative"]["regions"].values()))["abatement"])
    tables = [game_table(data)]
    # one unit per table, chosen so that the largest region's figure is at least 1
    scale, unit = money_unit(*(v["total_cost_yuan"] for v in data["nash"].values()),
                             *data["shapley"].values())
    if data["game_kind"] == "gamma":
        own = {r: v["total_cost_yuan"] for r, v in data["cooperative"]["regions"].items()}
        tables.append(gamma_outcome_table(data, scale, unit, basis))
    else:
        own = {r: v["abatement_cost_yuan"] for r, v in data["cooperative"]["regions"].items()}
        tables.append(target_table(data, scale, unit, basis))
    tables += [allocation_table(data, own, scale, unit, basis), abatement_table(data, precursors)]
    tables.append(health_table(data["health"], "acute"))
    if data["health"]["chronic"] is not None:
        tables.append(health_table(data["health"], "chronic"))
    return tables
