"""Demo data of the card area (seed 002), loaded by `flask seed-demo` after the core's world.

Two verified distributors ("Aotuo Cards" and its sub-distributor "Aotuo Shenzhen", logins
`distributor` / `subdistributor`, password demo-<username>), two card plans, 200 cards in the
platform's stock and 20 on consignment with Aotuo Cards, commission rules (the issue's split
example: parent 10 %, sub-distributor 8 %; on the 59 plan a 6 % share Aotuo Cards passes down itself,
editable in its 分销设置), a prepaid balance for each to sell from, and one sent
quote (销售报价) of Aotuo Cards. Its employee `distributor-clerk` (password demo-distributor-clerk) may use card
orders and card customers only (员工权限设置).
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from actions.card_quotes import LineInput, save_quote, send_quote
from actions.cards import CardInput, add_card, post_stock_document, review_verification, submit_verification
from actions.companies import place
from actions.crypto import Vault
from actions.distribution import save_rule, save_share
from actions.employees import create_employee
from actions.texts import message
from actions.wallets import credit, wallet_for
from models import Company, Package, PackageCategory, User

CARD_USERS = (("distributor", "Aotuo Cards", "Aotuo Cards Co., Ltd."),
              ("subdistributor", "Aotuo Shenzhen", "Li Wei"))


def seed_cards(session: Session, vault: Vault, method: str = "scrypt", today: date | None = None) -> dict:
    """Distributors, plans, stock and commission rules for the demo; flushes, the caller commits."""
    today = today or date.today()
    # Two setup users author the demo's own steps (audit rows name them); they are disabled at the end.
    admin = User(username="card-demo-admin", role="admin", must_change_password=False, session_version=0)
    admin.set_password("not-a-login-" + method, method=method)
    session.add(admin)
    parent = Company(name="Aotuo Cards", status="active", contact_name="Zhao Min")
    place(session, parent, None)
    child = Company(name="Aotuo Shenzhen", status="active", contact_name="Li Wei")
    place(session, child, parent)
    companies = {"Aotuo Cards": parent, "Aotuo Shenzhen": child}
    users = {}
    for number, (username, company_name, legal_name) in enumerate(CARD_USERS):
        user = User(username=username, role="customer_admin", company=companies[company_name],
                    must_change_password=False, email=f"{username}@renewdesk.example", session_version=0)
        user.set_password(f"demo-{username}", method=method)
        session.add(user)
        session.flush()
        users[username] = user
        profile = submit_verification(session, user, vault, companies[company_name], legal_name=legal_name,
                                      id_type="business_licence" if number == 0 else "resident_id",
                                      id_number=f"91440300MA5D{number:06d}" if number == 0 else "440301199001010011")
        review_verification(session, admin, profile, approve=True)
    category = PackageCategory(code="SIM", name="SIM cards", kind="card")
    session.add(category)
    session.flush()
    plans = [Package(code="SIM-39", name="39 plan (monthly)", category_id=category.id, kind="card",
                     amount=Decimal("39.00"), pricing="per_month", currency="CNY"),
             Package(code="SIM-59", name="59 plan (monthly)", category_id=category.id, kind="card",
                     amount=Decimal("59.00"), pricing="per_month", currency="CNY")]
    session.add_all(plans)
    session.flush()
    staff = User(username="card-demo-stock", role="tech_support", must_change_password=False, session_version=0)
    staff.set_password("not-a-login-" + method, method=method)
    session.add(staff)
    session.flush()
    cards = []
    for n in range(220):
        plan = plans[n % 2]
        cards.append(add_card(session, staff, vault, CardInput(f"8986{11_000_000_000_000 + n:016d}",
                                                               f"1700000{n:04d}", f"{(n * 7919) % 1_000_000:06d}",
                                                               plan.code, today + timedelta(days=730)), today))
    post_stock_document(session, staff, "transfer", [c.iccid for c in cards[-20:]], to_holder=parent.id,
                        note="consignment")
    save_rule(session, admin, parent, None, mode="override", kind="percent", level1_percent="10")
    save_rule(session, admin, child, None, mode="split", kind="percent", level1_percent="8", level2_percent="10")
    # 分销设置 by the distributor itself: on the 59 plan it passes Aotuo Shenzhen 6 % of its own 10 %.
    save_share(session, users["distributor"], child, plans[1].id, "6")
    # Both distributors have a prepaid balance to sell from (so each one's 财务管理 shows where it came from).
    for company, amount in ((parent, Decimal("5000.00")), (child, Decimal("2000.00"))):
        key = "demo:cards:balance" if company is child else f"demo:cards:balance:{company.id}"
        credit(session, wallet_for(session, company.id, "CNY"), amount, "offline_recharge", key, admin,
               memo=message("ledger.demo_balance"))
    # 销售报价: Aotuo Cards has sent a quote at negotiated prices, awaiting its customer's answer.
    quote = save_quote(session, users["distributor"], seller=parent, customer_name="Shenzhen Fleet Logistics",
                       customer_phone="13800138000", customer_address="Nanshan District, Shenzhen",
                       valid_until=today + timedelta(days=30), today=today,
                       lines=[LineInput(plans[0], 50, "35.00", "5"), LineInput(plans[1], 20, "55.00")])
    send_quote(session, users["distributor"], quote, today)
    # 员工权限设置: a clerk of Aotuo Cards who handles card orders and card customers only.
    create_employee(session, users["distributor"], "distributor-clerk", ["card_orders", "card_customers"],
                    "demo-distributor-clerk", full_name="Wang Fang", email="distributor-clerk@renewdesk.example",
                    must_change_password=False, method=method)
    staff.active = admin.active = False
    session.flush()
    return {"distributors": 2, "cards": len(cards), "quotes": 1}
