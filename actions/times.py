"""Times on screen: stored in UTC, shown in the reader's time zone, to the minute.

A company may choose its time zone (`Company.time_zone`, an IANA name); empty means "by language":
Asia/Shanghai for Chinese, Asia/Ho_Chi_Minh for Vietnamese, UTC for English. Every page and list
shows a time through `format_minute` (Babel's `format_datetime` with the zone), never `str(datetime)`.
"""
from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel.dates import format_datetime, get_timezone_location
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from actions import DomainError
from models import Company

ZONE_BY_LOCALE = {"zh_Hans_CN": "Asia/Shanghai", "vi": "Asia/Ho_Chi_Minh", "en": "UTC"}
MINUTE = "yyyy-MM-dd HH:mm"


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted."""
    return tuple(sorted(available_timezones()))


# The areas of the IANA names of places; the others are aliases kept for old systems (US/Eastern, Canada/…).
_AREAS = ("Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/", "Europe/", "Indian/",
          "Pacific/")


@lru_cache(maxsize=1)
def offered_zones() -> tuple[str, ...]:
    """The zones a picker offers: the places of today's time zones (pytz's common list: no "localtime",
    "Factory", "Etc/GMT-7" or legacy alias such as "PRC") and UTC. check_zone still accepts every name."""
    import pytz

    known = set(zone_names())
    return tuple(name for name in pytz.common_timezones
                 if name in known and (name.startswith(_AREAS) or name == "UTC"))


@lru_cache(maxsize=8)
def zone_labels(locale: str) -> dict[str, str]:
    """Each offered zone as a reader finds it: where it is, in their language, then its IANA name ("中国（上海）时间 ·
    Asia/Shanghai", "Giờ Việt Nam · Asia/Ho_Chi_Minh"); UTC by name alone."""
    labels = {}
    for name in offered_zones():
        place = None
        if "/" in name and not name.startswith("Etc/"):
            try:
                place = get_timezone_location(name, locale=locale)
            except (LookupError, ValueError):  # a zone or locale Babel does not know
                place = None
        labels[name] = f"{place} · {name}" if place else name
    return labels


def check_zone(name: str | None) -> str:
    """`name` stripped if it is a known IANA zone, "" for none (by language); else a DomainError."""
    name = (name or "").strip()
    if not name:
        return ""
    if name not in zone_names():
        raise DomainError(_l("%(name)s is not a known time zone (for example Asia/Shanghai).", name=name))
    return name


def zone_for(company_zone: str | None, locale) -> tzinfo:
    """The zone a reader sees times in: their company's choice, else their language's."""
    name = company_zone or ZONE_BY_LOCALE.get(str(locale or "en"), "UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def reader_zone(session, user) -> tzinfo:
    """The zone `user` reads times in (their company's choice, else the current language's): for an
    action's message; a page uses admin_views.base.current_zone, worked out once per request."""
    chosen = None
    if user is not None and getattr(user, "company_id", None):
        chosen = session.scalar(select(Company.time_zone).where(Company.id == user.company_id))
    return zone_for(chosen, get_locale())


def format_minute(value: datetime | None, zone: tzinfo, locale=None, pattern: str = MINUTE) -> str:
    """`2026-12-01 20:05`: an aware time in `zone`, to the minute (no seconds, no offset); "" for None."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("naive datetime given; times are aware UTC datetimes")
    return format_datetime(value, pattern, tzinfo=zone, locale=locale or get_locale() or "en")
