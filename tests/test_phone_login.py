"""Phone verification's rules, called directly with a controlled clock: captchas are single use and
expire; SMS codes are 6 digits, hashed, expire after 5 minutes, are rate-limited per phone and lock
after 5 wrong tries; only the newest code counts; phones are CN/VN mobiles in E.164."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from actions.phone_login import (
    PhoneSettings, VerificationRefused, captcha_png, consume_captcha, mask_phone, new_captcha, normalize_phone,
    request_code, verify_code,
)
from actions.sms import SmsFailed, send_sms, test_outbox
from conftest import make_user
from models import AuditEvent, CaptchaChallenge, PhoneCode, PhoneThrottle, User, db

SECRET = "unit-test-secret"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
PHONE = "+8613800138000"
SETTINGS = PhoneSettings(customer=True)


@pytest.fixture
def user(app):
    user = make_user("phoneuser", "tech_support")
    db.session.commit()
    return user


def _refused(call, field: str | None = None) -> VerificationRefused:
    with pytest.raises(VerificationRefused) as caught:
        call()
    if field is not None:
        assert caught.value.field == field
    return caught.value


# --- phone numbers --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,e164", [
    ("13800138000", "+8613800138000"),
    ("138 0013 8000", "+8613800138000"),
    ("+86 138-0013-8000", "+8613800138000"),
    ("0086 13800138000", "+8613800138000"),
    ("0912 345 678", "+84912345678"),
    ("+84 912 345 678", "+84912345678"),
])
def test_china_and_vietnam_mobiles_are_normalized_to_e164(raw, e164):
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize("raw", ["", "12345", "010 6552 9988", "+1 202 555 0143", "+44 7911 123456", "abc"])
def test_other_numbers_landlines_and_garbage_are_refused_naming_the_field(raw):
    error = _refused(lambda: normalize_phone(raw), "phone")
    assert ("China" in str(error) and "Vietnam" in str(error)) or not raw


def test_a_phone_is_masked_for_display():
    assert mask_phone(PHONE) == "+86 138****8000"


# --- captcha ----------------------------------------------------------------------------------------

def test_a_captcha_is_stored_only_as_a_hash_and_draws_a_png(app):
    token, answer = new_captcha(db.session, T0, SECRET)
    assert len(answer) == 4 and answer.isupper() or answer.isdigit()
    row = db.session.get(CaptchaChallenge, token)
    assert answer not in row.answer_hash and len(row.answer_hash) == 64
    assert captcha_png(answer)[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_right_captcha_passes_once_case_insensitively(app):
    token, answer = new_captcha(db.session, T0, SECRET, answer="AB3K")
    consume_captcha(db.session, token, " ab3k ", T0 + timedelta(seconds=10), SECRET)
    assert db.session.get(CaptchaChallenge, token) is None
    error = _refused(lambda: consume_captcha(db.session, token, "AB3K", T0, SECRET), "captcha")
    assert "expired" in str(error)


def test_a_wrong_answer_uses_the_captcha_up(app):
    token, _answer = new_captcha(db.session, T0, SECRET, answer="AB3K")
    assert "wrong" in str(_refused(lambda: consume_captcha(db.session, token, "XXXX", T0, SECRET)))
    _refused(lambda: consume_captcha(db.session, token, "AB3K", T0, SECRET))  # the right one, too late


def test_a_captcha_expires(app):
    token, answer = new_captcha(db.session, T0, SECRET, minutes=5)
    error = _refused(lambda: consume_captcha(db.session, token, answer, T0 + timedelta(minutes=5), SECRET))
    assert "expired" in str(error)


def test_a_captcha_of_another_secret_or_no_token_never_passes(app):
    token, answer = new_captcha(db.session, T0, SECRET)
    _refused(lambda: consume_captcha(db.session, token, answer, T0, "another-secret"))
    _refused(lambda: consume_captcha(db.session, None, answer, T0, SECRET))
    _refused(lambda: consume_captcha(db.session, "made-up", answer, T0, SECRET))


def test_expired_captchas_are_swept_when_new_ones_are_made(app):
    old, _ = new_captcha(db.session, T0, SECRET, minutes=5)
    new_captcha(db.session, T0 + timedelta(minutes=6), SECRET)
    assert db.session.get(CaptchaChallenge, old) is None


# --- SMS codes ----------------------------------------------------------------------------------------

def test_a_code_is_six_digits_stored_hashed_and_binds_the_phone_when_entered(app, user):
    code = request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    assert len(code) == 6 and code.isdigit()
    row = db.session.query(PhoneCode).one()
    assert code not in row.code_hash and row.expires_at == T0 + timedelta(minutes=5)
    verify_code(db.session, user, PHONE, code, T0 + timedelta(minutes=4, seconds=59), SETTINGS, SECRET)
    assert user.login_phone == PHONE and user.login_phone_verified_at is not None
    assert db.session.query(AuditEvent).filter_by(action="verify_phone").count() == 1


def test_a_code_is_single_use(app, user):
    code = request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    verify_code(db.session, user, PHONE, code, T0, SETTINGS, SECRET)
    assert "expired" in str(_refused(lambda: verify_code(db.session, user, PHONE, code, T0, SETTINGS, SECRET), "code"))


def test_a_code_expires_after_five_minutes(app, user):
    code = request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    error = _refused(lambda: verify_code(db.session, user, PHONE, code, T0 + timedelta(minutes=5), SETTINGS, SECRET))
    assert "expired" in str(error)
    assert user.login_phone is None


def test_a_code_works_only_for_its_user_and_phone(app, user):
    other = make_user("other", "finance")
    code = request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    _refused(lambda: verify_code(db.session, other, PHONE, code, T0, SETTINGS, SECRET))
    _refused(lambda: verify_code(db.session, user, "+84912345678", code, T0, SETTINGS, SECRET))
    verify_code(db.session, user, PHONE, code, T0, SETTINGS, SECRET)


def test_five_wrong_codes_lock_the_code_even_the_right_one_then(app, user):
    code = request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    wrong = "000000" if code != "000000" else "111111"
    messages = [str(_refused(lambda: verify_code(db.session, user, PHONE, wrong, T0, SETTINGS, SECRET), "code"))
                for _ in range(5)]
    assert "4 tries left" in messages[0] and "1 tries left" in messages[3]
    assert "locked" in messages[4]
    error = _refused(lambda: verify_code(db.session, user, PHONE, code, T0, SETTINGS, SECRET))
    assert "locked" in str(error)
    db.session.expire_all()
    assert db.session.query(PhoneCode).one().attempts == 5
    assert db.session.query(AuditEvent).filter_by(action="phone_code_failed").count() == 5


def test_a_new_code_retires_the_older_ones(app, user):
    first = request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    second = request_code(db.session, user, PHONE, T0 + timedelta(seconds=61), SETTINGS, SECRET)
    if first != second:
        _refused(lambda: verify_code(db.session, user, PHONE, first, T0 + timedelta(seconds=62), SETTINGS, SECRET))
    verify_code(db.session, user, PHONE, second, T0 + timedelta(seconds=62), SETTINGS, SECRET)


def test_one_code_per_minute_per_phone(app, user):
    request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    error = _refused(lambda: request_code(db.session, user, PHONE, T0 + timedelta(seconds=30), SETTINGS, SECRET))
    assert "wait 31 seconds" in str(error)
    other = make_user("sharing", "finance")  # the limit is the phone's, whoever asks
    _refused(lambda: request_code(db.session, other, PHONE, T0 + timedelta(seconds=59), SETTINGS, SECRET))
    request_code(db.session, user, PHONE, T0 + timedelta(seconds=60), SETTINGS, SECRET)
    request_code(db.session, user, "+84912345678", T0 + timedelta(seconds=61), SETTINGS, SECRET)  # another phone


def test_at_most_five_codes_an_hour_per_phone(app, user):
    for minute in range(5):
        request_code(db.session, user, PHONE, T0 + timedelta(minutes=minute * 2), SETTINGS, SECRET)
    error = _refused(lambda: request_code(db.session, user, PHONE, T0 + timedelta(minutes=20), SETTINGS, SECRET))
    assert "5 codes" in str(error) and "41 minutes" in str(error)
    request_code(db.session, user, PHONE, T0 + timedelta(hours=1), SETTINGS, SECRET)  # a new hour
    throttle = db.session.get(PhoneThrottle, PHONE)
    db.session.refresh(throttle)
    assert throttle.sent_in_window == 1 and throttle.window_started_at == T0 + timedelta(hours=1)


def test_a_refused_send_stores_no_code(app, user):
    request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    _refused(lambda: request_code(db.session, user, PHONE, T0 + timedelta(seconds=1), SETTINGS, SECRET))
    assert db.session.query(PhoneCode).count() == 1


def test_the_setting_says_who_must_verify(app, user):
    customer = make_user("cust", "customer_admin", user.company or _company())
    applicant = User(username="appl", role="applicant", password_hash="x", session_version=0)
    assert PhoneSettings(staff=True).required_for(user)
    assert not PhoneSettings(staff=True).required_for(customer)
    assert PhoneSettings(customer=True).required_for(customer) and PhoneSettings(customer=True).required_for(applicant)
    assert not PhoneSettings().required_for(user) and not PhoneSettings().required_for(customer)
    assert PhoneSettings.from_config({"PHONE_VERIFICATION_STAFF": True, "PHONE_REGIONS": "cn"}).regions == ("CN",)


def _company():
    from conftest import make_company

    return make_company("Phone Co")


# --- the SMS provider interface ------------------------------------------------------------------------

def test_the_test_backend_keeps_messages_and_the_log_backend_logs(app, caplog, tmp_path):
    test_outbox.clear()
    path = tmp_path / "sms.jsonl"
    send_sms(PHONE, "code 123456", {"SMS_BACKEND": "test", "SMS_TEST_FILE": str(path)})
    assert test_outbox[-1].phone == PHONE and test_outbox[-1].text == "code 123456"
    assert '"code 123456"' in path.read_text()
    with caplog.at_level("WARNING", logger="renewdesk.sms"):
        send_sms(PHONE, "code 654321", {"SMS_BACKEND": "log"})
    assert "code 654321" in caplog.text and PHONE in caplog.text


class _Broken:
    def __init__(self, config):
        pass

    def send(self, phone, text):
        raise ConnectionError("provider down")


def test_a_provider_plugs_in_by_dotted_path_and_its_failure_is_smsfailed(app):
    with pytest.raises(SmsFailed):
        send_sms(PHONE, "x", {"SMS_BACKEND": "test_phone_login:_Broken"})
    with pytest.raises(ValueError):
        send_sms(PHONE, "x", {"SMS_BACKEND": "nonsense"})


def test_send_login_code_checks_the_captcha_first_and_prefers_the_bound_phone(app, user):
    from actions.phone_login import send_login_code

    token, answer = new_captcha(db.session, T0, SECRET)
    _refused(lambda: send_login_code(db.session, user, typed_phone="not a phone", captcha_token=token,
                                     captcha_answer=answer, now=T0, settings=SETTINGS, secret=SECRET), "phone")
    assert db.session.get(CaptchaChallenge, token) is None  # used up by the refused attempt
    token, _answer = new_captcha(db.session, T0, SECRET, answer="AB3K")
    _refused(lambda: send_login_code(db.session, user, typed_phone=PHONE, captcha_token=token, captcha_answer="XXXX",
                                     now=T0, settings=SETTINGS, secret=SECRET), "captcha")
    assert db.session.query(PhoneCode).count() == 0
    user.login_phone = "+84912345678"
    token, answer = new_captcha(db.session, T0, SECRET)
    phone, code = send_login_code(db.session, user, typed_phone=PHONE, captcha_token=token, captcha_answer=answer,
                                  now=T0, settings=SETTINGS, secret=SECRET)
    assert phone == "+84912345678" and len(code) == 6


# --- concurrency: the database, not Python, decides -----------------------------------------------------

def _race(user_id: int, workers: int, call) -> list[str]:
    """Run `call(session, user)` in `workers` threads at once, each on its own connection and
    transaction; returns "ok" or the refusal of each."""
    import threading

    from sqlalchemy.orm import Session

    engine = db.engine
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []

    def worker():
        with Session(engine) as session:
            user = session.get(User, user_id)
            barrier.wait()
            try:
                call(session, user)
                session.commit()
                outcomes.append("ok")
            except VerificationRefused as exc:
                session.commit()  # what a refusal counted stays counted, as in the views
                outcomes.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


@pytest.mark.parametrize("known_phone", [False, True])
def test_simultaneous_sends_to_one_phone_send_one_code(app, user, known_phone):
    if known_phone:  # the phone's throttle row exists (an old send) or is created by the race itself
        db.session.add(PhoneThrottle(phone=PHONE, last_sent_at=T0 - timedelta(hours=2),
                                     window_started_at=T0 - timedelta(hours=2), sent_in_window=3))
        db.session.commit()
    outcomes = _race(user.id, 6, lambda session, u: request_code(session, u, PHONE, T0, SETTINGS, SECRET))
    assert outcomes.count("ok") == 1, outcomes
    assert all("wait" in o for o in outcomes if o != "ok"), outcomes
    db.session.expire_all()
    assert db.session.query(PhoneCode).count() == 1


def test_simultaneous_wrong_guesses_are_all_counted(app, user):
    request_code(db.session, user, PHONE, T0, SETTINGS, SECRET)
    db.session.commit()
    outcomes = _race(user.id, 8, lambda session, u: verify_code(session, u, PHONE, "99999x", T0, SETTINGS, SECRET))
    assert len(outcomes) == 8 and "ok" not in outcomes
    assert sum("tries left" in o for o in outcomes) == 4  # tries 1 to 4
    assert sum("locked" in o for o in outcomes) == 4  # the 5th locks it; 6, 7, 8 find it locked
    db.session.expire_all()
    assert db.session.query(PhoneCode).one().attempts == 5
