"""VIP upgrades apply exactly the quote that was shown; VIP → SVIP converts the VIP time left.

The rule (README, "Member accounts"): when an account with VIP time left is upgraded to SVIP, the
remaining VIP days become SVIP days and the new term starts after them; each converted day costs
(21,600 − 7,200) / 365 coins, rounded half up per account. Paid VIP time never turns into SVIP for
free, and no day is paid twice.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from actions.members import conversion_cost, quote_digest, quote_upgrade, upgrade_vip
from actions.quotes import QuoteChanged
from actions.orders import add_months
from actions.wallets import credit, ledger_differences, wallet_for
from actions.wallets import balance_of
from models import LedgerEntry, MemberAccount, Order, OrderLine, db

TODAY = date(2024, 5, 15)
SECRET = "test-secret"


@pytest.fixture(autouse=True)
def in_request(app):
    with app.test_request_context():
        yield


def account(world, login, level="none", expires_on=None, company=None) -> MemberAccount:
    row = MemberAccount(company_id=(company or world.acme).id, login=login, vip_level=level,
                        vip_expires_on=expires_on, password_hash="x")
    db.session.add(row)
    db.session.flush()
    return row


def coins(world, amount: int) -> None:
    credit(db.session, wallet_for(db.session, world.acme.id, "COIN"), Decimal(amount), "coin_purchase",
           f"test:{amount}")
    db.session.commit()


def coin_balance(world) -> Decimal:
    db.session.expire_all()
    return balance_of(db.session, world.acme.id, "COIN")


def fresh(row):
    db.session.expire_all()
    return db.session.get(MemberAccount, row.id)


@pytest.mark.parametrize("days, cost", [(0, 0), (1, 39), (100, 3945), (365, 14400), (200, 7890)])
def test_converting_vip_days_costs_the_price_difference_per_day(days, cost):
    assert conversion_cost("vip", "svip", days) == cost


def test_nothing_is_converted_on_the_same_level_or_from_ordinary():
    assert conversion_cost("vip", "vip", 100) == 0
    assert conversion_cost("svip", "svip", 100) == 0
    assert conversion_cost("none", "svip", 100) == 0


def test_vip_to_svip_converts_the_days_left_and_adds_the_term_after_them(world):
    coins(world, 100_000)
    vip_until = TODAY + timedelta(days=100)
    row = account(world, "runner", "vip", vip_until)
    db.session.commit()
    quote = quote_upgrade(db.session, world.users["customer"], [row], "svip", "0.5", TODAY)
    (line,) = quote.accounts
    assert (line.converted_days, line.conversion_coins) == (100, 3945)
    assert line.new_expiry == add_months(vip_until, 6)
    assert (quote.term_coins, quote.conversion_coins, quote.coins) == (10_800, 3945, 14_745)

    result = upgrade_vip(db.session, world.users["customer"], [row], "svip", "0.5", TODAY)
    db.session.commit()
    assert result.extra["coins"] == 14_745
    upgraded = fresh(row)
    assert (upgraded.vip_level, upgraded.vip_expires_on) == ("svip", add_months(vip_until, 6))
    assert coin_balance(world) == Decimal(100_000 - 14_745)
    order = db.session.scalar(select(Order).where(Order.kind == "vip_upgrade"))
    (order_line,) = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id))
    assert order.total == order_line.amount == Decimal(14_745)
    assert db.session.scalar(select(LedgerEntry.amount_minor).where(LedgerEntry.order_id == order.id)) == -14_745
    assert ledger_differences(db.session) == []


def test_a_lapsed_vip_or_an_ordinary_account_pays_the_term_only(world):
    coins(world, 100_000)
    lapsed = account(world, "lapsed", "vip", TODAY - timedelta(days=3))
    plain = account(world, "plain")
    db.session.commit()
    quote = quote_upgrade(db.session, world.users["customer"], [lapsed, plain], "svip", "1", TODAY)
    assert [(line.converted_days, line.conversion_coins) for line in quote.accounts] == [(0, 0), (0, 0)]
    assert quote.coins == 2 * 21_600
    assert {line.new_expiry for line in quote.accounts} == {add_months(TODAY, 12)}


def test_vip_to_vip_extends_without_conversion(world):
    coins(world, 100_000)
    row = account(world, "again", "vip", TODAY + timedelta(days=30))
    db.session.commit()
    quote = quote_upgrade(db.session, world.users["customer"], [row], "vip", "1", TODAY)
    assert (quote.coins, quote.conversion_coins, quote.accounts[0].converted_days) == (7_200, 0, 0)


def test_the_digest_covers_level_term_payer_accounts_and_secret(world):
    coins(world, 100_000)
    one = account(world, "one", "vip", TODAY + timedelta(days=10))
    two = account(world, "two")
    db.session.commit()
    actor = world.users["customer"]

    def digest(rows, level="vip", years="1", payer=None, secret=SECRET):
        return quote_digest(quote_upgrade(db.session, actor, rows, level, years, TODAY, payer), secret)

    base = digest([one, two])
    assert digest([one, two]) == base and len(base) == 64
    variants = [digest([one, two], level="svip"), digest([one, two], years="0.5"), digest([one]),
                digest([one, two], level="svip", years="0.25"),
                digest([one, two], secret="another")]
    assert base not in variants and len(set(variants)) == len(variants)
    # The same accounts in another order are the same quote: the digest follows the rows, not the form.
    assert digest([two, one]) == base


def test_a_stale_digest_is_refused_and_nothing_is_written(world):
    coins(world, 100_000)
    row = account(world, "stale", "vip", TODAY + timedelta(days=50))
    db.session.commit()
    actor = world.users["customer"]
    vip_digest = quote_digest(quote_upgrade(db.session, actor, [row], "vip", "1", TODAY), SECRET)
    with pytest.raises(QuoteChanged):
        upgrade_vip(db.session, actor, [row], "svip", "1", TODAY, expected_quote=vip_digest, secret=SECRET)
    db.session.rollback()
    assert (fresh(row).vip_level, fresh(row).vip_expires_on) == ("vip", TODAY + timedelta(days=50))
    assert coin_balance(world) == Decimal(100_000)
    assert db.session.scalar(select(Order).where(Order.kind == "vip_upgrade")) is None


def test_the_digest_shown_is_applied(world):
    coins(world, 100_000)
    row = account(world, "ok", "vip", TODAY + timedelta(days=50))
    db.session.commit()
    actor = world.users["customer"]
    svip_digest = quote_digest(quote_upgrade(db.session, actor, [row], "svip", "1", TODAY), SECRET)
    result = upgrade_vip(db.session, actor, [row], "svip", "1", TODAY, expected_quote=svip_digest, secret=SECRET)
    db.session.commit()
    assert result.changed == ("ok",) and fresh(row).vip_level == "svip"
