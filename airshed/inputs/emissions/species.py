"""Canonical species and sector names, and the aliases used by common emission inventories.

Species
-------
airshed carries emissions of the primary pollutants below, in this order (:data:`SPECIES`). Mass is
counted as the species itself, except NOx, which is mass **as NO2** (the convention of EDGAR, CAMS,
MEIC and REAS).

=========  =================================================================================
canonical  accepted names (case-insensitive; ``.``, ``_``, ``-`` and spaces ignored; an ``emi_``,
           ``emis_``, ``emiss_``, ``emission_``, ``emissions_`` or ``flux_`` prefix is stripped)
=========  =================================================================================
SO2        so2
NOx        nox, nox_as_no2, noxasno2, nox(no2)
PM2.5      pm25, pm2.5, pm2_5, pm2p5, pmfine
PM10       pm10
NH3        nh3
NMVOC      nmvoc, nmvocs, voc, vocs
CO         co
BC         bc
OC         oc
=========  =================================================================================

Sectors
-------
The five MEIC sectors plus ``other`` (:data:`SECTORS`). EDGAR (v6-v8, Crippa et al. 2020) and MEIC / MIX
(Li M. et al. 2017) sector codes map as follows (case-insensitive; ``_``, ``-``, spaces ignored):

===========  ========================================================================================
canonical    accepted names
===========  ========================================================================================
power        power, powerplants, powergeneration, energy, electricity, ene (EDGAR power industry)
industry     industry, industrial, ind, ref_trf, pro, pro_coal, pro_oil, pro_gas, che, iro, nfe, nmm,
             pru_sol, sol, foo_pap, neu, solvent, solvents, processes
residential  residential, res, rco, domestic, residentialcommercial, buildings
transport    transport, transportation, tra, tro, tro_nores, tro_res, tnr_other, tnr_ship, tnr_aviation_lto,
             tnr_aviation_cds, tnr_aviation_crs, shipping, ship, aviation, avi, road, roadtransport,
             mobile, traffic
agriculture  agriculture, agricultural, agr, agri, ags, awb, mnm, enf, agriculturesoils, manure,
             fertilizer, livestock
other        other, others, oth, waste, swd_inc, swd_ldf, wwt, misc
===========  ========================================================================================

EDGAR sectors that map to the same canonical sector are summed.
"""

from __future__ import annotations

import re

from airshed.errors import DataError

SPECIES: tuple[str, ...] = ("SO2", "NOx", "PM2.5", "PM10", "NH3", "NMVOC", "CO", "BC", "OC")
"""Canonical species names, in canonical order."""

MEIC_SECTORS: tuple[str, ...] = ("power", "industry", "residential", "transport", "agriculture")
"""The five sectors of the MEIC inventory (Li M. et al. 2017, Natl. Sci. Rev. 4:834; Zheng et al. 2018)."""
SECTORS: tuple[str, ...] = (*MEIC_SECTORS, "other")
"""Canonical sector names, in canonical order: the MEIC sectors and ``other``."""

_SPECIES_ALIASES: dict[str, str] = {
    "so2": "SO2",
    "nox": "NOx",
    "noxasno2": "NOx",
    "noxno2": "NOx",
    "pm25": "PM2.5",
    "pm2p5": "PM2.5",
    "pmfine": "PM2.5",
    "pm10": "PM10",
    "nh3": "NH3",
    "nmvoc": "NMVOC",
    "nmvocs": "NMVOC",
    "voc": "NMVOC",
    "vocs": "NMVOC",
    "co": "CO",
    "bc": "BC",
    "oc": "OC",
}

_SECTOR_ALIASES: dict[str, str] = {
    **{
        k: "power"
        for k in ("power", "powerplants", "powerplant", "powergeneration", "energy", "electricity", "ene")
    },
    **{
        k: "industry"
        for k in (
            "industry",
            "industrial",
            "ind",
            "reftrf",
            "pro",
            "procoal",
            "prooil",
            "progas",
            "che",
            "iro",
            "nfe",
            "nmm",
            "prusol",
            "sol",
            "foopap",
            "neu",
            "solvent",
            "solvents",
            "processes",
        )
    },
    **{
        k: "residential"
        for k in ("residential", "res", "rco", "domestic", "residentialcommercial", "buildings")
    },
    **{
        k: "transport"
        for k in (
            "transport",
            "transportation",
            "tra",
            "tro",
            "tronores",
            "trores",
            "tnrother",
            "tnrship",
            "tnraviationlto",
            "tnraviationcds",
            "tnraviationcrs",
            "shipping",
            "ship",
            "aviation",
            "avi",
            "road",
            "roadtransport",
            "mobile",
            "traffic",
        )
    },
    **{
        k: "agriculture"
        for k in (
            "agriculture",
            "agricultural",
            "agr",
            "agri",
            "ags",
            "awb",
            "mnm",
            "enf",
            "agriculturesoils",
            "manure",
            "fertilizer",
            "livestock",
        )
    },
    **{k: "other" for k in ("other", "others", "oth", "waste", "swdinc", "swdldf", "wwt", "misc")},
}

_PREFIXES = ("emissions", "emission", "emiss", "emis", "emi", "flux")


def _normalise(name: str) -> str:
    return re.sub(r"[\s._\-()\[\]]", "", str(name).strip().lower())


def canonical_species(name: str) -> str | None:
    """Canonical species name for an inventory's species label, or None if not recognised.

    Parameters
    ----------
    name
        A species label such as ``"pm25"``, ``"PM2.5"``, ``"emi_nox"`` or ``"NOx"``.
    """
    key = _normalise(name)
    if key in _SPECIES_ALIASES:
        return _SPECIES_ALIASES[key]
    raw = str(name).strip().lower()
    for prefix in _PREFIXES:
        for sep in ("_", "-", " ", ""):
            if raw.startswith(prefix + sep) and len(raw) > len(prefix + sep):
                key = _normalise(raw[len(prefix + sep) :])
                if key in _SPECIES_ALIASES:
                    return _SPECIES_ALIASES[key]
    return None


def canonical_sector(name: str) -> str | None:
    """Canonical sector name for an inventory's sector label (EDGAR / MEIC codes), or None."""
    return _SECTOR_ALIASES.get(_normalise(name))


def require_species(name: str, where: str) -> str:
    """Canonical species name, or a :class:`DataError` naming ``where`` and the accepted names."""
    out = canonical_species(name)
    if out is None:
        raise DataError(
            f"{where}: unknown species {name!r}; accepted species are {', '.join(SPECIES)} "
            "(aliases listed in airshed.inputs.emissions.species)"
        )
    return out


def require_sector(name: str, where: str) -> str:
    """Canonical sector name, or a :class:`DataError` naming ``where`` and the accepted names."""
    out = canonical_sector(name)
    if out is None:
        raise DataError(
            f"{where}: unknown sector {name!r}; accepted sectors are {', '.join(SECTORS)} "
            "or EDGAR/MEIC sector codes (listed in airshed.inputs.emissions.species)"
        )
    return out


def ordered(names: set[str] | list[str] | tuple[str, ...], canonical: tuple[str, ...]) -> tuple[str, ...]:
    """Return the given canonical names in canonical order, without duplicates."""
    present = set(names)
    return tuple(n for n in canonical if n in present)
