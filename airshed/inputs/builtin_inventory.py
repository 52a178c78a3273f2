"""Built-in APPROXIMATE emission inventory for Jing-Jin-Ji and its neighbours (default case).

**This is an approximate inventory**, built from provincial totals and proxies; it is meant to let the
default case run with plausible magnitudes and geography, not to replace MEIC or a local inventory.

How it is built
---------------
1. **Provincial totals, 2007.** REAS v2.1 (Kurokawa et al. 2013, Atmos. Chem. Phys. 13:11019,
   doi:10.5194/acp-13-11019-2013), annual totals for Beijing, Tianjin, Hebei, Shanxi, Shandong, Henan,
   Inner Mongolia and Liaoning (``airshed/data/reas21_province_emissions_2007.csv``). Species SO2, NOx
   (as NO2), PM2.5, NMVOC, NH3. The REAS NOx total includes soil NOx, which MEIC does not count; it is
   removed (``total - soil``).
2. **Scaling to ``year``** (2007..2017) with the MEIC national trends of Zheng et al. (2018, Atmos. Chem.
   Phys. 18:14095, abstract): 2010->2017 SO2 -62 %, NOx -17 %, PM2.5 -35 %, NMVOC +11 %, NH3 +1 %, and
   2013->2017 SO2 -59 %, NOx -21 %, PM2.5 -33 %. The factor relative to 2010 is piecewise linear through
   2010 (1), 2013 (SO2 0.927 = 0.38/0.41, NOx 1.051 = 0.83/0.79, PM2.5 0.970 = 0.65/0.67; NMVOC and NH3
   interpolated linearly 2010-2017) and 2017. **Assumption: emissions flat 2007-2010** (REAS 2.1 ends in
   2008 and MEIC's published trend starts in 2010). This over-states SO2 somewhat: China's official
   statistics show national SO2 falling by roughly a tenth between 2007 and 2010 (FGD roll-out).
   National trends are applied to every province alike (assumption).
3. **Sector split** (:data:`SECTOR_SHARES`): **labelled assumption**, our rounded reading of the MEIC
   2017 national emissions by sector (power, industry, residential, transportation, agriculture) in
   Zheng et al. (2018); applied to every province alike. Verify against the paper before relying on it.
4. **Power sector -> real stacks.** The provincial power total is distributed over the coal, gas and oil
   plants of the WRI Global Power Plant Database (``north_china_thermal_power_plants_gppd.csv``, CC BY
   4.0) located in the province (exact polygon test) and commissioned by ``year``, in proportion to
   capacity (this conserves the provincial total). Stack parameters (assumptions, typical values):

   * stack height by plant capacity (:data:`STACK_HEIGHT_CLASSES`): >= 1000 MW 240 m, >= 600 MW 210 m,
     >= 300 MW 180 m, >= 100 MW 150 m, smaller 100 m - within the 150-240 m range typical of Chinese
     coal plants of 200-1000 MW units;
   * exit temperature 323 K (50 C) for coal (wet flue-gas desulphurisation, near universal in Chinese
     coal plants by 2017), 373 K gas, 423 K oil; exit velocity 18 m/s coal and oil, 15 m/s gas;
   * diameter from the actual flue-gas flow ``Q = P cf v_fg T/273.15`` at the exit velocity, where P is
     the capacity served by one stack (at most 1200 MW: Chinese plants commonly share one stack between
     two units), cf = 0.48 the capacity factor of Chinese thermal plants in 2017 (about 4,200 full-load
     hours, China Electricity Council statistics), v_fg the specific flue-gas volume 4.0 Nm3/kWh for
     coal and oil, 5.5 Nm3/kWh for gas (assumptions).
   A province without plants keeps its power emissions in the area part.
5. **Other sectors -> 0.1 degree grid** by population proxies: Hebei's total is split over its 11
   prefecture cities by 2020 census population (``population_census_2020.csv``); Beijing, Tianjin and
   the five neighbouring provinces are single units. Within a unit a share ``URBAN_SHARE[sector]`` is
   spread with a Gaussian kernel (sigma :data:`URBAN_SIGMA_KM`) centred on the city centre
   (``city_coordinates.csv``; neighbour provinces have no kernel) and the rest uniformly over the
   unit's area. Every weight is multiplied by a taper that is 0 within :data:`BORDER_ZERO_KM` of the
   province boundary and rises linearly to 1 at :data:`BORDER_FULL_KM`: this keeps each province's
   emissions inside its own boundary when the grid is regridded to km-scale model cells and attributed
   with area-fraction masks (otherwise 0.1 degree cells straddling a border would leak several per cent
   of a province's mass to its neighbour), at the price of a low-emission band along provincial
   borders.

Output: ``ensure_builtin_inventory(cache_dir, year)`` writes, deterministically, a NetCDF in layout 1
of :mod:`airshed.inputs.emissions.gridded` (variables SO2, NOx, PM25, NH3, NMVOC with a ``sector``
dimension, units ``t/yr`` per cell) and a point-source CSV in the format of
:mod:`airshed.inputs.emissions.points`; :func:`builtin_emission_set` reads them back through the readers.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely
import xarray as xr

from airshed.atomic_files import CACHE_FOLDER, atomic_path, make_folder
from airshed.errors import AirshedInputError, DataError
from airshed.grids import builtin_case
from airshed.grids.boundaries import adcode_geometry, census_table
from airshed.grids.grid import Grid
from airshed.grids.overlap import cell_overlap_areas
from airshed.grids.regions import RegionSet
from airshed.inputs.emissions.gridded import ellipsoidal_cell_area, read_gridded_emissions
from airshed.inputs.emissions.points import read_point_sources
from airshed.inputs.emissions.sources import EmissionSet, build_emission_set
from airshed.inputs.emissions.species import MEIC_SECTORS
from airshed.inputs.emissions.temporal import TemporalProfiles
from airshed.physics.mechanism import EMITTED_SPECIES

INVENTORY_VERSION = "1"
"""Bumped whenever the construction changes, so stale cache files are not reused."""

YEARS = range(2007, 2018)
"""Years the built-in inventory can be scaled to."""

SPECIES = EMITTED_SPECIES
"""Species of the built-in inventory: the chemistry mechanism's emitted species."""

