"""再次邀请 has a cooldown: an organizer whose invitation mail was sent (or is queued) less than
INVITATION_COOLDOWN_MINUTES ago is refused, named, with the time it may be invited again in the
reader's zone; after a failed mail it may be invited at once; two presses at once send one mail.

Through the real page and a real SMTP server (aiosmtpd, the fixtures of test_outbox.py).
"""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

import actions.seats
from actions import DomainError
from actions.outbox import RenderedMail, queue_mail
from actions.seats import invitation_mail_key, reinvite_organizers
from actions.times import format_minute
from conftest import Login, post, race
from models import Company, MemberAccount, OutboxMail, SeatQuota, db, utcnow
from test_outbox import ORGANIZERS, create_organizer, inbox, mail_web, mails, seats, smtp, web  # noqa: F401

REFUSED = ("an invitation was sent less than %(minutes)s minutes ago; it may be sent again from %(time)s")


def account_id(login: str) -> int:
    return db.session.scalar(sa.select(MemberAccount.id).where(MemberAccount.login == login))


def reinvite(client, *logins: str) -> str:
    rows = [("rowid", str(account_id(login))) for login in logins]
    return post(client, ORGANIZERS + "action/", [("action", "reinvite"), *rows],
                follow_redirects=True).get_data(as_text=True)


def age_mails(minutes: int) -> None:
    """Every outbox mail queued and sent `minutes` earlier than it was."""
    back = timedelta(minutes=minutes)
    for mail in mails():
        mail.created_at -= back
        if mail.sent_at is not None:
            mail.sent_at -= back
    db.session.commit()


def refusal(login: str, again_from, zone=ZoneInfo("UTC"), minutes: int = 10) -> str:
    return f"{login} ({REFUSED % {'minutes': minutes, 'time': format_minute(again_from, zone, 'en')}})"


def sent_to() -> list[str]:
    return [m.recipients for m in mails() if m.status == "sent"]


def test_pressing_reinvite_twice_sends_one_mail_and_names_the_account_and_when(web, inbox, seats):
    Login(web)("customer")
    create_organizer(web, seats, "li@acme.example")
    age_mails(11)  # the invitation left 11 minutes ago

    first = reinvite(web, "li@acme.example")
    assert "1 organizers marked as invited again." in first and "Email sent to li@acme.example." in first
    second = reinvite(web, "li@acme.example")
    last = mails()[-1]
    assert "marked as invited again" not in second and "Email sent" not in second
    assert "Not changed: " + refusal("li@acme.example", last.sent_at + timedelta(minutes=10)) in second
    assert len(inbox.messages) == 2 and sent_to() == ["li@acme.example"] * 2
    from flask_babel import force_locale

    from actions.texts import render
    from models import AuditEvent

    [audit] = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "reinvite")).all()
    assert audit.summary == "Invitation sent again to li@acme.example"
    with force_locale("zh_Hans_CN"):
        assert render(audit.summary_data) == "已再次邀请：li@acme.example"


def test_the_time_is_the_readers_and_the_minutes_are_configured(web, inbox, seats, mail_web, monkeypatch):
    monkeypatch.setitem(mail_web.config, "INVITATION_COOLDOWN_MINUTES", 30)
    seats.acme.time_zone = "Asia/Ho_Chi_Minh"
    db.session.commit()
    Login(web)("customer")
    create_organizer(web, seats, "li@acme.example")
    age_mails(20)  # 20 minutes ago: past the default 10, inside the configured 30

    page = reinvite(web, "li@acme.example")
    [mail] = mails()
    expected = refusal("li@acme.example", mail.sent_at + timedelta(minutes=30), ZoneInfo("Asia/Ho_Chi_Minh"), 30)
    assert expected in page and len(inbox.messages) == 1


def test_after_a_failed_mail_the_organizer_may_be_invited_at_once(web, inbox, seats):
    inbox.refuse = {"li@acme.example"}
    Login(web)("customer")
    page = create_organizer(web, seats, "li@acme.example")
    assert "Email to li@acme.example failed" in page
    inbox.refuse.clear()

    again = reinvite(web, "li@acme.example")
    assert "1 organizers marked as invited again." in again and "Email sent to li@acme.example." in again
    assert [m.status for m in mails()] == ["failed", "sent"]
    # The one that left counts: pressing again is refused.
    assert "Not changed: li@acme.example (an invitation was sent less than 10 minutes" in reinvite(web,
                                                                                                 "li@acme.example")
    assert len(inbox.messages) == 1


