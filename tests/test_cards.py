"""Cards (seed 002) through actions: verification, inventory, stock counter, commission, settlement,
withdrawals; refusals name the row and write nothing; secrets never appear in plain text."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from actions import DomainError, NotAllowed
from actions.cards import (
    CardInput, add_card, adjust_on_hand, free_stock, post_stock_document, reserve, reveal_pin,
)
from actions.crypto import SecretsNotConfigured, mask, vault_from_config
from actions.distribution import (
    approve_settlement, approve_withdrawal, close_withdrawal, commission_balance, hold_received, month_true_up,
    pay_withdrawal, prepare_settlement, record_refund, record_sale, release_held, save_rule, submit_settlement,
    submit_withdrawal,
)
from actions.wallets import credit, ledger_differences, wallet_for
from extensions import WRITE_INTENT
from conftest import make_company, make_user
from models import (
    AuditEvent, CardMovement, CommissionEntry, CommissionSettlement, LedgerEntry, SimCard, Withdrawal, db,
)

pytest_plugins = ("card_fixtures",)

TODAY = date(2026, 12, 1)
PIN = "739251"
ID_NUMBER = "110101199003074512"
ACCOUNT = "6222020200112233445"


def card(n: int, package="SIM-39", valid=TODAY + timedelta(days=365), pin=None) -> CardInput:
    return CardInput(f"8986{n:016d}", f"1380000{n:04d}", pin or f"{n:06d}", package, valid)


def _sale(s, cards, order_id):
    from models import Order

    order = Order(number=f"CS-{order_id}", kind="card_sale", status="paid", company_id=cards["b"].id,
                  currency="CNY", total=D("370.50"))
    s.add(order)
    s.flush()
    return record_sale(s, order_id=order.id, seller_id=cards["b"].id, package_id=cards["package"].id, cards=10,
                       base=D("370.50"), currency="CNY", month="2026-12"), order


def test_worked_example_through_entries_statement_and_wallet(cards):
    s, u = db.session, cards["users"]
    a, b = cards["a"], cards["b"]
    save_rule(s, u["finance"], b, cards["package"].id, mode="split", kind="percent", level1_percent="8",
              level2_percent="10", hold_days=7)
    entries, order = _sale(s, cards, 1)
    assert [(e.company_id, e.level, e.amount_minor) for e in entries] == [(b.id, 1, 2964), (a.id, 2, 741)]
    reversals = record_refund(s, order_id=order.id, refund_key="refund:1", refunded_cards=2, month="2026-12")
    assert [(e.company_id, e.amount_minor) for e in reversals] == [(b.id, -593), (a.id, -148)]
    assert hold_received(s, order.id, TODAY) == 2
    assert release_held(s, TODAY + timedelta(days=6)) == 0
    assert release_held(s, TODAY + timedelta(days=7)) == 2
    statement = prepare_settlement(s, u["finance"], b, "2026-12")
    assert statement.total_minor == 2964 - 593
    submit_settlement(s, u["finance"], statement)
    with pytest.raises(NotAllowed):
        approve_settlement(s, u["finance"], statement)
    approve_settlement(s, u["finance2"], statement)
    s.commit()
    assert commission_balance(s, b.id) == D("23.71")
    assert s.scalar(select(func.count()).select_from(CommissionEntry).where(
        CommissionEntry.settlement_id == statement.id, CommissionEntry.state == "posted")) == 2
    with pytest.raises(DomainError):  # nothing left to settle
        prepare_settlement(s, u["finance"], b, "2026-12")
    assert ledger_differences(s) == []


def test_graduated_month_is_trued_up_once(cards):
    s, u, b = db.session, cards["users"], cards["b"]
    save_rule(s, u["finance"], b, cards["package"].id, mode="override", kind="graduated",
              tiers="0-10000:6\n10000-50000:8\n50000-:10")
    from models import Order

    order = Order(number="CS-BIG", kind="card_sale", status="paid", company_id=b.id, currency="CNY",
                  total=D("62000.00"))
    s.add(order)
    s.flush()
    entries = record_sale(s, order_id=order.id, seller_id=b.id, package_id=cards["package"].id, cards=1590,
                          base=D("62000.00"), currency="CNY", month="2026-12")
    assert [e.amount_minor for e in entries] == [372000]  # provisional 6 %: 3,720.00
    up = month_true_up(s, b.id, cards["package"].id, "2026-12")
    assert up.amount_minor == 128000  # +1,280.00
    assert month_true_up(s, b.id, cards["package"].id, "2026-12") is None


def test_unverified_or_misnamed_or_excessive_withdrawals_are_refused_and_write_nothing(cards, vault):
    s, u, b = db.session, cards["users"], cards["b"]
    credit(s, wallet_for(s, b.id, "CNY", kind="commission"), D("100.00"), "commission", "test:seed", u["admin"])
    s.commit()
    before = s.scalar(select(func.count()).select_from(LedgerEntry))
    for kwargs, message in (
        ({"amount": "100.01", "account_name": "Beta Zhang"},
         r"Amount: CN¥100\.01 is more than the available commission CN¥100\.00\."),  # read bare numbers, no currency
        ({"amount": "50", "account_name": "Somebody Else"}, "verified legal name"),
        ({"amount": "50", "account_name": "Beta Zhang", "account_number": "12"}, "8 to 30 digits"),
    ):
        with pytest.raises(DomainError, match=message):
            submit_withdrawal(s, u["b_admin"], vault, b, bank_name="ICBC Shenzhen",
                              **{"account_number": ACCOUNT, **kwargs})
        s.rollback()
    newcomer = make_company("Unverified C", b)
    who = make_user("c_admin", "customer_admin", newcomer)
    with pytest.raises(DomainError, match="no verified real-name profile"):
        submit_withdrawal(s, who, vault, newcomer, amount="1", bank_name="x", account_name="C", account_number=ACCOUNT)
    s.rollback()
    assert s.scalar(select(func.count()).select_from(LedgerEntry)) == before
    assert s.scalar(select(func.count()).select_from(Withdrawal)) == 0


def test_withdrawal_held_on_submit_paid_or_released_once(cards, vault):
    s, u, b = db.session, cards["users"], cards["b"]
    credit(s, wallet_for(s, b.id, "CNY", kind="commission"), D("100.00"), "commission", "test:seed", u["admin"])
    first = submit_withdrawal(s, u["b_admin"], vault, b, amount="60.00", bank_name="ICBC",
                              account_name="Beta Zhang", account_number=ACCOUNT)
    s.commit()
    assert commission_balance(s, b.id) == D("40.00")
    with pytest.raises(DomainError, match="more than the available"):
        submit_withdrawal(s, u["b_admin"], vault, b, amount="60.00", bank_name="ICBC", account_name="Beta Zhang",
                          account_number=ACCOUNT)
    s.rollback()
    approve_withdrawal(s, u["finance"], first)
    pay_withdrawal(s, u["finance"], first, "BANK-REF-1")
    second = submit_withdrawal(s, u["b_admin"], vault, b, amount="40.00", bank_name="ICBC",
                               account_name="Beta Zhang", account_number=ACCOUNT)
    close_withdrawal(s, u["finance"], second, "rejected", "account closed")
    with pytest.raises(DomainError):
        close_withdrawal(s, u["b_admin"], second, "cancelled")
    s.commit()
    assert first.status == "paid" and second.status == "rejected"
    assert commission_balance(s, b.id) == D("40.00")
    assert first.account_masked == "****45"
    assert ledger_differences(s) == []


def in_threads(count: int, work) -> list:
    """Run `work(session)` in `count` threads released together, each with its own session (BEGIN IMMEDIATE)."""
    barrier = threading.Barrier(count)
    engine = db.engine

    def one(_i):
        WRITE_INTENT.set(True)
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait(timeout=60)
            try:
                value = work(session)
                session.commit()
                return value
            except Exception as exc:
                session.rollback()
                return exc

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_fifty_orders_for_the_last_ten_cards_reserve_exactly_ten(cards, vault):
    s = db.session
    for n in range(10):
        add_card(s, cards["users"]["support"], vault, card(n), TODAY)
    s.commit()
    package_id = cards["package"].id
    outcomes = in_threads(50, lambda session: reserve(session, package_id, 0, 1))
    assert sorted(map(str, outcomes)).count("True") == 10 and outcomes.count(False) == 40
    s.expire_all()
    assert free_stock(s, package_id, 0) == 0


def test_twenty_approvals_of_one_settlement_post_once(cards):
    s, u, b = db.session, cards["users"], cards["b"]
    save_rule(s, u["finance"], b, cards["package"].id, mode="override", kind="percent", level1_percent="8")
    _entries, order = _sale(s, cards, 7)
    hold_received(s, order.id, TODAY)
    release_held(s, TODAY + timedelta(days=30))
    statement = prepare_settlement(s, u["finance"], b, "2026-12")
    submit_settlement(s, u["finance"], statement)
    s.commit()
    sid, approver_id = statement.id, u["finance2"].id

    def approve(session):
        from models import User

        return approve_settlement(session, session.get(User, approver_id), session.get(CommissionSettlement, sid))

    outcomes = in_threads(20, approve)
    assert sum(isinstance(o, LedgerEntry) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, (LedgerEntry, DomainError)) for o in outcomes), outcomes
    s.expire_all()
    assert s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "commission")) == 1
    assert commission_balance(s, b.id) == D("29.64")


def test_twenty_approvals_and_rejections_of_one_withdrawal_move_money_once(cards, vault):
    s, u, b = db.session, cards["users"], cards["b"]
    credit(s, wallet_for(s, b.id, "CNY", kind="commission"), D("100.00"), "commission", "test:seed", u["admin"])
    withdrawal = submit_withdrawal(s, u["b_admin"], vault, b, amount="100.00", bank_name="ICBC",
                                   account_name="Beta Zhang", account_number=ACCOUNT)
    s.commit()
    wid, finance_ids = withdrawal.id, (u["finance"].id, u["finance2"].id)
    counter = iter(range(20))
    lock = threading.Lock()

    def decide(session):
        from models import User

        with lock:
            i = next(counter)
        actor = session.get(User, finance_ids[i % 2])
        row = session.get(Withdrawal, wid)
        if i % 2:
            return close_withdrawal(session, actor, row, "rejected", "wrong branch")
        return approve_withdrawal(session, actor, row)

    outcomes = in_threads(20, decide)
    assert sum(o is None for o in outcomes) == 1, outcomes
    s.expire_all()
    row = s.get(Withdrawal, wid)
    releases = s.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "withdrawal_release"))
    assert (row.status, releases) in (("approved", 0), ("rejected", 1))
    assert ledger_differences(s) == []


def test_bad_cards_are_named_and_nothing_is_written(cards, vault):
    s, support = db.session, cards["users"]["support"]
    add_card(s, support, vault, card(1, pin=PIN), TODAY)
    s.commit()
    for bad, message in (
        (card(1), "ICCID 89860000000000000001 is already"),
        (card(2, pin=PIN), "PIN is already used"),
        (card(3, package="NOPE"), "plan NOPE is not an active card package"),
        (card(4, valid=TODAY - timedelta(days=1)), "is in the past"),
        (card(5, valid=date(9999, 12, 31)), "valid until 9999-12-31 is after 2199-12-31"),
        (CardInput("12345", "13800000005", "1234", "SIM-39", TODAY), "ICCID 12345"),
    ):
        with pytest.raises(DomainError, match=message):
            add_card(s, support, vault, bad, TODAY)
        s.rollback()
    assert s.scalar(select(func.count()).select_from(SimCard)) == 1
    with pytest.raises(NotAllowed):
        add_card(s, cards["users"]["b_admin"], vault, card(9), TODAY)


def test_stock_documents_move_cards_and_refuse_cards_not_in_the_holders_stock(cards, vault):
    s, support, a = db.session, cards["users"]["support"], cards["a"]
    rows = [add_card(s, support, vault, card(n), TODAY) for n in range(3)]
    package_id = cards["package"].id
    post_stock_document(s, support, "transfer", [rows[0].iccid, rows[1].iccid], to_holder=a.id)
    assert free_stock(s, package_id, a.id) == 2 and free_stock(s, package_id, 0) == 1
    with pytest.raises(DomainError, match=rows[0].iccid):
        post_stock_document(s, support, "stock_out", [rows[0].iccid, rows[2].iccid])
    with pytest.raises(DomainError, match="89869999"):
        post_stock_document(s, support, "stock_out", ["89869999999999999999"])
    post_stock_document(s, support, "stock_out", [rows[2].iccid], note="damaged")
    assert rows[2].status == "voided" and free_stock(s, package_id, 0) == 0
    assert [m.to_status for m in s.scalars(select(CardMovement).where(CardMovement.card_id == rows[0].id)
                                          .order_by(CardMovement.id))] == ["in_stock", "in_stock"]
    assert reserve(s, package_id, a.id, 2) and not reserve(s, package_id, a.id, 1)
    with pytest.raises(DomainError, match="reserved"):
        adjust_on_hand(s, package_id, a.id, -1)


def test_pin_reveal_needs_role_and_reason_and_audits_without_the_secret(cards, vault):
    s, u = db.session, cards["users"]
    row = add_card(s, u["support"], vault, card(5, pin=PIN), TODAY)
    with pytest.raises(NotAllowed):
        reveal_pin(s, u["support"], vault, row, "customer asked")
    with pytest.raises(DomainError, match="Reason"):
        reveal_pin(s, u["finance"], vault, row, " ")
    assert reveal_pin(s, u["finance"], vault, row, "customer lost the card") == PIN
    assert row.pin_masked == "****" + PIN[-2:] == mask(PIN)
    audit = s.scalars(select(AuditEvent).where(AuditEvent.action == "reveal")).all()
    assert len(audit) == 1 and PIN not in audit[0].summary


def test_no_secret_in_plain_text_in_the_database_file(cards, vault):
    s, u, b = db.session, cards["users"], cards["b"]
    add_card(s, u["support"], vault, card(6, pin=PIN), TODAY)
    credit(s, wallet_for(s, b.id, "CNY", kind="commission"), D("10.00"), "commission", "test:seed", u["admin"])
    submit_withdrawal(s, u["b_admin"], vault, b, amount="10", bank_name="ICBC", account_name="Beta Zhang",
                      account_number=ACCOUNT)
    s.commit()
    for table in db.metadata.sorted_tables:  # every stored value, on any database
        text = " ".join(str(v) for row in s.execute(table.select()) for v in row)
        for secret in (PIN, ID_NUMBER, ACCOUNT):
            assert secret not in text, f"{secret} found in plain text in table {table.name}"
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        return
    with db.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
    folder = Path(url.database).parent
    blob = b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith(Path(url.database).name))
    for secret in (PIN, ID_NUMBER, ACCOUNT):
        assert secret.encode() not in blob, f"{secret} found in plain text in the database file"


def test_production_refuses_to_start_without_keys():
    with pytest.raises(SecretsNotConfigured):
        vault_from_config({"ENV_NAME": "production"})
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = vault_from_config({"ENV_NAME": "production", "CARD_ENCRYPTION_KEYS": old, "CARD_BLIND_INDEX_KEY": "k"})
    token = before.encrypt("1234")
    rotated = vault_from_config({"ENV_NAME": "production", "CARD_ENCRYPTION_KEYS": f"{new},{old}",
                                 "CARD_BLIND_INDEX_KEY": "k"})
    assert rotated.decrypt(token) == "1234" and rotated.decrypt(rotated.rotate(token)) == "1234"
    assert before.blind_index(" 12 34", "pin") == rotated.blind_index("1234", "pin")


@pytest.mark.parametrize("key", ["not-base64!", "c2hvcnQ=", "A" * 42 + "=="])  # bad padding, 5 bytes, 31 bytes
def test_production_refuses_to_start_with_a_key_that_is_not_a_fernet_key(key):
    """The keys are checked at start-up (cryptography itself loads on the first encryption)."""
    with pytest.raises(SecretsNotConfigured, match="Fernet key"):
        vault_from_config({"ENV_NAME": "production", "CARD_ENCRYPTION_KEYS": key, "CARD_BLIND_INDEX_KEY": "k"})


def test_two_withdrawals_racing_for_one_balance_never_overdraw(cards, vault):
    s, u, b = db.session, cards["users"], cards["b"]
    credit(s, wallet_for(s, b.id, "CNY", kind="commission"), D("100.00"), "commission", "test:seed", u["admin"])
    s.commit()
    submitter_id, company_id = u["b_admin"].id, b.id

    def withdraw(session):
        from models import Company, User

        return submit_withdrawal(session, session.get(User, submitter_id), vault, session.get(Company, company_id),
                                 amount="70.00", bank_name="ICBC", account_name="Beta Zhang", account_number=ACCOUNT)

    outcomes = in_threads(10, withdraw)
    assert sum(isinstance(o, Withdrawal) for o in outcomes) == 1, outcomes
    assert all(isinstance(o, (Withdrawal, DomainError)) for o in outcomes), outcomes
    s.expire_all()
    assert commission_balance(s, b.id) == D("30.00")
    assert s.scalar(select(func.count()).select_from(Withdrawal)) == 1
    assert ledger_differences(s) == []
