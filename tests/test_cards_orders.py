"""Card orders (kind card_sale) through the core: the worked example end to end, never oversold,
cards picked from the shipper's stock, receipt, refunds of some cards with commission reversed."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from actions import DomainError, NotAllowed
from actions.card_orders import auto_receive, confirm_receipt, lines_for_refund, open_refund, place_order, ship
from actions.cards import CardInput, add_card, free_stock, post_stock_document
from actions.distribution import (
    approve_settlement, commission_balance, prepare_settlement, release_held, save_rule, submit_settlement,
)
from actions.orders import approve_refund, pay_with_balance, request_refund
from actions.wallets import balance_of, credit, ledger_differences, wallet_for
from models import CardMovement, CardOrder, CommissionEntry, Order, Package, User, db
from tests.test_cards import in_threads

pytest_plugins = ("card_fixtures",)

TODAY = date.today()


def _stock(cards, vault, n: int, start: int = 0, holder: int = 0, valid=None):
    s, support = db.session, cards["users"]["support"]
    rows = [add_card(s, support, vault, CardInput(f"8986{i:016d}", f"1350000{i:04d}", f"S{i:05d}", "SIM-39",
                                                  valid or TODAY + timedelta(days=365)), TODAY)
            for i in range(start, start + n)]
    if holder:
        post_stock_document(s, support, "transfer", [r.iccid for r in rows], to_holder=holder)
    return rows


def _fund(cards, company, amount="1000.00"):
    credit(db.session, wallet_for(db.session, company.id, "CNY"), D(amount), "offline_recharge",
           f"test:fund:{company.id}", cards["users"]["admin"])


def test_worked_example_end_to_end(cards, vault):
    s, u, a, b = db.session, cards["users"], cards["a"], cards["b"]
    save_rule(s, u["finance"], b, cards["package"].id, mode="split", kind="percent", level1_percent="8",
              level2_percent="10", hold_days=0)
    rows = _stock(cards, vault, 10)
    _fund(cards, b)
    card_order = place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=10,
                             customer_name="Zhang San", promotion_percent="5", promotion_label="5% invoice promotion")
    order = card_order.order
    assert order.total == D("370.50") and len(order.lines) == 10
    pay_with_balance(s, u["b_admin"], order, TODAY)
    s.commit()
    assert balance_of(s, b.id, "CNY") == D("629.50")
    assert free_stock(s, cards["package"].id, 0) == 0
    sale = s.scalars(select(CommissionEntry).order_by(CommissionEntry.level)).all()
    assert [(e.company_id, e.amount_minor, e.state) for e in sale] == [(b.id, 2964, "pending"), (a.id, 741, "pending")]

    ship(s, u["support"], card_order, [r.iccid for r in rows], "SF Express", "SF1234567890", TODAY)
    assert {r.status for r in rows} == {"shipped"} and all(r.order_line_id for r in rows)
    confirm_receipt(s, u["b_admin"], card_order, TODAY)
    s.commit()
    assert {r.status for r in rows} == {"received"}

    refund = request_refund(s, u["finance"], order, lines_for_refund(s, card_order, [rows[0].iccid, rows[1].iccid], None),
                            "two cards faulty")
    assert open_refund(s, card_order).id == refund.id
    approve_refund(s, u["finance2"], refund, TODAY)
    s.commit()
    assert balance_of(s, b.id, "CNY") == D("629.50") + D("74.10")
    assert {rows[0].status, rows[1].status} == {"returned"} and rows[0].order_line_id is None
    reversals = s.scalars(select(CommissionEntry).where(CommissionEntry.kind == "reversal")
                          .order_by(CommissionEntry.level)).all()
    assert [(e.company_id, e.amount_minor) for e in reversals] == [(b.id, -593), (a.id, -148)]
    assert card_order.status == "received" and open_refund(s, card_order) is None

    release_held(s, TODAY)
    statement = prepare_settlement(s, u["finance"], b, TODAY.strftime("%Y-%m"))
    submit_settlement(s, u["finance"], statement)
    approve_settlement(s, u["finance2"], statement)
    s.commit()
    assert commission_balance(s, b.id) == D("23.71")
    post_stock_document(s, u["support"], "adjustment", [rows[0].iccid])
    post_stock_document(s, u["support"], "stock_out", [rows[1].iccid], note="broken")
    assert (rows[0].status, rows[1].status) == ("in_stock", "voided")
    assert free_stock(s, cards["package"].id, 0) == 1
    assert ledger_differences(s) == []


def test_fifty_buyers_for_the_last_ten_cards(cards, vault):
    s, u, b = db.session, cards["users"], cards["b"]
    _stock(cards, vault, 10)
    _fund(cards, b, "100000.00")
    orders = [place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=1).order_id
              for _ in range(50)]
    s.commit()
    buyer_id = u["b_admin"].id

    def pay(session):
        order = session.get(Order, orders.pop())
        pay_with_balance(session, session.get(User, buyer_id), order, TODAY)
        return order.id

    outcomes = in_threads(50, pay)
    paid = [o for o in outcomes if isinstance(o, int)]
    assert len(paid) == 10, outcomes
    assert all(isinstance(o, (int, DomainError)) for o in outcomes), outcomes
    s.expire_all()
    assert s.scalar(select(func.count()).select_from(Order).where(Order.status == "paid")) == 10
    assert s.scalar(select(func.count()).select_from(CardOrder).where(CardOrder.reserved)) == 10
    assert balance_of(s, b.id, "CNY") == D("100000.00") - 10 * D("39.00")
    assert free_stock(s, cards["package"].id, 0) == 0
    assert ledger_differences(s) == []


def test_shipping_refuses_cards_not_in_the_shippers_stock_and_writes_nothing(cards, vault):
    s, u, a, b = db.session, cards["users"], cards["a"], cards["b"]
    held_by_a = _stock(cards, vault, 2, start=0, holder=a.id)
    platform = _stock(cards, vault, 2, start=10)
    expired = _stock(cards, vault, 1, start=20, valid=TODAY)
    _fund(cards, b)
    card_order = place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=2)
    pay_with_balance(s, u["b_admin"], card_order.order, TODAY)
    s.commit()
    movements = s.scalar(select(func.count()).select_from(CardMovement))
    for numbers, message in (
        ([held_by_a[0].iccid, platform[0].iccid], "not in the shipper's stock"),
        ([platform[0].iccid], "needs 2 cards"),
        ([platform[0].iccid, "89869999999999999999"], "not in the inventory"),
    ):
        with pytest.raises(DomainError, match=message):
            ship(s, u["support"], card_order, numbers, "SF", "T1", TODAY)
        s.rollback()
    with pytest.raises(DomainError, match="expired"):
        ship(s, u["support"], card_order, [platform[0].iccid, expired[0].iccid], "SF", "T1", TODAY + timedelta(days=1))
    s.rollback()
    with pytest.raises(NotAllowed):
        ship(s, u["b_admin"], card_order, [platform[0].iccid, platform[1].iccid], "SF", "T1", TODAY)
    s.rollback()
    assert s.scalar(select(func.count()).select_from(CardMovement)) == movements
    assert s.get(CardOrder, card_order.id).status == "awaiting_shipment"
    # A consignment holder ships its own stock.
    consigned = place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=2, holder_key=a.id)
    pay_with_balance(s, u["b_admin"], consigned.order, TODAY)
    ship(s, u["a_admin"], consigned, [c.iccid for c in held_by_a], "EMS", "E1", TODAY)
    assert consigned.status == "shipped"


def test_unshipped_partial_refund_gives_the_reservation_back_and_auto_receipt(cards, vault):
    s, u, b = db.session, cards["users"], cards["b"]
    rows = _stock(cards, vault, 5)
    _fund(cards, b)
    card_order = place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=5)
    pay_with_balance(s, u["b_admin"], card_order.order, TODAY)
    refund = request_refund(s, u["finance"], card_order.order, lines_for_refund(s, card_order, [], 2), "customer")
    approve_refund(s, u["finance2"], refund, TODAY)
    s.commit()
    assert free_stock(s, cards["package"].id, 0) == 2
    with pytest.raises(DomainError, match="needs 3 cards"):
        ship(s, u["support"], card_order, [r.iccid for r in rows[:2]], "SF", "T2", TODAY)
    s.rollback()
    ship(s, u["support"], card_order, [r.iccid for r in rows[:3]], "SF", "T2", TODAY)
    s.commit()
    assert auto_receive(s, TODAY + timedelta(days=3), days=7) == 0
    assert auto_receive(s, TODAY + timedelta(days=8), days=7) == 1
    assert auto_receive(s, TODAY + timedelta(days=9), days=7) == 0
    s.commit()
    assert card_order.status == "received"
    assert {r.status for r in rows[:3]} == {"received"} and {r.status for r in rows[3:]} == {"in_stock"}


def test_demo_world_has_distributors_that_can_sell(app):
    from actions.card_demo import seed_cards
    from actions.crypto import vault as current_vault

    made = seed_cards(db.session, current_vault(), method="scrypt:1024:8:1")
    db.session.commit()
    assert made == {"distributors": 2, "cards": 220, "quotes": 1}
    seller = db.session.scalar(select(User).where(User.username == "subdistributor"))
    package = db.session.scalar(select(Package).where(Package.code == "SIM-39"))
    card_order = place_order(db.session, seller, seller=seller.company, package=package, quantity=3)
    pay_with_balance(db.session, seller, card_order.order, TODAY)
    assert [e.amount_minor for e in db.session.scalars(select(CommissionEntry).order_by(CommissionEntry.level))] == \
        [936, 234]  # 117.00 × 8 % and × 2 %
    assert ledger_differences(db.session) == []


def test_a_sale_takes_cards_only_from_the_platform_the_seller_or_its_upstream(cards, vault):
    """holder_key was only checked to be a company: a distributor could sell (and reserve) an unrelated
    distributor's consignment, or its own sub-distributor's."""
    from conftest import make_company

    s, u, a, b = db.session, cards["users"], cards["a"], cards["b"]
    stranger = make_company("Stranger Cards")
    for holder in (stranger, b):
        _stock(cards, vault, 1, start=500 + holder.id, holder=holder.id)
    _fund(cards, a)
    s.commit()
    with pytest.raises(DomainError, match="Stranger Cards"):
        place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=1, holder_key=stranger.id)
    s.rollback()
    with pytest.raises(DomainError, match="Distributor B"):  # downstream stock is not the parent's to sell
        place_order(s, u["a_admin"], seller=a, package=cards["package"], quantity=1, holder_key=b.id)
    s.rollback()
    with pytest.raises(DomainError, match="Holder 999999 is not a company"):
        place_order(s, u["a_admin"], seller=a, package=cards["package"], quantity=1, holder_key=999_999)
    s.rollback()
    assert s.scalar(select(func.count()).select_from(CardOrder)) == 0
    for seller, user, holder in ((b, "b_admin", a.id), (b, "b_admin", b.id), (a, "a_admin", 0)):
        assert place_order(s, u[user], seller=seller, package=cards["package"], quantity=1,
                           holder_key=holder).holder_key == holder


def test_the_order_page_refuses_an_unrelated_holder_and_changes_nothing(cards, vault, client, login):
    from conftest import make_company, post

    stranger = make_company("Stranger Cards")
    _stock(cards, vault, 2, start=600, holder=stranger.id)
    _fund(cards, cards["b"])
    db.session.commit()
    login("b_admin")
    answer = post(client, "/admin/cardorder/place/", {
        "seller_id": str(cards["b"].id), "package_id": str(cards["package"].id), "quantity": "1",
        "holder": str(stranger.id)}, follow_redirects=True)
    assert "cannot sell cards held by Stranger Cards" in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0
    assert balance_of(db.session, cards["b"].id, "CNY") == D("1000.00")


def test_the_timeline_notes_the_system_writes_are_in_the_readers_language(cards, vault, client, login):
    """A refunded card's movement ("refund SE…") and an automatic receipt ("auto") were English on zh/vi pages."""
    s, u, b = db.session, cards["users"], cards["b"]
    rows = _stock(cards, vault, 2)
    _fund(cards, b)
    card_order = place_order(s, u["b_admin"], seller=b, package=cards["package"], quantity=2)
    order = card_order.order
    pay_with_balance(s, u["b_admin"], order, TODAY)
    ship(s, u["support"], card_order, [r.iccid for r in rows], "SF Express", "SF1234567890", TODAY)
    s.commit()
    assert auto_receive(s, TODAY + timedelta(days=8), days=7) == 1
    refund = request_refund(s, u["finance"], order, lines_for_refund(s, card_order, [rows[0].iccid], 0), "broken")
    approve_refund(s, u["finance2"], refund, TODAY + timedelta(days=8))
    u["support"].locale = "zh_Hans_CN"
    s.commit()
    notes = [(m.to_status, m.note, m.note_data) for m in s.scalars(
        select(CardMovement).where(CardMovement.card_id == rows[0].id).order_by(CardMovement.id))]
    assert notes[-2:] == [
        ("received", "Received automatically", {"key": "card.move.auto_received", "params": {}}),
        ("returned", f"Refund of order {order.number}", {"key": "card.move.refund", "params": {"order": order.number}})]
    assert notes[-3][1] == "SF Express SF1234567890" and notes[-3][2] is None  # typed: kept as typed
    from models import AuditEvent

    shipped = s.scalar(select(AuditEvent).where(AuditEvent.action == "ship", AuditEvent.model == "card_order"))
    assert shipped.summary == f"Order {order.number}: 2 cards shipped by SF Express"
    login("support")
    timeline = client.get(f"/admin/simcard/timeline/?id={rows[0].id}").get_data(as_text=True)
    assert f"订单 {order.number} 退款" in timeline and "自动签收" in timeline
    assert "Refund of order" not in timeline and "Received automatically" not in timeline


