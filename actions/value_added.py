"""增值服务 (seed 001): value-added packages bought for devices, as 增值订单 (order kind "value_added").

Technical support offers value-added packages to a company (客户增值配置, actions.bindings); an offer
holds for the company and every company below it, as billing configs do. From the renewal center a
customer picks devices of their company tree, one offered package and a number of months; the quote
prices each device (per month × N, per year × N/12, per term × N/term, as renewals) and the order
is paid like a renewal. Paying gives each device the service until max(its current end, today) +
N months (a DeviceService row per device and package: buying again extends it); each order line
keeps the end before and after, so refunding a line puts the service back as it was (deleting it
when the order had started it), unless a later order extended it since.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from actions import DomainError, in_scope, require_role
from actions.audit import record
from actions.bindings import check_value_added_package
from actions.dates import renewal_fits
from actions.money import zero
from actions.orders import MAX_MONTHS, LineSpec, open_order, renewal_price, renewed_until
from actions.texts import message, money_param
from models import Company, CompanyPackage, Device, DeviceService, Order, OrderLine, Package, User

BUY_ROLES = {"customer_admin", "tech_support", "finance", "sales"}  # the renewal center's roles
MAX_DEVICES_PER_ORDER = 1000


def offered_packages(session: Session, company: Company) -> list[Package]:
    """The value-added packages on sale that some device of `company`'s tree may buy: those offered to
    the company, to a company above it, or to one of its subsidiaries (for their own devices)."""
    offered_to = select(CompanyPackage.package_id).where(
        CompanyPackage.company_id.in_(company.path_ids) | CompanyPackage.company_id.in_(company.subtree_ids()))
    return list(session.scalars(
        select(Package).where(Package.id.in_(offered_to), Package.kind == "value_added", Package.active.is_(True))
        .order_by(Package.code)
    ))


def services_of(session: Session, device_ids: Sequence[int]) -> dict[int, list[DeviceService]]:
    """Device id → its value-added services (package loaded), by package code."""
    if not device_ids:
        return {}
    rows = session.scalars(
        select(DeviceService).options(joinedload(DeviceService.package))
        .where(DeviceService.device_id.in_(list(device_ids)))
    )
    found: dict[int, list[DeviceService]] = {}
    for row in sorted(rows, key=lambda r: r.package.code):
        found.setdefault(row.device_id, []).append(row)
    return found


def _current_ends(session: Session, package_id: int, device_ids: Sequence[int]) -> dict[int, date]:
    rows = session.execute(
        select(DeviceService.device_id, DeviceService.expires_on)
        .where(DeviceService.package_id == package_id, DeviceService.device_id.in_(list(device_ids)))
    ).all()
    return {device_id: expires_on for device_id, expires_on in rows}


def service_until(current: date | None, months: int, today: date) -> date:
    """The end of a service bought for N months: max(its current end, today) + N months."""
    return renewed_until(current or today, months, today)


def preview_services(services: dict[int, list[DeviceService]], device_ids: Sequence[int], package: Package | None,
                     months: int | None, today: date) -> tuple[dict[int, date | None], dict[int, date | None]]:
    """For the listed devices: the current end of `package`'s service ({id: date or None}) and where buying
    `months` more would take it (None when no months are chosen or the end would pass the calendar)."""
    if package is None:
        return {}, {}
    ends = {d_id: next((s.expires_on for s in services.get(d_id, ()) if s.package_id == package.id), None)
            for d_id in device_ids}
    new_ends = {d_id: service_until(end, months, today) if months and renewal_fits(end or today, months, today)
                else None for d_id, end in ends.items()}
    return ends, new_ends


@dataclass(frozen=True)
class ServiceLine:
    """One device of a value-added quote: the price, and the service's end before and after."""

    device: Device
    price: Decimal
    old_expires_on: date | None
    new_expires_on: date


