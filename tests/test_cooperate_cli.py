"""``airshed cooperate`` and ``airshed performance`` on run files laid out as ``airshed run`` writes them.

The run file is the synthetic fixture of ``runfile_fixture.py`` written to NetCDF, so the commands read the
contract's names (``emitted_species`` dimensions, ``start``/``end`` attributes) through the CLI's exit-code
wrapper. Coalition LPs run in-process (``--workers 1``).
"""

from __future__ import annotations

import json
import shutil
from html import escape
from pathlib import Path

import numpy as np
import pytest
from runfile_fixture import synthetic_run_dataset
from typer.testing import CliRunner

from airshed.cli import app
from airshed.outputs.netcdf import write_netcdf_atomic
from airshed.outputs.report import COOPERATION_SUFFIX, build_report_html, cooperation_results

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "policy_jjj.toml"
PLAYERS = ["Beijing", "Tianjin", "Baoding", "Langfang"]
HEBEI_CITIES = ["Shijiazhuang", "Tangshan", "Qinhuangdao", "Handan", "Xingtai", "Baoding", "Zhangjiakou",
                "Chengde", "Cangzhou", "Langfang", "Hengshui"]
JSON_KEYS = {"game", "characteristic_function", "assumptions", "nash", "cooperative",
             "grand_coalition_value_yuan", "shapley", "chander_tulkens", "transfers", "in_core", "health"}


def small_policy(baseline: dict[str, float]) -> str:
    """Target game, four players; Beijing and Tianjin aim 10 % below baseline; two precursors can be cut."""
    return f"""
game = "targets"

[targets]
Beijing = {0.9 * baseline["Beijing"]:.3f}
Tianjin = {0.9 * baseline["Tianjin"]:.3f}

[costs.default.SO2]
max_fraction = 0.8
marginal_cost = [[0.0, 5052.6], [0.4, 44600.0], [0.8, 154395.0]]

[costs.default."PM2.5"]
max_fraction = 0.7
marginal_cost = [[0.0, 1500.0], [0.35, 4300.0], [0.7, 60000.0]]

[options]
players = {json.dumps(PLAYERS)}
segments_per_piece = 4

[health]
vsl_yuan = 4760000.0
"""


@pytest.fixture(scope="module")
def run_ds():
    return synthetic_run_dataset(27)


