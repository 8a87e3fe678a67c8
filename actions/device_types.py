"""设备类型: the list a device's type is chosen from (DeviceType rows), maintained by technical support.

A device keeps its type's name (`Device.device_type`); a type taken off the list (inactive) stays on
the devices that have it, and lists that choose by type still offer the values devices carry.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session, aliased

from actions import DomainError
from actions.text_input import text_problem
from models import Device, DeviceType

MAX_NAME = 40


def check_device_type(session: Session, row: DeviceType) -> None:
    """A name that is present, one line, at most 40 characters and not another type's; else DomainError."""
    name = (row.name or "").strip()
    if not name:
        raise DomainError(_l("Device type: the name is required."))
    problem = text_problem(name, MAX_NAME)
    if problem is not None:
        raise DomainError(_l("%(field)s: %(problem)s", field=_l("Device type"), problem=problem))
    with session.no_autoflush:  # the row may be pending in the session already (a form's new row)
        taken = session.scalars(select(DeviceType).where(DeviceType.name == name)).all()
    if any(other is not row for other in taken):
        raise DomainError(_l("Device type %(name)s is already on the list.", name=name))
    row.name = name


def device_type_names(session: Session, company_ids=None) -> list[str]:
    """The types to choose from: the active list in its order, then values devices carry that are not on it
    (of the companies selected by `company_ids`, a SELECT of ids, when given).

    The values devices carry are read one distinct type at a time from ix_device_type_company (a
    recursive "next type after this one" look-up, then one probe per type for the scope), not by a
    DISTINCT over every device of the scope: the filter's options cost the same at 2,000 devices as
    at 200,000."""
    listed = list(session.scalars(select(DeviceType.name).where(DeviceType.active)
                                  .order_by(DeviceType.sort_order, DeviceType.name)))
    first, following = aliased(Device), aliased(Device)
    types = (select(func.min(first.device_type).label("name")).where(first.device_type > "")
             .cte("carried_type", recursive=True))
    after = select(func.min(following.device_type)).where(following.device_type > types.c.name).scalar_subquery()
    types = types.union_all(select(after).where(types.c.name.is_not(None)))
    used = select(types.c.name).where(types.c.name.is_not(None))
    if company_ids is not None:
        # A scalar subquery with LIMIT 1, not EXISTS: PostgreSQL turns EXISTS into a semi-join that
        # reads every device of the scope; this stays one index probe per type.
        holder = aliased(Device)
        probe = (select(literal(1)).where(holder.device_type == types.c.name, holder.company_id.in_(company_ids))
                 .limit(1).scalar_subquery())
        used = used.where(probe.is_not(None))
    known = set(listed)
    others = [name for name in session.scalars(used.order_by(types.c.name).limit(500)) if name not in known]
    return listed + others