def test_the_migration_gives_older_timeline_notes_their_messages():
    """0039 turns the notes "auto" and "refund SE…" written before it into stored messages; typed notes stay."""
    import sqlalchemy as sa

    from conftest import database_at, migrate

    with database_at("cardnotes", "0038_expiry_import_errors_data") as app:
        utc = "+00" if db.engine.dialect.name == "postgresql" else ""
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO package_category (id, code, name, kind) VALUES (1, 'SIM', 'SIM', 'card')"))
            conn.execute(sa.text(
                "INSERT INTO package (id, code, name, category_id, kind, amount_minor, pricing, currency, active) "
                "VALUES (1, 'SIM-39', 'SIM 39', 1, 'card', 3900, 'per_month', 'CNY', true)"))
            conn.execute(sa.text(
                "INSERT INTO sim_card (id, iccid, phone, pin_enc, pin_index, pin_hint, package_id, valid_until, "
                f"status, holder_key, warehouse, created_at) VALUES (1, '89860000000000000001', '13500000001', "
                f"'x', 'i', '0001', 1, '2027-01-01', 'returned', 0, '', '2026-01-01 00:00:00{utc}')"))
            for id_, status, note in ((1, "received", "auto"), (2, "returned", "refund SE20260101-000001"),
                                      (3, "shipped", "SF auto"), (4, "in_stock", "refund by hand")):
                conn.execute(sa.text(
                    "INSERT INTO card_movement (id, card_id, at, to_status, note) VALUES "
                    f"({id_}, 1, '2026-01-01 00:00:00{utc}', '{status}', '{note}')"))
        migrate(app, "head")
        with app.test_request_context():
            notes = {m.id: (m.note, m.note_data) for m in db.session.scalars(select(CardMovement))}
        assert notes == {
            1: ("Received automatically", {"key": "card.move.auto_received", "params": {}}),
            2: ("Refund of order SE20260101-000001",
                {"key": "card.move.refund", "params": {"order": "SE20260101-000001"}}),
            3: ("SF auto", None), 4: ("refund by hand", None)}
        db.session.remove()
        migrate(app, "0038_expiry_import_errors_data", down=True)
        with db.engine.begin() as conn:
            assert dict(conn.execute(sa.text("SELECT id, note FROM card_movement")).all()) == {
                1: "auto", 2: "refund SE20260101-000001", 3: "SF auto", 4: "refund by hand"}
