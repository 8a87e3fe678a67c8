"""The card console's sorting phase holds no lock while it sorts: on SQLite a POST's first statement
takes the write lock, so the rows are sorted before sort_upload's first statement."""
from __future__ import annotations

import importers.cards as card_import
from importers.cards import existing_keys, read_upload, sort_upload
from models import db
from tests.test_cards import TODAY
from tests.test_cards_import import good, workbook

pytest_plugins = ("card_fixtures",)


def test_rows_are_sorted_before_the_first_statement(cards, vault, monkeypatch):
    s, support = db.session, cards["users"]["support"]
    upload = read_upload(vault, workbook([good(n) for n in range(5)] + [good(3)]), "cards.xlsx", TODAY)
    in_db = existing_keys(s, upload)
    s.commit()  # as the console does: the lookups were their own transaction, the actor is expired
    seen = []
    sort_rows = card_import._sort_rows

    def watched(*args):
        seen.append(s().in_transaction())
        return sort_rows(*args)

    monkeypatch.setattr(card_import, "_sort_rows", watched)
    batch, rows = sort_upload(s, support, upload, TODAY, in_db=in_db)
    assert seen == [False]
    assert (batch.rows_total, batch.rows_duplicate_in_file, rows) == (6, 1, [])
    s.rollback()
