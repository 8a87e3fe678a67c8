"""Member accounts (seed 000): batch creation from a pattern, bulk VIP upgrade paid in coins, refresh.

Batch creation: `tupp{01-20}` makes tupp01 … tupp20 in one INSERT (executemany), after one
SELECT proving none of the logins exists anywhere (a login is globally unique; if any exists,
nothing is created and every taken login is named).

Passwords: the default (MEMBER_DEFAULT_PASSWORD, 123579 in the seed) and a fixed password are
human-chosen and guessable, so they get the strong PASSWORD_HASH_METHOD — hashed once and the
same hash stored for every account of the batch (the batch shares the password anyway; the cost
is one hash, not a thousand). Random passwords are 12 characters from a 57-character alphabet
(about 70 bits): no dictionary or brute force gets near them, so a cheap KDF
(MEMBER_RANDOM_HASH_METHOD, pbkdf2:sha256 with few iterations) loses nothing and keeps a
1,000-account batch under a second instead of a minute of scrypt.

VIP upgrade: accounts × years × 7,200 (VIP) or 21,600 (SVIP) coins, debited from the payer
company's COIN wallet through an Order of kind "vip_upgrade" in COIN, in the same transaction
as one executemany UPDATE of the accounts' level and expiry (conditional on the values read,
so a concurrent change makes the whole upgrade fail rather than be overwritten).

VIP → SVIP while VIP time remains: the remaining VIP days become SVIP days and the new term is
added after them (the expiry moves from the VIP expiry, as for any renewal). The converted days
cost the difference of the yearly prices, (21,600 − 7,200) × days / 365 coins per account,
rounded half up to a whole coin: the VIP days already paid are credited at the VIP price, so paid
VIP time never becomes SVIP for free and no day is paid twice.

A confirmation applies exactly the quote it showed: `quote_digest` is an HMAC (the app's secret
key) over the payer, level, term, each account's old and new level and expiry and every amount;
the confirmation page carries it and `upgrade_vip` refuses, writing nothing, when the quote
computed on submit has another digest (the form was changed, or the accounts or prices were).
"""
from __future__ import annotations

import itertools
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from actions import ActionResult, DomainError, in_scope, require_role, scope_company_ids
from actions.audit import record
from actions.text_input import one_line
from actions.texts import count_param, label_param, message
from actions.coins import COINS_PER_CNY, TERM_MONTHS, YEARLY_PRICE_CNY, parse_level, parse_years, whole_coins
from actions.money import round_money
from actions.orders import LineSpec, add_months, open_order, pay_with_balance
from actions.wallets import InsufficientBalance, wallet_for
from actions.quotes import check_quote
from actions.quotes import quote_digest as digest_of
from models import VIP_LEVELS, Company, MemberAccount, Order, OrderLine, User, utcnow

MEMBER_ROLES = {"customer_admin"}
PASSWORD_KINDS = ("default", "fixed", "random")
DEFAULT_PASSWORD = "123579"
DEFAULT_BATCH_MAX = 1000
RANDOM_HASH_METHOD = "pbkdf2:sha256:1000"
MAX_LOGIN = 100  # MemberAccount.login is String(100)
MAX_EMAIL = 254  # MemberAccount.email
MAX_NAME = 60  # MemberAccount.first_name, last_name
MAX_BOUND_DIGITS = 9
LOGIN_CHARS = re.compile(r"[A-Za-z0-9._@-]+")
RANGE = re.compile(r"\s*([0-9]+)\s*[-~]\s*([0-9]+)\s*")  # {01-20}, {01 ~ 20}
RANDOM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"  # no 0/O, 1/l/I
RANDOM_LENGTH = 12
LEVEL_RANK = {"none": 0, "vip": 1, "svip": 2}
DAYS_PER_YEAR = 365
# Bound parameters per IN (…): well under SQLite's 32,766 and PostgreSQL's 65,535.
_CHUNK = 5000
NAMED = 50  # how many logins a message names before "and N more"


class LoginsTaken(DomainError):
    """Some logins of the batch exist already; `logins` lists them. Nothing was created."""

    def __init__(self, message, logins: Sequence[str]):
        super().__init__(message)
        self.logins = tuple(logins)


def _scope_check(session: Session, actor: User):
    """A test "is this company id in the actor's scope?" that reads the scope once, not per row."""
    if actor.is_staff:
        return lambda company_id: True
    allowed = scope_company_ids(session, actor) if actor.company is not None else set()
    return lambda company_id: company_id in allowed


