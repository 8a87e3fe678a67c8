"""The audit trail: every create, edit, delete and bulk action leaves one AuditEvent."""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from actions.texts import english
from models import AuditEvent, User

MAX_IDS_TEXT = 20_000


def record(
    session: Session,
    actor: User | None,
    action: str,
    model: str,
    ids: Iterable[object] = (),
    summary: str | dict = "",
) -> AuditEvent:
    """Add an AuditEvent; the address comes from `session.info` (set per request by the app).

    `summary` is plain text, or a stored message (actions.texts.message) shown in the reader's language."""
    summary_data = summary if isinstance(summary, dict) else None
    if summary_data:
        summary = english(summary_data)
    # Stored as ",3,5,8," so "which events touched row 5" is one LIKE '%,5,%'.
    ids_text = ",".join(str(i) for i in ids)
    if len(ids_text) > MAX_IDS_TEXT:
        ids_text = ids_text[:MAX_IDS_TEXT].rsplit(",", 1)[0] + ",…"
    ids_text = f",{ids_text}," if ids_text else ""
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "system",
        action=action,
        model=model,
        ids=ids_text,
        summary=summary,
        summary_data=summary_data,
        ip=session.info.get("remote_addr"),
    )
    session.add(event)
    return event


def history(session: Session, model: str, row_id: int, limit: int = 200) -> list[AuditEvent]:
    """The newest audit events that touched one row of `model`."""
    from sqlalchemy import select

    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.model == model, AuditEvent.ids.contains(f",{row_id},"))
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
