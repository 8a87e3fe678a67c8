"""Cards (seed 002): distributors' real-name verification, the card inventory, stock and its counter.

A distributor is a company with a DistributorProfile; it may sell and withdraw only once an admin
verified it. Cards are held by the platform (holder 0) or a distributor (its company id). Every
status or holder change of a card writes one CardMovement. `CardStock` counts the cards in stock
per package and holder and what paid orders reserved: reserving is one conditional UPDATE, so
fifty buyers racing for the last ten cards get exactly ten reservations, on every database.

Secrets (PIN, ID number) are stored encrypted with a blind index (actions.crypto); revealing a PIN
needs a reveal role and a typed reason and leaves an audit row that never holds the secret.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from actions import DomainError, NotAllowed, in_scope, require_role
from actions.texts import english, message, render_all
from actions.audit import record
from actions.crypto import Vault, normalize
from actions.dates import LATEST_EXPIRY
from models import (
    CARD_STATUSES, ID_TYPES, CardMovement, CardStock, Company, DistributorProfile, Package, SimCard, StockDocument,
    User, utcnow,
)

PLATFORM = 0  # holder_key of the platform's own warehouse
CARD_ADMIN_ROLES = frozenset({"tech_support"})  # staff who keep the inventory (admin always may)
DISTRIBUTOR_ROLES = frozenset({"customer_admin"})
FINANCE_ROLES = frozenset({"finance"})
# Revealing one PIN (typed reason, audited) and exporting PINs are separate permissions.
REVEAL_PIN_ROLES = frozenset({"admin", "finance"})
EXPORT_PIN_ROLES = frozenset({"admin"})
MIN_REASON = 4

_ICCID = re.compile(r"89[0-9]{16,18}[0-9F]?")  # ITU-T E.118: 89 + 17-20 characters
_PHONE = re.compile(r"\+?[0-9]{5,20}")
_PIN = re.compile(r"[0-9A-Za-z]{4,16}")
_ID_NUMBER = re.compile(r"[0-9A-Za-z]{5,32}")


# --- distributors ------------------------------------------------------------------------------


def distributor_profile(session: Session, company_id: int | None) -> DistributorProfile | None:
    """The company's distributor profile, or None when it is not a distributor."""
    if company_id is None:
        return None
    return session.scalar(select(DistributorProfile).where(DistributorProfile.company_id == company_id))


def is_distributor_user(session: Session, user: User) -> bool:
    """True for a customer administrator whose company is a distributor (it sees the card menus)."""
    return user.role == "customer_admin" and distributor_profile(session, user.company_id) is not None


def require_verified(session: Session, company_id: int) -> DistributorProfile:
    """The company's verified profile, or DomainError: unverified distributors cannot sell or withdraw."""
    profile = distributor_profile(session, company_id)
    if profile is None or profile.status != "verified":
        name = session.get(Company, company_id).name if session.get(Company, company_id) else company_id
        raise DomainError(_l("%(company)s has no verified real-name profile: it cannot sell or withdraw until "
                             "an administrator verifies it.", company=name))
    return profile


def submit_verification(session: Session, actor: User, vault: Vault, company: Company, *, legal_name: str,
                        id_type: str, id_number: str, licence_file_name: str | None = None,
                        licence_sha256: str | None = None) -> DistributorProfile:
    """实名认证: file (or re-file after a rejection) the company's legal identity; an admin verifies it."""
    require_role(actor, DISTRIBUTOR_ROLES | {"sales"})
    if not in_scope(actor, company.id, session):
        raise NotAllowed(_l("Company %(name)s is outside your companies.", name=company.name))
    legal_name = " ".join((legal_name or "").split())
    if not legal_name or len(legal_name) > 200:
        raise DomainError(_l("Legal name: enter the name on the ID or licence (at most 200 characters)."))
    if id_type not in ID_TYPES:
        raise DomainError(_l("ID type: choose one of the listed types."))
    number = normalize(id_number or "")
    if not _ID_NUMBER.fullmatch(number):
        raise DomainError(_l("ID number: 5 to 32 letters or digits."))
    profile = distributor_profile(session, company.id)
    if profile is not None and profile.status == "verified":
        raise DomainError(_l("%(company)s is already verified.", company=company.name))
    if profile is None:
        profile = DistributorProfile(company_id=company.id)
        session.add(profile)
    profile.legal_name = legal_name
    profile.id_type = id_type
    profile.id_number_enc = vault.encrypt(number)
    profile.id_number_index = vault.blind_index(number, "id_number")
    profile.id_number_hint = number[-2:]
    profile.licence_file_name = licence_file_name
    profile.licence_sha256 = licence_sha256
    profile.status = "pending"
    profile.reason = ""
    profile.submitted_by_id = actor.id
    session.flush()
    record(session, actor, "submit", "distributor_profile", [profile.id], f"{company.name}: {legal_name}")
    return profile


