"""Rolling back a card import (every card of it removed) asks on the confirmation page first."""
from __future__ import annotations

from sqlalchemy import func, select

from importers.cards import commit_chunk, preview_import
from models import SimCard, db
from test_cards import TODAY
from test_cards_import import good, workbook
from test_confirm import check_asks_first

pytest_plugins = ("card_fixtures",)


def test_rolling_back_a_card_import_asks_first(app, client, login, cards, vault):
    support = cards["users"]["support"]
    with app.test_request_context():
        batch = preview_import(db.session, support, vault, workbook([good(n) for n in range(3)]), "三张.xlsx", TODAY)
        commit_chunk(db.session, support, batch)
    db.session.commit()
    login("support")
    cards_left = lambda: db.session.scalar(select(func.count()).select_from(SimCard))  # noqa: E731
    assert cards_left() == 3
    check_asks_first(client, f"/admin/simcard/import/rollback/?id={batch.id}", {},
                     lambda: cards_left() == 0, f"Remove every card of import {batch.id} (三张.xlsx) from the inventory.")
