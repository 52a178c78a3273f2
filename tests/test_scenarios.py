"""Scenarios: emission factors, evaluation from stored contributions, full runs, the event examples."""

from __future__ import annotations

import io
import json
import tomllib
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import small_config, small_run
from typer.testing import CliRunner

from airshed.cli import app
from airshed.config import dump_config, parse_config
from airshed.errors import AirshedInputError, ConfigError
from airshed.inputs.emissions.sources import AreaSources, EmissionSet, PointSources
from airshed.physics.mechanism import EMITTED_SPECIES, OUTPUT_SPECIES
from airshed.scenarios import (
    emission_factors,
    evaluate_scenarios,
    factor_table,
    pm25_summary,
    scenario_named,
    validate_scenario,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
START = np.datetime64("2017-12-01T00:00", "s")
HOURS = 6
RUN = {"name": "s", "start": "2017-12-01T00:00:00", "end": "2017-12-01T06:00:00", "core": "plume"}
SECTORS = ("power", "industry", "residential", "transport", "agriculture")
PRECURSOR = {
    "PM2.5_primary": "PM2.5",
    "sulfate": "SO2",
    "nitrate": "NOx",
    "SO2": "SO2",
    "NOx": "NOx",
    "NH3": "NH3",
    "NMVOC": "NMVOC",
}
WIDE = {"COLUMNS": "200"}


def config_with(scenarios: list, **run) -> object:
    return parse_config({"run": {**RUN, **run}, "scenarios": scenarios})


def change(regions, percent, **kw) -> dict:
    return {"regions": regions, "change_percent": percent, **kw}


# --- factors -----------------------------------------------------------------------------------------
def test_overlapping_changes_multiply_and_partial_windows_average():
    cfg = config_with(
        [
            {
                "name": "x",
                "changes": [
                    change(["A"], -50.0, species=["SO2"]),
                    change("all", -50.0, sectors=["power"], start="2017-12-01T01:00", end="2017-12-01T02:00"),
                    change(["B"], 20.0),
                ],
            }
        ]
    )
    sc = cfg.scenarios[0]
    regions, run = ("A", "B", "outside"), (START, START + np.timedelta64(HOURS, "h"))
    inside = factor_table(
        sc, regions, SECTORS, START + np.timedelta64(1, "h"), START + np.timedelta64(2, "h"), *run
    )
    so2, nox, power, industry = EMITTED_SPECIES.index("SO2"), EMITTED_SPECIES.index("NOx"), 0, 1
    assert inside[0, power, so2] == pytest.approx(0.25, abs=1e-15)  # -50 % twice: a quarter left
    assert inside[0, power, nox] == 0.5 and inside[0, industry, so2] == 0.5 and inside[0, industry, nox] == 1
    assert inside[1, power, nox] == pytest.approx(0.6) and inside[1, industry, nox] == pytest.approx(1.2)
    assert inside[2, power, nox] == 0.5 and inside[2, industry, nox] == 1.0  # "all" includes outside
    # a two-hour period with the one-hour window: the mean factor (emitted mass scales by it)
    two = factor_table(sc, regions, SECTORS, START, START + np.timedelta64(2, "h"), *run)
    assert two[2, power, nox] == pytest.approx(0.75, abs=1e-15)
    assert two[0, power, so2] == pytest.approx((0.5 + 0.25) / 2, abs=1e-15)
    assert np.all(factor_table(None, regions, SECTORS, *run, *run) == 1.0)


def test_emission_factors_per_source_and_species():
    def area(region, sector):
        n = len(region)
        z = np.zeros(n)
        return AreaSources(
            z,
            z,
            z + 1e3,
            z.astype(np.int32),
            z.astype(np.int32),
            np.array(region, np.int32),
            np.array(sector, np.int32),
            np.ones((n, 2)),
        )

    a = area([0, 1, 2, 0], [0, 0, 3, 4])
    p = PointSources(
        np.array(["s1", "s2"], dtype=object),
        *(np.zeros(2),) * 6,
        np.array([1, 0], np.int32),
        np.array([1, 0], np.int32),
        np.ones((2, 2)),
    )
    em = EmissionSet(a, p, species=("SO2", "NOx"), sectors=SECTORS, regions=("A", "B", "outside"))
    sc = config_with(
        [
            {
                "name": "x",
                "changes": [
                    change(["A"], -100.0, sectors=["power"], species=["SO2"]),
                    change(["B"], 10.0, sectors=["industry"]),
                ],
            }
        ]
    ).scenarios[0]
    fa, fp = emission_factors(sc, em, START, START + np.timedelta64(1, "h"))
    assert fa.shape == (4, len(EMITTED_SPECIES)) and fp.shape == (2, len(EMITTED_SPECIES))
    expected_a = np.ones((4, 5))
    expected_a[0, EMITTED_SPECIES.index("SO2")] = 0.0
    np.testing.assert_array_equal(fa, expected_a)
    np.testing.assert_allclose(fp[0], 1.1)
    np.testing.assert_array_equal(fp[1], expected_a[0])
    ones_a, ones_p = emission_factors(None, em, START, START + np.timedelta64(1, "h"))
    assert np.all(ones_a == 1) and np.all(ones_p == 1)


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (change(["A"], -150.0), r"change_percent` = -150\.0: cuts above 100 % are impossible"),
        (
            change(["A"], -10.0, sectors=["powr"]),
            r"scenario 'x', change 1 of 1: `sectors`: unknown sector 'powr'; valid sectors: "
            r"power, industry.*did you mean 'power'",
        ),
        (
            change(["A"], -10.0, species=["PM10"]),
            r"scenario 'x', change 1 of 1: `species`: unknown species 'PM10'; valid "
            r"species: SO2, NOx, PM2.5, NH3, NMVOC",
        ),
        (
            change(["A"], -10.0, end="2017-12-02T00:00"),
            r"scenario 'x', change 1 of 1: `end` = 2017-12-02T00:00:00: the window lies outside the run",
        ),
        (
            change(["A"], -10.0, start="2017-12-01T03:00", end="2017-12-01T03:00"),
            r"ends .* before or when it",
        ),
        (change([], -10.0), r"non-empty list of regions"),
    ],
)
def test_bad_changes_are_config_errors_naming_the_key(bad, message):
    with pytest.raises(ConfigError, match=message):
        config_with([{"name": "x", "changes": [bad]}])


