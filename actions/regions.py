"""Provinces and their cities, chosen from lists: China's provinces → prefecture-level cities, and
Vietnam's provinces (no city level), from regions.json beside this file (shipped with the app).

A company's province and city are stored as their names (as before). A city must belong to its
province; a Vietnamese province has no city. Values stored before the lists existed stay valid
while they are not changed: `check_region(..., keep=(old_province, old_city))`.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from flask_babel import lazy_gettext as _l

from actions import DomainError

DATA = Path(__file__).with_name("regions.json")
COUNTRIES = {"CN": _l("China"), "VN": _l("Vietnam")}


class RegionError(DomainError):
    """A province or city not on the lists; `field` ("province" or "city") says which."""

    def __init__(self, field: str, message) -> None:
        super().__init__(message)
        self.field = field
        self.problem = message


@lru_cache(maxsize=1)
def regions() -> dict[str, list[dict]]:
    """{"CN": [{"name": "广东省", "cities": ["广州市", …]}, …], "VN": [{"name": "Hà Nội", "cities": []}, …]}."""
    return json.loads(DATA.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _cities() -> dict[str, tuple[str, ...]]:
    return {p["name"]: tuple(p["cities"]) for country in regions().values() for p in country}


def is_province(name: str) -> bool:
    return name in _cities()


def cities_of(province: str) -> tuple[str, ...]:
    """The cities of `province` (empty for a Vietnamese province or an unknown name)."""
    return _cities().get(province, ())


def check_region(province: str | None, city: str | None,
                 keep: tuple[str | None, str | None] = (None, None)) -> tuple[str | None, str | None]:
    """(province, city) if the province is on the list and the city is one of its cities; else RegionError.

    Empty is allowed (both optional; a city needs its province). `keep` is the stored pair: left as it
    was, an old value that is not on the list stays."""
    province, city = (province or "").strip() or None, (city or "").strip() or None
    if (province, city) == tuple((v or "").strip() or None for v in keep):
        return province, city
    if province is None:
        if city is not None:
            raise RegionError("province", _l("choose the province of %(city)s.", city=city))
        return None, None
    if not is_province(province):
        raise RegionError("province", _l("%(name)s is not on the list.", name=province[:60]))
    cities = cities_of(province)
    if city is None:
        if cities and len(cities) > 1:
            raise RegionError("city", _l("choose a city of %(province)s.", province=province))
        return province, cities[0] if cities else None
    if city not in cities:
        raise RegionError("city", _l("%(city)s is not in %(province)s.", city=city[:60], province=province))
    return province, city
