"""Seed 000: member accounts from a pattern, coins, bulk VIP upgrade and refresh, bank transfers.

The rules are tested as functions; HTTP tests prove the wiring, the roles, the scope, the
one-time password download and who may see a receipt file.
"""
from __future__ import annotations

import io
import os
import re
import time
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import event, func, select
from werkzeug.security import check_password_hash

from actions import DomainError
from actions.bank_transfers import AlreadyReviewed, confirm_receipt, reject_receipt, submit_receipt
from actions.coins import coin_price, create_coin_order
from actions.members import (
    LoginsTaken, create_members, expand_pattern, refresh_levels, upgrade_vip,
)
from actions.orders import add_months, mark_paid
from actions.payments import handle_notification, provider_for
from actions.wallets import balance_of, credit, ledger_differences, wallet_for
from conftest import FAST_HASH, confirm_post, post
from models import (
    AuditEvent, BankTransferReceipt, LedgerEntry, MemberAccount, Order, OrderLine, db,
)

MEMBERS = "/admin/memberaccount/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"0" * 64
TODAY = date(2024, 5, 15)


@pytest.fixture(autouse=True)
def request_context(request, app, tmp_path, monkeypatch):
    """Action tests run in a request (lazy messages need a locale); HTTP tests use the client's.

    Receipts and password workbooks go to a per-test instance folder, not the checkout's."""
    if "client" in request.fixturenames or "web_app" in request.fixturenames:
        monkeypatch.setattr(request.getfixturevalue("web_app"), "instance_path", str(tmp_path / "instance"))
        yield
        return
    with app.test_request_context():
        yield


PRESET: set[int] = set()  # member accounts the `world` fixture brings; accounts() leaves them out


@pytest.fixture(autouse=True)
def preset_accounts(request):
    PRESET.clear()
    if "world" in request.fixturenames:
        request.getfixturevalue("world")
        PRESET.update(db.session.scalars(select(MemberAccount.id)))
    yield


def create(world, pattern, kind="default", fixed=None, company=None, actor="customer", max_count=1000):
    return create_members(db.session, world.users[actor], company or world.acme, pattern, kind, fixed,
                          max_count=max_count, hash_method=FAST_HASH)


def accounts(*logins) -> list[MemberAccount]:
    """The member accounts the test made (by login), or those named."""
    db.session.expire_all()
    query = select(MemberAccount).where(MemberAccount.id.not_in(PRESET)).order_by(MemberAccount.login)
    if logins:
        query = query.where(MemberAccount.login.in_(logins))
    return list(db.session.scalars(query))


def give_coins(company, coins: int, key: str = "seed") -> None:
    credit(db.session, wallet_for(db.session, company.id, "COIN"), Decimal(coins), "coin_purchase",
           f"test:{key}:{company.id}")


def coin_balance(company) -> Decimal:
    db.session.expire_all()
    value = balance_of(db.session, company.id, "COIN")
    return Decimal("0") if value is None else value


def make_account(company, login, level="none", expires_on=None):
    account = MemberAccount(company_id=company.id, login=login, vip_level=level, vip_expires_on=expires_on,
                            password_hash="x")
    db.session.add(account)
    db.session.flush()
    return account