def test_duplicate_scenario_names_and_unknown_keys():
    with pytest.raises(ConfigError, match=r"scenario 'x' is defined twice"):
        config_with([{"name": "x", "changes": [change("all", 1.0)]}] * 2)
    with pytest.raises(
        ConfigError,
        match=r"unknown key `scenarios\[1\]\.changes\[0\]\.sector`; did you mean "
        r"`scenarios\[1\]\.changes\[0\]\.sectors`",
    ):
        config_with(
            [
                {"name": "x", "changes": [change("all", 1.0)]},
                {"name": "y", "changes": [change("all", 1.0, sector=["power"])]},
            ]
        )


def test_unknown_region_names_scenario_change_and_valid_regions():
    sc = config_with([{"name": "cut", "changes": [change("all", 1.0), change(["Beijing", "Hebie"], -5.0)]}])
    with pytest.raises(
        AirshedInputError,
        match=r"scenario 'cut', change 2 of 2: unknown region 'Hebie' in `regions`; the source regions "
        r"are Beijing, Hebei, outside",
    ):
        validate_scenario(sc.scenarios[0], ("Beijing", "Hebei", "outside"))
    # changes are counted from 1, as the user counts the [[scenarios.changes]] tables, and the file is named
    with pytest.raises(AirshedInputError,
                       match=r"^study\.toml: scenario 'cut', change 2 of 2: unknown region"):
        validate_scenario(sc.scenarios[0], ("Beijing", "Hebei", "outside"), origin="study.toml")
    with pytest.raises(AirshedInputError, match=r"unknown scenario 'nope'; scenarios of this config: cut"):
        scenario_named(sc, "nope")