@pytest.fixture(scope="module")
def files(run_ds, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cooperate")
    run_file = write_netcdf_atomic(run_ds, folder / "synthetic.nc")
    baseline = dict(zip([str(r) for r in run_ds["receptor_region"].values], run_ds["pm25_total"].values,
                        strict=True))
    policy = folder / "policy.toml"
    policy.write_text(small_policy(baseline), encoding="utf-8")
    return {"folder": folder, "run": run_file, "policy": policy}


def invoke(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cooperate_json_to_stdout(files):
    result = invoke("cooperate", files["run"], "--policy", files["policy"], "--json", "-", "--workers", "1")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # '-' prints the JSON alone (no solver banner), so it can be piped
    assert JSON_KEYS <= set(data) and data["players"] == PLAYERS
    assert data["game"].startswith("target game") and data["penalty"] is None
    coop = data["cooperative"]
    total = coop["total_cost_yuan"]
    assert total > 0.0 and total == pytest.approx(data["grand_coalition_value_yuan"])
    assert all(data["targets"][r]["met"] for r in ("Beijing", "Tianjin"))
    assert total <= data["nash_total_cost_yuan"] * (1 + 1e-9)  # each target can be met alone here
    for transfers in data["transfers_by_allocation"].values():
        assert sum(transfers.values()) == pytest.approx(0.0, abs=1e-9 * total)
    assert sum(data["shapley"].values()) == pytest.approx(data["grand_coalition_value_yuan"], rel=1e-9)
    assert sum(data["polluter_pays"].values()) == pytest.approx(total, rel=1e-9)
    for region in PLAYERS:  # net cost = own cost - transfer received = the Shapley share
        net = coop["regions"][region]["abatement_cost_yuan"] - data["transfers"][region]
        assert net == pytest.approx(data["shapley"][region], rel=1e-7, abs=1e-6 * total)
    assert isinstance(data["in_core"]["shapley"], bool)
    assert set(data["health"]["acute"]["receptors"]) == set(str(r) for r in _receptors(files))
    assert not files["run"].with_suffix(COOPERATION_SUFFIX).exists()  # only --save writes the side-car


def _receptors(files) -> list[str]:
    import xarray as xr

    with xr.open_dataset(files["run"]) as ds:
        return [str(r) for r in ds["receptor_region"].values]


def test_cooperate_tables_save_and_report(files, run_ds, tmp_path):
    run_file = Path(shutil.copy(files["run"], tmp_path / "run.nc"))
    out = tmp_path / "coop.json"
    result = invoke("cooperate", run_file, "-p", files["policy"], "--json", out, "--save", "--workers", "1")
    assert result.exit_code == 0, result.output
    for title in ("Game: target game", "Targets: each region alone vs the joint plan", "Cost allocation",
                  "Abated fraction of emissions", "Health, short-term exposure"):
        assert title in result.stdout
    side_car = run_file.with_suffix(COOPERATION_SUFFIX)
    assert side_car.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    data = cooperation_results(run_ds, run_file)
    assert JSON_KEYS <= set(data) and data["policy_file"] == str(files["policy"])
    # the report finds the side-car and draws the transfer diagram; the run's own figures are left out
    light = run_ds.drop_vars(["contribution", "transboundary_share", "source_receptor",
                              "receptor_contribution", "concentration"])
    html = build_report_html(light, run_path=run_file, species=())
    assert 'id="cooperation-table"' in html and 'id="fig-cooperation-transfers"' in html
    assert html.count("data:image/png;base64,") == 1


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace("max_fraction = 0.8", "max_fraction = 0.8\nslope = 2.0"),
         "costs.default.SO2.slope: unknown key"),
        (lambda t: t.replace("[targets]", "[targets]\nAtlantis = 30.0"),
         "targets.Atlantis: unknown receptor"),
        (lambda t: t.replace("[0.4, 44600.0]", "[0.4, 1000.0]"), "costs.default.SO2.marginal_cost"),
        (lambda t: t.replace('segments_per_piece = 4', 'segments_per_piece = 4\ncost_basis = "monthly"'),
         "options.cost_basis"),
    ],
)
def test_bad_policy_exits_2_naming_the_key(files, tmp_path, edit, needle):
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(files["policy"].read_text(encoding="utf-8")), encoding="utf-8")
    result = invoke("cooperate", files["run"], "--policy", bad, "--workers", "1")
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and str(bad) in result.stderr
    assert "Traceback" not in result.output


def test_cooperate_bad_files_exit_2(files, run_ds, tmp_path):
    result = invoke("cooperate", files["run"], "--policy", tmp_path / "none.toml")
    assert result.exit_code == 2 and "policy file not found" in result.stderr
    result = invoke("cooperate", tmp_path / "none.nc", "--policy", files["policy"])
    assert result.exit_code == 2 and "not found" in result.stderr
    broken = write_netcdf_atomic(run_ds[["pm25_total", "emission_total", "population_region"]],
                                 tmp_path / "broken.nc")
    result = invoke("cooperate", broken, "--policy", files["policy"], "--workers", "1")
    assert result.exit_code == 2 and "'pm25_source_receptor' missing" in result.stderr
    result = invoke("cooperate", files["run"], "--policy", files["policy"], "--workers", "0")
    assert result.exit_code == 2  # usage error: --workers must be >= 1


def test_cooperate_example_policy_on_the_jjj_run(files):
    """The shipped gamma policy: all 18 regions play, exact Shapley and core over 262,144 coalitions."""
    result = invoke("cooperate", files["run"], "--policy", EXAMPLE, "--json", "-")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["game"].startswith("gamma") and len(data["players"]) == 18
    assert data["shapley_method"] == "exact" and data["coalitions_evaluated"] == 2**18
    assert abs(sum(data["transfers"].values())) < 1.0
    assert sum(data["shapley"].values()) == pytest.approx(data["grand_coalition_value_yuan"], rel=1e-9)
    assert data["grand_coalition_value_yuan"] <= data["nash_total_cost_yuan"]
    assert data["in_core"] == {"shapley": True, "chander_tulkens": True}
    assert data["individually_rational"] == {"shapley": True, "chander_tulkens": True}
    assert len(data["health"]["acute"]["receptors"]) == 18 and data["health"]["chronic"] is None
    table = invoke("cooperate", files["run"], "--policy", EXAMPLE)
    assert table.exit_code == 0 and "Game: gamma-characteristic-function" in table.stdout
    html = build_report_html(_light(files), cooperation=data, species=())
    assert escape(data["game"]) in html and "Characteristic function." in html
    assert "Chander-Tulkens net cost" in html
    assert 'id="fig-cooperation-transfers"' in html