@contextmanager
def statements():
    """Count the SQL statements sent to the database inside the block."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --- the pattern ----------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern, expected", [
    ("u{1-3}", ["u1", "u2", "u3"]),
    ("tupp{01-20}", [f"tupp{n:02d}" for n in range(1, 21)]),
    ("a{001-010}", [f"a{n:03d}" for n in range(1, 11)]),
    ("x{8-11}", ["x8", "x9", "x10", "x11"]),
    ("x{08-11}", ["x08", "x09", "x10", "x11"]),
    ("solo", ["solo"]),
    ("  solo  ", ["solo"]),
    ("{1-2}{a}".replace("{a}", "-{1-2}"), ["1-1", "1-2", "2-1", "2-2"]),
    ("r{1-2}c{01-03}.x", ["r1c01.x", "r1c02.x", "r1c03.x", "r2c01.x", "r2c02.x", "r2c03.x"]),
    ("z{5-5}", ["z5"]),
])
def test_expand_pattern(pattern, expected):
    assert expand_pattern(pattern, 1000) == expected


@pytest.mark.parametrize("pattern, message", [
    ("tupp{20-01}", "backwards"),
    ("u{1-1001}", "more than 1000"),
    ("u{1-100}v{1-100}", "more than 1000"),
    ("u{1-999999999}", "more than 1000"),
    ("u{1-3", "not closed"),
    ("u1-3}", "no opening"),
    ("u{{1-3}}", "not closed"),
    ("u{}", "not a range"),
    ("u{a-c}", "not a range"),
    ("u{5}", "not a range"),
    ("u{1-2-3}", "not a range"),
    ("", "Enter a login pattern"),
    ("   ", "Enter a login pattern"),
    ("bad name{1-2}", "letters, digits"),
    ("a{1-12}{1-12}", "twice"),
    ("x" * 99 + "{1-10}", "at most 100 characters"),
])
def test_expand_pattern_refusals(pattern, message):
    with pytest.raises(DomainError) as caught:
        expand_pattern(pattern, 1000)
    assert message in str(caught.value)


def test_expand_pattern_counts_against_max_before_generating():
    """A pattern naming billions of logins is refused at once, not after building the list."""
    started = time.perf_counter()
    with pytest.raises(DomainError):
        expand_pattern("a{1-99999}b{1-99999}c{1-99999}", 1000)
    assert time.perf_counter() - started < 0.5


# --- batch creation -------------------------------------------------------------------------------

def test_create_twenty_accounts_with_the_default_password(app, world):
    result = create(world, "tupp{01-20}")
    db.session.commit()
    rows = accounts()
    assert [a.login for a in rows] == [f"tupp{n:02d}" for n in range(1, 21)]
    assert {a.company_id for a in rows} == {world.acme.id}
    assert {a.vip_level for a in rows} == {"none"}
    assert result.passwords == {}
    assert len({a.password_hash for a in rows}) == 1  # hashed once, shared by the batch
    assert check_password_hash(rows[0].password_hash, "123579")
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.model == "member_account"))
    assert event.action == "create" and "tupp01" in event.summary and "123579" not in event.summary
    assert event.ids == "," + ",".join(str(a.id) for a in sorted(rows, key=lambda a: a.id)) + ","


def test_create_with_a_configured_default_password(app, world):
    create_members(db.session, world.users["customer"], world.acme, "d{1-2}", "default",
                   default_password="other-default", hash_method=FAST_HASH)
    assert check_password_hash(accounts()[0].password_hash, "other-default")


def test_create_twenty_accounts_with_a_fixed_password(app, world):
    create(world, "fix{01-20}", "fixed", "s3cret-pass")
    rows = accounts()
    assert len(rows) == 20
    assert all(check_password_hash(a.password_hash, "s3cret-pass") for a in rows[:3])
    assert all("s3cret-pass" not in a.password_hash for a in rows)


@pytest.mark.parametrize("fixed", [None, "", "12345", " padded-pass ", "x" * 129])
def test_fixed_password_is_checked(app, world, fixed):
    with pytest.raises(DomainError):
        create(world, "fix{01-02}", "fixed", fixed)
    assert accounts() == []


def test_create_twenty_accounts_with_random_passwords(app, world):
    result = create(world, "rnd{01-20}", "random")
    db.session.commit()
    rows = accounts()
    assert len(rows) == 20 and len(result.passwords) == 20
    assert len(set(result.passwords.values())) == 20
    assert len({a.password_hash for a in rows}) == 20
    for account in rows:
        clear = result.passwords[account.login]
        assert len(clear) == 12
        assert clear not in account.password_hash
        assert check_password_hash(account.password_hash, clear)


def test_existing_logins_are_named_and_nothing_is_created(app, world):
    make_account(world.globex, "tupp07")  # another company's: logins are globally unique
    make_account(world.acme, "tupp13")
    db.session.commit()
    with pytest.raises(LoginsTaken) as caught:
        create(world, "tupp{01-20}")
    assert caught.value.logins == ("tupp07", "tupp13")
    assert "tupp07" in str(caught.value) and "tupp13" in str(caught.value)
    db.session.rollback()
    assert [a.login for a in accounts()] == ["tupp07", "tupp13"]


def test_create_refuses_another_tenant_and_other_roles(app, world):
    with pytest.raises(DomainError):
        create(world, "g{1-2}", company=world.globex)
    with pytest.raises(DomainError):
        create(world, "g{1-2}", actor="finance")
    assert accounts() == []


def test_create_refuses_more_than_the_configured_maximum(app, world):
    with pytest.raises(DomainError) as caught:
        create(world, "m{1-11}", max_count=10)
    assert "more than 10" in str(caught.value)


# --- coins ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("level, accounts_, years, cny, coins", [
    ("svip", 10, "1", Decimal("2160.00"), 216_000),  # the seed's example
    ("vip", 1, "1", Decimal("72.00"), 7_200),
    ("svip", 1, "1", Decimal("216.00"), 21_600),
    ("vip", 3, "0.5", Decimal("108.00"), 10_800),
    ("vip", 1, "0.25", Decimal("18.00"), 1_800),
    ("svip", 7, "0.25", Decimal("378.00"), 37_800),
])
def test_coin_price(level, accounts_, years, cny, coins):
    assert coin_price(level, accounts_, years) == (cny, coins)


@pytest.mark.parametrize("level, accounts_, years", [
    ("gold", 1, "1"), ("vip", 0, "1"), ("vip", "x", "1"), ("vip", 1, "2"), ("vip", 1, "0.3"), ("none", 1, "1"),
])
def test_coin_price_refuses_what_is_not_sold(level, accounts_, years):
    with pytest.raises(DomainError):
        coin_price(level, accounts_, years)


def test_coin_purchase_paid_online_credits_a_hundred_coins_per_yuan(app, world):
    order = create_coin_order(db.session, world.users["customer"], world.acme, "2160.00", "wechat")
    assert (order.kind, order.currency, order.total, order.status) == ("coins", "CNY", Decimal("2160.00"), "pending")
    assert order.number.startswith("CO")
    assert mark_paid(db.session, order, "wechat", "wx-1", Decimal("2160.00"), "CNY", TODAY) is True
    assert coin_balance(world.acme) == Decimal("216000")
    assert mark_paid(db.session, order, "wechat", "wx-1", Decimal("2160.00"), "CNY", TODAY) is False
    assert coin_balance(world.acme) == Decimal("216000")
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.order_id == order.id))
    assert (entry.kind, entry.amount, entry.idempotency_key) == ("coin_purchase", Decimal("216000"),
                                                                  f"coins:order:{order.id}")
    assert ledger_differences(db.session) == []


def test_coin_purchase_through_a_signed_notification(app, world):
    order = create_coin_order(db.session, world.users["customer"], world.north, "0.01", "alipay")
    secret = app.config["PAYMENT_SANDBOX_SECRET"]
    payload, signature = provider_for("alipay", secret).notification(order)
    assert handle_notification(db.session, "alipay", payload, signature, secret, TODAY) is True
    assert coin_balance(world.north) == Decimal("1")
    assert coin_balance(world.acme) == Decimal("0")


@pytest.mark.parametrize("amount, method", [("0", "wechat"), ("1.001", "wechat"), ("abc", "alipay"),
                                            ("10", "paypal"), ("10", "cash")])
def test_coin_order_refusals(app, world, amount, method):
    with pytest.raises(DomainError):
        create_coin_order(db.session, world.users["customer"], world.acme, amount, method)


def test_coin_order_refuses_another_tenant(app, world):
    with pytest.raises(DomainError):
        create_coin_order(db.session, world.users["customer"], world.globex, "10", "wechat")


# --- VIP upgrade ------------------------------------------------------------------------------------

def test_upgrade_ten_svip_for_a_year_costs_216000_coins(app, world):
    create(world, "sv{01-10}")
    give_coins(world.acme, 300_000)
    db.session.commit()
    result = upgrade_vip(db.session, world.users["customer"], accounts(), "svip", "1", TODAY)
    db.session.commit()
    assert result.extra["coins"] == 216_000 and len(result.changed) == 10 and not result.refused
    assert coin_balance(world.acme) == Decimal("84000")
    rows = accounts()
    assert {(a.vip_level, a.vip_expires_on) for a in rows} == {("svip", date(2025, 5, 15))}
    order = db.session.scalar(select(Order).where(Order.kind == "vip_upgrade"))
    assert (order.currency, order.total, order.status, order.payment_method) == ("COIN", Decimal("216000"), "paid",
                                                                                 "balance")
    lines = db.session.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).all()
    assert len(lines) == 10 and {line.amount for line in lines} == {Decimal("21600")}
    entry = db.session.scalar(select(LedgerEntry).where(LedgerEntry.order_id == order.id))
    assert (entry.kind, entry.amount) == ("payment", Decimal("-216000"))
    assert ledger_differences(db.session) == []


def test_upgrade_extends_from_the_later_of_expiry_and_today(app, world):
    give_coins(world.acme, 100_000)
    make_account(world.acme, "lapsed", "vip", TODAY - timedelta(days=40))
    make_account(world.acme, "running", "vip", date(2024, 8, 31))
    make_account(world.acme, "plain")
    db.session.commit()
    upgrade_vip(db.session, world.users["customer"], accounts(), "vip", "0.5", TODAY)
    expiry = {a.login: a.vip_expires_on for a in accounts()}
    assert expiry == {"lapsed": add_months(TODAY, 6), "plain": add_months(TODAY, 6), "running": date(2025, 2, 28)}
    assert coin_balance(world.acme) == Decimal(100_000 - 3 * 3_600)


def test_insufficient_coins_change_nothing_and_say_how_many_are_missing(app, world):
    create(world, "sv{01-10}")
    give_coins(world.acme, 200_000)
    db.session.commit()
    with pytest.raises(DomainError) as caught:
        upgrade_vip(db.session, world.users["customer"], accounts(), "svip", "1", TODAY)
    assert "16,000 coins missing" in str(caught.value)
    db.session.rollback()
    assert coin_balance(world.acme) == Decimal("200000")
    assert {a.vip_level for a in accounts()} == {"none"}
    assert db.session.scalar(select(func.count()).select_from(Order).where(Order.kind == "vip_upgrade")) == 0
    assert ledger_differences(db.session) == []


def test_upgrade_refuses_a_higher_valid_level_by_name(app, world):
    give_coins(world.acme, 100_000)
    make_account(world.acme, "boss", "svip", TODAY + timedelta(days=30))
    make_account(world.acme, "was-svip", "svip", TODAY - timedelta(days=1))
    make_account(world.acme, "staff")
    db.session.commit()
    result = upgrade_vip(db.session, world.users["customer"], accounts(), "vip", "1", TODAY)
    assert result.changed == ("staff", "was-svip")
    assert [login for login, _why in result.refused] == ["boss"]
    assert "SVIP" in result.refused[0][1]
    levels = {a.login: a.vip_level for a in accounts()}
    assert levels == {"boss": "svip", "was-svip": "vip", "staff": "vip"}
    assert coin_balance(world.acme) == Decimal(100_000 - 2 * 7_200)


def test_upgrade_refuses_accounts_of_other_companies(app, world):
    give_coins(world.acme, 100_000)
    mine = make_account(world.north, "mine")
    theirs = make_account(world.globex, "theirs")
    db.session.commit()
    result = upgrade_vip(db.session, world.users["customer"], [mine, theirs], "vip", "1", TODAY)
    assert result.changed == ("mine",) and [r[0] for r in result.refused] == ["theirs"]
    assert {a.login: a.vip_level for a in accounts()} == {"mine": "vip", "theirs": "none"}


def test_upgrade_paid_by_a_subsidiary_cannot_touch_the_parent(app, world):
    give_coins(world.north, 100_000)
    parent = make_account(world.acme, "parent-acct")
    db.session.commit()
    result = upgrade_vip(db.session, world.users["customer"], [parent], "vip", "1", TODAY, payer=world.north)
    assert result.changed == () and "Acme North" in result.refused[0][1]


def test_upgrade_refuses_a_changed_cost(app, world):
    give_coins(world.acme, 100_000)
    make_account(world.acme, "one")
    db.session.commit()
    with pytest.raises(DomainError):
        upgrade_vip(db.session, world.users["customer"], accounts(), "vip", "1", TODAY, expected_quote="0" * 64,
                    secret="test")


@pytest.mark.parametrize("level, years", [("gold", "1"), ("vip", "2"), ("none", "1")])
def test_upgrade_refuses_unsold_levels_and_terms(app, world, level, years):
    make_account(world.acme, "one")
    with pytest.raises(DomainError):
        upgrade_vip(db.session, world.users["customer"], accounts(), level, years, TODAY)


def test_refresh_expires_lapsed_levels(app, world):
    make_account(world.acme, "old", "vip", TODAY - timedelta(days=1))
    make_account(world.acme, "current", "svip", TODAY)
    make_account(world.acme, "never")
    foreign = make_account(world.globex, "foreign", "vip", TODAY - timedelta(days=5))
    db.session.commit()
    mine = [a for a in accounts() if a.login != "foreign"]
    result = refresh_levels(db.session, world.users["customer"], mine + [foreign], TODAY)
    assert result.changed == ("old",)
    assert [r[0] for r in result.refused] == ["foreign"]
    assert result.extra["levels"] == {"none": 2, "vip": 0, "svip": 1}
    assert {a.login: a.vip_level for a in accounts()} == {"old": "none", "current": "svip", "never": "none",
                                                          "foreign": "vip"}


def test_a_thousand_accounts_take_as_many_statements_as_ten(app, world):
    """Batching (the issue's requirement): creating and upgrading N accounts is a bounded number of statements."""

    def run(prefix: str, n: int) -> tuple[int, int]:
        pattern = f"{prefix}{{{1:04d}-{n:04d}}}"
        with statements() as created:
            create(world, pattern, "default")
        with statements() as upgraded:
            rows = list(db.session.scalars(select(MemberAccount).where(MemberAccount.login.startswith(prefix))))
            result = upgrade_vip(db.session, world.users["customer"], rows, "vip", "0.25", TODAY)
        assert len(result.changed) == n
        db.session.commit()
        return len(created), len(upgraded)

    give_coins(world.acme, 1_010 * 1_800)
    db.session.commit()
    small = run("ten", 10)
    large = run("thousand", 1000)
    assert large[0] == small[0], (small, large)
    assert large[1] == small[1], (small, large)
    assert sum(large) < 30
    assert db.session.scalar(select(func.count()).select_from(MemberAccount).where(
        MemberAccount.vip_level == "vip", MemberAccount.company_id == world.acme.id)) == 1010
    assert coin_balance(world.acme) == Decimal("0")
    assert ledger_differences(db.session) == []


# --- bank transfer ----------------------------------------------------------------------------------

@pytest.fixture
def folder(app, tmp_path):
    return tmp_path / "receipts"


def coin_order(world, amount="2160.00", company=None):
    return create_coin_order(db.session, world.users["customer"], company or world.acme, amount, "bank_transfer")


def upload(world, order, folder, amount="2160.00", name="receipt.png", data=PNG, max_bytes=5 * 1024 * 1024):
    return submit_receipt(db.session, world.users["customer"], order, "Acme Logistics Ltd", "6222 0000 1111",
                          amount, name, data, folder, max_bytes)


@pytest.mark.parametrize("name, data", [("r.png", PNG), ("r.PNG", PNG), ("r.jpg", JPEG), ("r.jpeg", JPEG),
                                        ("r.pdf", PDF)])
def test_receipt_files_are_recognised_by_their_bytes(app, world, folder, name, data):
    receipt = upload(world, coin_order(world), folder, name=name, data=data)
    stored = folder / receipt.file_sha256
    assert stored.read_bytes() == data
    assert receipt.content_type == {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                                    ".pdf": "application/pdf"}[os.path.splitext(name.lower())[1]]


@pytest.mark.parametrize("name, data, message", [
    ("fake.png", b"just some text, not an image", "not a PNG, JPEG or PDF"),
    ("fake.pdf", b"<html>%PDF-</html>", "not a PNG, JPEG or PDF"),
    ("photo.pdf", PNG, "name says otherwise"),
    ("receipt.exe", PDF, "name says otherwise"),
    ("empty.png", b"", "Choose the receipt file"),
])
def test_receipt_files_of_the_wrong_type_are_refused(app, world, folder, name, data, message):
    with pytest.raises(DomainError) as caught:
        upload(world, coin_order(world), folder, name=name, data=data)
    assert message in str(caught.value)


def test_too_big_a_receipt_is_refused(app, world, folder):
    with pytest.raises(DomainError) as caught:
        upload(world, coin_order(world), folder, data=PNG + b"\x00" * 1000, max_bytes=1000)
    assert "larger than" in str(caught.value)
    assert not folder.exists() or not any(folder.iterdir())


@pytest.mark.parametrize("field, value", [("payer_company", ""), ("payer_account", "  "), ("amount", "-1"),
                                          ("amount", "x")])
def test_receipt_fields_are_required(app, world, folder, field, value):
    values = {"payer_company": "Acme Ltd", "payer_account": "6222", "amount": "2160.00"}
    values[field] = value
    with pytest.raises(DomainError):
        submit_receipt(db.session, world.users["customer"], coin_order(world), values["payer_company"],
                       values["payer_account"], values["amount"], "r.png", PNG, folder)


def test_confirming_pays_the_order_once_and_credits_the_coins(app, world, folder):
    order = coin_order(world)
    receipt = upload(world, order, folder)
    db.session.commit()
    confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2160.00")
    db.session.commit()
    db.session.expire_all()
    assert (order.status, order.payment_method) == ("paid", "bank_transfer")
    assert receipt.status == "confirmed" and receipt.reviewed_by_id == world.users["finance"].id
    assert coin_balance(world.acme) == Decimal("216000")
    with pytest.raises(AlreadyReviewed):
        confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2160.00")
    db.session.rollback()
    assert coin_balance(world.acme) == Decimal("216000")
    assert ledger_differences(db.session) == []


def test_a_second_receipt_cannot_pay_a_paid_order(app, world, folder):
    order = coin_order(world)
    first = upload(world, order, folder)
    first_id = first.id
    reject_receipt(db.session, world.users["finance"], first, "blurry")
    second = upload(world, order, folder)
    confirm_receipt(db.session, world.users["finance"], second, TODAY, "2160.00")
    db.session.commit()
    with pytest.raises(DomainError):
        upload(world, order, folder)  # the order is paid: no more receipts
    assert db.session.get(BankTransferReceipt, first_id).status == "rejected"


def test_rejecting_keeps_the_order_pending_and_allows_another_upload(app, world, folder):
    order = coin_order(world)
    receipt = upload(world, order, folder)
    with pytest.raises(DomainError):
        upload(world, order, folder)  # one receipt awaits confirmation already
    with pytest.raises(DomainError):
        reject_receipt(db.session, world.users["finance"], receipt, "  ")
    reject_receipt(db.session, world.users["finance"], receipt, "The amount on the receipt is unreadable.")
    db.session.commit()
    db.session.expire_all()
    assert order.status == "pending"
    assert (receipt.status, receipt.comment) == ("rejected", "The amount on the receipt is unreadable.")
    assert coin_balance(world.acme) == Decimal("0")
    again = upload(world, order, folder)
    assert again.status == "submitted"
    with pytest.raises(AlreadyReviewed):
        confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2160.00")


def test_an_amount_mismatch_never_pays_the_order(app, world, folder):
    """What arrived decides: 2,100.00 of a 2,160.00 order is credited to the CNY balance, no coins."""
    order = coin_order(world)
    receipt = upload(world, order, folder, amount="2100.00")
    confirm_receipt(db.session, world.users["finance"], receipt, TODAY, "2100.00")
    db.session.commit()
    db.session.expire_all()
    assert order.status == "pending" and receipt.status == "credited"
    assert coin_balance(world.acme) == Decimal("0")
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("2100.00")


def test_receipt_roles_and_scope(app, world, folder):
    order = coin_order(world)
    with pytest.raises(DomainError):
        submit_receipt(db.session, world.users["globex"], order, "X", "1", "2160.00", "r.png", PNG, folder)
    receipt = upload(world, order, folder)
    with pytest.raises(DomainError):
        confirm_receipt(db.session, world.users["customer"], receipt, TODAY, "2160.00")
    with pytest.raises(DomainError):
        confirm_receipt(db.session, world.users["sales"], receipt, TODAY, "2160.00")


def test_a_coin_wallet_order_cannot_be_paid_by_transfer(app, world, folder):
    give_coins(world.acme, 10_000)
    make_account(world.acme, "one")
    upgrade_vip(db.session, world.users["customer"], accounts(), "vip", "1", TODAY)
    vip_order = db.session.scalar(select(Order).where(Order.kind == "vip_upgrade"))
    with pytest.raises(DomainError):
        upload(world, vip_order, folder)


# --- HTTP: wiring, roles, scope -----------------------------------------------------------------------

def test_member_list_shows_levels_and_only_own_accounts(app, client, login, world):
    make_account(world.acme, "acme-vip", "vip", date.today() + timedelta(days=10))
    make_account(world.fleet, "fleet-old", "svip", date.today() - timedelta(days=10))
    make_account(world.globex, "globex-vip-member", "vip", date.today() + timedelta(days=10))
    db.session.commit()
    login("customer")
    page = client.get(MEMBERS).get_data(as_text=True)
    assert "acme-vip" in page and "fleet-old" in page and "lapsed" in page
    assert "globex-vip-member" not in page
    page = client.get(MEMBERS + "?search=acme").get_data(as_text=True)
    assert "acme-vip" in page and "fleet-old" not in page
    answer = client.get(MEMBERS + "export/xlsx/")
    assert answer.status_code == 200
    cells = {c for r in openpyxl.load_workbook(io.BytesIO(answer.data), read_only=True).active.iter_rows(
        values_only=True) for c in r}
    assert "acme-vip" in cells and "globex-vip-member" not in cells
    login.logout()
    login("globex")
    assert "acme-vip" not in client.get(MEMBERS).get_data(as_text=True)


def test_member_pages_refuse_other_roles(app, client, login, world):
    login("finance")
    assert client.get(MEMBERS).status_code == 403
    assert client.get(MEMBERS + "new/").status_code == 403
    assert client.get("/admin/coins/").status_code == 403
    assert client.get("/admin/bank_transfer/").status_code == 403
    login.logout()
    login("customer")
    assert client.get("/admin/bank_transfer_review/").status_code == 403


def test_http_create_with_random_passwords_shows_them_once_and_downloads_once(app, client, login, world):
    login("customer")
    answer = post(client, MEMBERS + "new/", {"company_id": str(world.north.id), "pattern": "web{01-20}",
                                            "password_kind": "random", "fixed_password": ""})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    shown = dict(re.findall(r"<td>(web\d\d)</td><td><code>([^<]+)</code></td>", page))
    assert len(shown) == 20
    rows = accounts()
    assert [a.login for a in rows] == sorted(shown) and {a.company_id for a in rows} == {world.north.id}
    for account in rows[:3]:
        assert check_password_hash(account.password_hash, shown[account.login])
        assert shown[account.login] not in account.password_hash
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)

    login.logout()
    login("north")  # another user cannot take it
    assert post(client, MEMBERS + "passwords/", {"token": token}).status_code == 404
    login.logout()
    login("customer")
    download = post(client, MEMBERS + "passwords/", {"token": token})
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in download.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(download.data), read_only=True).active
    rows_in_file = {r[1]: r[2] for r in list(sheet.iter_rows(values_only=True))[1:]}
    assert rows_in_file == shown
    assert post(client, MEMBERS + "passwords/", {"token": token}).status_code == 404
    assert not list((Path(client.application.instance_path) / "once").glob(f"*{token}*"))
    # The page shown again (list, detail) never carries a password.
    listing = client.get(MEMBERS).get_data(as_text=True)
    assert not any(password in listing for password in shown.values())


