"""Issue 9 item 6: mail leaves after the commit, from the outbox, over a real SMTP server (aiosmtpd).

The SMTP server below checks, for every message it receives, that the database is not held by
a write transaction (SQLite: the write lock is free; PostgreSQL: no backend holds a row lock on
the tables the change wrote) and that the message's outbox row is already committed. Then: a
refused or unreachable server leaves the row failed with the reason, the page says so, an admin's
retry sends it, two senders never send one mail twice.
"""
from __future__ import annotations

import email
import socket
import sqlite3
import threading
from datetime import timedelta
from email import policy

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import get_flashed_messages

from actions.outbox import MailOutcome, RenderedMail, queue_mail, send_queued
from app import WRITE_INTENT
from conftest import Login, make_app, post
from models import MemberAccount, OutboxMail, SeatQuota, db, utcnow

ORGANIZERS = "/admin/organizer/"
OUTBOX = "/admin/outboxmail/"


class CheckingInbox:
    """Accepts mail like a real server; refuses the addresses in `refuse`; checks the database at DATA."""

    def __init__(self):
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse: set[str] = set()
        self.checks: list[tuple[str, bool, str]] = []  # (recipient, database free, outbox status)
        self.database_url: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.database_url:
            for rcpt in envelope.rcpt_tos:
                self.checks.append((rcpt, database_free(self.database_url), outbox_status(self.database_url, rcpt)))
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content,
                                                                                  policy=policy.default)))
        return "250 Message accepted for delivery"


def database_free(url: str) -> bool:
    """No write transaction is open on the database: the mail is not sent from inside one."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        probe = sqlite3.connect(parsed.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")  # fails at once while another connection holds the write lock
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            held = conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname IN ('outbox_mail', 'member_account', 'reminder_log', 'tenant_application') "
                "AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()")).scalar_one()
        return held == 0
    finally:
        engine.dispose()


def outbox_status(url: str, recipient: str) -> str:
    """The committed status of the recipient's newest outbox mail, read on a connection of its own."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT status FROM outbox_mail WHERE recipients LIKE :r ORDER BY id DESC"),
                                {"r": f"%{recipient}%"}).scalar() or "missing"
    finally:
        engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def smtp():
    inbox = CheckingInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture(scope="module")
def mail_web(database_url, smtp):
    """An app that really sends mail to the test SMTP server (the usual test apps suppress sending)."""
    _inbox, port = smtp
    built = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_SUPPRESS_SEND=False,
                     MAIL_DEFAULT_SENDER="renewdesk@renewdesk.test")
    yield built
    with built.app_context():
        db.engine.dispose()


@pytest.fixture
def inbox(app, smtp, database_url):
    """The SMTP inbox, emptied; afterwards, every message it got was sent with the database free and
    its outbox row committed."""
    inbox, _port = smtp
    inbox.messages.clear()
    inbox.refuse.clear()
    inbox.checks.clear()
    inbox.database_url = database_url
    yield inbox
    inbox.database_url = None
    assert all(free and status == "sending" for _rcpt, free, status in inbox.checks), inbox.checks


@pytest.fixture
def web(mail_web, inbox):
    return mail_web.test_client()


@pytest.fixture
def seats(world):
    db.session.add(SeatQuota(company_id=world.acme.id, edition="enterprise", purchased=3, used=0))
    db.session.commit()
    return world


def mails() -> list[OutboxMail]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxMail).order_by(OutboxMail.id)))


def create_organizer(client, world, email_address: str):
    return post(client, ORGANIZERS + "new/", {"email": email_address, "last_name": "Li", "first_name": "Na",
                                             "edition": "enterprise", "company_id": str(world.acme.id)},
                follow_redirects=True).get_data(as_text=True)


# --- no mail inside a transaction -------------------------------------------------------------------------

def test_reminders_leave_after_the_commit(mail_web, inbox, world):
    """`billing remind` today sent each mail while holding the write lock (BEGIN IMMEDIATE)."""
    from models import BillingConfig

    db.session.add(BillingConfig(company=world.acme, billing_cycle="monthly", auto_renew=False, push_enabled=True,
                                 push_language="en", push_emails="ops@acme.test"))
    db.session.commit()
    with mail_web.app_context():
        result = mail_web.test_cli_runner().invoke(args=["billing", "remind"])
        db.session.remove()
    assert result.exit_code == 0, result.output
    # Acme and its three subsidiaries (they inherit its config) each get one reminder.
    assert len(inbox.checks) == 4 and all(free for _rcpt, free, _status in inbox.checks), inbox.checks
    assert {status for _rcpt, _free, status in inbox.checks} == {"sending"}  # committed before the send
    assert [m.status for m in mails()] == ["sent"] * 4


