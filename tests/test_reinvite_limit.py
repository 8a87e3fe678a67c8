"""再次邀请 as the guide walks it: the organizer did not get the invitation mail, the administrator selects it
and presses 再次邀请, and the mail goes again at once. One organizer gets at most INVITATIONS_PER_HOUR
invitation mails an hour (sent or queued; failed mail does not count): one more is refused, named, with
the time the next may be sent in the reader's zone; two presses at once send one mail.

Through the real page and a real SMTP server (aiosmtpd, the fixtures of test_outbox.py).
"""
from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import force_locale

import actions.seats
from actions import DomainError
from actions.outbox import RenderedMail, queue_mail
from actions.seats import invitation_mail_key, reinvite_organizers
from actions.texts import render
from actions.times import format_minute
from conftest import Login, post, race
from models import AuditEvent, Company, MemberAccount, OutboxMail, SeatQuota, db, utcnow
from test_outbox import ORGANIZERS, create_organizer, mails

pytest_plugins = ("test_outbox",)  # its fixtures: the aiosmtpd server, the mailing app and its client

REFUSED = "hourly limit of invitations reached (%(count)s); the next may be sent from %(time)s"


def account_id(login: str) -> int:
    return db.session.scalar(sa.select(MemberAccount.id).where(MemberAccount.login == login))


def reinvite(client, *logins: str) -> str:
    rows = [("rowid", str(account_id(login))) for login in logins]
    return post(client, ORGANIZERS + "action/", [("action", "reinvite"), *rows],
                follow_redirects=True).get_data(as_text=True)


def refusal(login: str, again_from, zone=ZoneInfo("UTC"), count: int = 5) -> str:
    return f"{login} ({REFUSED % {'count': count, 'time': format_minute(again_from, zone, 'en')}})"


def sent_to() -> list[str]:
    return [m.recipients for m in mails() if m.status == "sent"]


def test_reinvite_right_after_the_first_mail_sends_it_again(web, inbox, seats):
    """"您所开通的账号用户未收到开通邀请邮件时 … 点击再次邀请。系统将会再次发送开通邀请邮件。"""
    Login(web)("customer")
    create_organizer(web, seats, "li@acme.example")
    page = reinvite(web, "li@acme.example")
    assert "1 organizers marked as invited again." in page and "Email sent to li@acme.example." in page
    assert len(inbox.messages) == 2 and sent_to() == ["li@acme.example"] * 2
    [audit] = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "reinvite")).all()
    assert audit.summary == "Invitation sent again to li@acme.example"
    with force_locale("zh_Hans_CN"):
        assert render(audit.summary_data) == "已再次邀请：li@acme.example"


def test_the_sixth_mail_of_the_hour_is_refused_naming_the_organizer_and_when(web, inbox, seats):
    Login(web)("customer")
    create_organizer(web, seats, "li@acme.example")
    for _ in range(4):
        assert "Email sent to li@acme.example." in reinvite(web, "li@acme.example")
    page = reinvite(web, "li@acme.example")
    first = mails()[0]
    assert "marked as invited again" not in page and "Email sent" not in page
    assert "Not changed: " + refusal("li@acme.example", first.sent_at + timedelta(hours=1)) in page
    assert len(inbox.messages) == 5


def test_the_time_is_the_readers_and_the_limit_is_configured(web, inbox, seats, mail_web, monkeypatch):
    monkeypatch.setitem(mail_web.config, "INVITATIONS_PER_HOUR", 2)
    seats.acme.time_zone = "Asia/Ho_Chi_Minh"
    db.session.commit()
    Login(web)("customer")
    create_organizer(web, seats, "li@acme.example")
    assert "Email sent to li@acme.example." in reinvite(web, "li@acme.example")
    page = reinvite(web, "li@acme.example")
    first = mails()[0]
    expected = refusal("li@acme.example", first.sent_at + timedelta(hours=1), ZoneInfo("Asia/Ho_Chi_Minh"), 2)
    assert expected in page and len(inbox.messages) == 2


def test_a_failed_mail_does_not_count(web, inbox, seats, mail_web, monkeypatch):
    monkeypatch.setitem(mail_web.config, "INVITATIONS_PER_HOUR", 2)
    inbox.refuse = {"li@acme.example"}
    Login(web)("customer")
    assert "Email to li@acme.example failed" in create_organizer(web, seats, "li@acme.example")
    inbox.refuse.clear()
    for _ in range(2):
        assert "Email sent to li@acme.example." in reinvite(web, "li@acme.example")
    assert [m.status for m in mails()] == ["failed", "sent", "sent"]
    refused = reinvite(web, "li@acme.example")
    assert "Not changed: li@acme.example (hourly limit of invitations reached (2)" in refused
    assert len(inbox.messages) == 2