def test_after_the_cooldown_the_organizer_may_be_invited_again(web, inbox, seats, monkeypatch):
    Login(web)("customer")
    create_organizer(web, seats, "li@acme.example")
    [mail] = mails()

    monkeypatch.setattr(actions.seats, "utcnow", lambda: mail.sent_at + timedelta(minutes=9, seconds=59))
    assert "Not changed: li@acme.example" in reinvite(web, "li@acme.example")
    monkeypatch.setattr(actions.seats, "utcnow", lambda: mail.sent_at + timedelta(minutes=10))
    page = reinvite(web, "li@acme.example")
    assert "1 organizers marked as invited again." in page and "Email sent to li@acme.example." in page
    assert len(inbox.messages) == 2


def test_of_several_the_ones_in_cooldown_are_named_and_the_others_invited(web, inbox, seats):
    Login(web)("customer")
    create_organizer(web, seats, "old@acme.example")
    age_mails(11)
    create_organizer(web, seats, "new@acme.example")

    page = reinvite(web, "old@acme.example", "new@acme.example")
    new_mail = next(m for m in mails() if m.recipients == "new@acme.example")
    assert "1 organizers marked as invited again." in page and "Email sent to old@acme.example." in page
    assert "Not changed: " + refusal("new@acme.example", new_mail.sent_at + timedelta(minutes=10)) in page
    assert sorted(sent_to()) == ["new@acme.example", "old@acme.example", "old@acme.example"]


# --- the action: which mail counts, and two presses at once ------------------------------------------------------

def organizer_now(world, login: str) -> MemberAccount:
    from actions.seats import create_organizer as create

    account = create(db.session, world.users["customer"], world.acme, login, "Na", "Li", "enterprise")
    db.session.commit()
    return account


def queue_invitation(account: MemberAccount, status: str) -> None:
    queue_mail(db.session, invitation_mail_key(account.id, account.invited_at), [account.login],
               RenderedMail("invitation", "body", "", "en"))
    db.session.execute(sa.update(OutboxMail).where(OutboxMail.recipients == account.login).values(status=status))
    db.session.commit()


def test_queued_and_sending_mail_counts_failed_mail_does_not(app, seats):
    db.session.execute(sa.update(SeatQuota).values(purchased=10))
    db.session.commit()
    with app.test_request_context():
        for status, refused in (("queued", True), ("sending", True), ("sent", True), ("failed", False)):
            account = organizer_now(seats, f"{status}@acme.example")
            queue_invitation(account, status)
            result = reinvite_organizers(db.session, seats.users["customer"], [account])
            db.session.commit()
            assert bool(result.refused) is refused, status
            assert bool(result.changed) is not refused, status


def test_no_mail_at_all_does_not_hold_the_reinvitation(app, seats):
    with app.test_request_context():
        account = organizer_now(seats, "li@acme.example")  # created by the action alone: no mail was queued
        result = reinvite_organizers(db.session, seats.users["customer"], [account])
        assert result.changed == ("li@acme.example",)


def test_two_presses_at_once_invite_once(app, seats):
    from admin_views.seats import queue_invitations

    account = organizer_now(seats, "li@acme.example")
    ident, customer_id = account.id, seats.users["customer"].id
    db.session.execute(sa.update(MemberAccount).values(invited_at=utcnow() - timedelta(hours=1)))
    db.session.commit()

    def press():
        actor = db.session.get(type(seats.users["customer"]), customer_id)
        result = reinvite_organizers(db.session, actor, [db.session.get(MemberAccount, ident)])
        if not result.changed:
            raise DomainError(result.refused[0][1])
        queue_invitations(result.extra["accounts"], actor)

    outcomes, errors = race(app, [press, press])
    assert not errors, errors
    assert sorted(outcomes) == ["refused", "won"]
    assert [m.recipients for m in mails()] == ["li@acme.example"]


def test_company_zone_unset_follows_the_language(app, seats):
    """Without a zone of its own, a Chinese reader reads Beijing time (actions.times.zone_for)."""
    from actions.times import reader_zone

    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert db.session.get(Company, seats.acme.id).time_zone in (None, "")
        assert str(reader_zone(db.session, seats.users["customer"])) == "Asia/Shanghai"
