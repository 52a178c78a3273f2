"""One self-contained HTML report of a run: summary, tables and figures.

The report is a single file: inline CSS, figures embedded as base64 PNG, no script and no external
reference, so it can be mailed, archived with the run, or opened offline. Sections:

1. run summary (name, core, period, grid, seed, threads, wall time, versions) and the input files with
   their SHA-256 checksums (``input_files`` attribute);
2. the source-receptor matrix of PM2.5 (ug m-3, population-weighted);
3. transboundary shares, import, export and net export of each receptor region;
4. the mass budget (particle core; the plume core has emitted mass only);
5. scenario results, if the file holds the scenario part;
6. cooperation results, if any (see :func:`cooperation_results`): tables and the transfer diagram of
   :func:`plot_cooperation_transfers`;
7. the figures of :func:`airshed.outputs.plots.figure_specs`;
8. the resolved configuration (``airshed_config``).

Cooperation hook: results of ``airshed`` cooperation analysis (the JSON of
``CooperationResult.to_json_dict``) are taken from the ``cooperation_json`` global attribute of the run
file, else from a side-car file ``<run>.cooperation.json`` next to it, else from the ``cooperation``
argument of :func:`write_report`. Unknown JSON layouts are shown as a flat key/value table.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from airshed.atomic_files import OUTPUT_FOLDER, Destination, atomic_path
from airshed.errors import AirshedInputError, DataError
from airshed.outputs.maps import cell_edges, run_period_text
from airshed.outputs.plots import figure_specs
from airshed.outputs.style import figure_png_bytes, figure_style, new_figure
from airshed.outputs.tables import ensemble_phrase

logger = logging.getLogger(__name__)

REPORT_DPI = 80
"""Resolution of the embedded figures, dots per inch (small files, still legible on screen)."""

COOPERATION_SUFFIX = ".cooperation.json"
"""Side-car file of cooperation results: ``run.nc`` -> ``run.cooperation.json``."""

_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 1.5em auto; padding: 0 1em;
       max-width: 1100px; color: #222; font-size: 14px; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #bbb; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; }
th { background: #eef2f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.own { background: #fdf1d6; font-weight: bold; }
table.summary th { width: 14em; }
.scroll { overflow-x: auto; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-style: italic; color: #555; }
p.note { color: #555; font-size: 12px; }
pre { background: #f6f6f6; padding: 0.6em; font-size: 11px; overflow-x: auto; }
code { font-size: 11px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any, fmt: str = ".3g") -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return _e(value)
    if not np.isfinite(x):
        return "–"
    return format(x + 0.0, fmt)  # + 0.0 turns -0.0 into 0.0


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str = "", raw: bool = False,
           table_id: str = "") -> str:
    """HTML table; cells are escaped unless ``raw`` (then each cell is a ready ``<td>`` element)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = row if raw else [f"<td>{_e(c)}</td>" for c in row]
        body.append(f"<tr>{''.join(cells)}</tr>")
    attrs = (f' class="{css}"' if css else "") + (f' id="{table_id}"' if table_id else "")
    return f'<div class="scroll"><table{attrs}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}' \
           f"</tbody></table></div>"


def _td(value: Any, fmt: str = ".3g", css: str = "num") -> str:
    return f'<td class="{css}">{_num(value, fmt)}</td>'


def _names(ds: xr.Dataset, dim: str) -> list[str]:
    return [str(v) for v in ds[dim].values]


def _grid_text(ds: xr.Dataset) -> str:
    x_edges, y_edges = cell_edges(ds)
    dx = float(x_edges[1] - x_edges[0]) / 1000.0
    mapping = ds["crs"].attrs.get("grid_mapping_name", "?") if "crs" in ds.variables else "?"
    return f"{ds.sizes['x']} x {ds.sizes['y']} cells of {dx:g} km ({mapping})"


def _input_files(ds: xr.Dataset) -> list[dict]:
    text = ds.attrs.get("input_files")
    if not text:
        return []
    try:
        files = json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise DataError(f"run file attribute 'input_files' is not JSON: {exc}") from None
    if not isinstance(files, list):
        raise DataError("run file attribute 'input_files' must be a JSON list of {path, sha256}")
    return [f if isinstance(f, dict) else {"path": str(f)} for f in files]