def test_scenarios_dump_and_load_back():
    cfg = config_with(
        [
            {
                "name": "x",
                "description": "d",
                "changes": [
                    change(["A"], -41.0, species=["SO2"], start="2017-12-01T01:00"),
                    change("all", 5.0, sectors=["power"]),
                ],
            }
        ]
    )
    again = parse_config(tomllib.loads(dump_config(cfg)))
    assert again.model_dump() == cfg.model_dump()


# --- evaluation from stored contributions (synthetic run file) ----------------------------------------
def synthetic_run(core: str = "plume", seed: int = 0) -> xr.Dataset:
    """A run file's tagged receptor part with random contributions (PM2.5 = sum of its parts)."""
    rng = np.random.default_rng(seed)
    regions, receptors = ["A", "B", "outside"], ["A", "B"]
    rc = rng.uniform(0.0, 10.0, (HOURS, 2, 3, len(SECTORS), len(OUTPUT_SPECIES)))
    pm = [OUTPUT_SPECIES.index(p) for p in ("PM2.5_primary", "sulfate", "nitrate")]
    rc[..., 0] = rc[..., pm].sum(axis=-1)
    edges = START + np.arange(HOURS + 1) * np.timedelta64(1, "h")
    dims = ("time", "receptor_region", "source_region", "sector", "species")
    return xr.Dataset(
        {
            "receptor_contribution": (dims, rc),
            "receptor_concentration": (dims[:2] + dims[-1:], rc.sum(axis=(2, 3))),
            "time_bnds": (("time", "nv"), np.stack([edges[:-1], edges[1:]], axis=-1)),
        },
        coords={
            "time": edges[1:],
            "receptor_region": receptors,
            "source_region": regions,
            "sector": list(SECTORS),
            "species": list(OUTPUT_SPECIES),
        },
        attrs={"core": core},
    )


def brute_force(ds: xr.Dataset, scenario) -> np.ndarray:
    """Scenario receptor series (T, Q, S) by explicit loops over every hour, tag and species."""
    rc = ds["receptor_contribution"].values
    regions, sectors = list(ds["source_region"].values), list(ds["sector"].values)
    out = np.zeros(rc.shape[:2] + rc.shape[-1:])
    for t in range(rc.shape[0]):
        hour = START + np.timedelta64(t, "h")
        for r, region in enumerate(regions):
            for k, sector in enumerate(sectors):
                for s, species in enumerate(OUTPUT_SPECIES):
                    if species == "PM2.5":
                        continue
                    f = 1.0
                    for c in scenario.changes:
                        start = np.datetime64(c.start, "s") if c.start else START
                        end = np.datetime64(c.end, "s") if c.end else START + np.timedelta64(HOURS, "h")
                        if (
                            start <= hour < end
                            and (c.regions == "all" or region in c.regions)
                            and (c.sectors == "all" or sector in c.sectors)
                            and (c.species == "all" or PRECURSOR[species] in c.species)
                        ):
                            f *= c.factor
                    out[t, :, s] += f * rc[t, :, r, k, s]
    pm = [OUTPUT_SPECIES.index(p) for p in ("PM2.5_primary", "sulfate", "nitrate")]
    out[..., 0] = out[..., pm].sum(axis=-1)
    return out


MIXED = [
    {
        "name": "mixed",
        "description": "test",
        "changes": [
            change(["A"], -40.0, species=["SO2", "PM2.5"], start="2017-12-01T02:00", end="2017-12-01T05:00"),
            change(["B", "outside"], -30.0, sectors=["power", "industry"]),
            change("all", 25.0, species=["NOx"], start="2017-12-01T04:00"),
        ],
    },
    {"name": "b_off", "changes": [change(["B"], -100.0)]},
]


