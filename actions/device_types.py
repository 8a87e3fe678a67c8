"""设备类型: the list a device's type is chosen from (DeviceType rows), maintained by technical support.

A device keeps its type's name (`Device.device_type`); a type taken off the list (inactive) stays on
the devices that have it, and lists that choose by type still offer the values devices carry.
"""
from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import DomainError
from models import Device, DeviceType

MAX_NAME = 40


def check_device_type(session: Session, row: DeviceType) -> None:
    """A name that is present, one line, at most 40 characters and not another type's; else DomainError."""
    name = (row.name or "").strip()
    if not name:
        raise DomainError(_l("Device type: the name is required."))
    if len(name) > MAX_NAME:
        raise DomainError(_l("Device type: at most %(n)s characters.", n=MAX_NAME))
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        raise DomainError(_l("Device type: control characters and line breaks are not allowed."))
    with session.no_autoflush:  # the row may be pending in the session already (a form's new row)
        taken = session.scalars(select(DeviceType).where(DeviceType.name == name)).all()
    if any(other is not row for other in taken):
        raise DomainError(_l("Device type %(name)s is already on the list.", name=name))
    row.name = name


def device_type_names(session: Session, company_ids=None) -> list[str]:
    """The types to choose from: the active list in its order, then values devices carry that are not on it
    (of the companies selected by `company_ids`, a SELECT of ids, when given)."""
    listed = list(session.scalars(select(DeviceType.name).where(DeviceType.active)
                                  .order_by(DeviceType.sort_order, DeviceType.name)))
    used = select(Device.device_type).where(Device.device_type != "").distinct()
    if company_ids is not None:
        used = used.where(Device.company_id.in_(company_ids))
    known = set(listed)
    others = [name for name in session.scalars(used.order_by(Device.device_type).limit(500)) if name not in known]
    return listed + others