SECTORS = MEIC_SECTORS
"""Sectors of the built-in inventory: the MEIC sectors (no ``other``)."""

PROVINCES = {  # name as in the census table / region sets -> REAS region code
    "Beijing": "BEIJ",
    "Tianjin": "TIAN",
    "Hebei": "HEBE",
    "Shanxi": "SHNX",
    "Inner Mongolia": "NEMO",
    "Liaoning": "LIAO",
    "Shandong": "SHND",
    "Henan": "HENA",
}
"""Provinces covered and their REAS v2.1 region codes."""

_REAS_SPECIES = {"SO2": "SO2", "NOx": "NOx (as NO2)", "PM2.5": "PM2.5", "NMVOC": "NMVOC", "NH3": "NH3"}

TREND_ANCHORS = {  # emission relative to 2010 at 2010, 2013, 2017 (Zheng et al. 2018); None = interpolate
    "SO2": (1.0, 0.38 / 0.41, 0.38),
    "NOx": (1.0, 0.83 / 0.79, 0.83),
    "PM2.5": (1.0, 0.65 / 0.67, 0.65),
    "NMVOC": (1.0, None, 1.11),
    "NH3": (1.0, None, 1.01),
}
"""MEIC national emissions relative to 2010 (Zheng et al. 2018, abstract)."""

SECTOR_SHARES = {  # power, industry, residential, transport, agriculture -- ASSUMPTION (see docstring)
    "SO2": (0.13, 0.65, 0.20, 0.02, 0.00),
    "NOx": (0.20, 0.38, 0.04, 0.38, 0.00),
    "PM2.5": (0.04, 0.44, 0.48, 0.04, 0.00),
    "NMVOC": (0.01, 0.70, 0.11, 0.18, 0.00),
    "NH3": (0.00, 0.03, 0.04, 0.01, 0.92),
}
"""Sector shares of each species (assumption: rounded reading of MEIC 2017, Zheng et al. 2018)."""

URBAN_SHARE = {"power": 0.3, "industry": 0.3, "residential": 0.5, "transport": 0.6, "agriculture": 0.0}
"""Share of a city's sector emissions spread with the urban kernel (assumption)."""

URBAN_SIGMA_KM = 15.0
"""Standard deviation of the Gaussian urban kernel around a city centre, km (assumption)."""

BORDER_ZERO_KM = 6.0
"""Area emissions are zero within this distance of a province boundary, km."""