def _summary_section(ds: xr.Dataset) -> str:
    a = ds.attrs
    wall = a.get("wall_time_s")
    rows = [
        ("run", a.get("run_name", "?")),
        ("title", a.get("title", "")),
        ("dispersion core", a.get("core", "?")),
        ("period", run_period_text(ds)),
        ("hours", ds.sizes.get("time", "?")),
        ("grid", _grid_text(ds)),
        ("regions", f"{ds.sizes.get('receptor_region', '?')} receptor regions, "
                    f"{ds.sizes.get('source_region', '?')} source regions"),
        ("species", ", ".join(_names(ds, "species")) if "species" in ds.coords else "?"),
        ("random seed", a.get("seed", "?")),
        ("Numba threads", a.get("numba_threads", "?")),
        ("wall time", f"{float(wall):.1f} s" if wall is not None else "?"),
        ("mass budget max relative error", _num(a.get("mass_budget_max_relative_error", float("nan")))),
        ("model", a.get("source", "?")),
        ("conventions", a.get("Conventions", "?")),
        ("history", a.get("history", "")),
    ]
    if "institution" in a:
        rows.insert(2, ("institution", a["institution"]))
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    parts = [f'<h2 id="summary">Run summary</h2><table class="summary">{body}</table>']
    files = _input_files(ds)
    if files:
        parts.append("<h3>Input files</h3>")
        parts.append(_table(["file", "SHA-256"], [[f.get("path", "?"), f.get("sha256", "?")] for f in files],
                            table_id="input-files"))
    return "".join(parts)


def _source_receptor_section(ds: xr.Dataset, species: str) -> str:
    if "source_receptor" not in ds:
        return ""
    sr = ds["source_receptor"].sel(species=species).transpose("receptor_region", "source_region")
    receptors, sources = _names(sr, "receptor_region"), _names(sr, "source_region")
    values = sr.values
    rows = []
    for r, name in enumerate(receptors):
        cells = [f"<th>{_e(name)}</th>"]
        cells += [_td(values[r, s], ".1f", "num own" if sources[s] == name else "num")
                  for s in range(len(sources))]
        cells.append(_td(values[r].sum(), ".1f"))
        rows.append(cells)
    return (
        f'<h2 id="source-receptor">Source-receptor matrix of {_e(species)}</h2>'
        f'<p class="note">Period-mean population-weighted {_e(species)} (µg m⁻³) in each receptor region '
        f"(rows) caused by the emissions of each source region (columns); the highlighted cell is the "
        f"region's own contribution.</p>"
        + _table(["receptor \\ source", *sources, "total"], rows, raw=True, table_id="source-receptor-table")
    )


