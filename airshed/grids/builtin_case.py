"""Domain, projection and region sets of the built-in case: Jing-Jin-Ji (Beijing-Tianjin-Hebei).

The built-in case (idealised winter-haze meteorology, :mod:`airshed.inputs.builtin_met`; approximate
inventory, :mod:`airshed.inputs.builtin_inventory`) covers Jing-Jin-Ji and its neighbouring provinces.
Everything about that geography lives here, under this name, so that nothing else assumes it: the
config takes its defaults from here only when the run uses the built-in region sets, and every other
region is chosen by administrative code (:func:`airshed.grids.boundaries.resolve_divisions`) or drawn
from a polygon file.

The projection is a Lambert conformal conic with standard parallels 25 N and 47 N, origin 39 N 116.5 E
(Beijing's meridian). The secants bracket the whole North China Plain and its neighbours, so the scale
factor stays within 1 +/- 0.015 between 34 N and 44 N; WRF users over China commonly use the same cone
(truelat1=25, truelat2=47).
"""

from __future__ import annotations

NAME = "Jing-Jin-Ji"
"""Name of the built-in case's region."""

PROJECTION = (
    "+proj=lcc +lat_1=25 +lat_2=47 +lat_0=39 +lon_0=116.5 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
)
"""PROJ string of the built-in case's Lambert conformal conic projection."""

BBOX = (110.0, 34.0, 124.0, 44.0)
"""Lon/lat box (west, south, east, north) of the built-in case's domain, degrees."""

NEIGHBOUR_PROVINCES = (140000, 150000, 210000, 370000, 410000)
"""Shanxi, Inner Mongolia, Liaoning, Shandong, Henan (administrative codes)."""

REGION_SETS: dict[str, tuple[int, ...]] = {
    "provinces": (110000, 120000, 130000, *NEIGHBOUR_PROVINCES),
    "jjj-cities": (110000, 120000, *range(130100, 131200, 100), *NEIGHBOUR_PROVINCES),
}
"""The built-in case's region sets: name -> administrative codes (adcodes), in region order.

``"provinces"``: Beijing, Tianjin, Hebei and the five neighbouring provinces. ``"jjj-cities"``: Beijing,
Tianjin, the 11 prefecture-level cities of Hebei (Shijiazhuang ... Hengshui) and the same neighbours.
"""