def test_an_invitation_is_committed_before_it_is_sent(web, inbox, seats):
    Login(web)("customer")
    page = create_organizer(web, seats, "li@acme.example")
    assert "Organizer li@acme.example created." in page and "Email sent to li@acme.example." in page
    assert [(rcpt, free, status) for rcpt, free, status in inbox.checks] == [("li@acme.example", True, "sending")]
    [mail] = mails()
    assert (mail.status, mail.attempts, mail.recipients) == ("sent", 1, "li@acme.example")
    assert mail.dedupe_key.startswith("organizer_invitation:")


# --- failed mail: the row, the page, the retry ----------------------------------------------------------------

def test_a_refused_invitation_is_failed_with_the_reason_and_an_admin_retry_sends_it(web, inbox, seats):
    inbox.refuse = {"li@acme.example"}
    Login(web)("customer")
    page = create_organizer(web, seats, "li@acme.example")
    assert "Organizer li@acme.example created." in page
    assert "Email to li@acme.example failed: SMTPRecipientsRefused" in page and "550" in page
    assert "Email sent" not in page and "was emailed" not in page
    [mail] = mails()
    assert mail.status == "failed" and "Mailbox unavailable" in mail.last_error
    assert db.session.scalar(sa.select(MemberAccount.invitation_state)
                             .where(MemberAccount.login == "li@acme.example")) == "sent"
    assert inbox.messages == []

    inbox.refuse.clear()
    Login(web).logout()
    Login(web)("admin")
    listing = web.get(OUTBOX).get_data(as_text=True)
    assert "li@acme.example" in listing and "Failed" in listing and "Mailbox unavailable" in listing
    answer = post(web, OUTBOX + "action/", [("action", "retry"), ("rowid", str(mail.id))], follow_redirects=True)
    assert "Email sent to li@acme.example." in answer.get_data(as_text=True)
    [mail] = mails()
    assert (mail.status, mail.attempts, mail.last_error) == ("sent", 2, "")
    assert [rcpt for rcpt, _message in inbox.messages] == [["li@acme.example"]]


def test_an_unreachable_server_fails_the_reinvite_and_says_so(app, database_url, seats):
    down = make_app(database_url, MAIL_SERVER="127.0.0.1", MAIL_PORT=_free_port(), MAIL_SUPPRESS_SEND=False)
    try:
        client = down.test_client()
        Login(client)("customer")
        create_organizer(client, seats, "wu@acme.example")
        account = db.session.scalar(sa.select(MemberAccount).where(MemberAccount.login == "wu@acme.example"))
        page = post(client, ORGANIZERS + "action/", [("action", "reinvite"), ("rowid", str(account.id))],
                    follow_redirects=True).get_data(as_text=True)
        assert "1 organizers marked as invited again." in page
        assert "Email to wu@acme.example failed: ConnectionRefusedError" in page
        assert [m.status for m in mails()] == ["failed", "failed"]  # the invitation and the re-invitation
    finally:
        with down.app_context():
            db.engine.dispose()


def test_retry_is_for_admins_and_only_for_failed_mail(app, client, login, world):
    queue_mail(db.session, "k-sent", ["a@example.test"], RenderedMail("s", "b", "", "en"))
    db.session.commit()
    [mail] = mails()
    db.session.execute(sa.update(OutboxMail).values(status="sent"))
    db.session.commit()
    for username in ("finance", "customer", "sales"):
        login(username)
        assert client.get(OUTBOX).status_code == 403
        login.logout()
    login("admin")
    page = post(client, OUTBOX + "action/", [("action", "retry"), ("rowid", str(mail.id))],
                follow_redirects=True).get_data(as_text=True)
    assert f"#{mail.id} (not failed (it is Sent))" in page
    assert [m.status for m in mails()] == ["sent"]