def _named(logins: Sequence[str]) -> str:
    shown = ", ".join(logins[:NAMED])
    if len(logins) > NAMED:
        shown += " " + str(_l("and %(n)s more", n=len(logins) - NAMED))
    return shown


# --- the pattern ------------------------------------------------------------------------------

def expand_pattern(pattern: str, max_count: int = DEFAULT_BATCH_MAX) -> list[str]:
    """The logins a pattern names: `tupp{01-20}` → tupp01 … tupp20, in order.

    A brace holds a range of whole numbers `{start-end}` (start ≤ end). When either bound is
    written with a leading zero the numbers are zero-padded to the widest bound (`{01-20}`,
    `{001-010}`), else they are written plainly (`{1-3}` → 1, 2, 3). Several braces give every
    combination, the leftmost brace varying slowest. No brace names one login. Full-width characters
    (｛０１－２０｝) are read as their ASCII forms, and `{01~20}` or `{01 - 20}` as `{01-20}`. Refused with a
    message: an empty pattern, unbalanced or empty braces, a brace that is not a range, a
    reversed range, more than `max_count` logins, and logins that are too long, hold characters
    other than letters, digits and . _ @ -, or come out twice.
    """
    # A Chinese input method types ｛０１－２０｝ and ～: read them as { 01-20 } and ~ (NFKC), as tax IDs are read.
    pattern = unicodedata.normalize("NFKC", pattern or "").strip()
    if not pattern:
        raise DomainError(_l("Enter a login pattern, for example tupp{01-20}."))
    parts: list[list[str]] = []  # each part: the choices at that position
    literal: list[str] = []
    position = 0
    count = 1
    while position < len(pattern):
        char = pattern[position]
        if char == "}":
            raise DomainError(_l("Pattern %(pattern)s: a } at position %(pos)s has no opening {.",
                                 pattern=pattern, pos=position + 1))
        if char != "{":
            literal.append(char)
            position += 1
            continue
        close = pattern.find("}", position + 1)
        nested = pattern.find("{", position + 1)
        if close == -1 or (nested != -1 and nested < close):
            raise DomainError(_l("Pattern %(pattern)s: the { at position %(pos)s is not closed by a }.",
                                 pattern=pattern, pos=position + 1))
        body = pattern[position + 1:close]
        match = RANGE.fullmatch(body)
        if not match:
            raise DomainError(_l("Pattern %(pattern)s: {%(body)s} is not a range; write it as {01-20}.",
                                 pattern=pattern, body=body))
        low_text, high_text = match.groups()
        if max(len(low_text), len(high_text)) > MAX_BOUND_DIGITS:
            raise DomainError(_l("Pattern %(pattern)s: {%(body)s} has numbers longer than %(n)s digits.",
                                 pattern=pattern, body=body, n=MAX_BOUND_DIGITS))
        low, high = int(low_text), int(high_text)
        if low > high:
            raise DomainError(_l("Pattern %(pattern)s: {%(body)s} runs backwards; write the smaller number first "
                                 "({%(low)s-%(high)s}).", pattern=pattern, body=body, low=high_text, high=low_text))
        count *= high - low + 1
        if count > max_count:
            raise DomainError(_l("Pattern %(pattern)s names more than %(max)s accounts; create at most %(max)s at "
                                 "once.", pattern=pattern, max=max_count))
        padded = any(len(t) > 1 and t.startswith("0") for t in (low_text, high_text))
        width = max(len(low_text), len(high_text)) if padded else 0
        if literal:
            parts.append(["".join(literal)])
            literal = []
        parts.append([str(n).zfill(width) for n in range(low, high + 1)])
        position = close + 1
    if literal:
        parts.append(["".join(literal)])
    logins = ["".join(combination) for combination in itertools.product(*parts)]
    for login in (logins[0], logins[-1]):  # every login has the literal parts; the longest is last or first
        if not LOGIN_CHARS.fullmatch(login):
            bad = sorted(set(login) - set("".join(LOGIN_CHARS.findall(login))))
            raise DomainError(_l("Pattern %(pattern)s: logins may hold letters, digits and . _ @ - only, "
                                 "not %(chars)s.", pattern=pattern, chars=" ".join(repr(c) for c in bad)))
    too_long = [login for login in logins if len(login) > MAX_LOGIN]
    if too_long:
        raise DomainError(_l("Pattern %(pattern)s: logins are at most %(n)s characters (%(login)s is longer).",
                             pattern=pattern, n=MAX_LOGIN, login=too_long[0][:MAX_LOGIN] + "…"))
    if len(set(logins)) != len(logins):
        seen: set[str] = set()
        twice = [login for login in logins if login in seen or seen.add(login)]
        raise DomainError(_l("Pattern %(pattern)s names these logins twice: %(logins)s.",
                             pattern=pattern, logins=_named(twice)))
    return logins