def _transboundary_section(ds: xr.Dataset, species: str) -> str:
    if "transboundary_share" not in ds:
        return ""
    receptors = _names(ds, "receptor_region")
    sel = {"species": species}

    def col(name: str) -> np.ndarray:
        if name not in ds:
            return np.full(len(receptors), np.nan)
        return ds[name].sel(sel).transpose("receptor_region").values

    total = (ds["source_receptor"].sel(sel).sum("source_region").transpose("receptor_region").values
             if "source_receptor" in ds else np.full(len(receptors), np.nan))
    population = (ds["population_region"].transpose("receptor_region").values
                  if "population_region" in ds else np.full(len(receptors), np.nan))
    share, imp, imp_exp = col("transboundary_share"), col("import_concentration"), col("import_exposure")
    exp_exp, net = col("export_exposure"), col("net_export_exposure")
    interval = _share_interval(ds, species, receptors)
    rows = [
        [f"<th>{_e(name)}</th>", _td(population[r] / 1e6, ".2f"), _td(total[r], ".1f"),
         _td(100.0 * share[r], ".1f"),
         *([_td(f"{100.0 * interval[0, r]:.1f}–{100.0 * interval[1, r]:.1f}")] if interval is not None
           else []),
         _td(imp[r], ".1f"), _td(imp_exp[r] / 1e6, ".1f"), _td(exp_exp[r] / 1e6, ".1f"),
         _td(net[r] / 1e6, "+.1f")]
        for r, name in enumerate(receptors)
    ]
    header = ["receptor region", "population (million)", f"{species} (µg m⁻³)", "transboundary share (%)",
              *(["90 % interval (%)"] if interval is not None else []),
              "import (µg m⁻³)", "import exposure (10⁶ person µg m⁻³)", "export exposure (10⁶ person µg m⁻³)",
              "net export (10⁶ person µg m⁻³)"]
    headline = ""
    if interval is not None and ("Beijing" in receptors or np.isfinite(population).any()):
        # the capital the JJJ studies ask about, else the most populous receptor region
        r = receptors.index("Beijing") if "Beijing" in receptors else int(np.nanargmax(population))
        headline = (
            f'<p id="transboundary-headline"><b>{_e(receptors[r])}</b>: {100.0 * share[r]:.1f} % of its '
            f"{_e(species)} came from other regions (90 % interval {100.0 * interval[0, r]:.1f}–"
            f"{100.0 * interval[1, r]:.1f} %, {_e(ensemble_phrase(ds))}).</p>"
        )
    sampled = _e(ds.attrs.get("uncertainty_sources_sampled", "?"))
    note = (" The 90 % interval spans the 5 and 95 % quantiles over the uncertainty ensemble (sources "
            f"sampled: {sampled}; README, “Uncertainty”)." if interval is not None else "")
    return (
        f'<h2 id="transboundary">Transboundary pollution: {_e(species)}</h2>' + headline
        + '<p class="note">Transboundary share = 1 − own / total. Import = what other regions cause in the '
        "receptor; exposures are population × concentration; net export = export − import (positive: a net "
        f"exporter).{note}</p>" + _table(header, rows, raw=True, table_id="transboundary-table")
    )


def _share_interval(ds: xr.Dataset, species: str, receptors: Sequence[str]) -> np.ndarray | None:
    """(2, Q) 5 and 95 % quantiles of the transboundary share, None without an ensemble in the file."""
    if "transboundary_share_quantile" not in ds:
        return None
    q = ds["transboundary_share_quantile"].sel(species=species, receptor_region=list(receptors))
    return np.stack([q.sel(quantile=level).values for level in (0.05, 0.95)])


def _mass_budget_section(ds: xr.Dataset) -> str:
    if "mass_budget" not in ds:
        return ""
    budget = ds["mass_budget"].transpose("budget_term", "tracer")
    terms, tracers = _names(budget, "budget_term"), _names(budget, "tracer")
    values = budget.values
    rows = [[f"<th>{_e(t)}</th>", *(_td(values[k, e], ".4g") for e in range(len(tracers)))]
            for k, t in enumerate(terms)]
    if {"emitted", "produced", "residual"} <= set(terms):
        sources = values[terms.index("emitted")] + values[terms.index("produced")]
        closure = np.divide(values[terms.index("residual")], sources, out=np.full_like(sources, np.nan),
                            where=sources != 0)
        rows.append(["<th>closure residual / (emitted + produced)</th>", *(_td(c, ".2e") for c in closure)])
    return (
        '<h2 id="mass-budget">Mass budget (kg)</h2>'
        "<p>emitted + produced = airborne + dry + wet deposited + converted + decayed + left domain.</p>"
        + _table(["term", *tracers], rows, raw=True, table_id="mass-budget-table")
    )