def test_password_download_expires_after_fifteen_minutes(app, client, login, world):
    login("customer")
    page = post(client, MEMBERS + "new/", {"company_id": str(world.acme.id), "pattern": "exp{1-2}",
                                          "password_kind": "random"}).get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    (path,) = (Path(client.application.instance_path) / "once").glob(f"*{token}*")
    old = time.time() - 16 * 60
    os.utime(path, (old, old))
    assert post(client, MEMBERS + "passwords/", {"token": token}).status_code == 404
    assert not path.exists()


def test_http_create_reports_taken_logins(app, client, login, world):
    make_account(world.globex, "dup05")
    db.session.commit()
    login("customer")
    page = post(client, MEMBERS + "new/", {"company_id": str(world.acme.id), "pattern": "dup{01-10}",
                                          "password_kind": "default"}, follow_redirects=True).get_data(as_text=True)
    assert "dup05" in page and "Nothing was created" in page
    assert [a.login for a in accounts()] == ["dup05"]


def test_http_create_refuses_a_foreign_company(app, client, login, world):
    login("customer")
    post(client, MEMBERS + "new/", {"company_id": str(world.globex.id), "pattern": "x{1-2}",
                                   "password_kind": "default"})
    assert accounts() == []


def test_http_upgrade_confirms_on_the_server_then_debits(app, client, login, world):
    give_coins(world.acme, 50_000)
    mine = [make_account(world.acme, f"up{i}") for i in (1, 2)]
    foreign = make_account(world.globex, "gx-up")
    db.session.commit()
    ids = [str(a.id) for a in mine] + [str(foreign.id)]
    login("customer")
    answer = post(client, MEMBERS + "action/", [("action", "upgrade_vip")] + [("rowid", i) for i in ids])
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "14,400 coins" in page and "gx-up" not in page and f"#{foreign.id}" in page
    assert {a.vip_level for a in accounts()} == {"none"}  # nothing happens before the confirmation

    answer = post(client, MEMBERS + "upgrade/", [("level", "svip"), ("years", "0.5"),
                                                 ("payer_id", str(world.acme.id))] + [("rowid", i) for i in ids])
    page = answer.get_data(as_text=True)
    assert "21,600 coins" in page
    quote_hash = re.search(r'name="quote_hash" value="([0-9a-f]{64})"', page).group(1)

    answer = post(client, MEMBERS + "upgrade/", [("level", "svip"), ("years", "0.5"), ("confirm", "1"),
                                                 ("payer_id", str(world.acme.id)), ("quote_hash", quote_hash)]
                  + [("rowid", i) for i in ids], follow_redirects=True)
    page = answer.get_data(as_text=True)
    assert "2 accounts upgraded" in page and f"#{foreign.id}" in page
    assert {a.login: a.vip_level for a in accounts()} == {"up1": "svip", "up2": "svip", "gx-up": "none"}
    assert coin_balance(world.acme) == Decimal(50_000 - 21_600)