BORDER_FULL_KM = 18.0
"""Area emissions reach their full proxy weight at this distance from a province boundary, km."""

CELL_DEG = 0.1
"""Resolution of the built-in area grid, degrees."""

STACK_HEIGHT_CLASSES = ((1000.0, 240.0), (600.0, 210.0), (300.0, 180.0), (100.0, 150.0), (0.0, 100.0))
"""(minimum plant capacity MW, stack height m), largest first (assumption, typical values)."""

CAPACITY_FACTOR = 0.48
"""Capacity factor of Chinese thermal plants in 2017 (~4,200 h/yr, China Electricity Council)."""

MAX_STACK_CAPACITY_MW = 1200.0
"""Largest capacity served by one stack (two 600 MW units), MW."""

_FUEL_STACK = {  # exit temperature K, exit velocity m/s, flue gas Nm3 per kWh
    "Coal": (323.0, 18.0, 4.0),
    "Oil": (423.0, 18.0, 4.0),
    "Gas": (373.0, 15.0, 5.5),
}


def _data_csv(name: str) -> pd.DataFrame:
    source = importlib.resources.files("airshed") / "data" / name
    with importlib.resources.as_file(source) as path:
        return pd.read_csv(path, comment="#")


def trend_factor(species: str, year: int) -> float:
    """MEIC-trend factor from 2007 to ``year`` (flat 2007-2010 assumed), dimensionless."""
    if year not in YEARS:
        raise AirshedInputError(
            f"built-in inventory year must be in {YEARS.start}..{YEARS.stop - 1}, got {year}"
        )
    a2010, a2013, a2017 = TREND_ANCHORS[species]
    if a2013 is None:
        a2013 = a2010 + (a2017 - a2010) * 3.0 / 7.0
    return float(np.interp(max(year, 2010), [2010, 2013, 2017], [a2010, a2013, a2017]))


def provincial_totals(year: int = 2017) -> pd.DataFrame:
    """Scaled REAS provincial totals, t/yr: rows = provinces, columns = :data:`SPECIES`.

    REAS v2.1 2007 totals (NOx without its soil term) times :func:`trend_factor`. APPROXIMATE.
    """
    reas = _data_csv("reas21_province_emissions_2007.csv")
    out = pd.DataFrame(index=list(PROVINCES), columns=list(SPECIES), dtype=float)
    for province, code in PROVINCES.items():
        for sp in SPECIES:
            row = reas[(reas["reas_code"] == code) & (reas["species"] == _REAS_SPECIES[sp])]
            if len(row) != 1:
                raise DataError(f"reas21_province_emissions_2007.csv: no single row for {code} {sp}")
            total = float(row["total_t_per_yr"].iloc[0])
            soil = row["soil_t_per_yr"].iloc[0]
            if sp == "NOx" and pd.notna(soil):
                total -= float(soil)
            out.loc[province, sp] = total * trend_factor(sp, year)
    return out


def sector_totals(year: int = 2017) -> xr.DataArray:
    """Provincial totals split by sector, t/yr, dims (province, species, sector). APPROXIMATE."""
    totals = provincial_totals(year)
    shares = np.array([SECTOR_SHARES[sp] for sp in SPECIES])  # (species, sector)
    values = totals.to_numpy()[:, :, None] * shares[None, :, :]
    return xr.DataArray(
        values,
        dims=("province", "species", "sector"),
        coords={"province": list(PROVINCES), "species": list(SPECIES), "sector": list(SECTORS)},
        attrs={"units": "t/yr"},
    )


# --- spatial proxies ----------------------------------------------------------------------------------------


