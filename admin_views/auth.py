"""Login (with phone verification when the settings ask for it), registering and applying from
the login page, logout, change password and language: the pages outside the console.

Phone verification (actions.phone_login): a correct password for a user who must verify starts
a *pending* login kept in the session (the user id with its session version, when, where to go,
and the phone the code went to); nothing is authenticated until the SMS code is right, and
every other page sends a pending visitor back to the verification step.
"""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from flask import (
    Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import PasswordInput

from actions import DomainError
from actions.auth import COMPANY_CLOSED, authenticate, change_password as change_password_action, end_sessions
from actions.auth import may_sign_in
from actions.passwords import current_policy
from actions.phone_login import (
    PhoneSettings, captcha_png, code_message, consume_captcha, display_phone, mask_phone, new_captcha, normalize_phone,
    send_login_code, verify_code,
)
from actions.sms import SmsFailed, send_sms
from actions.tenants import apply as apply_action
from actions.users import register_applicant
from admin_views.base import unit_of_work
from admin_views.wording import FORM_TRANSLATIONS
from models import APPLICATION_STATUSES, LOCALES, TenantApplication, User, db, utcnow

bp = Blueprint("auth", __name__)

PENDING_LOGIN_MINUTES = 10  # a password accepted this long ago must be typed again
# What a visitor with a pending login may still reach (everything else sends them back).
PENDING_ENDPOINTS = frozenset({"auth.verify_phone", "auth.login", "auth.logout", "auth.set_language",
                               "auth.register", "static"})
# What an applicant (registered, no company yet) may reach: applying, and the pages outside the console.
APPLICANT_ENDPOINTS = frozenset({"auth.apply", "auth.logout", "auth.set_language", "auth.change_password",
                                 "auth.login", "static"})


def _kept_password(label, **kwargs) -> PasswordField:
    """A password field that keeps what was typed when the form comes back with an error."""
    return PasswordField(label, widget=PasswordInput(hide_value=False), **kwargs)


class PageForm(FlaskForm):
    """The forms of these pages: WTForms' own messages in the reader's language."""

    class Meta:
        def get_translations(self, form):
            return FORM_TRANSLATIONS


class LoginForm(PageForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=256)])


class ChangePasswordForm(PageForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    new = _kept_password(_l("New password"), validators=[DataRequired(), Length(max=256)])
    confirm = _kept_password(_l("Repeat the new password"), validators=[DataRequired()])


class RegisterForm(PageForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)],
                           render_kw={"maxlength": 64, "autocomplete": "username"})
    password = _kept_password(_l("Password"), validators=[DataRequired(), Length(max=256)])
    confirm = _kept_password(_l("Repeat the password"), validators=[DataRequired()])
    phone = StringField(_l("Mobile number"), validators=[DataRequired(), Length(max=40)],
                        description=_l("A mobile number of mainland China or Vietnam."),
                        render_kw={"maxlength": 40, "autocomplete": "tel", "inputmode": "tel"})
    captcha = StringField(_l("Picture code"), validators=[DataRequired(), Length(max=10)],
                          render_kw={"maxlength": 10, "autocomplete": "off"})


class SendCodeForm(PageForm):
    phone = StringField(_l("Mobile number"), validators=[Length(max=40)],
                        description=_l("A mobile number of mainland China or Vietnam."),
                        render_kw={"maxlength": 40, "autocomplete": "tel", "inputmode": "tel"})
    captcha = StringField(_l("Picture code"), validators=[DataRequired(), Length(max=10)],
                          render_kw={"maxlength": 10, "autocomplete": "off"})


class VerifyCodeForm(PageForm):
    code = StringField(_l("SMS code"), validators=[DataRequired(), Length(max=10)],
                       render_kw={"maxlength": 6, "autocomplete": "one-time-code", "inputmode": "numeric"})


