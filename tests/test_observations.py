"""Observation and station-list readers: both layouts, units, errors, and real data (Beijing, Jan 2013)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airshed.errors import DataError
from airshed.inputs.observations import (
    Observations,
    canonical_unit,
    observation_layout,
    read_cnemc,
    read_long,
    read_observations,
    read_stations,
    write_cnemc,
)
from airshed.inputs.station_network import (
    N_STATIONS,
    SHIPPED_HEADER,
    STATIONS_PER_CITY,
    synthetic_jjj_network,
)

DATA = Path(__file__).parent / "data"
EMBASSY = DATA / "beijing_us_embassy_pm25_2013-01.csv"
SHIPPED_STATIONS = Path(__file__).resolve().parents[1] / "airshed" / "data" / "stations_jjj_synthetic.csv"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


CNEMC_DAY = """date,hour,type,1001A,1002A
20171201,0,PM2.5,35,
20171201,0,PM2.5_24h,40,41
20171201,0,SO2,12,8
20171201,0,CO,1.2,0.9
20171201,0,AQI,50,48
20171201,1,PM2.5,38,30
20171201,1,NO2,61,55
"""


def test_cnemc_layout_is_read_in_ug_m3_with_utc_end_of_hour(tmp_path):
    obs = read_cnemc([write(tmp_path / "china_sites_20171201.csv", CNEMC_DAY)])
    f = obs.frame
    # hour 0 of 1 Dec Beijing time ends at 16:00 UTC on 30 Nov; the running means and AQI are skipped
    first = f[(f.station == "1001A") & (f.species == "PM2.5")].sort_values("time")
    assert first["time"].tolist() == [pd.Timestamp("2017-11-30T16:00"), pd.Timestamp("2017-11-30T17:00")]
    assert first["value"].tolist() == [35.0, 38.0]
    co = f[(f.species == "CO")].set_index("station")["value"]
    assert co.to_dict() == {"1001A": 1200.0, "1002A": 900.0}  # mg m-3 -> ug m-3
    assert set(f.species) == {"PM2.5", "SO2", "CO", "NO2"}
    assert len(f) == 9  # the empty 1002A PM2.5 cell is a missing value, not a row
    assert obs.stations == ["1001A", "1002A"] and obs.species == ["PM2.5", "SO2", "NO2", "CO"]


def test_long_layout_converts_units_and_offsets(tmp_path):
    path = write(tmp_path / "obs.csv", "# a comment\nstation,time,species,value,unit\n"
                 "A,2017-12-01T09:00+08:00,pm25,40,µg/m³\nA,2017-12-01T01:00,co,1.5,mg m-3\n"
                 "B,2017-12-01T01:00,NO2,,ug/m3\n")
    f = read_long([path]).frame
    assert f["time"].tolist() == [pd.Timestamp("2017-12-01T01:00")] * 2
    assert dict(zip(f.species, f.value, strict=True)) == {"PM2.5": 40.0, "CO": 1500.0}
    assert observation_layout(path) == "long"


@pytest.mark.parametrize("unit", ["ug m-3", "ug/m3", "µg/m³", "μg m^-3", "UG M**-3"])
def test_unit_spellings(unit):
    assert canonical_unit(unit) == "ug m-3"


@pytest.mark.parametrize(("text", "message"), [
    ("station,time,species,value,unit\nA,2017-12-01T01:00,SO2,5,ppb\n", "mixing ratio needs"),
    ("station,time,species,value,unit\nA,2017-12-01T01:00,SO2,5,kg\n", "not a mass concentration"),
    ("station,time,species,value,unit\nA,2017-12-01T01:00,H2S,5,ug m-3\n", "unknown species 'H2S'"),
    ("station,time,species,value,unit\nA,2017-12-01T01:00,SO2,-5,ug m-3\n", "negative SO2"),
    ("station,time,species,value,unit\nA,2017-12-01T01:00,CO,900,mg m-3\n", "check the unit"),
    ("station,time,species,value,unit\nA,yesterday,SO2,5,ug m-3\n", "ISO 8601"),
    ("station,time,species,value\nA,2017-12-01T01:00,SO2,5\n", "unknown layout"),
    ("station,time,species,value,unit\nA,2017-12-01T01:00,SO2,5,ug m-3\nA,2017-12-01T01:00,so2,6,ug m-3\n",
     "more than once"),
])
def test_bad_observation_files_are_one_line_errors(tmp_path, text, message):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=message) as err:
        read_observations(path)
    assert "\n" not in str(err.value) and "bad.csv" in str(err.value)


def test_bad_values_name_the_file_line_station_and_time(tmp_path):
    """Trial 10, item 12: a bad value among thousands is found by its line (comments and blank lines
    counted), station and time."""
    head = "# comment\nstation,time,species,value,unit\nA,2017-12-01T01:00,SO2,5,ug m-3\n\n"
    cases = [("B,2017-12-01T02:00,SO2,-40,ug m-3\n", "negative SO2 concentration -40 ug m-3"),
             ("B,2017-12-01T02:00,SO2,NaN,ug m-3\n", "SO2 value is not a finite number"),
             ("B,2017-12-01T02:00,SO2,abc,ug m-3\n", "value 'abc' is not a number")]
    for k, (row, message) in enumerate(cases):
        path = write(tmp_path / f"long{k}.csv", head + row)
        with pytest.raises(DataError) as err:
            read_observations(path)
        rest = "; concentrations are >= 0 (mark a missing value by an empty cell)" if k == 0 else ""
        assert str(err.value) == (f"observation file {path}, line 5 (station B, time 2017-12-01T02:00): "
                                  f"{message}{rest}")
    cnemc = "date,hour,type,1001A,1002A\n20171201,0,SO2,3,4\n20171201,1,SO2,5,{}\n"
    for k, (cell, message) in enumerate([("-2", "negative SO2 concentration -2 ug m-3"),
                                         ("x", "SO2 value 'x' is not a number")]):
        path = write(tmp_path / f"china_sites_{k}.csv", cnemc.format(cell))
        with pytest.raises(DataError, match=message) as err:
            read_cnemc([path])
        assert str(err.value).startswith(f"observation file {path}, line 3 (station 1002A, date 20171201 "
                                         "hour 1): ")


def test_cnemc_unknown_type_and_bad_hour(tmp_path):
    with pytest.raises(DataError, match="unknown type 'PM1'"):
        read_cnemc([write(tmp_path / "a.csv", "date,hour,type,1001A\n20171201,0,PM1,3\n")])
    with pytest.raises(DataError, match="outside 0-23"):
        read_cnemc([write(tmp_path / "b.csv", "date,hour,type,1001A\n20171201,24,SO2,3\n")])


def test_cnemc_writer_round_trips(tmp_path):
    frame = pd.DataFrame({"station": ["S1", "S1", "S2", "S2"],
                          "time": pd.to_datetime(["2017-12-01T16:00", "2017-12-01T17:00"] * 2)
                          .astype("datetime64[ns]"),
                          "species": ["CO", "CO", "SO2", "SO2"], "value": [1234.0, 800.0, 7.25, 0.0]})
    paths = write_cnemc(Observations(frame), tmp_path)
    assert [p.name for p in paths] == ["china_sites_20171202.csv"]  # 16:00 UTC ends hour 0 of 2 Dec, UTC+8
    back = read_observations(tmp_path).frame
    expected = frame.sort_values(["station", "species", "time"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected)


# --- real data ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embassy():
    """The shipped January 2013 excerpt of the US Embassy hourly PM2.5 series (Beijing time labels)."""
    table = pd.read_csv(EMBASSY, comment="#", na_values=["NA"])
    assert len(table) == 744 and table["pm2.5"].isna().sum() == 5
    return table


def test_real_beijing_series_through_both_readers(embassy, tmp_path):
    """Real hourly data, written in both layouts, read back identically with UTC end-of-hour times."""
    local = pd.to_datetime(embassy[["year", "month", "day", "hour"]])
    cnemc = tmp_path / "cnemc"
    cnemc.mkdir()
    for day, part in embassy.assign(date=local.dt.strftime("%Y%m%d")).groupby("date"):
        wide = pd.DataFrame({"date": day, "hour": part["hour"], "type": "PM2.5", "USEmbassy": part["pm2.5"]})
        wide.to_csv(cnemc / f"china_sites_{day}.csv", index=False, na_rep="")
    long = pd.DataFrame({"station": "USEmbassy", "time": local.dt.strftime("%Y-%m-%dT%H:00+08:00"),
                         "species": "PM2.5", "value": embassy["pm2.5"], "unit": "ug/m3"})
    long.to_csv(tmp_path / "long.csv", index=False, na_rep="")
    a = read_observations(cnemc).frame
    b = read_observations(tmp_path / "long.csv").frame
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 744 - 5
    # the worst hour of the January 2013 haze: 886 ug m-3 at 20 h Beijing time on 12 January = 12:00 UTC
    worst = a.loc[a["value"].idxmax()]
    assert worst["value"] == 886.0 and worst["time"] == pd.Timestamp("2013-01-12T12:00")
    monthly = a["value"].mean()
    assert monthly == pytest.approx(embassy["pm2.5"].mean())
    assert 150 < monthly < 200  # the month's mean, far above China's 75 ug m-3 daily limit


# --- station lists ------------------------------------------------------------------------------------
def test_station_list_errors(tmp_path):
    with pytest.raises(DataError, match="missing column"):
        read_stations(write(tmp_path / "a.csv", "id,name,lon\nS,s,116\n"))
    with pytest.raises(DataError, match="appears more than once"):
        read_stations(write(tmp_path / "b.csv", "id,name,lon,lat\nS,s,116,40\nS,t,117,39\n"))
    with pytest.raises(DataError, match=r"lat = '95'"):
        read_stations(write(tmp_path / "c.csv", "id,name,lon,lat\nS,s,116,95\n"))


def test_shipped_synthetic_network_regenerates_identically():
    shipped = read_stations(SHIPPED_STATIONS)
    generated = synthetic_jjj_network()
    assert len(shipped) == N_STATIONS == 80
    assert shipped["id"].tolist() == generated["id"].tolist()
    np.testing.assert_allclose(shipped[["lon", "lat"]].to_numpy(), generated[["lon", "lat"]].to_numpy(),
                               atol=1e-9)
    assert SHIPPED_STATIONS.read_text(encoding="utf-8").startswith(SHIPPED_HEADER)
    # each city's stations lie inside its built-up disc around the centre: Beijing's within 26.4 km
    centre = (116.407526, 39.90403)
    bj = shipped[shipped["city"] == "Beijing"]
    km = np.hypot((bj["lon"] - centre[0]) * 111.32 * np.cos(np.radians(centre[1])),
                  (bj["lat"] - centre[1]) * 110.57)
    assert km.max() < 26.5


def test_synthetic_network_has_the_national_networks_stations_per_city():
    """Beijing 1001A-1012A, Tianjin 1013A-1027A, Hebei's 11 cities 1028A-1080A."""
    counts = read_stations(SHIPPED_STATIONS)["city"].value_counts().to_dict()
    assert counts == STATIONS_PER_CITY
    assert (counts["Beijing"], counts["Tianjin"], sum(counts.values())) == (12, 15, 80)