def _light(files):
    import xarray as xr

    with xr.open_dataset(files["run"]) as ds:
        return ds.drop_vars(["contribution", "transboundary_share", "source_receptor",
                             "receptor_contribution", "concentration"]).load()


def test_cooperate_unattainable_targets_exit_2_with_one_line(files, tmp_path):
    bad = tmp_path / "bad.toml"
    text = files["policy"].read_text(encoding="utf-8")
    bad.write_text(text.replace("[targets]\n", "[targets]\nLangfang = 1.0\n"), encoding="utf-8")
    result = invoke("cooperate", files["run"], "--policy", bad, "--workers", "1")
    assert result.exit_code == 2, result.output
    assert "targets.Langfang = 1" in result.stderr and "attainable" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_performance_split_own_plus_others_is_the_change(files, run_ds, tmp_path):
    """Run B: Beijing cuts 10 % of its emissions, the Hebei cities 30 %; the split must say who did what."""
    cut = {"Beijing": 0.1, **dict.fromkeys(HEBEI_CITIES, 0.3)}
    factor = np.array([1.0 - cut.get(str(s), 0.0) for s in run_ds["source_region"].values])
    sr_a = run_ds["pm25_source_receptor"]
    run_b = run_ds.copy()
    run_b["pm25_source_receptor"] = sr_a * factor[None, :, None]
    run_b["pm25_total"] = run_ds["pm25_total"] + (run_b["pm25_source_receptor"] - sr_a).sum(
        ("source_region", "emitted_species"))
    file_b = write_netcdf_atomic(run_b, tmp_path / "run_b.nc")
    result = invoke("performance", files["run"], file_b, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["receptors"]
    assert len(data) == 18
    for name, row in data.items():
        parts = (row["own_emissions_change"] + row["other_regions_change"] + row["outside_change"]
                 + row["unattributed_change"])
        assert parts == pytest.approx(row["pm25_change"], abs=1e-9)
        assert row["pm25_b"] - row["pm25_a"] == pytest.approx(row["pm25_change"], abs=1e-9)
        assert row["outside_change"] == 0.0 and row["unattributed_change"] == pytest.approx(0.0, abs=1e-9)
        own = sr_a.sel(receptor_region=name, source_region=name).sum().item()
        assert row["own_emissions_change"] == pytest.approx(-cut.get(name, 0.0) * own, rel=1e-12)
    beijing = sr_a.sel(receptor_region="Beijing", source_region=HEBEI_CITIES).sum().item()
    assert data["Beijing"]["other_regions_change"] == pytest.approx(-0.3 * beijing, rel=1e-12)
    assert data["Shandong"]["own_emissions_change"] == 0.0

    table = invoke("performance", files["run"], file_b)
    assert table.exit_code == 0 and "own emissions" in table.stdout and "Hengshui" in table.stdout
    assert json.loads(result.stdout)["notes"] == [] and "note:" not in table.stdout  # same seed and weather


def test_performance_says_when_the_runs_differ_in_more_than_emissions(files, run_ds, tmp_path):
    """Another particle seed or other weather moves every contribution (newcomer trial)."""
    other = run_ds.copy()
    other.attrs = {**run_ds.attrs, "seed": int(run_ds.attrs["seed"]) + 1, "end": "2099-01-01T00:00:00"}
    file_b = write_netcdf_atomic(other, tmp_path / "run_b.nc")
    notes = json.loads(invoke("performance", files["run"], file_b, "--json").stdout)["notes"]
    assert any("meteorology or period" in n for n in notes)
    assert any("particle seeds" in n for n in notes) == (run_ds.attrs.get("core") == "lagrangian")


def test_performance_runs_on_different_regions_exit_2(files, run_ds, tmp_path):
    keep = ["pm25_source_receptor", "pm25_total", "emission_total", "population_region"]
    other = write_netcdf_atomic(run_ds[keep].isel(receptor_region=slice(0, 5)), tmp_path / "other.nc")
    result = invoke("performance", files["run"], other)
    assert result.exit_code == 2 and "differ in receptors" in result.stderr