# --- batch creation ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberCreation:
    """What a batch creation made: the logins in order, and the random passwords (shown once)."""

    company: Company
    logins: tuple[str, ...]
    password_kind: str
    passwords: dict[str, str] = field(default_factory=dict)  # login → clear password, random kind only


def random_password() -> str:
    """12 characters from an unambiguous 57-character alphabet (about 70 bits)."""
    return "".join(secrets.choice(RANDOM_ALPHABET) for _ in range(RANDOM_LENGTH))


def _check_password(password: str | None) -> str:
    password = password or ""
    if not 6 <= len(password) <= 128:
        raise DomainError(_l("Fixed password: between 6 and 128 characters."))
    if password != password.strip():
        raise DomainError(_l("Fixed password: no spaces at the start or the end."))
    return password


def clean_member_details(email: str | None, first_name: str | None,
                         last_name: str | None) -> tuple[str | None, str | None, str | None]:
    """A member account's optional email and names as saved: trimmed, one line each, the email valid (normalized);
    else DomainError naming the field."""
    address = one_line(email, _l("Email"), MAX_EMAIL, required=False)
    if address is not None:
        try:
            address = validate_email(address, check_deliverability=False).normalized
        except EmailNotValidError:
            raise DomainError(_l("%(field)s: %(problem)s", field=_l("Email"), problem=_l(
                "%(address)s is not a valid email address.", address=address))) from None
    return (address, one_line(first_name, _l("First name"), MAX_NAME, required=False),
            one_line(last_name, _l("Last name"), MAX_NAME, required=False))


def existing_logins(session: Session, logins: Sequence[str]) -> list[str]:
    """Those of `logins` that exist already in any letter case, in any company (one SELECT per 5,000 logins)."""
    wanted = [login.lower() for login in logins]
    taken: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        taken.update(login.lower() for login in session.scalars(
            select(MemberAccount.login).where(func.lower(MemberAccount.login).in_(wanted[start:start + _CHUNK]))))
    return [login for login in logins if login.lower() in taken]


def create_members(session: Session, actor: User, company: Company, pattern: str, password_kind: str,
                   fixed_password: str | None = None, *, max_count: int = DEFAULT_BATCH_MAX,
                   default_password: str = DEFAULT_PASSWORD, hash_method: str = "scrypt",
                   random_hash_method: str = RANDOM_HASH_METHOD) -> MemberCreation:
    """Create the accounts `pattern` names in `company`, all or none, in one INSERT.

    `password_kind`: "default" (`default_password`), "fixed" (`fixed_password`) or "random" (one
    per account, returned in the result and nowhere else: the database keeps only hashes).
    """
    require_role(actor, MEMBER_ROLES)
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=company.name))
    if password_kind not in PASSWORD_KINDS:
        raise DomainError(_l("Password: choose default, fixed or random."))
    if password_kind == "fixed":
        fixed_password = _check_password(fixed_password)
    logins = expand_pattern(pattern, max_count)
    taken = existing_logins(session, logins)
    if taken:
        raise LoginsTaken(_l("Nothing was created: %(count)s of these logins exist already: %(logins)s.",
                             count=len(taken), logins=_named(taken)), taken)
    passwords: dict[str, str] = {}
    if password_kind == "random":
        passwords = {login: random_password() for login in logins}
        hashes = {login: generate_password_hash(passwords[login], method=random_hash_method) for login in logins}
    else:
        shared = generate_password_hash(default_password if password_kind == "default" else fixed_password,
                                        method=hash_method)
        hashes = dict.fromkeys(logins, shared)
    now = utcnow()
    try:
        with session.begin_nested():  # a login taken meanwhile fails the INSERT, not the session
            session.execute(
                MemberAccount.__table__.insert(),
                [{"company_id": company.id, "login": login, "password_hash": hashes[login], "vip_level": "none",
                  "invitation_state": "none", "active": True, "created_at": now} for login in logins],
            )
    except IntegrityError:
        taken = existing_logins(session, logins)
        raise LoginsTaken(_l("Nothing was created: %(count)s of these logins were taken meanwhile: %(logins)s.",
                             count=len(taken), logins=_named(taken)), taken) from None
    ids: list[int] = []
    for start in range(0, len(logins), _CHUNK):
        ids += session.scalars(select(MemberAccount.id).where(
            MemberAccount.login.in_(logins[start:start + _CHUNK])).order_by(MemberAccount.id))
    summary = f"{len(logins)} accounts in {company.name} from {pattern!r} ({password_kind} password): "
    record(session, actor, "create", "member_account", ids, summary + ", ".join(logins)[:2000])
    session.flush()
    return MemberCreation(company, tuple(logins), password_kind, passwords)


