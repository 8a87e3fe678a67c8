"""The window an expiry date must stay in, and the guard renewals run before moving one.

The expiry template documents 2000-01-01 – 2199-12-31 and the import refuses anything else.
A date stored before that rule (say 9999-12-31) must still never crash a page: renewing it
would pass Python's year 9999, so a renewal that would leave the window is refused, naming
the device, and pages show no new expiry for it.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from flask_babel import lazy_gettext as _l

from actions import DomainError

EARLIEST_EXPIRY = date(2000, 1, 1)
LATEST_EXPIRY = date(2199, 12, 31)


def check_expiry_window(number: str, expires_on: date) -> None:
    """Refuse an expiry date outside EARLIEST_EXPIRY – LATEST_EXPIRY, naming the device."""
    if not EARLIEST_EXPIRY <= expires_on <= LATEST_EXPIRY:
        raise DomainError(_l("Device %(number)s: the expiry date %(date)s is outside %(first)s – %(last)s.",
                             number=number, date=expires_on.isoformat(), first=EARLIEST_EXPIRY.isoformat(),
                             last=LATEST_EXPIRY.isoformat()))


def renewal_fits(expires_on: date, months: int, today: date) -> bool:
    """Whether max(expiry, today) + `months` months still lies on or before LATEST_EXPIRY."""
    start = max(expires_on, today)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return (year, month) <= (LATEST_EXPIRY.year, LATEST_EXPIRY.month)


def check_renewal_window(devices: Iterable, months: int, today: date) -> None:
    """Refuse renewing devices whose new expiry would pass LATEST_EXPIRY, naming each one."""
    beyond = [device.number for device in devices if not renewal_fits(device.expires_on, months, today)]
    if beyond:
        raise DomainError(_l("Cannot renew — the new expiry would be after %(last)s for: %(numbers)s. Correct "
                             "the expiry date of these devices first.",
                             last=LATEST_EXPIRY.isoformat(), numbers=", ".join(beyond)))
