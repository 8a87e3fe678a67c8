"""The expiry import's commit, a chunk per transaction: progress, a conflict set back, resuming after a
crash, and two commit clicks at once (importers.expiry.commit)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm.attributes import set_committed_value

from importers import expiry
from importers.expiry import ImportRejected, commit, plan_path, preview, read_rows
from models import AuditEvent, Device, ExpiryImport, db, utcnow
from tests.conftest import make_device, post
from tests.test_expiry_import import URL, latest_import, page_text, upload, workbook_bytes
from tests.test_import_locks import Statements

DEVICES = 45
CHUNK = 10
OLD = date(2026, 1, 1)


class Crash(BaseException):
    """The process dies: nothing after it runs (not even an `except Exception`)."""


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(expiry, "COMMIT_CHUNK", CHUNK)


@pytest.fixture(autouse=True)
def import_folder(client, tmp_path, monkeypatch):
    monkeypatch.setitem(client.application.config, "IMPORT_FOLDER", str(tmp_path / "imports"))
    return tmp_path / "imports"


def new_expiry(i: int) -> date:
    return date(2028, 1, 1) + timedelta(days=i % 5)


@pytest.fixture
def devices(world) -> list[str]:
    """DEVICES devices expiring on OLD, numbered in the order of their ids."""
    numbers = [f"CHK{i:03d}" for i in range(DEVICES)]
    for number in numbers:
        make_device(number, world.fleet, expires_on=OLD)
    db.session.commit()
    return numbers


def rows(numbers: list[str]) -> list[tuple[str, date]]:
    return [(number, new_expiry(i)) for i, number in enumerate(numbers)]


def previewed(world, numbers: list[str]):
    """A previewed import of every device in `numbers` and its report."""
    actor = world.users["sales"]
    report = preview(db.session, actor, read_rows(workbook_bytes(rows(numbers))))
    assert report.ok and len(report.changes) == len(numbers)
    record = ExpiryImport(actor_id=actor.id, filename="chunks.xlsx", file_sha256="0" * 64,
                          rows_total=report.rows_total, rows_changed=len(report.changes))
    db.session.add(record)
    db.session.commit()
    return record, report


def expiries(numbers: list[str]) -> list[date]:
    db.session.expire_all()
    found = dict(db.session.execute(select(Device.number, Device.expires_on).where(Device.number.in_(numbers))).all())
    return [found[number] for number in numbers]


def import_state(record_id: int) -> tuple[str, int, int]:
    db.session.expire_all()
    record = db.session.get(ExpiryImport, record_id)
    return record.status, record.rows_applied, record.rows_changed


def audit_events(action: str = "expiry_import") -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def device_update_rows(log) -> int:
    """How many device rows the logged UPDATE device statements named, together."""
    return sum(n for sql, n in log if sql.startswith("UPDATE device "))


def crashing_after(chunks: int):
    """A commit callable that commits, and kills the process once the claim and `chunks` chunks are committed."""
    calls = []

    def commit_then_crash():
        db.session.commit()
        calls.append(1)
        if len(calls) == chunks + 1:
            raise Crash

    return commit_then_crash


def test_each_chunk_is_its_own_transaction_that_moves_the_progress(app, world, devices):
    record, report = previewed(world, devices)
    seen = []

    def commit_and_look():
        db.session.commit()
        state = db.session.execute(select(ExpiryImport.status, ExpiryImport.rows_applied)
                                   .where(ExpiryImport.id == record.id)).one()
        changed = db.session.scalar(select(func.count()).select_from(Device)
                                    .where(Device.number.in_(devices), Device.expires_on != OLD))
        seen.append((*state, changed))
        db.session.commit()

    assert commit(db.session, world.users["sales"], report, record, commit=commit_and_look) == DEVICES
    assert seen == [("committing", 0, 0), ("committing", 10, 10), ("committing", 20, 20), ("committing", 30, 30),
                    ("committing", 40, 40), ("committed", 45, 45)]
    assert expiries(devices) == [new for _number, new in rows(devices)]
    assert import_state(record.id) == ("committed", 45, 45)
    (event,) = audit_events()
    assert event.summary_data["key"] == "audit.expiry_import"
    assert event.summary.startswith("Expiry import #") and f"CHK001: {OLD} → {new_expiry(1)}" in event.summary
    assert all(f",{db.session.scalar(select(Device.id).where(Device.number == n))}," in event.ids for n in devices)


def test_audit_summary_is_shown_in_the_readers_language(app, world, devices):
    from flask_babel import force_locale

    from actions.texts import render

    record, report = previewed(world, devices[:3])
    commit(db.session, world.users["sales"], report, record, commit=db.session.commit)
    (event,) = audit_events()
    with force_locale("zh_Hans_CN"):
        shown = render(event.summary_data, event.summary)
    assert f"CHK000: {OLD} → {new_expiry(0)}" in shown and "chunks.xlsx" in shown


def test_a_device_changed_since_the_preview_sets_the_applied_chunks_back(app, world, devices, tmp_path):
    """Chunks 1–3 applied, chunk 4 finds CHK033 changed: chunk 4 rolled back, 1–3 set back, the import failed."""
    record, report = previewed(world, devices)
    db.session.execute(update(Device).where(Device.number == "CHK033").values(expires_on=date(2031, 3, 3)))
    db.session.commit()
    with Statements(db.engine) as statements:
        with pytest.raises(ImportRejected) as refused:
            commit(db.session, world.users["sales"], report, record, plan_file=plan_path(tmp_path, record.id),
                   commit=db.session.commit)
    text = str(refused.value)
    assert "1 devices changed since its preview (CHK033)" in text and "Nothing was changed" in text
    assert expiries(devices) == [date(2031, 3, 3) if n == "CHK033" else OLD for n in devices]
    # three chunks forward, the fourth tried, the three set back: no device was touched otherwise
    assert device_update_rows(statements.log) == 30 + 10 + 30
    status, applied, _changed = import_state(record.id)
    assert (status, applied) == ("failed", 0)
    assert "CHK033" in db.session.get(ExpiryImport, record.id).errors
    assert audit_events() and [e.summary_data["key"] for e in audit_events()] == ["audit.expiry_import.set_back"]
    assert "the 30 devices already set were set back" in audit_events()[0].summary


def test_set_back_leaves_a_device_someone_changed_after_it_was_set(app, world, devices):
    record, report = previewed(world, devices)
    db.session.execute(update(Device).where(Device.number == "CHK033").values(expires_on=date(2031, 3, 3)))
    db.session.commit()
    calls = []

    def commit_then_someone_edits():
        db.session.commit()
        calls.append(1)
        if len(calls) == 2:  # chunk 1 is committed: someone edits one of its devices
            db.session.execute(update(Device).where(Device.number == "CHK005").values(expires_on=date(2032, 5, 5)))
            db.session.commit()

    with pytest.raises(ImportRejected, match="CHK033"):
        commit(db.session, world.users["sales"], report, record, commit=commit_then_someone_edits)
    after = dict(zip(devices, expiries(devices)))
    assert after["CHK005"] == date(2032, 5, 5) and after["CHK033"] == date(2031, 3, 3)
    assert {d for n, d in after.items() if n not in ("CHK005", "CHK033")} == {OLD}
    assert "1 of them left as someone else changed them since" in audit_events()[0].summary


def test_a_conflict_in_one_transaction_is_rolled_back_by_the_caller(app, world, devices):
    """Without a commit callable everything is the caller's transaction: it raises, the caller rolls back."""
    record, report = previewed(world, devices)
    db.session.execute(update(Device).where(Device.number.in_(["CHK040", "CHK041"]))
                       .values(expires_on=date(2031, 3, 3)))
    db.session.commit()
    with pytest.raises(ImportRejected, match=r"2 devices changed since its preview \(CHK040, CHK041\)"):
        commit(db.session, world.users["sales"], report, record)
    db.session.rollback()
    assert set(expiries(devices[:40])) == {OLD}
    assert import_state(record.id)[0] == "previewed"


