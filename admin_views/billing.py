"""收费账户配置 (sales) / 账户配置 (customer administrators): company billing config.

Pick a company, list it with its direct (or all) subsidiaries and the config in effect
for each (own, inherited from an ancestor, or none), configure the selected companies in
one step, edit one, delete one (the company then inherits again).
"""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import BooleanField, Form, SelectField, TextAreaField

from actions import DomainError, companies_in_scope
from actions.billing import (
    SCOPES,
    configure_companies,
    default_company,
    delete_config,
    effective_config,
    list_configs,
    load_companies,
    parse_id,
)
from admin_views.base import RoleView, unit_of_work
from models import BILLING_CYCLES, PUSH_LANGUAGES, BillingConfig, db

LIST_LIMIT = 1000
INDENT = "\u00a0\u00a0\u00a0"


class BillingConfigForm(Form):
    """The settings applied to every selected company (CSRF is checked app-wide)."""

    billing_cycle = SelectField(_l("Billing cycle"), choices=list(BILLING_CYCLES.items()))
    auto_renew = BooleanField(_l("Auto-renew"))
    push_enabled = BooleanField(_l("Push on"), default=True)
    push_language = SelectField(_l("Push email language"), choices=list(PUSH_LANGUAGES.items()))
    push_emails = TextAreaField(
        _l("Push emails"),
        description=_l("One address per line, or separated by commas or semicolons."),
        render_kw={"rows": 5},
    )


def _form_data(config: BillingConfig | None) -> dict:
    if config is None:
        return {"billing_cycle": "monthly", "auto_renew": False, "push_enabled": True,
                "push_language": "zh_CN", "push_emails": ""}
    return {"billing_cycle": config.billing_cycle, "auto_renew": config.auto_renew,
            "push_enabled": config.push_enabled, "push_language": config.push_language,
            "push_emails": config.push_emails}


class BillingConfigView(RoleView):
    """收费账户配置: sales configure any company and its subsidiaries."""

    roles = frozenset({"sales"})

    # --- the page's selection (company, direct/all) travels in the URL and the forms ----------
    def _listing_args(self, source) -> dict:
        scope = source.get("scope", "direct")
        return {"company": parse_id(source.get("company", "")),
                "scope": scope if scope in SCOPES else "direct"}

    def _index_url(self, source) -> str:
        return url_for(".index", **self._listing_args(source))

    @expose("/")
    def index(self):
        args = self._listing_args(request.args)
        try:
            company = (load_companies(db.session, current_user, [args["company"]])[0]
                       if args["company"] else default_company(current_user))
            rows = list_configs(db.session, current_user, company, args["scope"], limit=LIST_LIMIT + 1)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(url_for(".index"))
        base_depth = company.depth if company is not None and args["scope"] == "all" else 0
        choices = [(c.id, INDENT * c.depth + c.name) for c in companies_in_scope(db.session, current_user)]
        return self.render(
            "renewdesk/billing_config.html",
            rows=rows[:LIST_LIMIT], truncated=len(rows) > LIST_LIMIT, limit=LIST_LIMIT,
            company=company, scope=args["scope"], choices=choices,
            indent=lambda c: INDENT * max(c.depth - base_depth, 0),
            cycles=BILLING_CYCLES, languages=PUSH_LANGUAGES,
        )

    @expose("/configure/", methods=("GET", "POST"))
    def configure(self):
        """The settings form for the selected companies (one company: edit its config)."""
        source = request.form if request.method == "POST" else request.args
        back = self._index_url(source)
        try:
            companies = load_companies(db.session, current_user, source.getlist("ids"))
            if not companies:
                raise DomainError(_("Select at least one company."))
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(back)
        if request.method == "POST" and request.form.get("save") == "1":
            form = BillingConfigForm(request.form)
            if form.validate():
                with unit_of_work() as work:
                    result = configure_companies(db.session, current_user, companies, form.data)
                if not work.failed:
                    flash(_("Billing config saved for %(count)s companies.", count=len(result.changed)),
                          "success")
                    return redirect(back)
        else:
            config = effective_config(db.session, companies[0])[0] if len(companies) == 1 else None
            form = BillingConfigForm(data=_form_data(config))
        return self.render("renewdesk/billing_config_form.html", form=form, companies=companies,
                           listing=self._listing_args(source), back=back)

    @expose("/delete/", methods=("POST",))
    def delete(self):
        back = self._index_url(request.form)
        raw = request.form.get("id", "")
        config_id = parse_id(raw)
        config = db.session.get(BillingConfig, config_id) if config_id is not None else None
        if config is None:
            flash(_("Billing config #%(id)s: not found or outside your companies.", id=raw[:20]), "error")
            return redirect(back)
        company = config.company
        with unit_of_work() as work:
            delete_config(db.session, current_user, config)
            _config, source = effective_config(db.session, company)
        if work.failed:
            return redirect(back)
        if source is None:
            flash(_("Billing config of %(company)s deleted; it has no billing config now.",
                    company=company.name), "success")
        else:
            flash(_("Billing config of %(company)s deleted; it now inherits from %(source)s.",
                    company=company.name, source=source.name), "success")
        return redirect(back)


class AccountConfigView(BillingConfigView):
    """账户配置: a customer administrator's own company and its subsidiaries."""

    roles = frozenset({"customer_admin"})


def register(admin, sales, customer) -> None:
    """Add the billing-config views (sales: 收费账户配置, customer_admin: 账户配置)."""
    admin.add_view(BillingConfigView(name=_l("Billing config"), category=sales, endpoint="billing_config"))
    admin.add_view(AccountConfigView(name=_l("Account config"), category=customer, endpoint="account_config"))