class _LonLatGrid:
    """The 0.1 degree inventory grid, with an equidistant-cylindrical twin for exact overlap areas."""

    def __init__(self, bounds: tuple[float, float, float, float]):
        west, south, east, north = bounds
        self.lon0 = np.floor(west / CELL_DEG) * CELL_DEG
        self.lat0 = np.floor(south / CELL_DEG) * CELL_DEG
        self.nx = int(np.ceil((east - self.lon0) / CELL_DEG - 1e-9))
        self.ny = int(np.ceil((north - self.lat0) / CELL_DEG - 1e-9))
        self.lon_edges = self.lon0 + CELL_DEG * np.arange(self.nx + 1)
        self.lat_edges = self.lat0 + CELL_DEG * np.arange(self.ny + 1)
        self.lon = 0.5 * (self.lon_edges[:-1] + self.lon_edges[1:])
        self.lat = 0.5 * (self.lat_edges[:-1] + self.lat_edges[1:])
        # In an equidistant cylindrical projection x = k lon, y = k lat, so the lon/lat grid is a grid of
        # squares and cell_overlap_areas gives exact lon/lat-plane overlap fractions.
        self.k = 6371007.0 * np.pi / 180.0
        self.eqc = Grid(
            crs=pyproj.CRS.from_proj4("+proj=eqc +lat_ts=0 +lon_0=0 +R=6371007 +units=m +no_defs"),
            x0=self.lon0 * self.k,
            y0=self.lat0 * self.k,
            dx=CELL_DEG * self.k,
            nx=self.nx,
            ny=self.ny,
        )
        area = ellipsoidal_cell_area(self.lat_edges[:-1], self.lat_edges[1:], CELL_DEG)
        self.cell_area = np.broadcast_to(area[:, None], (self.ny, self.nx))

    def fractions(self, geom: shapely.Geometry) -> tuple[np.ndarray, np.ndarray]:
        """Flat cell indices and area fractions of the cells a lon/lat polygon overlaps."""
        plane = shapely.transform(geom, lambda c: c * self.k)
        m = cell_overlap_areas(self.eqc, [plane]).tocsr()
        return m.indices.copy(), m.data / (self.eqc.dx**2)


def _border_taper(
    province: shapely.Geometry, lon: np.ndarray, lat: np.ndarray, to_xy: pyproj.Transformer
) -> np.ndarray:
    """0 near the province boundary (and outside it), 1 beyond BORDER_FULL_KM, linear in between."""
    rings = shapely.get_rings(shapely.get_parts(province))
    coords, ring_id = shapely.get_coordinates(rings, return_index=True)
    x, y = to_xy.transform(coords[:, 0], coords[:, 1])
    same = ring_id[1:] == ring_id[:-1]
    seg = np.stack([np.stack([x[:-1], y[:-1]], -1)[same], np.stack([x[1:], y[1:]], -1)[same]], axis=1)
    tree = shapely.STRtree(shapely.linestrings(seg))
    px, py = to_xy.transform(lon, lat)
    _, dist = tree.query_nearest(shapely.points(px, py), return_distance=True, all_matches=False)
    inside = shapely.contains_xy(province, lon, lat)
    d_km = dist / 1000.0
    taper = np.clip((d_km - BORDER_ZERO_KM) / (BORDER_FULL_KM - BORDER_ZERO_KM), 0.0, 1.0)
    return np.where(inside, taper, 0.0)


def _area_units() -> list[tuple[str, str, shapely.Geometry, float, tuple[float, float] | None]]:
    """(province, unit name, unit polygon, share of the province, city centre or None) of every unit."""
    census = census_table().set_index("name_en")
    cities = _data_csv("city_coordinates.csv").set_index("city_en")
    hebei_cities = census[(census["adcode"] > 130000) & (census["adcode"] < 140000)]
    hebei_pop = float(hebei_cities["population"].sum())
    units = []
    for province in PROVINCES:
        if province == "Hebei":
            for name, row in hebei_cities.iterrows():
                centre = (float(cities.loc[name, "lon_deg"]), float(cities.loc[name, "lat_deg"]))
                units.append(
                    (
                        province,
                        str(name),
                        adcode_geometry(int(row["adcode"])),
                        float(row["population"]) / hebei_pop,
                        centre,
                    )
                )
        else:
            centre = None
            if province in ("Beijing", "Tianjin"):
                centre = (float(cities.loc[province, "lon_deg"]), float(cities.loc[province, "lat_deg"]))
            units.append(
                (province, province, adcode_geometry(int(census.loc[province, "adcode"])), 1.0, centre)
            )
    return units