# --- VIP upgrade ------------------------------------------------------------------------------

def upgrade_cost(level: str, years, accounts: int) -> int:
    """Coins for upgrading `accounts` accounts to `level` for `years`: accounts × years × 7,200 or 21,600."""
    level, years = parse_level(level), parse_years(years)
    return int(whole_coins(YEARLY_PRICE_CNY[level] * COINS_PER_CNY * years * accounts))


def conversion_cost(from_level: str, to_level: str, days: int) -> int:
    """Coins for turning `days` remaining days of `from_level` into `to_level`: the difference of the
    yearly prices × days / 365, rounded half up (0 when nothing is converted)."""
    if days <= 0 or from_level == to_level or from_level not in YEARLY_PRICE_CNY:
        return 0
    yearly = (YEARLY_PRICE_CNY[to_level] - YEARLY_PRICE_CNY[from_level]) * COINS_PER_CNY
    return int(round_money(yearly * days / DAYS_PER_YEAR, "COIN"))


def effective_level(level: str, expires_on: date | None, today: date) -> str:
    """The level an account really has today: none once its expiry has passed."""
    if level == "none" or expires_on is None or expires_on < today:
        return "none"
    return level


class UpgradeLine(NamedTuple):
    """One account of an upgrade: before and after, and the remaining days converted to the new level."""

    id: int
    login: str
    old_level: str
    old_expiry: date | None
    new_expiry: date
    converted_days: int  # remaining days of a lower level that become days of the new level
    conversion_coins: int  # what converting them costs (see conversion_cost)


@dataclass(frozen=True)
class UpgradeQuote:
    """What upgrading these accounts would do and cost, and which accounts it refuses and why."""

    payer: Company
    level: str
    years: Decimal
    months: int
    accounts: tuple[UpgradeLine, ...]
    refused: tuple[tuple[str, str], ...]
    coins: int  # the whole cost: term_coins + conversion_coins
    balance: Decimal
    term_coins: int = 0
    conversion_coins: int = 0

    @property
    def missing(self) -> int:
        return max(0, self.coins - int(self.balance))


def _quote_payload(quote: UpgradeQuote) -> dict:
    """Everything an upgrade applies and charges, in a canonical order (accounts by id)."""
    return {
        "payer": quote.payer.id, "level": quote.level, "years": str(quote.years), "months": quote.months,
        "accounts": [[line.id, line.old_level, str(line.old_expiry), str(line.new_expiry), line.converted_days,
                      line.conversion_coins] for line in sorted(quote.accounts)],
        "term_coins": quote.term_coins, "conversion_coins": quote.conversion_coins, "coins": quote.coins,
    }


def quote_digest(quote: UpgradeQuote, secret: str) -> str:
    """The digest a confirmation page carries for `quote` (see actions.quotes)."""
    return digest_of(_quote_payload(quote), secret)