def _scenario_section(ds: xr.Dataset, species: str) -> str:
    if "scenario" not in ds.coords or "scenario_receptor_concentration" not in ds:
        return ""
    receptors = _names(ds, "receptor_region")
    header = ["scenario", "receptor region", f"{species} (µg m⁻³)", "change from own cuts",
              "change from others' cuts"]
    rows = []
    for scenario in _names(ds, "scenario"):
        sel = {"scenario": scenario, "species": species}
        conc = ds["scenario_receptor_concentration"].sel(sel)
        own = ds["scenario_delta_own"].sel(sel) if "scenario_delta_own" in ds else None
        others = ds["scenario_delta_others"].sel(sel) if "scenario_delta_others" in ds else None
        for name in receptors:
            rows.append([f"<td>{_e(scenario)}</td>", f"<th>{_e(name)}</th>",
                         _td(conc.sel(receptor_region=name), ".1f"),
                         _td(own.sel(receptor_region=name) if own is not None else np.nan, "+.2f"),
                         _td(others.sel(receptor_region=name) if others is not None else np.nan, "+.2f")])
    return '<h2 id="scenarios">Scenarios</h2>' + _table(header, rows, raw=True, table_id="scenario-table")


def cooperation_results(ds: xr.Dataset, run_path: Path | None = None) -> dict | None:
    """Cooperation results of a run: the ``cooperation_json`` attribute, else the side-car JSON file.

    Raises
    ------
    DataError
        If the attribute or side-car file holds invalid JSON.
    """
    if "cooperation_json" in ds.attrs:
        origin, text = "attribute 'cooperation_json' of the run file", str(ds.attrs["cooperation_json"])
    elif run_path is not None and Path(run_path).with_suffix(COOPERATION_SUFFIX).is_file():
        side_car = Path(run_path).with_suffix(COOPERATION_SUFFIX)
        origin, text = f"cooperation file {side_car}", side_car.read_text(encoding="utf-8")
    else:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{origin} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{origin} must hold a JSON object")
    return data


def _flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        return [item for k, v in data.items() for item in _flatten(v, f"{prefix}{k}.")]
    if isinstance(data, list) and data and any(isinstance(v, dict | list) for v in data):
        return [item for k, v in enumerate(data) for item in _flatten(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), json.dumps(data) if isinstance(data, list) else str(data))]


_MONEY_SCALES = ((1e9, "billion yuan"), (1e6, "million yuan"), (1e3, "thousand yuan"), (1.0, "yuan"))


def _money_scale(values: Sequence[float]) -> tuple[float, str]:
    """Largest of billion / million / thousand yuan in which the largest ``|value|`` is at least 1."""
    largest = max((abs(v) for v in values if np.isfinite(v)), default=0.0)
    return next(((s, n) for s, n in _MONEY_SCALES if largest >= s), _MONEY_SCALES[-1])


def pooled_payments(transfers: Sequence[float]) -> np.ndarray:
    """Pairwise payments that implement a set of budget-balanced transfers, ``flow[payer, receiver]``.

    Transfers (positive = receives) fix only what each region pays or receives in total, not who pays
    whom. The convention drawn here pools the payments: every payer's payment is split among the
    receivers in proportion to what they receive, ``flow[i, j] = pay_i * receive_j / sum(receive)``, so
    rows add up to each payer's payment and columns to each receiver's receipt.
    """
    t = np.asarray(transfers, dtype=float)
    pay, receive = np.clip(-t, 0.0, None), np.clip(t, 0.0, None)
    total = receive.sum()
    if total <= 0.0:
        return np.zeros((t.size, t.size))
    return np.outer(pay, receive) / total


_ALLOCATION_LABELS = {
    "shapley": "Shapley", "chander_tulkens": "Chander-Tulkens", "polluter_pays": "polluter pays"
}


def _transfer_sets(data: dict) -> dict[str, dict]:
    """Transfers by allocation from a cooperation JSON (the game's own, or the older two-rule layout)."""
    sets = data.get("transfers_by_allocation")
    if isinstance(sets, dict) and sets:
        return {k: v for k, v in sets.items() if isinstance(v, dict)}
    older = {"shapley": data.get("transfers"), "polluter_pays": data.get("polluter_pays_transfers")}
    return {k: v for k, v in older.items() if isinstance(v, dict)}