def test_an_hour_after_the_oldest_the_next_may_go(web, inbox, seats, mail_web, monkeypatch):
    monkeypatch.setitem(mail_web.config, "INVITATIONS_PER_HOUR", 1)
    Login(web)("customer")
    create_organizer(web, seats, "li@acme.example")
    [mail] = mails()
    monkeypatch.setattr(actions.seats, "utcnow", lambda: mail.sent_at + timedelta(minutes=59, seconds=59))
    assert "Not changed: li@acme.example" in reinvite(web, "li@acme.example")
    monkeypatch.setattr(actions.seats, "utcnow", lambda: mail.sent_at + timedelta(hours=1))
    page = reinvite(web, "li@acme.example")
    assert "1 organizers marked as invited again." in page and "Email sent to li@acme.example." in page
    assert len(inbox.messages) == 2


def test_of_several_the_one_at_the_limit_is_named_and_the_others_invited(web, inbox, seats, mail_web, monkeypatch):
    monkeypatch.setitem(mail_web.config, "INVITATIONS_PER_HOUR", 1)
    Login(web)("customer")
    create_organizer(web, seats, "new@acme.example")
    create_organizer(web, seats, "old@acme.example")
    old_mail = next(m for m in mails() if m.recipients == "old@acme.example")
    old_mail.sent_at -= timedelta(hours=2)
    old_mail.created_at -= timedelta(hours=2)
    db.session.commit()

    page = reinvite(web, "old@acme.example", "new@acme.example")
    new_mail = next(m for m in mails() if m.recipients == "new@acme.example")
    assert "1 organizers marked as invited again." in page and "Email sent to old@acme.example." in page
    assert "Not changed: " + refusal("new@acme.example", new_mail.sent_at + timedelta(hours=1), count=1) in page
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
            result = reinvite_organizers(db.session, seats.users["customer"], [account], limit=1)
            db.session.commit()
            assert bool(result.refused) is refused, status
            assert bool(result.changed) is not refused, status


def test_no_mail_at_all_does_not_hold_the_reinvitation(app, seats):
    with app.test_request_context():
        account = organizer_now(seats, "li@acme.example")  # created by the action alone: no mail was queued
        result = reinvite_organizers(db.session, seats.users["customer"], [account])
        assert result.changed == ("li@acme.example",)


def test_two_presses_at_once_never_pass_the_limit(app, seats):
    """The hour allows one more mail: of two presses at once one sends it, the other is refused (it read the
    invitation time before the winner's commit and its UPDATE found it changed, or read after and counted
    the winner's mail)."""
    from admin_views.seats import queue_invitations

    account = organizer_now(seats, "li@acme.example")
    ident, customer_id = account.id, seats.users["customer"].id
    for minutes in (40, 30, 20, 10):  # four invitations in the last hour, sent
        at = utcnow() - timedelta(minutes=minutes)
        key = invitation_mail_key(ident, at)
        queue_mail(db.session, key, [account.login], RenderedMail("invitation", "b", "", "en"))
        db.session.execute(sa.update(OutboxMail).where(OutboxMail.dedupe_key == key)
                           .values(status="sent", created_at=at, sent_at=at))
    db.session.commit()
    reasons = []

    def press():
        actor = db.session.get(type(seats.users["customer"]), customer_id)
        result = reinvite_organizers(db.session, actor, [db.session.get(MemberAccount, ident)])
        if not result.changed:
            reasons.append(result.refused[0][1])
            raise DomainError(result.refused[0][1])
        queue_invitations(result.extra["accounts"], actor)

    outcomes, errors = race(app, [press, press])
    assert not errors, errors
    assert sorted(outcomes) == ["refused", "won"]
    assert len(mails()) == 5
    assert reasons[0] == "it was invited again a moment ago" or reasons[0].startswith(
        "hourly limit of invitations reached (5)")


def test_company_zone_unset_follows_the_language(app, seats):
    """Without a zone of its own, a Chinese reader reads Beijing time (actions.times.zone_for)."""
    from actions.times import reader_zone

    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert db.session.get(Company, seats.acme.id).time_zone in (None, "")
        assert str(reader_zone(db.session, seats.users["customer"])) == "Asia/Shanghai"