class LanguageForm(PageForm):
    locale = SelectField(_l("Language"), choices=list(LOCALES.items()))


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the console's home page."""
    default = url_for("admin.index")
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = authenticate(
                db.session,
                form.username.data,
                form.password.data,
                now=utcnow(),
                max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"],
            )
        except DomainError as exc:
            db.session.commit()  # a refused login keeps its failure count: not a unit_of_work
            flash(str(exc), "error")
            return render_template("auth/login.html", form=form), 200
        db.session.commit()
        return _sign_in(user, request.args.get("next"))
    return render_template("auth/login.html", form=form)


def _phone_settings() -> PhoneSettings:
    return PhoneSettings.from_config(current_app.config)


def _sign_in(user: User, next_url: str | None):
    """Log `user` in, or, when their kind must verify a phone, start the pending login instead."""
    kept = {key: session[key] for key in ("_flashes", "locale") if key in session}
    session.clear()  # nothing of the anonymous session carries over (fixation), but its messages and language
    session.update(kept)
    if _phone_settings().required_for(user):
        session["pending_login"] = {"user": user.get_id(), "at": utcnow().timestamp(),
                                    "next": safe_next(next_url)}
        return redirect(url_for("auth.verify_phone"))
    return _complete_login(user, safe_next(next_url))


def _complete_login(user: User, target: str):
    session.pop("pending_login", None)
    session.pop("captcha_verify", None)
    login_user(user)
    if user.must_change_password:
        flash(_("Please choose a new password before you continue."), "info")
        return redirect(url_for("auth.change_password"))
    if user.is_applicant:
        return redirect(url_for("auth.apply"))
    return redirect(target)


def _pending_user() -> tuple[User, dict] | None:
    """The user of the session's pending login, while it is fresh and their password unchanged."""
    state = session.get("pending_login")
    if not isinstance(state, dict):
        return None
    started = datetime.fromtimestamp(float(state.get("at", 0)), timezone.utc)
    if utcnow() - started > timedelta(minutes=PENDING_LOGIN_MINUTES):
        return None
    try:
        uid, version = (int(part) for part in str(state.get("user", "")).split(":"))
    except ValueError:
        return None
    user = db.session.get(User, uid)
    if user is None or user.session_version != version:
        return None
    if not may_sign_in(db.session, user):  # deactivated, or its company disabled, since the password was accepted
        if user.active:
            flash(str(COMPANY_CLOSED), "error")
            g.login_refused = True
        return None
    return user, state


def _captcha_image(key: str) -> str:
    """A new captcha for this session under `key` (the previous one is dropped); its picture as a data URL."""
    old = session.pop(key, None)
    if old:
        consume_quietly(old)
    token, answer = new_captcha(db.session, utcnow(), current_app.config["SECRET_KEY"],
                                minutes=_phone_settings().captcha_minutes,
                                answer=_test_captcha_answer())
    db.session.commit()
    session[key] = token
    return "data:image/png;base64," + base64.b64encode(captcha_png(answer)).decode()


def consume_quietly(token: str) -> None:
    """Drop a captcha the page replaces (its answer no longer matters)."""
    from models import CaptchaChallenge

    db.session.execute(CaptchaChallenge.__table__.delete().where(CaptchaChallenge.token == token))


def _test_captcha_answer() -> str | None:
    """CAPTCHA_TEST_ANSWER fixes the answer, for the browser tests only (app.py refuses it elsewhere)."""
    if current_app.config["ENV_NAME"] == "testing":
        return current_app.config.get("CAPTCHA_TEST_ANSWER") or None
    return None


def _field_error(form, exc: DomainError, default: str | None = None) -> None:
    """Show a refusal under the field it names, else as a message at the top."""
    field = getattr(exc, "field", None) or default
    if field is not None and field in form:
        form[field].errors = [*form[field].errors, str(exc)]
    else:
        flash(str(exc), "error")