def test_http_upgrade_without_enough_coins_says_so(app, client, login, world):
    give_coins(world.acme, 1_000)
    account = make_account(world.acme, "poor")
    db.session.commit()
    login("customer")
    page = post(client, MEMBERS + "action/", [("action", "upgrade_vip"), ("rowid", str(account.id))]
                ).get_data(as_text=True)
    assert "6,200 coins missing" in page and "rd-confirm" not in page
    page = post(client, MEMBERS + "upgrade/", [("level", "vip"), ("years", "1"), ("confirm", "1"),
                                               ("expected_coins", "7200"), ("rowid", str(account.id))],
                follow_redirects=True).get_data(as_text=True)
    assert "6,200 coins missing" in page
    assert accounts()[0].vip_level == "none" and coin_balance(world.acme) == Decimal("1000")


def test_http_refresh_reports(app, client, login, world):
    old = make_account(world.acme, "old-vip", "vip", date.today() - timedelta(days=3))
    foreign = make_account(world.globex, "gx-old", "vip", date.today() - timedelta(days=3))
    db.session.commit()
    login("customer")
    page = post(client, MEMBERS + "action/", [("action", "refresh"), ("rowid", str(old.id)),
                                              ("rowid", str(foreign.id))], follow_redirects=True
                ).get_data(as_text=True)
    assert "old-vip" in page and f"#{foreign.id}" in page
    assert {a.login: a.vip_level for a in accounts()} == {"old-vip": "none", "gx-old": "vip"}