@dataclass(frozen=True)
class ServiceQuote:
    """What N months of one value-added package would cost for these devices."""

    company: Company
    package: Package
    months: int
    lines: tuple[ServiceLine, ...]

    @property
    def currency(self) -> str:
        return self.package.currency

    @property
    def total(self) -> Decimal:
        return sum((line.price for line in self.lines), zero(self.currency))


def _numbers(devices: Sequence[Device]) -> str:
    return ", ".join(d.number for d in devices)


def quote_services(session: Session, actor: User, company: Company | None, devices: Sequence[Device],
                   package: Package | None, months, today: date) -> ServiceQuote:
    """Price `months` of `package` for the devices, refusing with device numbers named: not of the
    company's tree, package not offered to a device's company, suspended, end beyond the calendar."""
    require_role(actor, BUY_ROLES)
    if company is None or not in_scope(actor, company.id, session):
        raise DomainError(_l("Choose one of your companies first."))
    if package is None:
        raise DomainError(_l("Choose a value-added package."))
    check_value_added_package(package)
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= MAX_MONTHS:
        raise DomainError(_l("Months: between 1 and %(max)s.", max=MAX_MONTHS))
    devices = list({d.id: d for d in devices}.values())
    if not devices:
        raise DomainError(_l("Select at least one device."))
    if len(devices) > MAX_DEVICES_PER_ORDER:
        raise DomainError(_l("At most %(n)s devices per order.", n=MAX_DEVICES_PER_ORDER))
    tree = set(session.scalars(company.subtree_ids()))  # inside the actor's scope, as the company is
    problems: list[str] = []
    outside = [d for d in devices if d.company_id not in tree]
    if outside:
        problems.append(str(_l("not devices of %(company)s: %(numbers)s", company=company.name,
                               numbers=_numbers(outside))))
    offered_to = set(session.scalars(select(CompanyPackage.company_id).where(CompanyPackage.package_id == package.id)))
    not_offered = [d for d in devices if d.company_id in tree and not offered_to & set(d.company.path_ids)]
    if not_offered:
        problems.append(str(_l("%(code)s is not offered to the company of %(numbers)s", code=package.code,
                               numbers=_numbers(not_offered))))
    suspended = [d for d in devices if d.status == "suspended"]
    if suspended:
        problems.append(str(_l("suspended devices cannot buy services: %(numbers)s", numbers=_numbers(suspended))))
    ends = _current_ends(session, package.id, [d.id for d in devices])
    beyond = [d for d in devices if not renewal_fits(ends.get(d.id) or today, months, today)]
    if beyond:
        problems.append(str(_l("the service would end after the last date the calendar allows: %(numbers)s",
                               numbers=_numbers(beyond))))
    if problems:
        raise DomainError(_l("Cannot buy %(code)s — %(problems)s.", code=package.code, problems="; ".join(problems)))
    price = renewal_price(package, months)
    devices.sort(key=lambda d: d.number)
    return ServiceQuote(company, package, months, tuple(
        ServiceLine(d, price, ends.get(d.id), service_until(ends.get(d.id), months, today)) for d in devices))


def create_service_order(session: Session, actor: User, quote: ServiceQuote) -> Order:
    """A pending 增值订单 for the quoted devices (paid later, from the balance or online)."""
    require_role(actor, BUY_ROLES)
    package, months = quote.package, quote.months
    order = open_order(
        session, actor, kind="value_added", company_id=quote.company.id, currency=quote.currency,
        lines=[LineSpec(description=message("order.line.value_added", device=line.device.number,
                                            package=package.name, months=months), gross=line.price,
                        unit_price=line.price, device_id=line.device.id, package_id=package.id, months=months)
               for line in quote.lines],
    )
    record(session, actor, "create", "order", [order.id],
           message("audit.order.value_added", order=order.number, package=package.name, devices=len(quote.lines),
                   months=months, amount=money_param(order.total, order.currency)))
    session.flush()
    return order


