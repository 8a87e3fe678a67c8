"""Auto-renewal commits batch by batch: the write lock is held for one batch, a run that stops keeps
its finished batches, and the next run renews exactly the rest (nothing twice)."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

import actions.billing_jobs as billing_jobs
from actions.billing_jobs import auto_renew
from actions.wallets import ledger_differences
from models import AuditEvent, AutoRenewAttempt, Device, Order, OrderLine, db, utcnow
from tests.test_billing_jobs import DAY, TODAY, configure, fund, run

DUE = date(2026, 11, 20)


@pytest.fixture
def many_due(world, monkeypatch):
    """12 of Acme's devices due this month, batches of 5 devices."""
    monkeypatch.setattr(billing_jobs, "BATCH_DEVICES", 5)
    monkeypatch.setattr(billing_jobs, "TRANSACTION_SECONDS", 0)  # a commit after every batch
    for device in world.devices.values():
        device.expires_on = date(2027, 6, 1)
    db.session.execute(Device.__table__.insert(), [
        {"number": f"DUE{i:03d}", "name": "", "device_type": "GPS tracker", "company_id": world.acme.id,
         "status": "active", "expires_on": DUE, "package_id": world.packages["GPS-M"].id, "created_at": utcnow()}
        for i in range(12)])
    configure(world.acme, auto_renew=True)
    fund(world.acme, "1000.00")
    db.session.commit()
    return world


def renewed_expiries() -> list[date]:
    return list(db.session.scalars(select(Device.expires_on).where(Device.number.like("DUE%"))))


def test_commit_is_called_after_each_batch(app, many_due):
    commits = []
    summary = auto_renew(db.session, TODAY, commit=lambda: (commits.append(1), db.session.commit()))
    db.session.commit()
    assert summary.renewed == 12 and len(summary.orders) == 3
    assert len(commits) == 3  # 5 + 5 + 2 devices
    assert renewed_expiries() == [date(2026, 12, 20)] * 12


def test_a_run_that_stops_keeps_its_batches_and_the_next_run_does_the_rest(app, many_due):
    calls = []

    def commit_then_fail():
        db.session.commit()
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the machine went away")

    with pytest.raises(RuntimeError):
        auto_renew(db.session, TODAY, commit=commit_then_fail)
    if db.engine.dialect.name == "sqlite":  # the connection's own settings are back after a failed run too
        assert db.session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() > 0
    db.session.rollback()
    assert sorted(renewed_expiries()) == [DUE] * 2 + [date(2026, 12, 20)] * 10
    summary = auto_renew(db.session, TODAY, commit=db.session.commit)
    db.session.commit()
    assert summary.renewed == 2  # the renewed ten now expire after the period: not due again
    assert renewed_expiries() == [date(2026, 12, 20)] * 12
    assert db.session.scalar(select(func.count()).select_from(Order).where(Order.kind == "renewal")) == 3
    assert db.session.scalar(select(func.count()).select_from(OrderLine)
                             .where(OrderLine.auto_renew_from == DUE)) == 12  # each renewed once, its line the claim
    assert db.session.scalar(select(func.count()).select_from(AutoRenewAttempt)) == 0
    assert ledger_differences(db.session) == []


def test_cli_commits_per_batch(app, many_due):
    """The command's transactions each hold one batch: four commits (three batches and the summary)."""
    commits = []
    session = db.session()
    original = session.commit

    def counting_commit():
        commits.append(1)
        original()

    session.commit = counting_commit
    try:
        result = run(app, "billing", "auto-renew", "--today", DAY)
    finally:
        del session.commit
    assert result.exit_code == 0, result.output
    assert "12 devices renewed in 3 orders" in result.output
    assert len(commits) == 4
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "auto_renew", AuditEvent.model == "order")) == 3


def test_batches_share_a_transaction_until_it_has_lasted_transaction_seconds(app, many_due, monkeypatch):
    monkeypatch.setattr(billing_jobs, "TRANSACTION_SECONDS", 3600)
    commits = []
    summary = auto_renew(db.session, TODAY, commit=lambda: (commits.append(1), db.session.commit()))
    db.session.commit()
    assert summary.renewed == 12 and len(summary.orders) == 3  # still one order per batch
    assert commits == []  # the caller's commit at the end is the only one
    assert renewed_expiries() == [date(2026, 12, 20)] * 12


def test_a_run_gives_the_sqlite_connection_its_settings_back(app, many_due):
    """During a run: a 32 MB page cache and no WAL checkpoint after each commit; afterwards the connection's own
    settings (SQLite's defaults here), so that the caller's last commit checkpoints the run's pages once."""
    if db.engine.dialect.name != "sqlite":
        return
    pragma = lambda name: db.session.connection().exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
    before = (pragma("cache_size"), pragma("wal_autocheckpoint"))
    assert before[1] > 0
    seen = []
    summary = auto_renew(db.session, TODAY, commit=lambda: (
        seen.append((pragma("cache_size"), pragma("wal_autocheckpoint"))), db.session.commit()))
    assert summary.renewed == 12
    assert seen and all(during == (-billing_jobs.SQLITE_CACHE_KIB, 0) for during in seen)
    assert (pragma("cache_size"), pragma("wal_autocheckpoint")) == before
    db.session.commit()


def test_refusals_are_recorded_a_statement_at_a_time_and_reported_whole(app, many_due, monkeypatch):
    """Refusals go REFUSALS_PER_STATEMENT at a time, each with the batch commit; all are recorded once."""
    monkeypatch.setattr(billing_jobs, "REFUSALS_PER_STATEMENT", 5)
    db.session.execute(Device.__table__.update().where(Device.number.like("DUE%")).values(package_id=None))
    db.session.commit()
    commits = []
    summary = auto_renew(db.session, TODAY, commit=lambda: (commits.append(1), db.session.commit()))
    db.session.commit()
    assert (summary.no_package, summary.renewed, len(commits)) == (12, 0, 3)
    assert db.session.scalar(select(func.count()).select_from(AutoRenewAttempt)
                             .where(AutoRenewAttempt.outcome == "no_package")) == 12
    assert "DUE000, DUE001" in "\n".join(summary.lines)
    again = auto_renew(db.session, TODAY)
    assert (again.no_package, again.skipped) == (0, 12)


def test_refusals_for_one_reason_make_one_report_line_naming_the_first_devices(app, many_due):
    """Devices whose package cannot be priced are reported one line per reason (how many, the first numbers),
    not a line per device; each refusal keeps the device's own message."""
    gps_m = many_due.packages["GPS-M"]
    gps_m.active = False
    db.session.execute(Device.__table__.update().where(Device.number == "DUE011").values(number="DUE: 011"))
    db.session.commit()
    summary = auto_renew(db.session, TODAY)
    db.session.commit()
    assert (summary.failed, summary.renewed) == (12, 0)
    [line] = [line for line in summary.lines if "GPS-M" in line]  # a number holding ": " is no other reason
    assert "12 devices not renewed: package GPS-M is no longer sold" in line
    assert "DUE000, DUE001" in line and "DUE: 011" in line
    messages = db.session.scalars(select(AutoRenewAttempt.message).order_by(AutoRenewAttempt.id)).all()
    assert messages[0] == "DUE000: package GPS-M is no longer sold" and len(messages) == 12
