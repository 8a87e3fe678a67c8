"""Issue 10 item 8: uniqueness held by the database, not only by a read before the write.

Each test takes away the friendly read-check (as when a concurrent request files the same
value between the check and the write): the unique index refuses the second row, the action
names the value, and one row remains.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from flask_migrate import upgrade
from sqlalchemy import func, select

import actions.invoices
import actions.offline_recharge
import actions.tenants
from actions import DomainError
from actions.invoices import issue_invoice
from actions.tenants import onboard
from conftest import make_app, post
from models import Company, InvoiceRequest, OfflineRecharge, db
from tests.test_invoices import TODAY, ask, fresh, ordinary_title, paid_order, users
from tests.test_offline_recharge import apply
from tests.test_onboarding import CODE_A, CODE_B, fields


pytestmark = pytest.mark.usefixtures("request_unless_client")  # actions run in a request


@pytest.fixture
def no_read_check(monkeypatch):
    """The read-before-write checks pass, as they do for two requests racing each other."""
    monkeypatch.setattr(actions.offline_recharge, "_check_reference", lambda *args, **kwargs: None)
    monkeypatch.setattr(actions.invoices, "_check_invoice_number", lambda *args, **kwargs: None)
    monkeypatch.setattr(actions.tenants, "_refuse_duplicates", lambda *args, **kwargs: None)


def test_a_recharge_reference_filed_twice_is_refused_by_the_database(world, no_read_check):
    apply(world, reference="BANK-9")
    db.session.commit()
    with pytest.raises(DomainError, match="Reference number: BANK-9 is already used by another application of "
                                          "the same company; nothing was saved."):
        apply(world, reference="BANK-9")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OfflineRecharge)
                             .where(OfflineRecharge.reference == "BANK-9")) == 1
    apply(world, reference="BANK-9", company=world.globex)  # another company's transfer
    apply(world, reference="")
    apply(world, reference="")  # empty references never collide
    db.session.commit()


def test_editing_a_reference_into_a_taken_one_is_refused(world, no_read_check):
    apply(world, reference="BANK-1")
    second = apply(world, reference="BANK-2")
    db.session.commit()
    with pytest.raises(DomainError, match="BANK-1 is already used"):
        actions.offline_recharge.edit_application(
            db.session, world.users["sales"], second, second.company_id, second.payer, second.currency,
            second.amount, "BANK-1")
    db.session.rollback()
    assert db.session.get(OfflineRecharge, second.id).reference == "BANK-2"


def test_an_invoice_number_issued_twice_is_refused_by_the_database(world, no_read_check):
    ordinary_title(world)
    first = ask(world, [paid_order(world.acme)])
    second = ask(world, [paid_order(world.acme)])
    issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, first.id), "N-7", TODAY, TODAY)
    db.session.commit()
    with pytest.raises(DomainError, match="Invoice number N-7 was given to another request already"):
        issue_invoice(db.session, users(world, "finance"), fresh(InvoiceRequest, second.id), "N-7", TODAY, TODAY)
    db.session.rollback()
    assert fresh(InvoiceRequest, second.id).status == "requested"
    assert db.session.scalar(select(func.count()).select_from(InvoiceRequest)
                             .where(InvoiceRequest.invoice_number == "N-7")) == 1


def test_a_tax_id_given_to_two_companies_is_refused_by_the_database(world, no_read_check):
    admin = world.users["admin"]
    onboard(db.session, admin, **fields(), method="scrypt:1024:8:1")
    db.session.commit()
    with pytest.raises(DomainError, match=f"Tax ID {CODE_A} belongs to another company already"):
        onboard(db.session, admin, **fields(company_name="Initech Copy", contact_email="copy@initech.example"),
                method="scrypt:1024:8:1")
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Company).where(Company.tax_id == CODE_A)) == 1


def test_the_company_page_names_a_taken_tax_id(client, login, world):
    world.acme.tax_id = CODE_B
    db.session.commit()
    login("admin")
    response = post(client, f"/admin/company/edit/?id={world.globex.id}",
                    {"name": world.globex.name, "status": "active", "tax_id": CODE_B.lower()},
                    follow_redirects=True)
    assert response.status_code == 200
    assert f"Tax ID {CODE_B} belongs to another company already" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Company, world.globex.id).tax_id is None


def test_the_migration_refuses_existing_duplicates_by_name(tmp_path: Path):
    """0008 fails before changing anything, listing each duplicated value and its rows."""
    app = make_app(f"sqlite:///{tmp_path / 'dup.db'}")
    with app.app_context():
        upgrade(revision="0005")
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO company (id, name, path, status, tax_id, created_at) VALUES "
                                 "(1, 'A', '/1/', 'active', 'T-1', '2026-01-01'), (2, 'B', '/2/', 'active', 'T-1', '2026-01-01'), "
                                 "(3, 'C', '/3/', 'active', '', '2026-01-01')"))
        config = app.extensions["migrate"].migrate.get_config()
        with pytest.raises(RuntimeError, match=r"company tax IDs: T-1 held by #1, #2"):
            command.upgrade(config, "head")  # the alembic command itself: Flask-Migrate's exits instead
        with db.engine.connect() as conn:
            indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list('company')")}
        assert "uq_company_tax_id" not in indexes
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE company SET tax_id = NULL WHERE id = 2"))
        upgrade()
        with db.engine.connect() as conn:
            indexes = {row[1] for row in conn.exec_driver_sql("PRAGMA index_list('company')")}
        assert "uq_company_tax_id" in indexes
        db.engine.dispose()
