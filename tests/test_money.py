"""Exact money on every database: the money module, integer minor units, 0.00 orders, partial refunds."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from actions import DomainError
from actions.money import allocate, format_money, format_percent, parse, round_money, to_minor
from actions.orders import LineSpec, approve_refund, open_order, pay_with_balance, request_refund
from actions.wallets import balance_of, credit, debit, ledger_differences, wallet_for
from models import LedgerEntry, Order, OrderLine, db

TODAY = date(2026, 12, 1)


# --- the money module ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, currency, wanted", [
    ("12,800.00", "CNY", Decimal("12800.00")), ("12800", "CNY", Decimal("12800.00")), ("0.7", "USD", Decimal("0.70")),
    ("1,234,567", "VND", Decimal("1234567")), ("216000", "COIN", Decimal("216000")),
    ("１２", "CNY", Decimal("12.00")),  # full-width, as a Chinese input method types digits
])
def test_parse_accepts_amounts_as_people_type_them(text, currency, wanted):
    assert parse(text, currency) == wanted and str(parse(text, currency)) == str(wanted)


@pytest.mark.parametrize("text, currency, message", [
    ("1e3", "CNY", "is not an amount"), ("١٢٣", "CNY", "is not an amount"), ("１e３", "CNY", "is not an amount"),
    ("1.005", "CNY", "at most two decimal places"), ("12.5", "VND", "no decimals"), ("1,23.00", "CNY", "not an amount"),
    ("-5", "CNY", "greater than zero"), ("0", "CNY", "greater than zero"), ("NaN", "CNY", "not an amount"),
    ("", "CNY", "enter an amount"), ("999999999999", "CNY", "larger than any single payment"),
])
def test_parse_refuses_with_the_field_named(app, text, currency, message):
    with pytest.raises(DomainError, match=message) as caught:
        parse(text, currency, "Amount")
    assert str(caught.value).startswith("Amount:")


def test_rounding_is_half_up_in_every_currency():
    assert round_money(Decimal("0.125"), "CNY") == Decimal("0.13")
    assert round_money(Decimal("0.135"), "CNY") == Decimal("0.14")  # not banker's rounding
    assert round_money(Decimal("12.5"), "VND") == Decimal("13")
    with pytest.raises(TypeError):
        round_money(0.1, "CNY")


def test_allocation_sums_exactly_and_gives_ties_to_the_lower_line():
    assert allocate(Decimal("123.66"), [Decimal("1020.00"), Decimal("310.00"), Decimal("436.62")], "CNY") == [
        Decimal("71.40"), Decimal("21.70"), Decimal("30.56")]
    assert allocate(Decimal("0.10"), [1, 1, 1], "CNY") == [Decimal("0.04"), Decimal("0.03"), Decimal("0.03")]
    parts = allocate(Decimal("100"), [3, 3, 3], "VND")
    assert parts == [Decimal("34"), Decimal("33"), Decimal("33")] and sum(parts) == 100


@pytest.mark.parametrize("locale, amount, currency, wanted", [
    ("zh_Hans_CN", "12800", "CNY", "¥12,800.00"), ("zh_Hans_CN", "5", "USD", "US$5.00"),
    ("vi", "12800", "VND", "12.800\xa0₫"), ("zh_Hans_CN", "216000", "COIN", "216,000 奥币"),
    ("en", "1000", "CNY", "CN¥1,000.00"),
])
def test_one_formatter_in_the_readers_locale(app, locale, amount, currency, wanted):
    from flask_babel import force_locale

    with app.test_request_context(), force_locale(locale):
        assert format_money(Decimal(amount), currency).replace("\u202f", "\xa0") == wanted


# --- integer minor units on every database ----------------------------------------------------------

@pytest.mark.parametrize(("locale", "percent", "wanted"), [
    ("zh_Hans_CN", Decimal("9.7"), "9.7%"), ("vi", Decimal("9.7"), "9,7%"), ("vi", Decimal("12.50"), "12,5%"),
    ("en", 8, "8%"), ("vi", Decimal("0.05"), "0,05%"), ("zh_Hans_CN", None, ""),
])
def test_a_rate_reads_as_the_reader_writes_a_percent(app, locale, percent, wanted):
    """Rates were written "12.5 %" by hand: a Vietnamese reader writes 12,5%."""
    assert format_percent(percent, locale) == wanted


def test_a_rate_is_never_a_float():
    with pytest.raises(TypeError):
        format_percent(12.5, "en")


def test_no_money_column_is_a_float_or_numeric(app):
    """Every amount is a BigInteger of minor units; no REAL, FLOAT or NUMERIC column exists at all."""
    inspector = sa.inspect(db.engine)
    for table in inspector.get_table_names():
        for column in inspector.get_columns(table):
            kind = str(column["type"]).upper()
            assert not any(word in kind for word in ("REAL", "FLOAT", "DOUBLE", "NUMERIC", "DECIMAL")), \
                f"{table}.{column['name']} is {kind}"
            if column["name"].endswith("_minor"):
                assert "INT" in kind, f"{table}.{column['name']} is {kind}"


def test_seventy_cents_and_three_dimes_pay_one_yuan(app, world):
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    credit(db.session, wallet, Decimal("0.70"), "recharge", "t:1")
    for i in range(3):
        credit(db.session, wallet, Decimal("0.10"), "recharge", f"t:dime:{i}")
    db.session.commit()
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("1.00")
    debit(db.session, wallet, Decimal("1.00"), "payment", "t:pay")
    db.session.commit()
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("0.00")
    assert ledger_differences(db.session) == []


def test_a_thousand_cents_sum_to_ten_yuan(app, world):
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    for i in range(1000):
        credit(db.session, wallet, Decimal("0.01"), "recharge", f"t:cent:{i}")
    db.session.commit()
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("10.00")
    total = db.session.scalar(sa.select(sa.func.sum(LedgerEntry.amount_minor)))
    assert total == 1000 and ledger_differences(db.session) == []


def test_a_zero_order_is_paid_at_once_without_a_ledger_row(app, world):
    customer = world.users["customer"]
    device = world.devices["AC0001"]
    before = device.expires_on
    order = open_order(db.session, customer, kind="renewal", company_id=world.acme.id, currency="CNY", today=TODAY,
                       lines=[LineSpec(description="free month", gross=Decimal("10.00"), device_id=device.id,
                                       months=1, discounts=[])],
                       )
    assert order.status == "pending"
    from actions.orders import DiscountSpec

    free = open_order(db.session, customer, kind="renewal", company_id=world.acme.id, currency="CNY", today=TODAY,
                      lines=[LineSpec(description="free month", gross=Decimal("10.00"), device_id=device.id, months=1,
                                      discounts=[DiscountSpec("line", "100 %", Decimal("10.00"))])])
    db.session.commit()
    assert free.status == "paid" and free.total == Decimal("0.00") and free.paid_at is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0
    db.session.expire_all()
    assert device.expires_on > before


def test_a_discount_larger_than_the_line_is_refused_naming_it(app, world):
    from actions.orders import DiscountSpec

    with pytest.raises(DomainError, match="Line 1 .*exceed"):
        open_order(db.session, world.users["customer"], kind="renewal", company_id=world.acme.id, currency="CNY",
                   lines=[LineSpec(description="x", gross=Decimal("1.00"),
                                   discounts=[DiscountSpec("line", "too much", Decimal("2.00"))])])


def test_paying_a_kind_that_registered_nothing_raises(app, world, monkeypatch):
    import actions.orders

    monkeypatch.delitem(actions.orders._KINDS, "value_added")  # every kind registers today: one is unregistered here
    with pytest.raises(DomainError, match="nothing is registered"):
        open_order(db.session, None, kind="value_added", company_id=world.acme.id, currency="CNY",
                   lines=[LineSpec(description="x", gross=Decimal("1.00"))])


def test_refunding_two_of_ten_lines_returns_exactly_their_net(app, world):
    customer, finance, admin = world.users["customer"], world.users["finance"], world.users["admin"]
    wallet = wallet_for(db.session, world.acme.id, "CNY")
    credit(db.session, wallet, Decimal("1000.00"), "recharge", "t:fund")
    devices = [world.devices[n] for n in ("AC0001", "AC0002", "NO0001", "NO0002", "FL0001", "FL0002", "SO0001",
                                           "SO0002")]
    prices = [Decimal("10.01"), Decimal("20.02"), Decimal("30.03"), Decimal("40.04"), Decimal("50.05"),
              Decimal("60.06"), Decimal("70.07"), Decimal("80.08")]
    order = open_order(db.session, customer, kind="renewal", company_id=world.acme.id, currency="CNY",
                       lines=[LineSpec(description=d.number, gross=p, device_id=d.id, months=1)
                              for d, p in zip(devices, prices)])
    pay_with_balance(db.session, customer, order, TODAY)
    db.session.commit()
    paid_balance = balance_of(db.session, world.acme.id, "CNY")
    assert paid_balance == Decimal("1000.00") - sum(prices)
    lines = db.session.scalars(sa.select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)).all()
    refund = request_refund(db.session, finance, order, [lines[1].id, lines[6].id], "two devices returned")
    db.session.commit()
    assert refund.amount == Decimal("90.09")
    with pytest.raises(DomainError, match="another person"):
        approve_refund(db.session, finance, refund, TODAY)
    db.session.rollback()
    approve_refund(db.session, admin, refund, TODAY)
    db.session.commit()
    db.session.expire_all()
    assert balance_of(db.session, world.acme.id, "CNY") == paid_balance + Decimal("90.09")
    order = db.session.get(Order, order.id)
    assert order.status == "paid" and order.refunded == Decimal("90.09")
    with pytest.raises(DomainError, match="already refunded"):
        request_refund(db.session, finance, order, [lines[1].id])
    db.session.rollback()
    assert ledger_differences(db.session) == []


def test_coin_purchases_and_vip_upgrades_can_be_refunded(app, world):
    from actions.coins import create_coin_order
    from actions.members import upgrade_vip
    from actions.orders import mark_paid
    from models import MemberAccount

    customer, finance, admin = world.users["customer"], world.users["finance"], world.users["admin"]
    coins = create_coin_order(db.session, customer, world.acme, "144.00", "wechat")
    mark_paid(db.session, coins, "wechat", "wx-1", Decimal("144.00"), "CNY", TODAY)
    account = MemberAccount(company_id=world.acme.id, login="m1", vip_level="none")
    db.session.add(account)
    db.session.commit()
    assert balance_of(db.session, world.acme.id, "COIN") == 14400
    upgrade_vip(db.session, customer, [account], "vip", "1", TODAY)
    db.session.commit()
    vip = db.session.scalar(sa.select(Order).where(Order.kind == "vip_upgrade"))
    assert db.session.get(MemberAccount, account.id).vip_level == "vip"
    approve_refund(db.session, admin, request_refund(db.session, finance, vip, None, "wrong account"), TODAY)
    db.session.commit()
    db.session.expire_all()
    account = db.session.get(MemberAccount, account.id)
    assert account.vip_level == "none" and account.vip_expires_on is None
    assert balance_of(db.session, world.acme.id, "COIN") == 14400
    approve_refund(db.session, admin, request_refund(db.session, finance, db.session.get(Order, coins.id)), TODAY)
    db.session.commit()
    assert balance_of(db.session, world.acme.id, "COIN") == 0
    assert db.session.get(Order, coins.id).status == "refunded"
    assert ledger_differences(db.session) == []


# --- the migration converts existing NUMERIC rows exactly --------------------------------------------------

def test_migration_converts_existing_amounts_exactly():
    from tests.conftest import database_at, migrate

    with database_at("money-migration", "0005") as app:
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO company (id, name, path, status, created_at) VALUES "
                                 "(1, 'A', '/1/', 'active', '2026-01-01')"))
            conn.execute(sa.text("INSERT INTO wallet (id, company_id, currency, balance, updated_at) VALUES "
                                 "(1, 1, 'CNY', 0.70, '2026-01-01'), (2, 1, 'COIN', 90000.00, '2026-01-01')"))
            conn.execute(sa.text("INSERT INTO ledger_entry (wallet_id, kind, amount, balance_after, "
                                 "idempotency_key, memo, created_at) VALUES "
                                 "(1, 'recharge', 0.70, 0.70, 'k1', '', '2026-01-01'), "
                                 "(2, 'coin_purchase', 90000.00, 90000.00, 'k2', '', '2026-01-01')"))
            conn.execute(sa.text('INSERT INTO "order" (id, number, kind, status, company_id, currency, total, '
                                 "invoice_status, created_at, note) VALUES (1, 'RN1', 'renewal', 'refunded', 1, "
                                 "'CNY', 12800.55, 'none', '2026-01-01', '')"))
            conn.execute(sa.text("INSERT INTO order_line (order_id, description, quantity, unit_price, amount) "
                                 "VALUES (1, 'x', 1, 12800.55, 12800.55)"))
        migrate(app, "head")
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT currency, balance_minor FROM wallet ORDER BY id")).all() == [
                ("CNY", 70), ("COIN", 90000)]
            assert conn.execute(sa.text("SELECT currency, amount_minor, balance_after_minor FROM ledger_entry "
                                        "ORDER BY id")).all() == [("CNY", 70, 70), ("COIN", 90000, 90000)]
            assert conn.execute(sa.text('SELECT total_minor, refunded_minor FROM "order"')).one() == (
                1280055, 1280055)
            assert conn.execute(sa.text("SELECT unit_price_minor, gross_minor, discount_minor, net_minor, "
                                        "refunded_minor FROM order_line")).one() == (
                1280055, 1280055, 0, 1280055, 1280055)
        assert to_minor(Decimal("128.00"), "CNY") == 12800