def _point_table(year: int, power: xr.DataArray, provinces: dict[str, shapely.Geometry]) -> pd.DataFrame:
    """Power plants with emission rates (t/yr) and stack parameters; provinces without plants absent."""
    plants = _data_csv("north_china_thermal_power_plants_gppd.csv")
    plants = plants[plants["primary_fuel"].isin(list(_FUEL_STACK))].reset_index(drop=True)
    plants["id"] = [f"gppd{n:04d}" for n in range(len(plants))]
    built = plants["commissioning_year"].isna() | (plants["commissioning_year"] <= year + 0.999)
    plants = plants[built & (plants["capacity_mw"] > 0)]
    province = np.full(len(plants), "", dtype=object)
    for name, geom in provinces.items():
        hit = shapely.contains_xy(geom, plants["longitude"].to_numpy(), plants["latitude"].to_numpy())
        province[hit & (province == "")] = name
    plants = plants.assign(province=province)
    plants = plants[plants["province"] != ""].copy()
    cap = plants["capacity_mw"].to_numpy(dtype=float)
    height = np.array([next(h for c, h in STACK_HEIGHT_CLASSES if p >= c) for p in cap])
    temp = plants["primary_fuel"].map(lambda f: _FUEL_STACK[f][0]).to_numpy(dtype=float)
    vel = plants["primary_fuel"].map(lambda f: _FUEL_STACK[f][1]).to_numpy(dtype=float)
    vfg = plants["primary_fuel"].map(lambda f: _FUEL_STACK[f][2]).to_numpy(dtype=float)
    flow = np.minimum(cap, MAX_STACK_CAPACITY_MW) * CAPACITY_FACTOR * 1000.0 * vfg / 3600.0 * temp / 273.15
    diameter = np.sqrt(4.0 * flow / (np.pi * vel))
    table = pd.DataFrame(
        {
            "id": plants["id"].to_numpy(),
            "name": plants["name"].to_numpy(),
            "lon": plants["longitude"].to_numpy(),
            "lat": plants["latitude"].to_numpy(),
            "stack_height_m": height,
            "diameter_m": np.round(diameter, 3),
            "exit_temperature_k": temp,
            "exit_velocity_m_s": vel,
            "sector": "power",
            "province": plants["province"].to_numpy(),
            "capacity_mw": cap,
        }
    )
    for sp in SPECIES:
        col = f"{sp.lower().replace('.', '')}_t_yr"
        rates = np.zeros(len(table))
        for prov in PROVINCES:
            sel = (table["province"] == prov).to_numpy()
            if sel.any():
                rates[sel] = float(power.sel(province=prov, species=sp)) * cap[sel] / cap[sel].sum()
        table[col] = rates
    return table