@bp.route("/login/verify", methods=["GET", "POST"])
def verify_phone():
    """验证手机: bind a phone if none, the picture code, 获取验证码, then the SMS code and 验证."""
    pending = _pending_user()
    if pending is None:
        if not g.get("login_refused"):  # a refusal said why already
            flash(_("Your login has expired: log in again."), "error")
        session.pop("pending_login", None)
        return redirect(url_for("auth.login"))
    user, state = pending
    settings = _phone_settings()
    secret = current_app.config["SECRET_KEY"]
    send_form = SendCodeForm(prefix="send")
    verify_form = VerifyCodeForm(prefix="verify")
    if request.method == "POST" and request.form.get("step") == "send" and send_form.validate_on_submit():
        try:
            phone, code = send_login_code(
                db.session, user, typed_phone=send_form.phone.data, captcha_token=session.pop("captcha_verify", None),
                captcha_answer=send_form.captcha.data, now=utcnow(), settings=settings, secret=secret,
            )
        except DomainError as exc:
            db.session.commit()  # a used picture code stays used
            _field_error(send_form, exc)  # a refused send (too soon, too many) names no field: a message
        else:
            db.session.commit()
            session["pending_login"] = {**state, "phone": phone}
            try:
                send_sms(phone, code_message(code, settings.code_minutes))
            except SmsFailed:
                flash(_("The SMS could not be sent. Try again in a minute."), "error")
            else:
                flash(_("A 6-digit code was sent to %(phone)s; it is valid for %(n)s minutes.",
                        phone=mask_phone(phone), n=settings.code_minutes), "success")
            return redirect(url_for("auth.verify_phone"))
    elif request.method == "POST" and request.form.get("step") == "verify" and verify_form.validate_on_submit():
        if not state.get("phone"):
            verify_form.code.errors = [_("Get an SMS code first.")]
        else:
            try:
                verify_code(db.session, user, state["phone"], verify_form.code.data, utcnow(), settings, secret)
            except DomainError as exc:
                db.session.commit()  # the wrong try is counted
                _field_error(verify_form, exc, "code")
            else:
                db.session.commit()
                return _complete_login(user, state.get("next") or url_for("admin.index"))
    if request.method == "GET" and state.get("phone") and not user.login_phone:
        send_form.phone.data = display_phone(state["phone"])  # where the code went; bound once verified
    return render_template(
        "auth/verify_phone.html", send_form=send_form, verify_form=verify_form, user=user,
        bound_phone=mask_phone(user.login_phone) if user.login_phone else None,
        sent_to=mask_phone(state["phone"]) if state.get("phone") else None,
        captcha_image=_captcha_image("captcha_verify"), settings=settings,
    )