def test_member_view_keeps_other_tenants_rows_out(app, client, login, world):
    """test_scope's checks for this view, with the Globex row it needs."""
    row = make_account(world.globex, "gx-secret", "vip", date.today() + timedelta(days=5))
    db.session.commit()
    before = (row.vip_level, row.vip_expires_on, row.active)
    login("customer")
    assert "gx-secret" not in client.get(MEMBERS).get_data(as_text=True)
    for page in (f"details/?id={row.id}", f"edit/?id={row.id}"):
        answer = client.get(MEMBERS + page)
        assert answer.status_code in (302, 403, 404) and "gx-secret" not in answer.get_data(as_text=True)
    post(client, MEMBERS + "edit/?id=" + str(row.id), {"active": ""})
    for name in ("upgrade_vip", "refresh"):
        answer = post(client, MEMBERS + "action/", [("action", name), ("rowid", str(row.id))], follow_redirects=True)
        assert answer.status_code == 200 and "gx-secret" not in answer.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.get(MemberAccount, row.id)
    assert (row.vip_level, row.vip_expires_on, row.active) == before


def test_member_details_never_show_the_password_hash(app, client, login, world):
    create(world, "hash{1-1}")
    db.session.commit()
    account = accounts()[0]
    login("customer")
    page = client.get(MEMBERS + f"details/?id={account.id}").get_data(as_text=True)
    assert "hash1" in page and account.password_hash not in page