def preview_ends(session: Session, order: Order, lines: Sequence[OrderLine], today: date) -> dict[int, tuple]:
    """Line id → (service end now, end if paid today) for a pending order's lines; paid lines keep theirs."""
    if order.status != "pending":
        return {line.id: (line.old_expires_on, line.new_expires_on) for line in lines}
    result = {}
    by_package: dict[int, list[OrderLine]] = {}
    for line in lines:
        if line.device_id and line.package_id and line.months:
            by_package.setdefault(line.package_id, []).append(line)
    for package_id, some in by_package.items():
        ends = _current_ends(session, package_id, [line.device_id for line in some])
        for line in some:
            old = ends.get(line.device_id)
            fits = renewal_fits(old or today, line.months, today)
            result[line.id] = (old, service_until(old, line.months, today) if fits else None)
    return result


# --- what paying delivers and a refund undoes (registered in actions/order_kinds.py) ------------------

def deliver_services(session: Session, order: Order, today: date) -> None:
    """Start or extend each line's service; the line keeps the end before and after (for refunds)."""
    lines = session.execute(
        select(OrderLine.id, OrderLine.device_id, OrderLine.package_id, OrderLine.months, Device.number,
               Device.status)
        .join(Device, Device.id == OrderLine.device_id).where(OrderLine.order_id == order.id)
    ).all()
    suspended = [line.number for line in lines if line.status == "suspended"]
    if suspended:
        raise DomainError(_l("Order %(number)s: suspended devices cannot buy services: %(numbers)s.",
                             number=order.number, numbers=", ".join(suspended)))
    current = {}
    for package_id in {line.package_id for line in lines}:
        for device_id, expires_on in _current_ends(session, package_id, [line.device_id for line in lines]).items():
            current[(device_id, package_id)] = expires_on
    changes = []
    for line in lines:
        old = current.get((line.device_id, line.package_id))
        changes.append({"b_line": line.id, "b_device": line.device_id, "b_package": line.package_id,
                        "b_old": old, "b_new": service_until(old, line.months, today)})
    extended = [c for c in changes if c["b_old"] is not None]
    started = [c for c in changes if c["b_old"] is None]
    table = DeviceService.__table__
    if extended:
        result = session.execute(
            table.update().where(table.c.device_id == bindparam("b_device"), table.c.package_id == bindparam("b_package"),
                                 table.c.expires_on == bindparam("b_old"))
            .values(expires_on=bindparam("b_new")),
            extended,
        )
        if result.rowcount != len(extended):
            raise DomainError(_l("Some services of order %(number)s changed meanwhile; nothing was paid. Try again.",
                                 number=order.number))
    if started:
        try:
            with session.begin_nested():
                session.execute(insert(DeviceService), [
                    {"device_id": c["b_device"], "package_id": c["b_package"], "expires_on": c["b_new"]}
                    for c in started])
        except IntegrityError:  # another order started the same service a moment ago
            raise DomainError(_l("Some services of order %(number)s changed meanwhile; nothing was paid. Try again.",
                                 number=order.number)) from None
    line_table = OrderLine.__table__
    session.execute(
        line_table.update().where(line_table.c.id == bindparam("b_line"))
        .values(old_expires_on=bindparam("b_old"), new_expires_on=bindparam("b_new")),
        changes,
    )
    session.expire_all()


def undo_services(session: Session, order: Order, lines: Sequence[OrderLine]) -> None:
    """Put refunded lines' services back to their end before the order (removing ones it started),
    unless a later order changed them since (refund that one first)."""
    rows = [(line.device_id, line.package_id, line.old_expires_on, line.new_expires_on)
            for line in lines if line.device_id and line.new_expires_on]
    changed = 0
    for device_id, package_id, old, new in rows:
        where = (DeviceService.device_id == device_id, DeviceService.package_id == package_id,
                 DeviceService.expires_on == new)
        if old is None:
            statement = delete(DeviceService).where(*where)
        else:
            statement = update(DeviceService).where(*where).values(expires_on=old)
        changed += session.execute(statement.execution_options(synchronize_session=False)).rowcount
    if changed != len(rows):
        raise DomainError(_l("Order %(number)s: some services changed after this order; refund the later order "
                             "first.", number=order.number))
    session.expire_all()