@bp.route("/register", methods=["GET", "POST"])
def register():
    """申请开通 without an account: choose a login, then fill the application."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.apply") if current_user.is_applicant else url_for("tenant_apply.index"))
    form = RegisterForm()
    policy = current_policy()
    form.password.description = policy.describe()
    if form.validate_on_submit():
        settings = _phone_settings()
        try:
            consume_captcha(db.session, session.pop("captcha_register", None), form.captcha.data, utcnow(),
                            current_app.config["SECRET_KEY"])
        except DomainError as exc:
            db.session.commit()  # a used picture code stays used
            _field_error(form, exc, "captcha")
        else:
            db.session.commit()
            form.captcha.data = ""
            with unit_of_work(flash_error=False) as work:
                phone = normalize_phone(form.phone.data, settings.regions)
                user = register_applicant(db.session, form.username.data, form.password.data, form.confirm.data,
                                          phone, policy=policy, method=current_app.config["PASSWORD_HASH_METHOD"])
            if work.failed:
                _field_error(form, work.error)
            else:
                flash(_("Your login %(user)s is created. Now fill in the application for your company.",
                        user=user.username), "success")
                return _sign_in(user, url_for("auth.apply"))
    return render_template("auth/register.html", form=form, captcha_image=_captcha_image("captcha_register"))


@bp.route("/apply", methods=["GET", "POST"])
@login_required
def apply():
    """An applicant's application (the console's 申请开通 form, without a parent) and then its review status."""
    user = current_user._get_current_object()
    if not user.is_applicant:
        approved = db.session.scalar(select(TenantApplication.id).where(
            TenantApplication.applicant_id == user.id, TenantApplication.status == "approved",
            TenantApplication.company_id == user.company_id).limit(1))
        if approved is not None and user.company is not None:  # came back from the waiting page
            flash(_("Your application was approved: welcome to the console of %(company)s.",
                    company=user.company.name), "success")
            return redirect(url_for("admin.index"))
        return redirect(url_for("tenant_apply.index"))
    from admin_views.tenants import REQUIRED, ApplicationForm

    mine = db.session.scalars(
        select(TenantApplication).where(TenantApplication.applicant_id == user.id)
        .order_by(TenantApplication.created_at.desc(), TenantApplication.id.desc()).limit(20)
    ).all()
    waiting = next((a for a in mine if a.status == "pending"), None)
    if request.method == "POST" and waiting is None:
        form = ApplicationForm(request.form)
        del form.parent  # a new company of its own: top level
        with unit_of_work(flash_error=False) as work:
            application = apply_action(
                db.session, user, company_name=form.company_name.data, tax_id=form.tax_id.data,
                contact_name=form.contact_name.data, contact_phone=form.contact_phone.data,
                contact_email=form.contact_email.data,
            )
        if not work.failed:
            flash(_("Application #%(id)s for %(company)s submitted: an administrator will review it.",
                    id=application.id, company=application.company_name), "success")
            return redirect(url_for("auth.apply"))
        _field_error(form, work.error)
    else:
        form = ApplicationForm(data={"contact_phone": user.mobile or "", "contact_email": user.email or "",
                                     "contact_name": user.full_name or ""})
        del form.parent
    return render_template("auth/apply.html", form=form, required=REQUIRED, waiting=waiting, applications=mine,
                           statuses=APPLICATION_STATUSES)


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """POST (with the CSRF token) logs out; GET only asks, so a cross-site link or image cannot."""
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        return render_template("auth/logout.html")
    if current_user.is_authenticated:
        with unit_of_work():
            end_sessions(db.session, current_user)
    language = str(get_locale() or "")  # the language the user read in: the login page that follows keeps it
    logout_user()
    session.clear()
    if language in LOCALES:
        session["locale"] = language
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    policy = current_policy()
    form.new.description = policy.describe()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        with unit_of_work(flash_error=False) as work:
            change_password_action(
                db.session, current_user, form.current.data, form.new.data, form.confirm.data,
                method=current_app.config["PASSWORD_HASH_METHOD"], policy=policy,
            )
        if work.failed:
            _field_error(form, work.error)
        else:
            login_user(user)  # the session version changed: carry this session over
            flash(_("Your password is changed."), "success")
            return redirect(url_for("auth.apply") if user.is_applicant else url_for("admin.index"))
    return render_template("auth/change_password.html", form=form)


@bp.route("/language", methods=["POST"])
def set_language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["locale"] = form.locale.data
        if current_user.is_authenticated:
            with unit_of_work():
                current_user.locale = form.locale.data
    return redirect(safe_next(request.form.get("next") or request.referrer and urlsplit(request.referrer).path))


@bp.before_app_request
def force_password_change():
    """A user who must change the password reaches nothing else until they do."""
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if request.endpoint in ("auth.change_password", "auth.logout", "auth.set_language", "static") or (
        request.endpoint or ""
    ).endswith(".static"):
        return None
    return redirect(url_for("auth.change_password"))


@bp.before_app_request
def finish_phone_verification():
    """A visitor whose password was accepted but whose phone is not verified yet reaches only the
    verification step (and the login, logout and language pages): never the console."""
    if "pending_login" not in session or current_user.is_authenticated:
        return None
    if request.endpoint in PENDING_ENDPOINTS or (request.endpoint or "").endswith(".static"):
        return None
    return redirect(url_for("auth.verify_phone"))


@bp.before_app_request
def keep_applicants_out_of_the_console():
    """An applicant (registered from the login page, no company yet) sees their application only."""
    if not current_user.is_authenticated or not current_user.is_applicant:
        return None
    if request.endpoint in APPLICANT_ENDPOINTS or (request.endpoint or "").endswith(".static"):
        return None
    return redirect(url_for("auth.apply"))