def plot_cooperation_transfers(data: dict) -> Figure | None:
    """Who pays whom: each allocation's transfers, and the payment flows of the game's recommended one.

    Left: each player's transfer under every allocation of the result (Chander-Tulkens and Shapley in the
    gamma game, Shapley and polluter pays in the target game; positive = receives). Right: the transfers
    of ``transfers_rule`` as payments from payers (left column) to receivers (right column), pooled as in
    :func:`pooled_payments`; arrow width is proportional to the payment. Returns None when ``data`` lacks
    the players or two allocations to compare (e.g. a hand-written summary).
    """
    players = data.get("players")
    sets = _transfer_sets(data)
    if not (isinstance(players, list) and players and len(sets) >= 2):
        return None
    rule = data.get("transfers_rule", next(iter(sets)))
    rule = rule if rule in sets else next(iter(sets))
    values = {k: np.array([float(v.get(p, np.nan)) for p in players]) for k, v in sets.items()}
    scale, unit = _money_scale([x for v in values.values() for x in v])
    basis = str(data.get("units", {}).get("money", "yuan")).removeprefix("yuan").strip()
    n = len(players)
    colours = ("#1f77b4", "#ff7f0e", "#2ca02c")
    width = 0.8 / len(values)
    with figure_style():
        fig = new_figure(10.0, 0.28 * n + 2.0)
        bars, flows = fig.subplots(1, 2, width_ratios=(1.0, 1.15))
        y = np.arange(n)
        for k, (name, v) in enumerate(values.items()):
            offset = (k - (len(values) - 1) / 2) * width
            bars.barh(y + offset, v / scale, height=width, color=colours[k % len(colours)],
                      label=_ALLOCATION_LABELS.get(name, name))
        bars.axvline(0.0, color="black", linewidth=0.8)
        bars.set_yticks(y, players, fontsize=7)
        bars.invert_yaxis()
        bars.set_xlabel(f"transfer ({unit} {basis}; > 0 receives, < 0 pays)")
        bars.legend(loc="best", fontsize=7, frameon=False)
        bars.set_title("(a) Transfers that implement each allocation")
        _draw_payment_flows(flows, players, values[rule] / scale, unit)
        flows.set_title(f"(b) Who pays whom: {_ALLOCATION_LABELS.get(rule, rule)}\n({unit} {basis})")
    return fig


def _draw_payment_flows(ax: Any, players: Sequence[str], transfers: np.ndarray, unit: str) -> None:
    """Payers on the left, receivers on the right, arrows of width proportional to pooled payments."""
    ax.set_axis_off()
    flow = pooled_payments(np.nan_to_num(transfers))
    payers = [i for i in np.argsort(transfers) if transfers[i] < 0.0 and flow[i].sum() > 0.0]
    receivers = [j for j in np.argsort(-transfers) if transfers[j] > 0.0 and flow[:, j].sum() > 0.0]
    if not payers or not receivers:
        ax.text(0.5, 0.5, "no transfers: every region bears its own cost", ha="center", va="center",
                transform=ax.transAxes)
        return
    rows = max(len(payers), len(receivers))
    y_payer = {i: 1.0 - (k + 0.5) / rows for k, i in enumerate(payers)}
    y_receiver = {j: 1.0 - (k + 0.5) / rows for k, j in enumerate(receivers)}
    ax.set_xlim(-0.55, 1.55)
    ax.set_ylim(0.0, 1.06)
    ax.text(-0.02, 1.03, "pays", ha="right", va="center", fontweight="bold", fontsize=8)
    ax.text(1.02, 1.03, "receives", ha="left", va="center", fontweight="bold", fontsize=8)
    for i in payers:
        ax.text(-0.02, y_payer[i], f"{players[i]} {-transfers[i]:.2f}", ha="right", va="center", fontsize=7)
    for j in receivers:
        ax.text(1.02, y_receiver[j], f"{transfers[j]:.2f} {players[j]}", ha="left", va="center", fontsize=7)
    largest = flow.max()
    for i in payers:
        for j in receivers:
            if flow[i, j] < 0.01 * largest:  # a hair-line would only clutter the diagram
                continue
            ax.annotate("", xy=(1.0, y_receiver[j]), xytext=(0.0, y_payer[i]),
                        arrowprops={"arrowstyle": "-|>", "color": "#1f77b4", "alpha": 0.55,
                                    "linewidth": 0.3 + 5.0 * flow[i, j] / largest, "shrinkA": 2,
                                    "shrinkB": 2, "mutation_scale": 8})