def quote_upgrade(session: Session, actor: User, accounts: Sequence[MemberAccount], level: str, years,
                  today: date, payer: Company | None = None) -> UpgradeQuote:
    """Price an upgrade (nothing changes): in-scope accounts of the payer's tree, not above `level`.

    Refused by login, with the reason: accounts outside the actor's companies or outside the
    payer's tree, and accounts whose current level is higher than `level` and still valid.
    """
    require_role(actor, MEMBER_ROLES)
    level, years = parse_level(level), parse_years(years)
    months = TERM_MONTHS[years]
    if payer is None:
        payer = actor.company
    if payer is None:
        companies = {a.company_id for a in accounts}
        if len(companies) != 1:
            raise DomainError(_l("Choose the company whose coins pay for the upgrade."))
        payer = session.get(Company, companies.pop())
    if not in_scope(actor, payer.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=payer.name))
    tree = set(session.scalars(payer.subtree_ids()))
    allowed = _scope_check(session, actor)
    chosen, refused = [], []
    for account in accounts:
        current = effective_level(account.vip_level, account.vip_expires_on, today)
        if not allowed(account.company_id):
            refused.append((account.login, str(_l("outside your companies"))))
        elif account.company_id not in tree:
            refused.append((account.login, str(_l("not an account of %(company)s, whose coins pay",
                                                  company=payer.name))))
        elif LEVEL_RANK[current] > LEVEL_RANK[level]:
            refused.append((account.login, str(_l("already %(level)s until %(date)s, higher than %(wanted)s",
                                                  level=VIP_LEVELS[current], date=account.vip_expires_on,
                                                  wanted=VIP_LEVELS[level]))))
        else:
            start = max(account.vip_expires_on or today, today)
            days = (start - today).days if current != "none" else 0
            chosen.append(UpgradeLine(account.id, account.login, account.vip_level, account.vip_expires_on,
                                      add_months(start, months), days if current != level else 0,
                                      conversion_cost(current, level, days)))
    term_coins = upgrade_cost(level, years, len(chosen)) if chosen else 0
    conversion = sum(line.conversion_coins for line in chosen)
    wallet = wallet_for(session, payer.id, "COIN")
    return UpgradeQuote(payer, level, years, months, tuple(chosen), tuple(refused), term_coins + conversion,
                        wallet.balance, term_coins, conversion)


def upgrade_vip(session: Session, actor: User, accounts: Sequence[MemberAccount], level: str, years,
                today: date, payer: Company | None = None, expected_quote: str | None = None,
                secret: str = "") -> ActionResult:
    """Upgrade accounts to `level` for `years`, paying accounts × years × 7,200 / 21,600 coins
    (plus the conversion of remaining VIP days when going to SVIP; see the module's docstring).

    All or nothing for the accounts it accepts: the coin debit (an Order of kind vip_upgrade in
    COIN, paid from the payer's COIN wallet), the order lines and one executemany UPDATE of the
    accounts share the transaction. Not enough coins refuses everything, saying how many are
    missing. Accounts refused by `quote_upgrade` are reported and left alone. `expected_quote`
    (the `quote_digest` a confirmation page showed, keyed with `secret`) must be the digest of
    the quote computed now, or QuoteChanged is raised before anything is written.
    """
    quote = quote_upgrade(session, actor, accounts, level, years, today, payer)
    if expected_quote is not None:
        check_quote(expected_quote, _quote_payload(quote), secret,
                    _l("The form changed since the price was shown: check the new price and confirm again. "
                       "Nothing was upgraded."))
    if not quote.accounts:
        return ActionResult((), quote.refused)
    if quote.missing:
        raise DomainError(_l("Not enough coins: the upgrade costs %(cost)s coins, %(company)s holds %(held)s; "
                             "%(missing)s coins missing. Nothing was upgraded.", cost=f"{quote.coins:,}",
                             company=quote.payer.name, held=f"{int(quote.balance):,}",
                             missing=f"{quote.missing:,}"))
    unit = upgrade_cost(quote.level, quote.years, 1)
    order = open_order(
        session, actor, kind="vip_upgrade", company_id=quote.payer.id, currency="COIN",
        lines=[LineSpec(description=line.login, gross=Decimal(unit + line.conversion_coins),
                        unit_price=Decimal(unit + line.conversion_coins), edition=quote.level, months=quote.months,
                        member_account_id=line.id, old_level=line.old_level, old_expires_on=line.old_expiry,
                        new_expires_on=line.new_expiry)
               for line in quote.accounts],
    )
    try:
        pay_with_balance(session, actor, order, today)
    except InsufficientBalance as exc:  # another upgrade spent the coins since the quote
        raise DomainError(_l("Not enough coins: the upgrade costs %(cost)s coins; %(missing)s coins missing. "
                             "Nothing was upgraded.", cost=f"{quote.coins:,}", missing=f"{int(exc.missing):,}")
                          ) from None
    for account in accounts:
        session.expire(account)
    logins = tuple(line.login for line in quote.accounts)
    summary = dict(order=order.number, count=len(logins), level=label_param("vip_level", quote.level),
                   months=quote.months, coins=count_param(quote.coins), payer=quote.payer.name,
                   logins=", ".join(logins)[:2000])
    if quote.conversion_coins:
        summary = message("audit.members.upgrade_converted", converted=count_param(quote.conversion_coins), **summary)
    else:
        summary = message("audit.members.upgrade", **summary)
    record(session, actor, "upgrade_vip", "member_account", [line.id for line in quote.accounts], summary)
    session.flush()
    return ActionResult(logins, quote.refused, {"order": order.number, "coins": quote.coins})


