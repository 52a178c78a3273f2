"""Writing NetCDF files safely: atomic publication, and run files written hour by hour."""

import numpy as np
import pytest
import xarray as xr

from airshed.outputs.netcdf import IncrementalNetCDF

HOURLY = {"field": (("time", "y"), {"units": "ug m-3", "long_name": "a field along time"})}


def skeleton(hours: int = 5) -> xr.Dataset:
    return xr.Dataset(coords={"time": np.arange(hours, dtype=float), "y": np.arange(3, dtype=float)},
                      data_vars={"fixed": (("y",), np.array([1.0, 2.0, 3.0]))})


def test_hours_written_in_pieces_read_back_with_the_rest(tmp_path):
    path = tmp_path / "run.nc"
    values = np.arange(15, dtype=float).reshape(5, 3) / 7.0
    with IncrementalNetCDF(path, skeleton(), HOURLY, compression_level=4, time_chunk=2) as out:
        for first, stop in ((0, 1), (1, 4), (4, 5)):
            out.write("field", first, values[first:stop])
        assert not path.exists()  # nothing visible before the run is complete
        out.finish(xr.Dataset({"total": ((), values.sum())}, attrs={"title": "t"}))
    with xr.open_dataset(path) as ds:
        assert np.array_equal(ds["field"].values, values)
        assert ds["field"].attrs["units"] == "ug m-3"
        assert ds["fixed"].values.tolist() == [1.0, 2.0, 3.0]
        assert float(ds["total"]) == values.sum() and ds.attrs["title"] == "t"
        assert ds["field"].encoding["chunksizes"] == (2, 3) and ds["field"].encoding["zlib"]
    assert [p.name for p in tmp_path.iterdir()] == ["run.nc"]


def test_a_run_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "run.nc"
    path.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="core failed"):
        with IncrementalNetCDF(path, skeleton(), HOURLY) as out:
            out.write("field", 0, np.ones((2, 3)))
            raise RuntimeError("core failed at hour 2")
    assert path.read_bytes() == b"previous result"
    assert [p.name for p in tmp_path.iterdir()] == ["run.nc"]


def test_hours_never_written_read_as_missing(tmp_path):
    path = tmp_path / "run.nc"
    with IncrementalNetCDF(path, skeleton(), HOURLY) as out:
        out.write("field", 0, np.ones((1, 3)))
        out.finish(xr.Dataset())
    with xr.open_dataset(path) as ds:
        assert np.isnan(ds["field"].values[1:]).all() and (ds["field"].values[0] == 1.0).all()