def _cooperation_section(data: dict | None, dpi: float = REPORT_DPI) -> str:
    if not data:
        return ""
    title = '<h2 id="cooperation">Cooperation: ' + _e(data.get("game", "joint abatement")) + "</h2>"
    players = data.get("players")
    cooperative = data.get("cooperative", {})
    if not (isinstance(players, list) and isinstance(cooperative, dict) and "regions" in cooperative):
        return title + _table(["key", "value"], _flatten(data), table_id="cooperation-table")
    money = data.get("units", {}).get("money", "yuan")
    regions = cooperative.get("regions", {})
    nash = data.get("nash") or data.get("independent") or {}
    sets = _transfer_sets(data)
    nets = {"shapley": data.get("shapley"), "chander_tulkens": data.get("chander_tulkens"),
            "polluter_pays": data.get("polluter_pays")}
    names = [k for k in sets if isinstance(nets.get(k), dict)]
    header = ["region", "cost without cooperation", "cost in the joint plan"]
    for name in names:
        label = _ALLOCATION_LABELS.get(name, name)
        header += [f"{label} net cost", f"{label} transfer"]
    rows = []
    for p in players:
        own, alone = regions.get(p, {}), nash.get(p, {})
        row = [f"<th>{_e(p)}</th>", _td(alone.get("total_cost_yuan", alone.get("cost_yuan", np.nan)), ".4g"),
               _td(own.get("total_cost_yuan", own.get("cost_yuan", own.get("abatement_cost_yuan", np.nan))),
                   ".4g")]
        for name in names:
            row += [_td(nets[name].get(p, np.nan), ".4g"), _td(sets[name].get(p, np.nan), "+.4g")]
        rows.append(row)
    in_core = data.get("in_core")
    core_rows = [("Shapley allocation in the core", str(in_core))]
    if isinstance(in_core, dict):
        core_rows = [(f"{_ALLOCATION_LABELS.get(k, k)} allocation in the core", str(v))
                     for k, v in in_core.items()]
    totals = [
        ("cost without cooperation (sum)",
         _num(data.get("nash_total_cost_yuan", data.get("independent_total_cost_yuan", np.nan)), ".4g")),
        ("grand coalition value", _num(data.get("grand_coalition_value_yuan", np.nan), ".4g")),
        *core_rows,
        ("Shapley method", str(data.get("shapley_method", "?"))),
        ("penalty in any value or share", "none" if data.get("penalty") is None else str(data["penalty"])),
    ]
    described = [f"<p><b>Characteristic function.</b> {_e(data['characteristic_function'])}</p>"
                 if "characteristic_function" in data else ""]
    assumptions = data.get("assumptions")
    if isinstance(assumptions, list) and assumptions:
        described.append("<p><b>Assumptions.</b></p><ul>" + "".join(f"<li>{_e(a)}</li>" for a in assumptions)
                         + "</ul>")
    parts = [
        title,
        *described,
        f'<p class="note">Money in {_e(money)}. Net cost = what a region bears after transfers. Transfers: '
        "positive = the region receives, negative = it pays; they add up to zero.</p>",
        _table(header, rows, raw=True, table_id="cooperation-table"),
        _table(["quantity", "value"], totals, table_id="cooperation-totals"),
    ]
    fig = plot_cooperation_transfers(data)
    if fig is not None:
        caption = ("Transfers under each allocation, and who pays whom under the recommended one (payments "
                   "pooled: each payer's payment is shared among the receivers in proportion to what they "
                   "receive)")
        png = base64.b64encode(figure_png_bytes(fig, dpi=dpi)).decode("ascii")
        parts.append(f'<figure id="fig-cooperation-transfers"><img alt="{_e(caption)}" '
                     f'src="data:image/png;base64,{png}"><figcaption>{_e(caption)}</figcaption></figure>')
    return "".join(parts)


