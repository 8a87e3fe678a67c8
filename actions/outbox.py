"""The mail outbox: mail is written in the business transaction and sent after the commit.

`queue_mail` adds an OutboxMail row in the caller's transaction (a mail about the same thing,
the same `key`, is queued once); the caller commits the business change and its mail together.
`send_queued` then claims rows with a conditional UPDATE (two senders never claim the same row),
commits, and talks to the SMTP server with no database transaction open; each mail is then
marked sent, or failed with the reason, in a short transaction of its own. The views send their
mail this way right after their commit (best effort), `flask --app app mail send-queued` (cron)
sends whatever is left and retries failures a few times, and an admin can retry a failed mail.

A mail whose sender died while sending is marked failed ("interrupted"), never sent again on
its own: it may have left, and a second copy is worse than an admin's retry.
"""
from __future__ import annotations

import smtplib
from collections.abc import Callable, Collection, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_mail import BadHeaderError, Message
from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, scoped_session

from actions import ActionResult, require_role
from actions.audit import record
from actions.texts import message
from models import MAIL_STATUSES, OutboxMail, User, utcnow

# The Content-Language tag of a mail rendered in one of our catalogs.
CONTENT_LANGUAGES = {"zh_Hans_CN": "zh-CN", "en": "en", "vi": "vi"}
INTERRUPTED_AFTER = timedelta(minutes=15)
MAX_ERROR = 500


@dataclass(frozen=True)
class RenderedMail:
    """A mail's subject and bodies, rendered in `language` (a Babel locale of ours)."""

    subject: str
    body_text: str
    body_html: str
    language: str


@dataclass(frozen=True)
class MailOutcome:
    """Where one outbox mail stands: queued (or being sent), sent, or failed with the reason."""

    id: int
    recipients: tuple[str, ...]
    status: str
    error: str = ""

    @property
    def sent(self) -> bool:
        return self.status == "sent"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True)
class _Claimed:
    id: int
    recipients: tuple[str, ...]
    subject: str
    body_text: str
    body_html: str
    language: str


def render_mail(template: str, locale: str, subject, **context) -> RenderedMail:
    """Render mail/<template>.txt and .html and the (lazy) subject in `locale`."""
    with force_locale(locale):
        return RenderedMail(
            subject=" ".join(str(subject).split()),
            body_text=render_template(f"mail/{template}.txt", **context),
            body_html=render_template(f"mail/{template}.html", **context),
            language=locale,
        )


def queue_mail(session: Session, key: str, recipients: Sequence[str], mail: RenderedMail,
               sensitive: bool = False) -> int | None:
    """Queue `mail` in the caller's transaction; its id (the earlier one's for a known `key`); None: no recipient."""
    recipients = [r for r in dict.fromkeys(recipients) if r]
    if not recipients:
        return None
    table = OutboxMail.__table__
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"]),
        [{"dedupe_key": key[:200], "recipients": "\n".join(recipients), "subject": mail.subject[:255],
          "body_text": mail.body_text, "body_html": mail.body_html, "language": mail.language,
          "sensitive": sensitive, "status": "queued", "attempts": 0, "last_error": "", "created_at": utcnow()}],
    )
    return session.scalar(select(OutboxMail.id).where(OutboxMail.dedupe_key == key[:200]))


def send_queued(session: Session, mailer, commit: Callable[[], None], ids: Collection[int] | None = None,
                limit: int = 500, max_attempts: int = 3, retry_after: timedelta = timedelta(minutes=10),
                now: datetime | None = None) -> list[MailOutcome]:
    """Send queued mail (of `ids` if given, else every due one and failures to retry) over one SMTP connection.

    Never while a transaction is open: RuntimeError if the session is in one. `mailer` is the
    Flask-Mail extension; `commit` is the caller's (the view's or command's): it is called after
    the claim and after each mail's outcome, so no mail is sent inside a transaction. Without `ids`, a failed mail is tried again `retry_after` its last
    attempt until it has had `max_attempts`; an admin's retry queues it again whatever its count.
    """
    if _in_transaction(session):
        raise RuntimeError("send_queued sends no mail inside a database transaction: commit first")
    claimed = _claim(session, ids, limit, max_attempts, retry_after, now or utcnow())
    commit()
    outcomes = []
    stack: ExitStack | None = None
    connection = None
    try:
        for mail in claimed:
            try:
                if connection is None:
                    stack = ExitStack()
                    connection = stack.enter_context(mailer.connect())
                connection.send(_message(mail))
            except (smtplib.SMTPException, OSError, BadHeaderError, UnicodeError, ValueError) as exc:
                _close(stack)
                stack = connection = None  # the connection may be broken: the next mail opens a new one
                outcomes.append(_finish(session, mail, "failed", f"{type(exc).__name__}: {exc}"))
            else:
                outcomes.append(_finish(session, mail, "sent"))
            commit()
    finally:
        _close(stack)
    return outcomes