def test_the_page_says_queued_sent_or_failed_with_the_reason(app):
    from admin_views.mailing import flash_mail

    with app.test_request_context():
        flash_mail([MailOutcome(1, ("a@x.test",), "sent"), MailOutcome(2, ("b@x.test", "c@x.test"), "queued"),
                    MailOutcome(3, ("d@x.test",), "failed", "SMTPDataError: 554 no")])
        assert get_flashed_messages(with_categories=True) == [
            ("success", "Email sent to a@x.test."),
            ("info", "Email queued for b@x.test, c@x.test; it will be sent shortly."),
            ("warning", "Email to d@x.test failed: SMTPDataError: 554 no. An administrator can retry it in the "
                        "mail outbox."),
        ]


# --- the sender ----------------------------------------------------------------------------------------------------

def test_send_queued_refuses_to_run_inside_a_transaction(app, world):
    queue_mail(db.session, "k1", ["a@example.test"], RenderedMail("s", "b", "", "en"))
    with pytest.raises(RuntimeError, match="inside a database transaction"):
        send_queued(db.session, app.extensions["mail"], db.session.commit)
    db.session.rollback()


def test_the_same_key_queues_one_mail(app, world):
    first = queue_mail(db.session, "welcome:7", ["a@example.test"], RenderedMail("s", "b", "", "en"))
    second = queue_mail(db.session, "welcome:7", ["a@example.test"], RenderedMail("other", "b", "", "en"))
    assert queue_mail(db.session, "nobody", ["", None], RenderedMail("s", "b", "", "en")) is None
    db.session.commit()
    assert first == second and [m.subject for m in mails()] == ["s"]


def test_a_sensitive_mail_loses_its_body_once_sent(app, world):
    queue_mail(db.session, "welcome:1", ["a@example.test"], RenderedMail("s", "password 123", "<p>123</p>", "en"),
               sensitive=True)
    queue_mail(db.session, "plain:1", ["a@example.test"], RenderedMail("s", "hello", "<p>hello</p>", "en"))
    db.session.commit()
    outcomes = send_queued(db.session, app.extensions["mail"], db.session.commit)  # sending is suppressed in the test app
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert [(m.body_text, m.body_html) for m in mails()] == [("", ""), ("hello", "<p>hello</p>")]


def test_an_interrupted_send_is_failed_not_sent_again(app, world):
    queue_mail(db.session, "k", ["a@example.test"], RenderedMail("s", "b", "", "en"))
    db.session.commit()
    db.session.execute(sa.update(OutboxMail).values(status="sending", attempts=1,
                                                    claimed_at=utcnow() - timedelta(minutes=16)))
    db.session.commit()
    assert send_queued(db.session, app.extensions["mail"], db.session.commit) == []
    [mail] = mails()
    assert mail.status == "failed" and "Interrupted" in mail.last_error


def test_failed_mail_is_retried_by_the_job_until_its_attempts_are_spent(app, world):
    queue_mail(db.session, "k", ["a@example.test"], RenderedMail("s", "b", "", "en"))
    db.session.commit()
    db.session.execute(sa.update(OutboxMail).values(status="failed", attempts=3,
                                                    claimed_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    assert send_queued(db.session, app.extensions["mail"], db.session.commit, max_attempts=3) == []
    assert [o.status for o in send_queued(db.session, app.extensions["mail"], db.session.commit, max_attempts=4)] == ["sent"]


def test_two_senders_never_send_the_same_mail_twice(mail_web, inbox, world):
    inbox.database_url = None  # one sender's claim transaction may be open while the other sends: not checked here
    with mail_web.app_context():
        for i in range(40):
            queue_mail(db.session, f"k{i}", [f"user{i}@example.test"], RenderedMail(f"mail {i}", "b", "", "en"))
        db.session.commit()
        db.session.remove()
    results: list[list[MailOutcome]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def sender():
        try:
            with mail_web.app_context():
                token = WRITE_INTENT.set(True)  # what the CLI and POST requests set
                start.wait()
                try:
                    results.append(send_queued(db.session, mail_web.extensions["mail"], db.session.commit))
                finally:
                    WRITE_INTENT.reset(token)
                    db.session.remove()
        except BaseException as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    sent_ids = [o.id for outcomes in results for o in outcomes]
    assert len(sent_ids) == len(set(sent_ids)) == 40
    delivered = sorted(rcpt[0] for rcpt, _message in inbox.messages)
    assert delivered == sorted(f"user{i}@example.test" for i in range(40))
    assert {m.status for m in mails()} == {"sent"}