# --- 批量 → 更新: re-read levels, expiring the lapsed ones -------------------------------------

def refresh_levels(session: Session, actor: User, accounts: Sequence[MemberAccount], today: date) -> ActionResult:
    """Set the level of every selected account whose expiry has passed back to ordinary (one UPDATE).

    `changed` names the accounts that lapsed; `extra["levels"]` counts the selected accounts by
    their level afterwards. Accounts outside the actor's companies are refused by login.
    """
    require_role(actor, MEMBER_ROLES)
    allowed = _scope_check(session, actor)
    refused = [(a.login, str(_l("outside your companies"))) for a in accounts if not allowed(a.company_id)]
    kept = [a for a in accounts if allowed(a.company_id)]
    lapsed = [a for a in kept
              if a.vip_level != "none" and effective_level(a.vip_level, a.vip_expires_on, today) == "none"]
    levels = {code: 0 for code in VIP_LEVELS}
    for account in kept:
        levels[effective_level(account.vip_level, account.vip_expires_on, today)] += 1
    lapsed_logins = tuple(a.login for a in lapsed)
    ids = [a.id for a in lapsed]
    table = MemberAccount.__table__
    for start in range(0, len(ids), _CHUNK):
        session.execute(
            update(table)
            .where(table.c.id.in_(ids[start:start + _CHUNK]), table.c.vip_level != "none",
                   (table.c.vip_expires_on.is_(None)) | (table.c.vip_expires_on < today))
            .values(vip_level="none")
        )
    for account in lapsed:
        session.expire(account)
    if kept:
        record(session, actor, "refresh_levels", "member_account", ids,
               message("audit.members.reread", count=len(kept), lapsed=len(lapsed),
                       logins=", ".join(lapsed_logins)[:2000] or "—"))
    session.flush()
    return ActionResult(lapsed_logins, tuple(refused), {"levels": levels, "checked": len(kept)})


_NEVER = date(1900, 1, 1)  # stands for "no expiry" in comparisons (NULL never equals)


def apply_vip_upgrade(session: Session, order: Order, today: date) -> None:
    """A paid VIP upgrade moves each account to the line's level and expiry, if nobody changed it since."""
    lines = order.lines
    table = MemberAccount.__table__
    result = session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.vip_level == bindparam("b_level"),
               func.coalesce(table.c.vip_expires_on, _NEVER) == bindparam("b_expiry"))
        .values(vip_level=bindparam("b_new_level"), vip_expires_on=bindparam("b_new")),
        [{"b_id": line.member_account_id, "b_level": line.old_level, "b_expiry": line.old_expires_on or _NEVER,
          "b_new_level": line.edition, "b_new": line.new_expires_on} for line in lines],
    )
    if result.rowcount != len(lines):
        raise DomainError(_l("Some accounts changed while you were upgrading them; nothing was upgraded. Try again."))


def undo_vip_upgrade(session: Session, order: Order, lines: Sequence[OrderLine]) -> None:
    """A refunded upgrade puts each account back to its level and expiry before it (unless changed since)."""
    table = MemberAccount.__table__
    result = session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.vip_level == bindparam("b_new_level"),
               func.coalesce(table.c.vip_expires_on, _NEVER) == bindparam("b_new"))
        .values(vip_level=bindparam("b_level"), vip_expires_on=bindparam("b_expiry")),
        [{"b_id": line.member_account_id, "b_new_level": line.edition, "b_new": line.new_expires_on,
          "b_level": line.old_level, "b_expiry": line.old_expires_on} for line in lines],
    )
    if result.rowcount != len(lines):
        raise DomainError(_l("Order %(number)s: some accounts changed after this upgrade; refund the later change "
                             "first.", number=order.number))
