"""The HTML report: self-contained, parseable, holding the run's tables and every figure.

The report is rendered once per module through ``airshed report`` on a NetCDF file written from the
synthetic run (scenario part included) with a side-car cooperation JSON, and the tests read that file.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from runfile_fixture import synthetic_run_dataset
from typer.testing import CliRunner

from airshed.cli import app
from airshed.errors import DataError
from airshed.outputs.netcdf import write_netcdf_atomic
from airshed.outputs.plots import figure_specs
from airshed.outputs.report import COOPERATION_SUFFIX, cooperation_results

COOPERATION = {
    "units": {"money": "yuan per run period", "concentration": "ug m-3"},
    "players": ["Beijing", "Tianjin"],
    "independent": {"Beijing": {"cost_yuan": 3.0e9}, "Tianjin": {"cost_yuan": 2.0e9}},
    "independent_total_cost_yuan": 5.0e9,
    "cooperative": {
        "total_cost_yuan": 4.0e9,
        "regions": {
            "Beijing": {"cost_yuan": 1.5e9, "target_ugm3": 75.0, "baseline_ugm3": 115.4,
                        "pm25_after_ugm3": 74.9, "target_met": True},
            "Tianjin": {"cost_yuan": 2.5e9},
        },
    },
    "grand_coalition_value_yuan": 1.0e9,
    "shapley": {"Beijing": 2.5e9, "Tianjin": 1.5e9},
    "shapley_method": "exact",
    "transfers": {"Beijing": 1.0e9, "Tianjin": -1.0e9},
    "in_core": True,
}


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def run_ds():
    return synthetic_run_dataset(27, scenarios=True)


@pytest.fixture(scope="module")
def report(run_ds, tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    run_file = write_netcdf_atomic(run_ds, folder / "synthetic.nc")
    run_file.with_suffix(COOPERATION_SUFFIX).write_text(json.dumps(COOPERATION), encoding="utf-8")
    out = folder / "synthetic.html"
    result = CliRunner().invoke(app, ["report", str(run_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(text)
    parser.close()
    return {"path": out, "text": text, "parser": parser}


def test_report_is_written_atomically_and_readable(report):
    path = report["path"]
    assert path.stat().st_mode & 0o044  # not the private mode of the temporary file
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_report_embeds_every_figure_as_png(report, run_ds):
    images = [attrs for tag, attrs in report["parser"].tags if tag == "img"]
    assert len(images) == len(figure_specs(run_ds)) == 6
    for attrs in images:
        prefix = "data:image/png;base64,"
        assert attrs["src"].startswith(prefix)
        assert base64.b64decode(attrs["src"][len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"
        assert attrs["alt"]


def test_report_is_self_contained(report):
    text = report["text"]
    assert not re.search(r"https?://", text)
    tags = report["parser"].tags
    assert not [t for t, a in tags if t in ("script", "link", "iframe")]
    assert all(a.get("src", "").startswith("data:") for t, a in tags if "src" in a)
    assert ("style", {}) in tags


def test_report_holds_the_tables(report, run_ds):
    ids = {a.get("id") for t, a in report["parser"].tags if t == "table"}
    assert {"input-files", "source-receptor-table", "transboundary-table", "mass-budget-table",
            "scenario-table", "cooperation-table", "cooperation-totals"} <= ids
    text = "".join(report["parser"].text)
    # numbers from the file appear as printed in the tables
    own = float(run_ds["source_receptor"].sel(receptor_region="Beijing", source_region="Beijing",
                                              species="PM2.5"))
    share = 100 * float(run_ds["transboundary_share"].sel(receptor_region="Hengshui", species="PM2.5"))
    assert f"{own:.1f}" in text and f"{share:.1f}" in text
    for needle in ("synthetic_jjj", "lagrangian", "2017-12-01 00:00 to 2017-12-03 00:00 UTC",
                   "48 x 43 cells of 27 km", "/data/met/era5_201712.nc", "ab" * 32, "Hebei -30%",
                   "yuan per run period", "12.5 s"):
        assert needle in text, needle


def test_mass_budget_closure_row(report):
    assert "closure residual / (emitted + produced)" in "".join(report["parser"].text)


def test_cooperation_hook(run_ds, tmp_path):
    assert cooperation_results(run_ds, tmp_path / "run.nc") is None
    ds = run_ds.copy()
    ds.attrs["cooperation_json"] = json.dumps({"note": "attribute wins"})
    (tmp_path / f"run{COOPERATION_SUFFIX}").write_text("{}", encoding="utf-8")
    assert cooperation_results(ds, tmp_path / "run.nc") == {"note": "attribute wins"}
    assert cooperation_results(run_ds, tmp_path / "run.nc") == {}
    (tmp_path / f"run{COOPERATION_SUFFIX}").write_text("{oops", encoding="utf-8")
    with pytest.raises(DataError, match="cooperation file .* is not valid JSON"):
        cooperation_results(run_ds, tmp_path / "run.nc")


def test_report_command_bad_input(tmp_path: Path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "missing.nc")])
    assert result.exit_code == 2 and "not found" in result.output


def test_report_and_plot_name_their_own_output_option(report, tmp_path: Path):
    """A missing output folder names --out / -o, the option of report and plot, not run's run.output."""
    run_file = report["path"].with_suffix(".nc")
    for argv in (["report", str(run_file), "--out", str(tmp_path / "no" / "r.html")],
                 ["plot", str(run_file), "--out", str(tmp_path / "no" / "figures")]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
        line = " ".join(result.output.split())
        assert f"output folder {tmp_path / 'no'} does not exist" in line
        assert line.endswith("choose another with --out / -o") and "run.output" not in line
    assert not (tmp_path / "no").exists()