def test_buy_coins_page_computes_the_price_and_creates_the_order(app, client, login, world):
    login("customer")
    page = client.get("/admin/coins/?level=svip&accounts=10&years=1").get_data(as_text=True)
    assert "CN¥2,160.00 = 216,000 coins" in page and 'value="2160.00"' in page
    answer = post(client, "/admin/coins/", {"company_id": str(world.acme.id), "amount": "2160.00",
                                           "method": "bank_transfer"})
    assert answer.status_code == 302
    order = db.session.scalar(select(Order).where(Order.kind == "coins"))
    assert answer.headers["Location"].endswith(f"/admin/bank_transfer/upload/?order={order.number}")
    answer = post(client, "/admin/coins/", {"company_id": str(world.acme.id), "amount": "72", "method": "wechat"})
    assert "/sandbox/pay/" in answer.headers["Location"] and "method=wechat" in answer.headers["Location"]
    post(client, "/admin/coins/", {"company_id": str(world.globex.id), "amount": "72", "method": "wechat"})
    assert db.session.scalar(select(func.count()).select_from(Order).where(Order.company_id == world.globex.id,
                                                                           Order.kind == "coins")) == 0


def test_pay_page_offers_the_bank_transfer_and_leads_to_the_receipt_upload(app, client, login, world):
    """Seed 000 §2: an unpaid coin order → 支付 → 银行转账 → 第二步：上传转账电子回单 (staff paying on a
    customer's behalf cannot upload a receipt, so they are not offered it)."""
    order = coin_order(world)
    number = order.number
    db.session.commit()
    pay = f"/admin/renewal_center/order/{number}/pay/"
    login("customer")
    page = client.get(pay).get_data(as_text=True)
    assert 'id="rd-method-bank_transfer" value="bank_transfer"' in page
    assert "then upload the electronic receipt of the transfer" in page
    answer = post(client, pay, {"method": "bank_transfer"})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/admin/bank_transfer/upload/?order={number}")
    login.logout()
    login("finance")
    assert 'value="bank_transfer"' not in client.get(pay).get_data(as_text=True)
    answer = post(client, pay, {"method": "bank_transfer"})
    assert "/bank_transfer/" not in answer.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(BankTransferReceipt)) == 0