def build_inventory(year: int = 2017) -> tuple[xr.Dataset, pd.DataFrame]:
    """Build the APPROXIMATE built-in inventory in memory: (0.1 degree area dataset, point table).

    The area dataset holds variables SO2, NOx, PM25, NH3, NMVOC (sector, lat, lon) in t/yr per cell;
    the point table has the columns of the point-source reader with rates in t/yr.
    """
    totals = sector_totals(year)
    provinces = {
        p: adcode_geometry(int(census_table().set_index("name_en").loc[p, "adcode"])) for p in PROVINCES
    }
    points = _point_table(year, totals.sel(sector="power"), provinces)
    with_plants = set(points["province"])
    bounds = shapely.bounds(shapely.union_all(list(provinces.values())))
    llg = _LonLatGrid(tuple(bounds))
    to_xy = pyproj.Transformer.from_crs("EPSG:4326", builtin_case.PROJECTION, always_xy=True)
    area = np.zeros((len(SPECIES), len(SECTORS), llg.ny * llg.nx))
    for province, _name, geom, share, centre in _area_units():
        cells, frac = llg.fractions(geom)
        j, i = np.divmod(cells, llg.nx)
        lon, lat = llg.lon[i], llg.lat[j]
        base = llg.cell_area[j, i] * frac * _border_taper(provinces[province], lon, lat, to_xy)
        if base.sum() <= 0:
            raise DataError(f"built-in inventory: unit {_name!r} has no cell away from the province border")
        uniform = base / base.sum()
        if centre is not None:
            cx, cy = to_xy.transform(*centre)
            px, py = to_xy.transform(lon, lat)
            kern = base * np.exp(-0.5 * ((px - cx) ** 2 + (py - cy) ** 2) / (URBAN_SIGMA_KM * 1000.0) ** 2)
            kern = kern / kern.sum() if kern.sum() > 0 else uniform
        else:
            kern = uniform
        for b, sector in enumerate(SECTORS):
            if sector == "power" and province in with_plants:
                continue
            weight = URBAN_SHARE[sector] * kern + (1.0 - URBAN_SHARE[sector]) * uniform
            for a, sp in enumerate(SPECIES):
                area[a, b, cells] += (
                    float(totals.sel(province=province, species=sp, sector=sector)) * share * weight
                )
    area = area.reshape(len(SPECIES), len(SECTORS), llg.ny, llg.nx)
    data_vars = {
        sp.replace(".", ""): (
            ("sector", "lat", "lon"),
            area[a],
            {
                "units": "t/yr",
                "long_name": f"{sp} emission per grid cell" + (" (as NO2)" if sp == "NOx" else ""),
            },
        )
        for a, sp in enumerate(SPECIES)
    }
    ds = xr.Dataset(
        data_vars,
        coords={
            "sector": list(SECTORS),
            "lat": ("lat", llg.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", llg.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={
            "title": f"airshed built-in APPROXIMATE emission inventory, Jing-Jin-Ji and neighbours, {year}",
            "comment": "APPROXIMATE: REAS v2.1 2007 provincial totals scaled with MEIC national trends, "
            "assumed national sector shares, population proxies; see airshed.inputs.builtin_inventory",
            "references": "Kurokawa et al. 2013 ACP 13:11019 (REAS v2.1); Zheng et al. 2018 ACP 18:14095 "
            "(MEIC trends); WRI Global Power Plant Database (CC BY 4.0); NBS 7th census 2020",
            "year": year,
            "inventory_version": INVENTORY_VERSION,
        },
    )
    return ds, points


def ensure_builtin_inventory(cache_dir: Path, year: int = 2017) -> tuple[Path, Path]:
    """Write (once) the built-in APPROXIMATE inventory files for ``year`` into ``cache_dir``.

    Returns
    -------
    tuple of pathlib.Path
        (area NetCDF, point-source CSV). Existing files of the same version and year are reused.
    """
    trend_factor("SO2", year)  # validates the year
    cache_dir = Path(cache_dir)
    make_folder(cache_dir)
    area_path = cache_dir / f"airshed_builtin_area_{year}_v{INVENTORY_VERSION}.nc"
    point_path = cache_dir / f"airshed_builtin_points_{year}_v{INVENTORY_VERSION}.csv"
    if area_path.is_file() and point_path.is_file():
        return area_path, point_path
    ds, points = build_inventory(year)
    encoding = {v: {"zlib": True, "complevel": 4} for v in ds.data_vars}
    with atomic_path(area_path, destination=CACHE_FOLDER) as tmp:
        ds.to_netcdf(tmp, encoding=encoding, format="NETCDF4")
    header = (
        f"# airshed built-in APPROXIMATE power-plant point sources, year {year} "
        f"(inventory v{INVENTORY_VERSION}).\n"
        "# Plants: WRI Global Power Plant Database (CC BY 4.0), coal/gas/oil plants in BJ, TJ, HE, SX, NM,\n"
        "#   LN, SD, HA.\n"
        "# Rates: provincial power-sector total (REAS v2.1 2007 x MEIC trend, Zheng et al. 2018, x assumed\n"
        "#   power share) distributed over the province's plants by capacity.\n"
        "# Stack parameters: typical values by capacity class and fuel (assumptions);\n"
        "#   see airshed.inputs.builtin_inventory.\n"
    )
    with atomic_path(point_path, destination=CACHE_FOLDER) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(header)
            points.to_csv(fh, index=False, float_format="%.10g")
    return area_path, point_path


def builtin_emission_set(
    regions: RegionSet, cache_dir: Path, year: int = 2017, profiles: TemporalProfiles | None = None
) -> EmissionSet:
    """Return the built-in APPROXIMATE inventory on the model grid, read back through the readers.

    Parameters
    ----------
    regions
        Region masks on the model grid.
    cache_dir
        Folder for the inventory files (created if needed).
    year
        Year 2007..2017.
    profiles
        Temporal profiles (default: the typical China profiles, ``TemporalProfiles.builtin("china")``).
    """
    area_path, point_path = ensure_builtin_inventory(cache_dir, year)
    gridded = read_gridded_emissions([area_path], regions.grid)
    points = read_point_sources(point_path, regions.grid)
    return build_emission_set(
        regions, gridded, points, profiles if profiles is not None else TemporalProfiles.builtin("china")
    )