def test_evaluation_matches_brute_force_and_splits_own_and_others():
    ds = synthetic_run()
    cfg = config_with(MIXED)
    result = evaluate_scenarios(ds, cfg.scenarios)
    for name in ("mixed", "b_off"):
        expected = brute_force(ds, scenario_named(cfg, name))
        got = result["scenario_receptor_series"].sel(scenario=name).values
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        sel = result.sel(scenario=name)
        np.testing.assert_allclose(sel["scenario_receptor_concentration"], expected.mean(axis=0), rtol=1e-12)
        change_total = sel["scenario_receptor_concentration"] - result["baseline_receptor_concentration"]
        np.testing.assert_allclose(
            sel["scenario_delta_own"] + sel["scenario_delta_others"], change_total, rtol=1e-12, atol=1e-12
        )
    rc = ds["receptor_contribution"]
    # switching B off: B loses all its own contribution; A loses exactly what B sent it
    b_off = result.sel(scenario="b_off")
    np.testing.assert_allclose(
        b_off["scenario_delta_own"].sel(receptor_region="B"),
        -rc.sel(receptor_region="B", source_region="B").sum("sector").mean("time"),
    )
    np.testing.assert_allclose(
        b_off["scenario_delta_others"].sel(receptor_region="A"),
        -rc.sel(receptor_region="A", source_region="B").sum("sector").mean("time"),
    )
    assert np.all(b_off["scenario_delta_own"].sel(receptor_region="A") == 0)
    # sulfate follows SO2, nitrate NOx; NH3 untouched by a scenario that changes no NH3
    mixed = result.sel(scenario="mixed", receptor_region="A")
    assert (
        mixed["scenario_delta_own"].sel(species="sulfate")
        < 0
        < mixed["scenario_delta_own"].sel(species="nitrate")
    )
    rows = pm25_summary(result)
    assert len(rows) == 4 and rows[0].scenario == "mixed" and rows[0].receptor_region == "A"
    assert rows[0].change == pytest.approx(rows[0].change_own + rows[0].change_others, rel=1e-12)


def test_particle_core_partial_window_is_refused_whole_run_accepted():
    cfg = config_with(MIXED)
    with pytest.raises(
        AirshedInputError,
        match=r"scenario 'mixed', change 1 of 3: its window covers only part of a "
        r"lagrangian-core run.*airshed run CONFIG --scenario mixed",
    ):
        evaluate_scenarios(synthetic_run("lagrangian"), cfg.scenarios)
    whole = config_with(
        [{"name": "w", "changes": [change(["A"], -40.0, start="2017-12-01T00:00", end="2017-12-01T06:00")]}]
    )
    result = evaluate_scenarios(synthetic_run("lagrangian"), whole.scenarios)
    assert float(result["scenario_delta_own"].sel(scenario="w", receptor_region="A", species="PM2.5")) < 0


def test_window_outside_the_run_file_and_missing_contributions():
    later = config_with(
        [{"name": "late", "changes": [change(["A"], -10.0, start="2017-12-01T07:00")]}],
        end="2017-12-01T12:00:00",
    )
    with pytest.raises(
        AirshedInputError,
        match=r"scenario 'late', change 1 of 1: `start` = 2017-12-01T07:00:00 lies "
        r"outside the run",
    ):
        evaluate_scenarios(synthetic_run(), later.scenarios)
    bare = synthetic_run().drop_vars("receptor_contribution")
    with pytest.raises(
        AirshedInputError,
        match=r"run file has no receptor_contribution: scenarios are "
        r"evaluated from the tagged contributions",
    ):
        evaluate_scenarios(bare, config_with(MIXED).scenarios)
    with pytest.raises(AirshedInputError, match=r"unknown region 'C'"):
        evaluate_scenarios(
            synthetic_run(), config_with([{"name": "c", "changes": [change(["C"], 1.0)]}]).scenarios
        )


# --- the command line ---------------------------------------------------------------------------------
@pytest.fixture()
def files(tmp_path):
    cfg = config_with(MIXED)
    config = tmp_path / "s.toml"
    config.write_text(dump_config(cfg), encoding="utf-8")
    run = tmp_path / "run.nc"
    synthetic_run().to_netcdf(run)
    return config, run