def review_verification(session: Session, actor: User, profile: DistributorProfile, approve: bool,
                        reason: str = "") -> None:
    """An administrator verifies a pending profile, or rejects it with a reason."""
    require_role(actor, ())
    reason = (reason or "").strip()
    if not approve and len(reason) < MIN_REASON:
        raise DomainError(_l("Reason: say why the verification is rejected."))
    claimed = session.execute(
        update(DistributorProfile).where(DistributorProfile.id == profile.id, DistributorProfile.status == "pending")
        .values(status="verified" if approve else "rejected", reason=reason[:2000], reviewed_by_id=actor.id,
                reviewed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    session.expire(profile)
    if claimed != 1:
        raise DomainError(_l("This verification was already reviewed."))
    record(session, actor, "verify" if approve else "reject", "distributor_profile", [profile.id], reason[:200])


def reveal_id_number(session: Session, actor: User, vault: Vault, profile: DistributorProfile, reason: str) -> str:
    """The plain ID number, for an admin or finance user who types why; audited without the number."""
    check_reveal(actor, reason)
    record(session, actor, "reveal", "distributor_profile", [profile.id], message("audit.reveal.id_number",
                                                                                     reason=reason.strip()[:200]))
    return vault.decrypt(profile.id_number_enc)


# --- the stock counter --------------------------------------------------------------------------


def _stock_row(session: Session, package_id: int, holder_key: int) -> None:
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert_(CardStock).values(package_id=package_id, holder_key=holder_key, on_hand=0, reserved=0)
                    .on_conflict_do_nothing(index_elements=["package_id", "holder_key"]))


def adjust_on_hand(session: Session, package_id: int, holder_key: int, delta: int) -> None:
    """Add `delta` cards to a holder's stock of a package (negative: taken out; never below the reserved)."""
    _stock_row(session, package_id, holder_key)
    changed = session.execute(
        update(CardStock).where(CardStock.package_id == package_id, CardStock.holder_key == holder_key,
                                CardStock.on_hand + delta >= CardStock.reserved)
        .values(on_hand=CardStock.on_hand + delta).execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise DomainError(_l("Those cards are reserved by paid orders and cannot leave the stock."))


def reserve(session: Session, package_id: int, holder_key: int, quantity: int) -> bool:
    """Reserve `quantity` cards of a holder's stock for a paid order; False when not that many are free."""
    if quantity <= 0:
        raise DomainError(_l("Quantity: at least 1."))
    return session.execute(
        update(CardStock).where(CardStock.package_id == package_id, CardStock.holder_key == holder_key,
                                CardStock.on_hand - CardStock.reserved >= quantity)
        .values(reserved=CardStock.reserved + quantity).execution_options(synchronize_session=False)
    ).rowcount == 1


def release(session: Session, package_id: int, holder_key: int, quantity: int, *, shipped: bool) -> None:
    """Give back a reservation: cancelled (cards stay on hand) or shipped (they leave the stock too)."""
    session.execute(
        update(CardStock).where(CardStock.package_id == package_id, CardStock.holder_key == holder_key)
        .values(reserved=CardStock.reserved - quantity,
                on_hand=CardStock.on_hand - (quantity if shipped else 0))
        .execution_options(synchronize_session=False))


def free_stock(session: Session, package_id: int, holder_key: int) -> int:
    """Cards of a package the holder has in stock and no paid order reserved."""
    row = session.execute(select(CardStock.on_hand, CardStock.reserved).where(
        CardStock.package_id == package_id, CardStock.holder_key == holder_key)).first()
    return (row[0] - row[1]) if row else 0


# --- cards --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardInput:
    """One card as typed or imported, before its checks."""

    iccid: str
    phone: str
    pin: str
    package_code: str
    valid_until: date | None


def card_field_problems(card: CardInput, today: date, valid_text: str = "") -> list[dict]:
    """What is wrong with a card's own fields (format and validity), by field: stored messages
    (actions.texts), each naming the field and, but for the PIN, the value. `valid_text`: what the
    valid-until cell held when it was not a date."""
    problems = []
    if not _ICCID.fullmatch(card.iccid):
        problems.append(message("card.iccid", value=card.iccid[:30]))
    if not _PHONE.fullmatch(card.phone):
        problems.append(message("card.phone", value=card.phone[:30]))
    if not _PIN.fullmatch(card.pin):
        problems.append(message("card.pin"))
    if card.valid_until is None:
        problems.append(message("card.valid_until_text", value=valid_text[:30]) if valid_text
                        else message("card.valid_until_empty"))
    elif card.valid_until < today:
        problems.append(message("card.valid_until_past", day=card.valid_until.isoformat()))
    elif card.valid_until > LATEST_EXPIRY:
        problems.append(message("card.valid_until_late", day=card.valid_until.isoformat(),
                                last=LATEST_EXPIRY.isoformat()))
    return problems


def check_card_fields(card: CardInput, today: date) -> list[str]:
    """`card_field_problems` in the reader's language."""
    return render_all(card_field_problems(card, today))


def card_packages(session: Session) -> dict[str, Package]:
    """Active packages of kind `card`, by code (the plan types cards are sold under)."""
    return {p.code: p for p in session.scalars(select(Package).where(Package.kind == "card", Package.active))}


def move(session: Session, actor: User | None, card: SimCard, to_status: str, *, to_holder: int | None = None,
         document_id: int | None = None, order_line_id: int | None = None, note: str | dict = "") -> CardMovement:
    """Change a card's status (and holder) and write its one movement row; `note` is what the user typed, or a
    stored message (actions.texts.message) the timeline shows in the reader's language."""
    movement = CardMovement(card_id=card.id, actor_id=actor.id if actor else None, from_status=card.status,
                            to_status=to_status, from_holder_key=card.holder_key,
                            to_holder_key=card.holder_key if to_holder is None else to_holder,
                            document_id=document_id, order_line_id=order_line_id or card.order_line_id,
                            note=(english(note) if isinstance(note, dict) else note)[:255],
                            note_data=note if isinstance(note, dict) else None)
    card.status = to_status
    if to_holder is not None:
        card.holder_key = to_holder
    session.add(movement)
    return movement


def add_card(session: Session, actor: User, vault: Vault, card: CardInput, today: date,
             holder_key: int = PLATFORM, warehouse: str = "") -> SimCard:
    """添加号卡: one card into a holder's stock, refused with the field named (format, plan, duplicates)."""
    require_role(actor, CARD_ADMIN_ROLES)
    card = CardInput(normalize(card.iccid).upper(), normalize(card.phone), normalize(card.pin),
                     (card.package_code or "").strip(), card.valid_until)
    problems = check_card_fields(card, today)
    package = card_packages(session).get(card.package_code)
    if package is None:
        problems.append(str(_l("plan %(code)s is not an active card package", code=card.package_code[:40])))
    pin_index = vault.blind_index(card.pin, "pin")
    if session.scalar(select(SimCard.id).where(SimCard.iccid == card.iccid)):
        problems.append(str(_l("ICCID %(value)s is already in the inventory", value=card.iccid)))
    if session.scalar(select(SimCard.id).where(SimCard.phone == card.phone)):
        problems.append(str(_l("phone number %(value)s is already in the inventory", value=card.phone)))
    if session.scalar(select(SimCard.id).where(SimCard.pin_index == pin_index)):
        problems.append(str(_l("this PIN is already used by another card")))
    if holder_key != PLATFORM and session.get(Company, holder_key) is None:
        problems.append(str(_l("holder %(id)s is not a company", id=holder_key)))
    if problems:
        raise DomainError(_l("Card not added — %(problems)s.", problems="; ".join(problems)))
    row = SimCard(iccid=card.iccid, phone=card.phone, pin_enc=vault.encrypt(card.pin), pin_index=pin_index,
                  pin_hint=card.pin[-2:], package_id=package.id, valid_until=card.valid_until, status="in_stock",
                  holder_key=holder_key, warehouse=warehouse[:60])
    session.add(row)
    session.flush()
    session.add(CardMovement(card_id=row.id, actor_id=actor.id, from_status=None, to_status="in_stock",
                             from_holder_key=None, to_holder_key=holder_key, note=""))
    adjust_on_hand(session, package.id, holder_key, 1)
    record(session, actor, "create", "sim_card", [row.id], card.iccid)
    return row


def find_by_pin(session: Session, vault: Vault, pin: str):
    """A WHERE clause finding the card with this PIN by its blind index (exact match only)."""
    return SimCard.pin_index == vault.blind_index(pin, "pin")


def check_reveal(actor: User, reason: str, roles=REVEAL_PIN_ROLES) -> None:
    if not actor.active or actor.role not in roles:
        raise NotAllowed(_l("Your role may not reveal secrets."))
    if len((reason or "").strip()) < MIN_REASON:
        raise DomainError(_l("Reason: say why you need to see it (at least %(n)s characters).", n=MIN_REASON))


def reveal_pin(session: Session, actor: User, vault: Vault, card: SimCard, reason: str) -> str:
    """The plain PIN of one card, for a reveal role with a typed reason; the audit row holds the reason only."""
    check_reveal(actor, reason)
    record(session, actor, "reveal", "sim_card", [card.id], message("audit.reveal.pin", iccid=card.iccid,
                                                                           reason=reason.strip()[:200]))
    return vault.decrypt(card.pin_enc)


def may_export_pins(actor: User) -> bool:
    return actor.active and actor.role in EXPORT_PIN_ROLES


# --- the card list's search ---------------------------------------------------------------------

SEARCH_MAX = 32  # characters of a search term that count
_FEW = 500  # matches looked up once, by id


def _starting_with(column, term: str):
    """`column` starts with the digits `term`, as a range of the column's unique index: [term, next)."""
    stem = term.rstrip("9")
    if not stem:  # "999": everything from it on
        return column >= term
    upper = stem[:-1] + chr(ord(stem[-1]) + 1)
    return and_(column >= term, column < upper)


def search_clause(session: Session, text: str):
    """Cards whose ICCID or phone number starts with the term; when none does, those containing it.

    What users type is a whole number or its first digits (a batch of ICCIDs, a phone segment):
    digits are looked up as ranges of the two unique indexes, at any size of the inventory. A part
    from the middle or the end (a phone's last four digits) has no index: only when no number
    starts with it is the table read for it, once. Other terms (letters, a "+") are matched
    anywhere, in any ASCII case. Spaces typed inside a number are ignored. None for an empty term.
    """
    term = "".join((text or "").split())[:SEARCH_MAX]
    if not term:
        return None
    pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    contains = or_(SimCard.iccid.ilike(pattern, escape="\\"), SimCard.phone.ilike(pattern, escape="\\"))
    if not term.isdigit():
        return contains
    # The ids of the matches are looked up once, for the page and its count alike, when they are few.
    starting = or_(_starting_with(SimCard.iccid, term), _starting_with(SimCard.phone, term))
    found = session.scalars(select(SimCard.id).where(starting).limit(_FEW + 1)).all()
    if not found:  # digits have no case: LIKE, not lower() of every number read
        starting = or_(SimCard.iccid.like(pattern, escape="\\"), SimCard.phone.like(pattern, escape="\\"))
        found = session.scalars(select(SimCard.id).where(starting).limit(_FEW + 1)).all()
    return SimCard.id.in_(found) if len(found) <= _FEW else starting


# --- stock documents ----------------------------------------------------------------------------


def _cards_by_iccid(session: Session, iccids: Sequence[str]) -> tuple[list[SimCard], list[str]]:
    wanted = list(dict.fromkeys(normalize(i).upper() for i in iccids if normalize(i)))
    found = {c.iccid: c for c in session.scalars(select(SimCard).where(SimCard.iccid.in_(wanted)))} if wanted else {}
    return [found[i] for i in wanted if i in found], [i for i in wanted if i not in found]


def parse_numbers(text: str) -> list[str]:
    """Card numbers pasted or scanned: one per line, or separated by commas or spaces."""
    return [n for n in re.split(r"[\s,;，；]+", text or "") if n]


def post_stock_document(session: Session, actor: User, kind: str, iccids: Sequence[str], *,
                        from_holder: int = PLATFORM, to_holder: int | None = None, note: str = "") -> StockDocument:
    """Post a stock-out (cards voided), a transfer (to another holder) or an adjustment (returned → in stock).

    Every named card must be in the right status at `from_holder`; otherwise nothing changes and the
    cards at fault are named.
    """
    require_role(actor, CARD_ADMIN_ROLES)
    if kind not in ("stock_out", "transfer", "adjustment"):
        raise DomainError(_l("Unknown stock document kind %(kind)s.", kind=kind))
    cards, missing = _cards_by_iccid(session, iccids)
    if not cards and not missing:
        raise DomainError(_l("Card numbers: enter at least one."))
    # A stock-out voids cards in stock or returned ones found unusable; an adjustment puts returned ones back.
    wanted = {"stock_out": ("in_stock", "returned"), "transfer": ("in_stock",), "adjustment": ("returned",)}[kind]
    wanted_status = "/".join(str(CARD_STATUSES[status]) for status in wanted)  # 在库/已退回, not in_stock/returned
    wrong = [c.iccid for c in cards if c.status not in wanted or c.holder_key != from_holder]
    if kind == "transfer" and (to_holder is None or to_holder == from_holder):
        raise DomainError(_l("Transfer: choose a different holder to move the cards to."))
    if kind == "transfer" and to_holder != PLATFORM and session.get(Company, to_holder) is None:
        raise DomainError(_l("Transfer: holder %(id)s is not a company.", id=to_holder))
    if missing or wrong:
        parts = []
        if missing:
            parts.append(str(_l("not in the inventory: %(list)s", list=", ".join(missing[:50]))))
        if wrong:
            parts.append(str(_l("not %(status)s at this holder: %(list)s", status=wanted_status,
                                list=", ".join(wrong[:50]))))
        raise DomainError(_l("Nothing posted — %(problems)s.", problems="; ".join(parts)))
    document = StockDocument(kind=kind, status="posted", from_holder_key=from_holder,
                             to_holder_key=to_holder if kind == "transfer" else None, cards=len(cards),
                             note=note[:2000], created_by_id=actor.id, posted_at=utcnow())
    session.add(document)
    session.flush()
    by_package: dict[int, int] = {}
    for card in cards:
        if card.status == "in_stock" or kind == "adjustment":  # returned cards are not on hand
            by_package[card.package_id] = by_package.get(card.package_id, 0) + 1
        if kind == "stock_out":
            move(session, actor, card, "voided", document_id=document.id, note=note[:255])
        elif kind == "transfer":
            move(session, actor, card, "in_stock", to_holder=to_holder, document_id=document.id, note=note[:255])
        else:
            move(session, actor, card, "in_stock", document_id=document.id, note=note[:255])
    for package_id, count in by_package.items():
        if kind in ("stock_out", "transfer"):
            adjust_on_hand(session, package_id, from_holder, -count)
        if kind == "transfer":
            adjust_on_hand(session, package_id, to_holder, count)
        if kind == "adjustment":
            adjust_on_hand(session, package_id, from_holder, count)
    session.flush()
    record(session, actor, kind, "stock_document", [document.id], message("audit.cards", count=len(cards)))
    return document


def stock_summary(session: Session, holder_keys: Sequence[int] | None = None):
    """(package, holder_key, on_hand, reserved) rows for the stock page."""
    query = select(Package, CardStock.holder_key, CardStock.on_hand, CardStock.reserved).join(
        Package, Package.id == CardStock.package_id).order_by(Package.code, CardStock.holder_key)
    if holder_keys is not None:
        query = query.where(CardStock.holder_key.in_(list(holder_keys)))
    return session.execute(query).all()


def card_counts(session: Session) -> dict[str, int]:
    """Cards by status, for the dashboard."""
    return dict(session.execute(select(SimCard.status, func.count()).group_by(SimCard.status)).all())
