"""Phone verification at login (seed 000 §1.2): a bound mobile, an image captcha, an SMS code.

After the password, a user whose kind (staff / customer) the settings require to verify gets
no session until they pass: bind a mobile if they have none, type the picture code, get an SMS
code (6 digits), type it. The rules, all enforced by the database:

- a captcha is single use: it is deleted by the first answer, right or wrong, and expires;
- a code is kept as an HMAC only, expires after ``SMS_CODE_MINUTES`` (5), and dies after
  ``SMS_CODE_MAX_ATTEMPTS`` (5) wrong tries counted by a conditional UPDATE;
- a phone gets one code per ``SMS_RESEND_SECONDS`` (60) and ``SMS_CODES_PER_HOUR`` (5) an hour,
  claimed by a conditional UPDATE of its `PhoneThrottle` row;
- only the newest code of a user and phone counts: asking for a new one retires the others.

Refusals that must stick (a consumed captcha, a counted wrong code) are flushed before the
error is raised: the caller commits them even though the step failed.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions import DomainError
from actions.audit import record
from models import CaptchaChallenge, PhoneCode, PhoneThrottle, User

CAPTCHA_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: nobody can tell them apart
CAPTCHA_LENGTH = 4
CODE_DIGITS = 6
REGION_NAMES = {"CN": _l("China"), "VN": _l("Vietnam")}


class VerificationRefused(DomainError):
    """A refused step; `field` names the form field it belongs to."""

    def __init__(self, message, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PhoneSettings:
    """The limits of phone verification (app settings, README "Phone verification at login")."""

    staff: bool = False
    customer: bool = False
    code_minutes: int = 5
    resend_seconds: int = 60
    codes_per_hour: int = 5
    max_attempts: int = 5
    captcha_minutes: int = 5
    regions: tuple[str, ...] = ("CN", "VN")

    @classmethod
    def from_config(cls, config: Mapping) -> PhoneSettings:
        regions = config.get("PHONE_REGIONS", "CN,VN")
        if isinstance(regions, str):
            regions = [r.strip().upper() for r in regions.split(",") if r.strip()]
        return cls(
            staff=bool(config.get("PHONE_VERIFICATION_STAFF", False)),
            customer=bool(config.get("PHONE_VERIFICATION_CUSTOMER", False)),
            code_minutes=int(config.get("SMS_CODE_MINUTES", 5)),
            resend_seconds=int(config.get("SMS_RESEND_SECONDS", 60)),
            codes_per_hour=int(config.get("SMS_CODES_PER_HOUR", 5)),
            max_attempts=int(config.get("SMS_CODE_MAX_ATTEMPTS", 5)),
            captcha_minutes=int(config.get("CAPTCHA_MINUTES", 5)),
            regions=tuple(regions),
        )

    def required_for(self, user: User) -> bool:
        """Whether `user` must verify a phone at login (applicants count as customers)."""
        return self.staff if user.is_staff else self.customer


def _digest(secret: str, *parts: str) -> str:
    return hmac.new(secret.encode(), "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def mask_phone(phone: str) -> str:
    """+8613800138000 → +86 138****8000: enough for the user to recognise their phone."""
    import phonenumbers  # here, not at start-up: a web worker that never verifies a phone keeps 7 MB

    number = phonenumbers.parse(phone)
    national = str(number.national_number)
    return f"+{number.country_code} {national[:3]}****{national[-4:]}"


def display_phone(phone: str) -> str:
    """+8613800138000 → +86 138 0013 8000: how people write it."""
    import phonenumbers
    return phonenumbers.format_number(phonenumbers.parse(phone), phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# --- the phone number ------------------------------------------------------------------------------


def normalize_phone(raw: str | None, regions: tuple[str, ...] = ("CN", "VN"), field: str = "phone") -> str:
    """A mobile number of one of `regions` in E.164 (+8613800138000), or VerificationRefused naming the field."""
    import phonenumbers
    value = (raw or "").strip()
    if not value:
        raise VerificationRefused(_l("Enter your mobile number."), field)
    countries = str(_l(", ")).join(str(REGION_NAMES.get(r, r)) for r in regions)
    candidates = [None] if value.startswith(("+", "00")) else list(regions)
    if value.startswith("00"):
        value = "+" + value[2:]
    for region in candidates:
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            continue
        if (
            phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) in regions
            and phonenumbers.number_type(number) in (phonenumbers.PhoneNumberType.MOBILE,
                                                     phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
        ):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise VerificationRefused(
        _l("%(value)s is not a mobile number of %(countries)s (for example 138 0013 8000 or +84 912 345 678).",
           value=value[:40], countries=countries), field)


# --- the image captcha -----------------------------------------------------------------------------


def new_captcha(session: Session, now: datetime, secret: str, minutes: int = 5,
                answer: str | None = None) -> tuple[str, str]:
    """A new captcha: (token, answer). Only the answer's HMAC is stored; expired ones are swept."""
    session.execute(delete(CaptchaChallenge).where(CaptchaChallenge.expires_at <= now))
    answer = (answer or "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(CAPTCHA_LENGTH))).upper()
    token = secrets.token_urlsafe(24)
    session.add(CaptchaChallenge(token=token, answer_hash=_digest(secret, "captcha", token, answer),
                                 expires_at=now + timedelta(minutes=minutes)))
    session.flush()
    return token, answer


def captcha_png(answer: str) -> bytes:
    """The picture of `answer` (the `captcha` package, noise and distortion included)."""
    from captcha.image import ImageCaptcha

    return ImageCaptcha(width=160, height=60).generate(answer).getvalue()


def consume_captcha(session: Session, token: str | None, answer: str | None, now: datetime, secret: str,
                    field: str = "captcha") -> None:
    """Check a captcha answer and delete the captcha whatever the answer: each one gets one try."""
    row = session.get(CaptchaChallenge, token) if token else None
    if row is not None:
        taken = session.execute(delete(CaptchaChallenge).where(CaptchaChallenge.token == token)).rowcount
        session.flush()
    if row is None or taken != 1 or row.expires_at <= now:
        raise VerificationRefused(_l("The picture code has expired: type the new one."), field)
    given = (answer or "").strip().upper()
    if not given or not hmac.compare_digest(row.answer_hash, _digest(secret, "captcha", token, given)):
        raise VerificationRefused(_l("The picture code is wrong: type the new one."), field)


# --- SMS codes ---------------------------------------------------------------------------------------


def _claim_send(session: Session, phone: str, now: datetime, settings: PhoneSettings) -> None:
    """Take one send from `phone`'s allowance, or raise: conditional UPDATEs, safe when two requests race."""
    resend_before = now - timedelta(seconds=settings.resend_seconds)
    window_before = now - timedelta(hours=1)
    fresh_window = session.execute(
        update(PhoneThrottle)
        .where(PhoneThrottle.phone == phone, PhoneThrottle.last_sent_at <= resend_before,
               PhoneThrottle.window_started_at <= window_before)
        .values(last_sent_at=now, window_started_at=now, sent_in_window=1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if fresh_window == 1:
        return
    same_window = session.execute(
        update(PhoneThrottle)
        .where(PhoneThrottle.phone == phone, PhoneThrottle.last_sent_at <= resend_before,
               PhoneThrottle.window_started_at > window_before,
               PhoneThrottle.sent_in_window < settings.codes_per_hour)
        .values(last_sent_at=now, sent_in_window=PhoneThrottle.sent_in_window + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if same_window == 1:
        return
    throttle = session.scalar(select(PhoneThrottle).where(PhoneThrottle.phone == phone)
                              .execution_options(populate_existing=True))
    if throttle is None:
        try:
            with session.begin_nested():
                session.add(PhoneThrottle(phone=phone, last_sent_at=now, window_started_at=now, sent_in_window=1))
            return
        except IntegrityError:  # a concurrent first send to this phone won
            raise VerificationRefused(_l("A code was just sent to this phone: wait %(n)s seconds.",
                                         n=settings.resend_seconds), "code") from None
    if throttle.last_sent_at > resend_before:
        wait = int((throttle.last_sent_at - resend_before).total_seconds()) + 1
        raise VerificationRefused(_l("A code was just sent to this phone: wait %(n)s seconds.", n=wait), "code")
    wait = int((throttle.window_started_at - window_before).total_seconds() // 60) + 1
    raise VerificationRefused(_l("%(count)s codes were sent to this phone within an hour: try again in %(n)s "
                                 "minutes.", count=settings.codes_per_hour, n=wait), "code")


def request_code(session: Session, user: User, phone: str, now: datetime, settings: PhoneSettings,
                 secret: str) -> str:
    """Claim a send and store a new 6-digit code for `user` and `phone`; returns the code (to send after commit)."""
    _claim_send(session, phone, now, settings)
    session.execute(
        update(PhoneCode).where(PhoneCode.user_id == user.id, PhoneCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)
    )  # only the newest code counts
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(PhoneCode(user_id=user.id, phone=phone, code_hash=_digest(secret, "sms", str(user.id), phone, code),
                          attempts=0, created_at=now, expires_at=now + timedelta(minutes=settings.code_minutes)))
    record(session, user, "send_sms_code", "user", [user.id], f"phone={mask_phone(phone)}")
    session.flush()
    return code


def send_login_code(session: Session, user: User, *, typed_phone: str | None, captcha_token: str | None,
                    captcha_answer: str | None, now: datetime, settings: PhoneSettings, secret: str) -> tuple[str, str]:
    """获取验证码: the picture code (used up whatever happens next), the phone (the bound one, else the
    typed one, bound only once its code is entered), then a new code. Returns (phone, code)."""
    consume_captcha(session, captcha_token, captcha_answer, now, secret)
    phone = user.login_phone or normalize_phone(typed_phone, settings.regions)
    return phone, request_code(session, user, phone, now, settings, secret)


def code_message(code: str, minutes: int) -> str:
    """The SMS text, in the user's language."""
    return str(_l("Your Renewdesk verification code is %(code)s; it expires in %(n)s minutes. "
                  "Do not tell it to anyone.", code=code, n=minutes))


def verify_code(session: Session, user: User, phone: str, code: str | None, now: datetime,
                settings: PhoneSettings, secret: str) -> None:
    """Check the newest code for `user` and `phone`; on success bind the phone to the user.

    A wrong code is counted first (one conditional UPDATE, flushed before the refusal), so
    neither concurrent guesses nor a rolled-back request get extra tries."""
    given = (code or "").strip()
    row = session.scalar(
        select(PhoneCode).where(PhoneCode.user_id == user.id, PhoneCode.phone == phone, PhoneCode.used_at.is_(None))
        .order_by(PhoneCode.id.desc()).limit(1)
    )
    if row is None or row.expires_at <= now:
        raise VerificationRefused(_l("The SMS code has expired or was not sent yet: get a new one."), "code")
    counted = session.execute(
        update(PhoneCode)
        .where(PhoneCode.id == row.id, PhoneCode.used_at.is_(None), PhoneCode.attempts < settings.max_attempts)
        .values(attempts=PhoneCode.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    if counted != 1:
        raise VerificationRefused(_l("Too many wrong codes: this code is locked. Get a new code."), "code")
    if not (given.isascii() and given.isdigit() and len(given) == CODE_DIGITS) or not hmac.compare_digest(
        row.code_hash, _digest(secret, "sms", str(user.id), phone, given)
    ):
        attempts = session.scalar(select(PhoneCode.attempts).where(PhoneCode.id == row.id))
        record(session, user, "phone_code_failed", "user", [user.id], f"phone={mask_phone(phone)} try={attempts}")
        session.flush()
        left = settings.max_attempts - attempts
        if left <= 0:
            raise VerificationRefused(_l("Too many wrong codes: this code is locked. Get a new code."), "code")
        raise VerificationRefused(_l("The SMS code is wrong: %(n)s tries left.", n=left), "code")
    used = session.execute(
        update(PhoneCode).where(PhoneCode.id == row.id, PhoneCode.used_at.is_(None)).values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if used != 1:  # the same code entered twice at once: only one wins
        raise VerificationRefused(_l("The SMS code has expired or was not sent yet: get a new one."), "code")
    first = user.login_phone != phone
    user.login_phone = phone
    user.login_phone_verified_at = now
    record(session, user, "verify_phone", "user", [user.id], f"phone={mask_phone(phone)} new={first}")
    session.flush()
