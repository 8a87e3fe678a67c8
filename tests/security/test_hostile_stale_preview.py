"""A confirmation applies exactly the price it showed, or nothing.

The bulk VIP upgrade used to keep the level, term and payer of the preview in hidden fields of a
second form: previewing VIP, switching the visible form to SVIP and confirming upgraded the
accounts to VIP (and a half-year SVIP purchase turned paid VIP time into SVIP). The confirmation
now sends what is on screen with the digest of the quote that was shown; anything else is refused
with "the form changed, check the new price", and no row changes.
"""
from __future__ import annotations

import html
import re
from datetime import date, timedelta
from decimal import Decimal

from conftest import post
from db_snapshot import changed_tables, snapshot
from actions.wallets import credit, wallet_for
from models import MemberAccount, Order, Package, PackageCategory, db

MEMBERS = "/admin/memberaccount/"
HASH = re.compile(r'name="quote_hash" value="([0-9a-f]{64})"')
CHANGED = "The form changed since the price was shown: check the new price and confirm again."


def setup_accounts(world) -> list[str]:
    credit(db.session, wallet_for(db.session, world.acme.id, "COIN"), Decimal(200_000), "coin_purchase", "test:q")
    rows = [MemberAccount(company_id=world.acme.id, login="vip-left", vip_level="vip", password_hash="x",
                          vip_expires_on=date.today() + timedelta(days=120)),
            MemberAccount(company_id=world.acme.id, login="plain", vip_level="none", password_hash="x")]
    db.session.add_all(rows)
    db.session.commit()
    return [str(r.id) for r in rows]


def preview(client, ids, level, years, payer) -> str:
    return post(client, MEMBERS + "upgrade/", [("level", level), ("years", years), ("payer_id", str(payer)),
                                               ("confirm", "0")] + [("rowid", i) for i in ids]).get_data(as_text=True)


def confirm(client, ids, level, years, payer, quote_hash, **kwargs):
    return post(client, MEMBERS + "upgrade/", [("level", level), ("years", years), ("payer_id", str(payer)),
                                               ("confirm", "1"), ("quote_hash", quote_hash)]
                + [("rowid", i) for i in ids], **kwargs)


def test_previewing_vip_and_confirming_svip_is_refused_and_changes_nothing(client, login, world):
    ids = setup_accounts(world)
    login("customer")
    page = preview(client, ids, "vip", "1", world.acme.id)
    assert "14,400 coins" in page
    vip_hash = HASH.search(page).group(1)
    before = snapshot()
    answer = confirm(client, ids, "svip", "0.5", world.acme.id, vip_hash)
    assert answer.status_code == 200
    page = html.unescape(answer.get_data(as_text=True))
    assert CHANGED in page
    assert changed_tables(before) == []
    # The page now prices what the form says (SVIP, half a year, the VIP days left converted) …
    svip_hash = HASH.search(page).group(1)
    assert svip_hash != vip_hash
    assert "Remaining VIP days turned into SVIP" in page and "4,734 coins" in page  # 14,400 × 120 / 365
    assert "26,334 coins" in page  # 2 × 10,800 + 4,734
    # … and confirming that applies it.
    confirm(client, ids, "svip", "0.5", world.acme.id, svip_hash)
    db.session.expire_all()
    levels = {a.login: a.vip_level for a in db.session.scalars(
        db.select(MemberAccount).where(MemberAccount.login.in_(("vip-left", "plain"))))}
    assert levels == {"vip-left": "svip", "plain": "svip"}


def test_a_confirmation_without_the_digest_or_with_other_rows_is_refused(client, login, world):
    ids = setup_accounts(world)
    login("customer")
    vip_hash = HASH.search(preview(client, ids, "vip", "1", world.acme.id)).group(1)
    before = snapshot()
    for form_ids, quote_hash in ((ids, ""), (ids, "0" * 64), (ids[:1], vip_hash), (ids, vip_hash.upper())):
        page = html.unescape(confirm(client, form_ids, "vip", "1", world.acme.id, quote_hash).get_data(as_text=True))
        assert CHANGED in page, (form_ids, quote_hash)
    page = html.unescape(confirm(client, ids, "vip", "0.25", world.acme.id, vip_hash).get_data(as_text=True))
    assert CHANGED in page
    assert changed_tables(before) == []


def test_the_confirm_button_sends_the_visible_choices(client, login, world):
    """One form: the selects the user sees are the fields the confirm button posts."""
    ids = setup_accounts(world)
    login("customer")
    page = preview(client, ids, "vip", "1", world.acme.id)
    form = re.search(r'<form method="post"[^>]*id="rd-upgrade-form">(.*?)</form>', page, re.S).group(1)
    assert 'name="level"' in form and 'name="years"' in form and 'name="payer_id"' in form
    assert 'id="rd-confirm"' in form and 'name="quote_hash"' in form
    assert 'type="hidden" name="level"' not in page


def test_a_cash_seat_grant_at_a_changed_catalog_price_is_refused(client, login, world):
    """Sales enters seats paid in cash at the price the page showed; a price changed meanwhile refuses."""
    category = PackageCategory(code="SEAT", name="Seats", kind="seat")
    db.session.add(category)
    db.session.flush()
    package = Package(code="SEAT-BASIC", name="Basic seat", category_id=category.id, kind="seat", edition="basic",
                      amount=Decimal("10.00"), pricing="per_year", currency="CNY")
    db.session.add(package)
    db.session.commit()
    login("sales")
    form_page = client.get("/admin/seat_grant/").get_data(as_text=True)
    shown = HASH.search(form_page).group(1)
    db.session.get(Package, package.id).amount = Decimal("12.00")  # the catalog changes meanwhile
    db.session.commit()
    before = snapshot()
    form = {"company_id": str(world.acme.id), "edition": "basic", "quantity": "3", "note": "receipt 9",
            "quote_hash": shown}
    page = html.unescape(post(client, "/admin/seat_grant/", form).get_data(as_text=True))
    assert "The prices changed since the page was shown" in page and "CN¥12.00" in page
    assert changed_tables(before) == []
    form["quote_hash"] = HASH.search(page).group(1)  # the page now shows (and carries) the new price
    assert post(client, "/admin/seat_grant/", form).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(db.select(Order.total_minor).where(Order.note == "receipt 9")) == 3600