def test_an_unpaid_coin_order_is_found_in_the_order_records_and_paid_by_transfer(app, client, login, world):
    """Seed 000 §2 第二步: 订单管理 → 选择“vip/奥币”和“未付款” → find the order → 【支付】 → 【银行转账】."""
    order = coin_order(world)
    paid = coin_order(world, amount="72.00")
    mark_paid(db.session, paid, "wechat", "wx-test-1", Decimal("72.00"), "CNY", TODAY)
    number = order.number
    db.session.commit()
    login("customer")
    listing = client.get("/admin/order_record/?flt0_order_type_equals=coins&flt1_status_equals=pending")
    page = listing.get_data(as_text=True)
    assert number in page and paid.number not in page
    assert f"/admin/renewal_center/order/{number}/pay/" in page  # its 支付
    answer = post(client, f"/admin/renewal_center/order/{number}/pay/", {"method": "bank_transfer"})
    assert answer.headers["Location"].endswith(f"/admin/bank_transfer/upload/?order={number}")


def test_a_transfer_credited_to_the_balance_pays_the_coin_order_on_its_pay_page(app, client, login, world, tmp_path):
    """A transfer of another amount is credited to the CNY balance; the coin order's pay page then takes it."""
    from actions.bank_transfers import confirm_receipt
    from actions.wallets import balance_of

    order = coin_order(world)
    number = order.number
    confirm_receipt(db.session, world.users["finance"], upload(world, order, tmp_path, amount="2200.00"), TODAY,
                    "2200.00")
    db.session.commit()
    pay = f"/admin/renewal_center/order/{number}/pay/"
    login("customer")
    assert 'value="balance"' in client.get(pay).get_data(as_text=True)
    post(client, pay, {"method": "balance"}, follow_redirects=True)
    db.session.expire_all()
    assert db.session.scalar(select(Order.status).where(Order.number == number)) == "paid"
    assert balance_of(db.session, world.acme.id, "CNY") == Decimal("40.00")