def deliver(session: Session, mailer, ids: Sequence[int | None], commit: Callable[[], None]) -> list[MailOutcome]:
    """Send these queued mails now (best effort, after the caller's commit) and say where each stands."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return []
    send_queued(session, mailer, commit, ids=wanted)
    return mail_outcomes(session, wanted)


def mail_outcomes(session: Session, ids: Sequence[int]) -> list[MailOutcome]:
    """Where each of these mails stands, in the order given."""
    rows = {row.id: row for row in session.execute(
        select(OutboxMail.id, OutboxMail.recipients, OutboxMail.status, OutboxMail.last_error)
        .where(OutboxMail.id.in_(list(ids))))}
    return [MailOutcome(i, tuple(r for r in rows[i].recipients.splitlines() if r), rows[i].status,
                        rows[i].last_error if rows[i].status == "failed" else "")
            for i in ids if i in rows]


def retry_mails(session: Session, actor: User, mails: Sequence[OutboxMail]) -> ActionResult:
    """Queue failed mails again (admins); sent or queued ones are refused by id."""
    require_role(actor, set())
    changed, refused = [], []
    for mail in mails:
        result = session.execute(update(OutboxMail).where(OutboxMail.id == mail.id, OutboxMail.status == "failed")
                                 .values(status="queued").execution_options(synchronize_session=False))
        if result.rowcount:
            changed.append(mail.id)
        else:
            session.refresh(mail)
            status = MAIL_STATUSES.get(mail.status, mail.status)
            refused.append((f"#{mail.id}", str(_l("not failed (it is %(status)s)", status=status))))
    if changed:
        record(session, actor, "retry", "outbox_mail", changed, message("audit.mail.retry", count=len(changed)))
    session.flush()
    return ActionResult(tuple(f"#{i}" for i in changed), tuple(refused), {"ids": changed})


def _claim(session: Session, ids, limit: int, max_attempts: int, retry_after: timedelta,
           now: datetime) -> list[_Claimed]:
    """Mark due mails `sending` with a conditional UPDATE each (a row another sender took is skipped)."""
    # Interrupted: failed with every attempt spent, so only an admin's retry sends it again.
    session.execute(
        update(OutboxMail).where(OutboxMail.status == "sending", OutboxMail.claimed_at < now - INTERRUPTED_AFTER)
        .values(status="failed",
                attempts=case((OutboxMail.attempts < max_attempts, max_attempts), else_=OutboxMail.attempts),
                last_error=str(_l("Interrupted while sending: it may have left. Retry to send it again.")))
        .execution_options(synchronize_session=False))
    due = OutboxMail.status == "queued"
    if ids is None:
        due = or_(due, and_(OutboxMail.status == "failed", OutboxMail.attempts < max_attempts,
                            OutboxMail.claimed_at < now - retry_after))
    query = select(OutboxMail.id, OutboxMail.status).where(due)
    if ids is not None:
        query = query.where(OutboxMail.id.in_(list(ids)))
    taken = []
    for mail_id, status in session.execute(query.order_by(OutboxMail.id).limit(limit)).all():
        result = session.execute(
            update(OutboxMail).where(OutboxMail.id == mail_id, OutboxMail.status == status)
            .values(status="sending", attempts=OutboxMail.attempts + 1, claimed_at=now)
            .execution_options(synchronize_session=False))
        if result.rowcount == 1:
            taken.append(mail_id)
    claimed = [
        _Claimed(row.id, tuple(r for r in row.recipients.splitlines() if r), row.subject, row.body_text,
                 row.body_html, row.language)
        for row in session.execute(
            select(OutboxMail.id, OutboxMail.recipients, OutboxMail.subject, OutboxMail.body_text,
                   OutboxMail.body_html, OutboxMail.language)
            .where(OutboxMail.id.in_(taken)).order_by(OutboxMail.id))
    ] if taken else []
    return claimed


def _finish(session: Session, mail: _Claimed, status: str, error: str = "") -> MailOutcome:
    values = {"status": status, "last_error": error[:MAX_ERROR]}
    if status == "sent":
        values["sent_at"] = utcnow()
    session.execute(update(OutboxMail).where(OutboxMail.id == mail.id, OutboxMail.status == "sending")
                    .values(**values).execution_options(synchronize_session=False))
    if status == "sent":  # an initial password stays nowhere once it has left
        session.execute(update(OutboxMail).where(OutboxMail.id == mail.id, OutboxMail.sensitive.is_(True))
                        .values(body_text="", body_html="").execution_options(synchronize_session=False))
    session.flush()
    return MailOutcome(mail.id, mail.recipients, status, error[:MAX_ERROR])


def _message(mail: _Claimed) -> Message:
    headers = {"Content-Language": CONTENT_LANGUAGES.get(mail.language, mail.language)}
    return Message(subject=mail.subject, recipients=list(mail.recipients), body=mail.body_text,
                   html=mail.body_html or None, extra_headers=headers)


def _in_transaction(session) -> bool:
    """True while `session` (or the session behind a scoped_session) has a transaction open."""
    return (session() if isinstance(session, scoped_session) else session).in_transaction()


def _close(stack: ExitStack | None) -> None:
    if stack is not None:
        try:
            stack.close()
        except Exception:  # noqa: BLE001 — a failing QUIT must not hide what was sent
            pass
