"""Demo data: a believable world for `make run`, the browser tests and the benchmarks."""
from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from actions.card_demo import seed_cards
from actions.companies import place
from actions.demo_activity import seed_activity
from actions.subscriptions import seed_subscriptions
from models import (
    BillingConfig, Company, CompanyPackage, Device, DeviceType, Package, PackageCategory, PackageSubcategory, User,
)

DEMO_USERS = (
    ("admin", "admin", None),
    ("support", "tech_support", None),
    ("finance", "finance", None),
    ("sales", "sales", None),
    ("customer", "customer_admin", "Acme Logistics"),
)
DEVICE_TYPES = ("GPS tracker", "OBD dongle", "Asset tag")
TREE = {
    "Acme Logistics": {"Acme North": {"Acme North Fleet": {}}, "Acme South": {}},
    "Globex Trading": {"Globex Shenzhen": {"Globex Shenzhen Port": {}}},
    "Initech Rentals": {},
}
BATCH = 20_000


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(User))


def _companies(session: Session) -> dict[str, Company]:
    made: dict[str, Company] = {}

    def grow(branch: dict, parent: Company | None) -> None:
        for name, children in branch.items():
            company = Company(name=name, status="active", contact_name="Demo Contact",
                              contact_email=f"ops@{name.split()[0].lower()}.example")
            place(session, company, parent)
            made[name] = company
            grow(children, company)

    grow(TREE, None)
    return made


def _catalog(session: Session) -> dict[str, Package]:
    renewal = PackageCategory(code="REN", name="Renewal services", kind="renewal")
    extras = PackageCategory(code="VAS", name="Value-added services", kind="value_added")
    seats = PackageCategory(code="SEAT", name="Meeting seats", kind="seat")
    session.add_all([renewal, extras, seats])
    session.flush()
    subs = {
        "REN-GPS": PackageSubcategory(code="REN-GPS", name="GPS tracker renewal", kind="renewal", category=renewal),
        "REN-OBD": PackageSubcategory(code="REN-OBD", name="OBD dongle renewal", kind="renewal", category=renewal),
        "VAS-ALERT": PackageSubcategory(code="VAS-ALERT", name="Alerts", kind="value_added", category=extras),
    }
    session.add_all(subs.values())
    session.flush()
    specs = [
        ("GPS-M", "GPS monthly", renewal, "REN-GPS", "renewal", "10.00", "per_month", None, "CNY"),
        ("GPS-Y", "GPS yearly", renewal, "REN-GPS", "renewal", "100.00", "per_year", None, "CNY"),
        ("GPS-Y-USD", "GPS yearly (USD)", renewal, "REN-GPS", "renewal", "15.00", "per_year", None, "USD"),
        ("OBD-Q", "OBD quarterly", renewal, "REN-OBD", "renewal", "45.00", "per_term", 3, "CNY"),
        ("TAG-Y", "Asset tag yearly", renewal, None, "renewal", "60.00", "per_year", None, "CNY"),
        ("VAS-SMS", "SMS alerts", extras, "VAS-ALERT", "value_added", "5.00", "per_month", None, "CNY"),
        ("VAS-FENCE", "Geofence", extras, "VAS-ALERT", "value_added", "8.00", "per_month", None, "CNY"),
    ]
    # One seat package on sale per product edition: organizer seats can be bought and granted at once.
    seat_specs = [("SEAT-ENTERPRISE", "Enterprise seat", "enterprise", "300.00"),
                  ("SEAT-STANDARD", "Standard seat", "standard", "200.00"),
                  ("SEAT-BASIC", "Basic seat", "basic", "100.00")]
    packages = {}
    for code, name, category, sub, kind, amount, pricing, term, currency in specs:
        packages[code] = Package(
            code=code, name=name, category_id=category.id,
            subcategory_id=subs[sub].id if sub else None, kind=kind, amount=Decimal(amount),
            pricing=pricing, term_months=term, currency=currency,
        )
    for code, name, edition, amount in seat_specs:
        # Basic seats last a 12-month term (seed 004 §6 订单到期时间); the other editions' never expire.
        term = 12 if edition == "basic" else None
        packages[code] = Package(code=code, name=name, category_id=seats.id, kind="seat", edition=edition,
                                 amount=Decimal(amount), pricing="per_term" if term else "per_year",
                                 term_months=term, currency="CNY")
    session.add_all(packages.values())
    session.flush()
    return packages