def test_pay_page_offers_no_bank_transfer_for_a_coin_wallet_order(app, client, login, world):
    """A VIP upgrade is paid in coins: there is no bank account for coins."""
    order = Order(company_id=world.acme.id, kind="vip_upgrade", status="pending", currency="COIN",
                  total=Decimal(7200), number="VP-COIN-1", created_by_id=world.users["customer"].id)
    db.session.add(order)
    db.session.commit()
    login("customer")
    page = client.get("/admin/renewal_center/order/VP-COIN-1/pay/").get_data(as_text=True)
    assert 'value="bank_transfer"' not in page


def test_coin_order_message_reads_the_amount_in_the_readers_format(app, client, login, world):
    """"1440.00 元" read like a code: the amount is grouped like every other amount on the page."""
    login("customer")
    page = post(client, "/admin/coins/", {"company_id": str(world.acme.id), "amount": "2160.00",
                                          "method": "bank_transfer"}, follow_redirects=True).get_data(as_text=True)
    assert "216,000 coins for 2,160.00 CNY" in page


def _upload(client, number, data, name, amount="2160.00"):
    return post(client, f"/admin/bank_transfer/upload/?order={number}",
                {"payer_company": "Acme <b>Ltd</b>", "payer_account": "6222", "amount": amount,
                 "file": (io.BytesIO(data), name)}, content_type="multipart/form-data", follow_redirects=True)


def test_http_bank_transfer_upload_review_and_file_access(app, client, login, world, monkeypatch):
    monkeypatch.setitem(client.application.config, "BANK_RECEIPT_MAX_BYTES", 200)
    order = coin_order(world)
    number = order.number
    db.session.commit()
    login("customer")
    assert number in client.get("/admin/bank_transfer/").get_data(as_text=True)
    page = _upload(client, number, b"hello, not an image", "receipt.png").get_data(as_text=True)
    assert "not a PNG, JPEG or PDF" in page
    page = _upload(client, number, PNG + b"\x00" * 300, "receipt.png").get_data(as_text=True)
    assert "larger than" in page
    assert db.session.scalar(select(func.count()).select_from(BankTransferReceipt)) == 0
    page = _upload(client, number, PNG, "receipt.png").get_data(as_text=True)
    assert "finance will confirm" in page and "Acme &lt;b&gt;Ltd&lt;/b&gt;" in page
    receipt = db.session.scalar(select(BankTransferReceipt))
    customer_file = f"/admin/bank_transfer/file/{receipt.id}"
    answer = client.get(customer_file)
    assert answer.status_code == 200 and answer.data == PNG
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["Content-Disposition"].startswith("attachment")

    login.logout()
    login("globex")
    assert client.get(customer_file).status_code == 404
    login.logout()
    login("sales")
    assert client.get(customer_file).status_code == 403
    assert client.get(f"/admin/bank_transfer_review/file/?id={receipt.id}").status_code == 403
    login.logout()
    login("finance")
    assert client.get(customer_file).status_code == 403  # finance uses its own page
    answer = client.get(f"/admin/bank_transfer_review/file/?id={receipt.id}")
    assert answer.status_code == 200 and answer.data == PNG and "attachment" in answer.headers["Content-Disposition"]
    listing = client.get("/admin/bank_transfer_review/").get_data(as_text=True)
    assert number in listing and "Acme &lt;b&gt;Ltd&lt;/b&gt;" in listing
    review = f"/admin/bank_transfer_review/review/?id={receipt.id}"
    assert "rd-confirm" in client.get(review).get_data(as_text=True)
    page = confirm_post(client, review, {"decision": "confirm", "received": "2,160.00"},
                        follow_redirects=True).get_data(as_text=True)
    assert "is paid" in page
    page = post(client, review, {"decision": "confirm", "received": "2160.00"},
                follow_redirects=True).get_data(as_text=True)
    assert "reviewed already" in page
    assert coin_balance(world.acme) == Decimal("216000")
    assert ledger_differences(db.session) == []


def test_http_finance_sees_a_mismatch_and_can_reject(app, client, login, world):
    order = coin_order(world)
    receipt = upload(world, order, Path(client.application.instance_path) / "receipts", amount="216.00")
    db.session.commit()
    login("finance")
    review = f"/admin/bank_transfer_review/review/?id={receipt.id}"
    page = client.get(review).get_data(as_text=True)
    assert "rd-mismatch" in page
    page = post(client, review, {"decision": "confirm"}, follow_redirects=True).get_data(as_text=True)
    assert "Amount received" in page  # what arrived must be typed
    page = confirm_post(client, review, {"decision": "reject", "reason": "Wrong <amount>"},
                        follow_redirects=True).get_data(as_text=True)
    assert "still awaits payment" in page
    db.session.expire_all()
    assert order.status == "pending" and receipt.status == "rejected"
    login.logout()
    login("customer")
    page = client.get(f"/admin/bank_transfer/upload/?order={order.number}").get_data(as_text=True)
    assert "Wrong &lt;amount&gt;" in page and "rd-receipt-form" in page
