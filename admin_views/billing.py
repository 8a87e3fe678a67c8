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
from wtforms import BooleanField, SelectField, TextAreaField

from actions import DomainError, companies_in_scope, in_scope
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
from admin_views.confirm import Confirmation, ask, is_confirmed
from admin_views.wording import Form
from models import BILLING_CYCLES, PUSH_LANGUAGES, BillingConfig, Company, db

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


def describe_deletion(company: Company) -> Confirmation:
    """What deleting a company's own billing config leads to: its parent's config, or none at all."""
    parent_config, source = effective_config(db.session, company.parent) if company.parent is not None else (None, None)
    title = _("Delete the billing config of %(company)s", company=company.name)
    label = _("Delete the billing config")
    if company.parent is None:
        return Confirmation(
            title=title, confirm_label=label,
            summary=_("%(company)s is a top-level company: without its own config it has no billing config at all.",
                      company=company.name),
            note=_("Its devices are no longer renewed automatically and no expiry reminders are pushed, for it and "
                   "for each subsidiary without a config of its own, until a config is saved again."))
    if parent_config is None:
        return Confirmation(
            title=title, confirm_label=label,
            summary=_("%(company)s then inherits nothing: none of its parent companies has a billing config.",
                      company=company.name),
            note=_("Its devices are no longer renewed automatically and no expiry reminders are pushed, for it and "
                   "for each subsidiary without a config of its own, until a config is saved again."))
    return Confirmation(
        title=title, confirm_label=label,
        summary=_("%(company)s then inherits the billing config of %(source)s:", company=company.name,
                  source=source.name),
        items=[_("Billing cycle: %(value)s", value=BILLING_CYCLES.get(parent_config.billing_cycle,
                                                                      parent_config.billing_cycle)),
               _("Auto-renew: %(value)s", value=_("Yes") if parent_config.auto_renew else _("No")),
               _("Push: %(value)s", value=_("On") if parent_config.push_enabled else _("Off")),
               _("Push emails: %(value)s", value=", ".join(parent_config.email_list) or "—")])


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
        inherited_from = None
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
            # Start from the values in effect (own or inherited): shared by every selected company, else defaults.
            configs = {effective_config(db.session, company) for company in companies[:LIST_LIMIT]}
            config, owner = configs.pop() if len(configs) == 1 else (None, None)
            form = BillingConfigForm(data=_form_data(config))
            inherited_from = owner if owner is not None and owner not in companies else None
        return self.render("renewdesk/billing_config_form.html", form=form, companies=companies,
                           listing=self._listing_args(source), back=back, inherited_from=inherited_from)

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
        purpose = f"{self.endpoint}.delete"
        if not is_confirmed(purpose, [config.id]):
            if not in_scope(current_user, company.id, db.session):
                flash(_("Billing config #%(id)s: not found or outside your companies.", id=raw[:20]), "error")
                return redirect(back)
            return ask(self, describe_deletion(company), purpose, [config.id], back)
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
    area = "account_config"


def register(admin, sales, customer) -> None:
    """Add the billing-config views (sales: 收费账户配置, customer_admin: 账户配置)."""
    admin.add_view(BillingConfigView(name=_l("Billing config"), category=sales, endpoint="billing_config"))
    admin.add_view(AccountConfigView(name=_l("Account config"), category=customer, endpoint="account_config"))