def insert_devices(session: Session, count: int, companies: list[Company], packages: dict[str, Package],
                   seed: int = 7, prefix: str = "GT") -> None:
    """Bulk-insert `count` devices spread over `companies`, expiries 120 days back to 400 ahead."""
    rng = random.Random(seed)
    today = date.today()
    by_type = {"GPS tracker": packages["GPS-Y"].id, "OBD dongle": packages["OBD-Q"].id,
               "Asset tag": packages["TAG-Y"].id}
    start = session.scalar(select(func.count()).select_from(Device)) or 0
    rows = []
    for i in range(start, start + count):
        device_type = DEVICE_TYPES[i % len(DEVICE_TYPES)]
        suspended = rng.random() < 0.05
        rows.append({
            "number": f"{prefix}{i + 1:08d}",
            "name": f"{device_type} {i + 1}",
            "device_type": device_type,
            "company_id": companies[i % len(companies)].id,
            "status": "suspended" if suspended else "active",
            "expires_on": today + timedelta(days=rng.randint(-120, 400)),
            "package_id": by_type[device_type] if rng.random() < 0.8 else None,
        })
        if len(rows) >= BATCH:
            session.execute(insert(Device), rows)
            rows = []
    if rows:
        session.execute(insert(Device), rows)


def seed_demo(session: Session, devices: int = 500, method: str = "scrypt", activity: bool = True) -> dict:
    """Build the demo world in an empty database; returns what was made.

    `activity` adds a week's work made through the actions (recharges, orders, an invoice request:
    actions/demo_activity.py); without it every queue starts empty."""
    companies = _companies(session)
    packages = _catalog(session)
    for username, role, company in DEMO_USERS:
        user = User(username=username, role=role, company=companies.get(company), must_change_password=False,
                    email=f"{username}@renewdesk.example", session_version=0)
        user.set_password(f"demo-{username}", method=method)
        session.add(user)
    session.add(BillingConfig(company=companies["Acme Logistics"], billing_cycle="monthly", auto_renew=True,
                              push_enabled=True, push_language="zh_CN",
                              push_emails="ops@acme.example\nfleet@acme.example"))
    session.add(BillingConfig(company=companies["Globex Trading"], billing_cycle="quarterly",
                              push_language="en", push_emails="billing@globex.example"))
    for name in ("Acme Logistics", "Globex Trading"):
        session.add(CompanyPackage(company=companies[name], package=packages["VAS-SMS"]))
    session.add(CompanyPackage(company=companies["Acme Logistics"], package=packages["VAS-FENCE"]))
    # The device-type list tech support maintains (Device types), and a Chinese company address.
    session.add_all(DeviceType(name=name, sort_order=i) for i, name in enumerate(DEVICE_TYPES))
    companies["Acme Logistics"].province, companies["Acme Logistics"].city = "上海市", "上海市"
    session.flush()
    insert_devices(session, devices, list(companies.values()), packages)
    session.flush()
    seed_subscriptions(session)
    from actions.crypto import vault

    seed_cards(session, vault(), method=method)
    if activity:
        seed_activity(session, companies, date.today())
    # Planner statistics after a bulk load: without them SQLite walks a customer's whole
    # company tree to show one page (bench/README.md).
    session.execute(text("ANALYZE"))
    return {"companies": len(companies), "packages": len(packages), "devices": devices}