def _figures_section(ds: xr.Dataset, species: Sequence[str], dpi: float,
                     drawn: Mapping[str, bytes] | None = None) -> tuple[str, list[float]]:
    parts, seconds = ['<h2 id="figures">Maps and charts</h2>'], []
    for spec in figure_specs(ds, species):
        t0 = time.perf_counter()
        png = drawn[spec.stem] if drawn is not None and spec.stem in drawn else figure_png_bytes(
            spec.draw(ds), dpi=dpi)
        seconds.append(time.perf_counter() - t0)
        data = base64.b64encode(png).decode("ascii")
        parts.append(f'<figure id="fig-{_e(spec.stem)}"><img alt="{_e(spec.caption)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{_e(spec.caption)}</figcaption></figure>')
    return "".join(parts), seconds


def build_report_html(
    ds: xr.Dataset,
    *,
    run_path: Path | None = None,
    cooperation: dict | None = None,
    species: Sequence[str] = ("PM2.5",),
    dpi: float = REPORT_DPI,
    figure_pngs: Mapping[str, bytes] | None = None,
) -> str:
    """Compose the HTML text of a run's report (see the module docstring for its sections).

    Parameters
    ----------
    ds
        The run dataset.
    run_path
        The run file, to find a side-car cooperation JSON and name the file in the report.
    cooperation
        Cooperation results, used when the file and its side-car hold none.
    species
        Species to map; the tables are for PM2.5 (or the first species when the run has no PM2.5).
    dpi
        Resolution of the embedded figures.
    figure_pngs
        Figures already encoded at ``dpi`` (stem -> PNG bytes, from
        :func:`~airshed.outputs.plots.write_figures`), embedded instead of drawn again.
    """
    available = _names(ds, "species") if "species" in ds.coords else []
    for name in species:
        if name not in available:
            raise AirshedInputError(f"unknown species {name!r}; the run file has: {', '.join(available)}")
    main = "PM2.5" if "PM2.5" in available else species[0]
    coop = cooperation_results(ds, run_path) or cooperation
    figures, seconds = _figures_section(ds, species, dpi, figure_pngs)
    logger.debug("report figures drawn in %s s", ", ".join(f"{s:.2f}" for s in seconds))
    name = ds.attrs.get("run_name", "run")
    config = ds.attrs.get("airshed_config")
    sections = [
        _summary_section(ds),
        _source_receptor_section(ds, main),
        _transboundary_section(ds, main),
        _mass_budget_section(ds),
        _scenario_section(ds, main),
        _cooperation_section(coop, dpi),
        figures,
        f'<h2 id="configuration">Configuration</h2><details><summary>resolved airshed configuration</summary>'
        f"<pre>{_e(config)}</pre></details>" if config else "",
    ]
    origin = f"<p class=\"note\">File: <code>{_e(run_path)}</code></p>" if run_path is not None else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>airshed report: {_e(name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>airshed report: {_e(name)}</h1><p>{_e(run_period_text(ds))}</p>{origin}"
        + "".join(sections) + "</body></html>\n"
    )


def write_report(
    ds: xr.Dataset,
    path: Path,
    *,
    run_path: Path | None = None,
    cooperation: dict | None = None,
    species: Sequence[str] = ("PM2.5",),
    dpi: float = REPORT_DPI,
    figure_pngs: Mapping[str, bytes] | None = None,
    destination: Destination = OUTPUT_FOLDER,
) -> Path:
    """Write a run's self-contained HTML report to ``path`` atomically; see :func:`build_report_html`.

    ``destination`` names the option that chooses ``path`` in the error for a folder that is missing or
    not writable (``airshed report --out``; ``airshed run``'s output by default).
    """
    path = Path(path)
    # the folder is checked (the temporary file made) before the figures are drawn, not after
    with atomic_path(path, destination=destination) as tmp:
        text = build_report_html(ds, run_path=run_path, cooperation=cooperation, species=species, dpi=dpi,
                                 figure_pngs=figure_pngs)
        tmp.write_text(text, encoding="utf-8")
    return path