def test_scenario_command_json_and_table(files):
    config, run = files
    runner = CliRunner()
    result = runner.invoke(app, ["scenario", str(config), str(run), "--json"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    with xr.open_dataset(run) as ds:
        expected = pm25_summary(evaluate_scenarios(ds, config_with(MIXED).scenarios))
    assert [(r["scenario"], r["receptor_region"]) for r in rows] == [
        (e.scenario, e.receptor_region) for e in expected
    ]
    for r, e in zip(rows, expected, strict=True):
        assert r["change_ug_m3"] == pytest.approx(e.change, rel=1e-12)
        assert r["change_from_own_ug_m3"] + r["change_from_others_ug_m3"] == pytest.approx(e.change, rel=1e-9)
    table = runner.invoke(app, ["scenario", str(config), str(run), "--name", "b_off"], env=WIDE)
    assert table.exit_code == 0, table.output
    assert "scenario b_off" in table.stdout and "from others' cuts" in table.stdout
    assert "scenario mixed" not in table.stdout


def test_scenario_command_bad_input_exits_2(files, tmp_path):
    config, run = files
    runner = CliRunner()
    unknown = runner.invoke(app, ["scenario", str(config), str(run), "--name", "nope"], env=WIDE)
    assert unknown.exit_code == 2
    assert "unknown scenario 'nope'; scenarios of this config: mixed, b_off" in unknown.stderr
    bare = tmp_path / "bare.nc"
    synthetic_run().drop_vars("receptor_contribution").to_netcdf(bare)
    missing = runner.invoke(app, ["scenario", str(config), str(bare)], env=WIDE)
    assert missing.exit_code == 2 and "run file has no receptor_contribution" in missing.stderr
    # the config file is named and the change counted from 1, as in the file (trial 10, item 9)
    other = tmp_path / "other.toml"
    other.write_text(dump_config(config_with([{"name": "bad", "changes": [change(["A"], -10.0),
                                                                          change(["C"], -10.0)]}])))
    region = runner.invoke(app, ["scenario", str(other), str(run)], env=WIDE)
    assert region.exit_code == 2 and len(region.stderr.strip().splitlines()) == 1
    assert f"{other}: scenario 'bad', change 2 of 2: unknown region 'C' in `regions`" in region.stderr


def test_run_with_an_unknown_scenario_fails_before_running(files, monkeypatch):
    import airshed.runner

    config, _ = files
    monkeypatch.setattr(airshed.runner, "run_study",
                        lambda *a, **k: pytest.fail("the pipeline must not start"))
    result = CliRunner().invoke(app, ["run", str(config), "--scenario", "nope"], env=WIDE)
    assert result.exit_code == 2 and "unknown scenario 'nope'" in result.stderr


# --- full runs agree with the evaluation from stored contributions ------------------------------------
FULL = [
    {
        "name": "full",
        "changes": [
            change(
                ["Beijing"], -41.0, species=["SO2", "NOx"], start="2017-12-01T02:00", end="2017-12-01T05:00"
            ),
            change(["Hebei", "Tianjin"], -30.0, sectors=["power", "industry"]),
            change("all", 20.0, species=["PM2.5"], start="2017-12-01T01:00"),
        ],
    }
]
FULL_WHOLE_RUN = [
    {
        "name": "full",
        "changes": [
            change(["Beijing"], -41.0, species=["SO2", "NOx"]),
            change(["Hebei", "Tianjin"], -30.0, sectors=["power", "industry"]),
            change("all", 20.0, species=["PM2.5"]),
        ],
    }
]


def _compare_full_run(core: str, scenarios: list) -> None:
    base, full = small_run(core), small_run(core, scenarios=scenarios, scenario="full")
    cfg = small_config(core, scenarios)
    with xr.open_dataset(base) as b, xr.open_dataset(full) as f:
        result = evaluate_scenarios(b, cfg.scenarios)
        series = f["receptor_concentration"].values
        got = result["scenario_receptor_series"].sel(scenario="full").values
        scale = float(np.abs(series).max())
        assert scale > 0
        assert float(np.abs(got - series).max()) <= 1e-9 * scale
        # the secondary species too, each against its own scale (both cores form them)
        for species in ("sulfate", "nitrate"):
            s = list(b["species"].values).index(species)
            own = float(np.abs(series[..., s]).max())
            assert own > 1e-6 * scale
            assert float(np.abs(got[..., s] - series[..., s]).max()) <= 1e-9 * own
        # the scenario run emitted what the factors say (Hebei power: -30 % throughout)
        hebei_power = dict(source_region="Hebei", sector="power", emitted_species=["SO2", "NOx", "NMVOC"])
        emitted = b["emission_total"].sel(hebei_power).values
        assert np.all(emitted > 0)
        np.testing.assert_allclose(f["emission_total"].sel(hebei_power).values, 0.7 * emitted, rtol=1e-12)


@pytest.mark.slow
def test_plume_full_scenario_run_agrees_with_the_stored_evaluation():
    """Plume core, hourly windows: re-weighting the stored contributions is exact (1e-9)."""
    _compare_full_run("plume", FULL)


@pytest.mark.slow
def test_particle_full_scenario_run_agrees_with_the_stored_evaluation():
    """Particle core, whole-run changes: exact once factors scale particle masses, not their number."""
    _compare_full_run("lagrangian", FULL_WHOLE_RUN)


# --- the event examples --------------------------------------------------------------------------------
def _cuts_table() -> pd.DataFrame:
    text = resources.files("airshed").joinpath("data/policy/event_emission_cuts.csv").read_text("utf-8")
    return pd.read_csv(io.StringIO(text), comment="#")


@pytest.mark.parametrize(
    ("example", "event", "alias"),
    [
        ("olympics_2008", "Olympics2008", {"PM2.5": "PM10"}),  # PM10 cut applied to PM2.5, as the file says
        ("apec_2014", "APEC2014", {"NMVOC": "VOCs"}),
    ],
)
def test_example_beijing_cuts_are_those_of_the_cited_table(example, event, alias):
    cuts = _cuts_table()
    rows = cuts[(cuts["event"] == event) & (cuts["region"] == "Beijing") & (cuts["sector"] == "all")]
    cfg = parse_config(tomllib.loads((EXAMPLES / f"{example}.toml").read_text("utf-8")), config_dir=EXAMPLES)
    for scenario in cfg.scenarios:
        beijing = [c for c in scenario.changes if c.regions == ["Beijing"]]
        assert {s for c in beijing for s in c.species} == {"SO2", "NOx", "PM2.5", "NMVOC"}
        for c in beijing:
            (species,) = c.species
            row = rows[rows["pollutant"] == alias.get(species, species)]
            assert len(row) == 1 and row["confidence"].item() == "high"
            assert c.change_percent == -float(row["reduction_pct"].item())
        assert "ASSUMED" in scenario.description or all(c.regions == ["Beijing"] for c in scenario.changes)


@pytest.mark.parametrize("example", ["olympics_2008", "apec_2014"])
@pytest.mark.slow
def test_example_scenarios_split_beijing_change_into_own_and_neighbours(example, tmp_path):
    """Each example, cut to the small case, evaluated by `airshed scenario` on the small particle run."""
    data = tomllib.loads((EXAMPLES / f"{example}.toml").read_text("utf-8"))
    assert data["run"]["core"] == "lagrangian"
    cfg = small_config("lagrangian", base=data)
    # the example differs from the small baseline only by its scenarios (so one run serves both)
    assert cfg.model_dump(exclude={"scenarios"}) == small_config("lagrangian").model_dump(
        exclude={"scenarios"}
    )
    config = tmp_path / f"{example}.toml"
    config.write_text(dump_config(cfg), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["scenario", str(config), str(small_run("lagrangian")), "--json"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    rows = {(r["scenario"], r["receptor_region"]): r for r in json.loads(result.stdout)}
    own_only, regional = (s.name for s in cfg.scenarios)
    alone, joint = rows[(own_only, "Beijing")], rows[(regional, "Beijing")]
    assert alone["change_ug_m3"] < 0 and alone["change_from_others_ug_m3"] == 0.0
    assert joint["change_from_own_ug_m3"] == pytest.approx(alone["change_from_own_ug_m3"], rel=1e-12)
    assert joint["change_from_others_ug_m3"] < 0  # the neighbours' cuts lower Beijing's PM2.5 too
    for r in (alone, joint):
        assert r["change_ug_m3"] == pytest.approx(
            r["change_from_own_ug_m3"] + r["change_from_others_ug_m3"], rel=1e-9
        )
        assert -100.0 < r["change_percent"] < 0.0