def test_conflict_through_the_page_says_nothing_was_changed(client, login, world, devices, monkeypatch):
    import admin_views.expiry_import as view_module

    login("sales")
    upload(client, workbook_bytes(rows(devices)))
    record_id = latest_import().id
    real_preview = view_module.preview

    def preview_then_someone_edits(*args, **kwargs):
        report = real_preview(*args, **kwargs)
        with db.engine.begin() as connection:  # another request, between the preview and the chunks
            connection.execute(update(Device).where(Device.number == "CHK012").values(expires_on=date(2031, 3, 3)))
        return report

    monkeypatch.setattr(view_module, "preview", preview_then_someone_edits)
    response = post(client, URL + f"commit/{record_id}", {}, follow_redirects=True)
    page = page_text(response)
    assert "changed since its preview (CHK012)" in page and "Nothing was changed" in page
    assert expiries(devices) == [date(2031, 3, 3) if n == "CHK012" else OLD for n in devices]
    assert latest_import().status == "failed"
    response = post(client, URL + f"commit/{record_id}", {}, follow_redirects=True)
    assert "cannot be committed" in page_text(response)


def test_an_interrupted_commit_shows_its_progress_and_resumes_where_it_stopped(
        client, login, world, devices, import_folder):
    login("sales")
    upload(client, workbook_bytes(rows(devices)))
    record = latest_import()
    report = preview(db.session, world.users["sales"], read_rows(workbook_bytes(rows(devices))))
    plan = plan_path(import_folder, record.id)
    with Statements(db.engine) as first:
        with pytest.raises(Crash):
            commit(db.session, world.users["sales"], report, record, plan_file=plan, commit=crashing_after(2))
    db.session.rollback()
    assert import_state(record.id) == ("committing", 20, 45)
    assert expiries(devices) == [new if i < 20 else OLD for i, (_n, new) in enumerate(rows(devices))]

    index = page_text(client.get(URL))
    assert "Being applied" in index and "20 of 45" in index
    page = page_text(client.get(URL + f"preview/{record.id}"))
    assert "Being applied: 20 of 45 devices." in page and 'id="rd-resume"' in page

    # Clicked again at once: the first commit may still be running, so this one does not run it twice.
    with client.application.app_context():
        web_engine = db.engine  # the engine of the app serving the requests
    with Statements(web_engine) as second:
        response = post(client, URL + f"commit/{record.id}", {}, follow_redirects=True)
    assert "is being committed by another request: 20 of 45 devices applied" in page_text(response)
    assert device_update_rows(second.log) == 0
    assert import_state(record.id) == ("committing", 20, 45)

    # No progress for two minutes: it was interrupted, committing it again resumes from device 21.
    db.session.execute(update(ExpiryImport).where(ExpiryImport.id == record.id)
                       .values(progress_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    with Statements(web_engine) as third:
        response = post(client, URL + f"commit/{record.id}", {}, follow_redirects=True)
    assert "Import #%s committed: 45 devices have a new expiry date." % record.id in page_text(response)
    assert expiries(devices) == [new for _number, new in rows(devices)]
    assert device_update_rows(first.log) == 20 and device_update_rows(third.log) == 25  # each device once
    assert import_state(record.id) == ("committed", 45, 45)
    assert len(audit_events()) == 1


def test_a_resume_waits_until_the_commit_made_no_progress_for_two_minutes(app, world, devices, tmp_path):
    record, report = previewed(world, devices)
    plan = plan_path(tmp_path, record.id)
    with pytest.raises(Crash):
        commit(db.session, world.users["sales"], report, record, plan_file=plan, commit=crashing_after(3))
    db.session.rollback()
    record = db.session.get(ExpiryImport, record.id)
    with pytest.raises(ImportRejected, match="being committed by another request: 30 of 45"):
        commit(db.session, world.users["sales"], None, record, utcnow() + timedelta(seconds=60), plan_file=plan,
               commit=db.session.commit)
    db.session.rollback()
    assert commit(db.session, world.users["sales"], None, record, utcnow() + timedelta(minutes=3), plan_file=plan,
                  commit=db.session.commit) == DEVICES
    assert expiries(devices) == [new for _number, new in rows(devices)]
    assert import_state(record.id) == ("committed", 45, 45)


def test_an_error_the_process_survives_lets_the_import_resume_at_once(app, world, devices, tmp_path, monkeypatch):
    record, report = previewed(world, devices)
    plan = plan_path(tmp_path, record.id)

    def audit_store_down(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(expiry, "record", audit_store_down)
    with pytest.raises(RuntimeError):
        commit(db.session, world.users["sales"], report, record, plan_file=plan, commit=db.session.commit)
    # The last chunk (devices 41–45 and the audit event) was rolled back; the four before it stay.
    assert import_state(record.id) == ("committing", 40, 45)
    assert db.session.get(ExpiryImport, record.id).progress_at is None
    monkeypatch.undo()
    monkeypatch.setattr(expiry, "COMMIT_CHUNK", CHUNK)
    assert commit(db.session, world.users["sales"], None, db.session.get(ExpiryImport, record.id),
                  plan_file=plan, commit=db.session.commit) == DEVICES
    assert expiries(devices) == [new for _number, new in rows(devices)]
    assert len(audit_events()) == 1


def test_a_resume_without_its_kept_changes_before_any_chunk_waits_to_be_committed_again(app, world, devices, tmp_path):
    record, report = previewed(world, devices)
    with pytest.raises(Crash):
        commit(db.session, world.users["sales"], report, record, commit=crashing_after(0))  # dies after the claim
    db.session.rollback()
    record = db.session.get(ExpiryImport, record.id)
    with pytest.raises(ImportRejected, match="interrupted before it changed anything"):
        commit(db.session, world.users["sales"], None, record, utcnow() + timedelta(minutes=3),
               plan_file=plan_path(tmp_path, record.id), commit=db.session.commit)
    assert import_state(record.id)[:2] == ("previewed", 0)
    assert set(expiries(devices)) == {OLD}


def test_of_two_commits_claiming_at_once_one_wins_the_other_is_told(app, world, devices):
    """The other click claimed the import between this one's preview and its claim."""
    record, report = previewed(world, devices)
    with db.engine.begin() as connection:
        connection.execute(update(ExpiryImport).where(ExpiryImport.id == record.id)
                           .values(status="committing", progress_at=utcnow()))
    db.session.commit()
    db.session.refresh(record)
    set_committed_value(record, "status", "previewed")  # what this request read before the other one claimed
    with pytest.raises(ImportRejected, match=f"Import #{record.id} is being committed by another request"):
        commit(db.session, world.users["sales"], report, record, commit=db.session.commit)
    db.session.rollback()
    assert set(expiries(devices)) == {OLD}


def test_a_second_click_while_the_commit_runs_is_refused(client, login, world, devices, import_folder):
    """The second request comes in between two chunks of the first: it is told, the first goes on alone."""
    login("sales")
    upload(client, workbook_bytes(rows(devices)))
    record = latest_import()
    report = preview(db.session, world.users["sales"], read_rows(workbook_bytes(rows(devices))))
    answers = []

    def commit_then_click_again():
        db.session.commit()
        if len(answers) == 1 or not answers:
            response = post(client, URL + f"commit/{record.id}", {}, follow_redirects=True)
            answers.append(page_text(response))

    assert commit(db.session, world.users["sales"], report, record, plan_file=plan_path(import_folder, record.id),
                  commit=commit_then_click_again) == DEVICES
    assert len(answers) == 2
    assert all(f"Import #{record.id} is being committed by another request" in answer for answer in answers)
    assert "0 of 45 devices applied" in answers[0] and "10 of 45 devices applied" in answers[1]
    assert expiries(devices) == [new for _number, new in rows(devices)]
    assert import_state(record.id) == ("committed", 45, 45)
    assert len(audit_events()) == 1


def test_a_preview_gone_bad_does_not_fail_an_import_another_request_claimed(client, login, world, devices,
                                                                             monkeypatch):
    """This click's preview finds a deleted device while another click has claimed the import: the other
    commit goes on; this one records nothing over it."""
    import admin_views.expiry_import as view_module

    login("sales")
    upload(client, workbook_bytes(rows(devices)))
    record_id = latest_import().id
    db.session.delete(db.session.scalars(select(Device).where(Device.number == "CHK007")).one())
    db.session.commit()
    real_preview = view_module.preview

    def preview_while_another_claims(*args, **kwargs):
        report = real_preview(*args, **kwargs)
        with db.engine.begin() as connection:
            connection.execute(update(ExpiryImport).where(ExpiryImport.id == record_id)
                               .values(status="committing", progress_at=utcnow()))
        return report

    monkeypatch.setattr(view_module, "preview", preview_while_another_claims)
    response = post(client, URL + f"commit/{record_id}", {})
    assert "unknown device CHK007" in page_text(response)
    assert import_state(record_id)[:2] == ("committing", 0)
