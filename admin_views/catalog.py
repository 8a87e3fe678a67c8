"""技术支持 → 基础数据 / 业务管理: package categories, subcategories and packages; the services sold by
subscription (seed 003) and the flow each is sold in (ON / OS)."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.validators import Unique
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import inspect
from wtforms.validators import ValidationError

from actions import DomainError
from actions.text_input import one_line, text_block
from actions.catalog import (
    check_category_deletable, check_code_unique, check_package, check_subcategory,
    check_subcategory_deletable, delete_package, package_usage, stop_sales,
)
from admin_views.base import MoneyField, ScopedModelView, label_formatter, unit_of_work
from models import (
    CURRENCIES, PACKAGE_KINDS, PRICING_METHODS, SALES_FLOWS, SEAT_EDITIONS, Package, PackageCategory,
    PackageSubcategory, Service, db,
)

LABELS = {
    "code": _l("Code"), "name": _l("Name"), "kind": _l("Type"), "category": _l("Category"),
    "subcategory": _l("Subcategory"), "amount": _l("Amount"), "pricing": _l("Pricing method"),
    "term_months": _l("Term (months)"), "currency": _l("Currency"), "active": _l("Active"),
    "edition": _l("Product edition"),
    # Filters over the category. The English is Flask-Admin's own label, from which it makes the filter's
    # URL argument (category_package_category_code_…): kept, so that saved links still filter.
    "category.code": _l("category / Package Category / Code"), "category.name": _l("category / Package Category / Name"),
    "subcategory.name": _l("Subcategory"),
}


class UniqueCode(Unique):
    """Flask-Admin's uniqueness check on `code`, with a message that names the taken code."""

    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except ValidationError:
            raise ValidationError(
                _("Code %(code)s is already used; choose another code.", code=field.data)
            ) from None


class CatalogView(ScopedModelView):
    roles = frozenset({"tech_support"})
    column_labels = LABELS
    form_choices = {
        "kind": list(PACKAGE_KINDS.items()),
        "pricing": list(PRICING_METHODS.items()),
        "currency": list(CURRENCIES.items()),
    }
    column_formatters = {
        "kind": label_formatter(PACKAGE_KINDS),
        "pricing": label_formatter(PRICING_METHODS),
        "currency": label_formatter(CURRENCIES),
    }
    can_export = True
    export_types = ["xlsx", "csv"]

    def scaffold_form(self):
        form_class = super().scaffold_form()
        code = form_class.code.kwargs
        code["validators"] = [UniqueCode(db, self.model, self.model.code) if isinstance(v, Unique) else v
                              for v in code.get("validators", [])]
        return form_class

    def check_deletable(self, model) -> None:
        """Raise DomainError when `model` may not be deleted."""

    def check(self, model) -> None:
        """Raise DomainError when `model` breaks a catalog rule (a taken code, at least)."""
        check_code_unique(db.session, model)

    def on_model_change(self, form, model, is_created):
        try:
            self.check(model)
        except DomainError as exc:
            raise ValidationError(str(exc)) from exc
        super().on_model_change(form, model, is_created)

    def delete_model(self, model):
        try:
            self.check_deletable(model)
        except DomainError as exc:
            flash(str(exc), "error")
            return False
        return super().delete_model(model)


class PackageCategoryView(CatalogView):
    column_list = ("code", "name", "kind")
    column_searchable_list = ("code", "name")
    column_filters = ("code", "name", "kind")
    form_columns = ("code", "name", "kind")

    def check_deletable(self, model):
        check_category_deletable(db.session, model)


class PackageSubcategoryView(CatalogView):
    column_list = ("code", "name", "kind", "category")
    column_searchable_list = ("code", "name")
    column_filters = ("code", "name", "kind", "category.code", "category.name")
    column_select_related_list = (PackageSubcategory.category,)
    form_columns = ("code", "name", "kind", "category")

    def check(self, model):
        check_subcategory(db.session, model)

    def check_deletable(self, model):
        check_subcategory_deletable(db.session, model)


def _edition_cell(view, context, model, name):
    """A seat package's product edition by its label; nothing for other kinds."""
    return str(SEAT_EDITIONS[model.edition]) if model.edition in SEAT_EDITIONS else ""


def _active_cell(view, context, model, name):
    """Yes/no, and for a package on sale the link to stop its sales (a preview first)."""
    if not model.active:
        return Markup('<span class="badge badge-secondary">{}</span>').format(_("Not sold"))
    return Markup('<span class="badge badge-success">{}</span> <a class="rd-stop-sales" href="{}">{}</a>').format(
        _("On sale"), url_for(".stop_sales_view", package_id=model.id), _("Stop sales"))


class PackageView(CatalogView):
    column_list = ("code", "name", "category", "subcategory", "kind", "edition", "amount", "pricing",
                   "term_months", "currency", "active")
    column_searchable_list = ("code", "name")
    column_filters = ("code", "name", "kind", "edition", "pricing", "currency", "active", "amount",
                      "category.name", "subcategory.name", "term_months")
    column_select_related_list = (Package.category, Package.subcategory)
    column_sortable_list = ("code", "name", "kind", "amount", "pricing", "currency", "active")
    form_columns = ("code", "name", "category", "subcategory_id", "kind", "edition", "amount", "pricing",
                    "term_months", "currency", "active")
    # Drawn in this order (the guide's: category, then subcategory, amount, pricing, currency); the
    # subcategory field is added by scaffold_form, so without rules it would come last.
    form_create_rules = form_edit_rules = form_columns
    form_extra_fields = {"amount": MoneyField(LABELS["amount"], required=True)}  # every package has a price
    column_labels = {**LABELS, "subcategory_id": _l("Subcategory")}
    # A seat package names the product edition whose seats it sells (seed 004); no other kind has one.
    form_choices = {**CatalogView.form_choices, "edition": [("", "—")] + list(SEAT_EDITIONS.items())}
    form_args = {"edition": {"description": _l("Seat packages only: the product edition one seat of which this "
                                               "package prices.")},
                 "term_months": {"description": _l("Per-term pricing only. A seat package priced per term sells "
                                                   "seats that last this many months from payment; seats of a "
                                                   "package priced otherwise never expire.")}}
    column_formatters = {**CatalogView.column_formatters, "active": _active_cell, "edition": _edition_cell}
    column_formatters_export = {**CatalogView.column_formatters, "edition": _edition_cell}

    def _subcategory_choices(self, form):
        subs = db.session.scalars(
            db.select(PackageSubcategory).order_by(PackageSubcategory.code)
        ).all()
        form.subcategory_id.choices = [("", "—")] + [(str(s.id), str(s)) for s in subs]
        return form

    def scaffold_form(self):
        from wtforms import SelectField

        form_class = super().scaffold_form()
        form_class.subcategory_id = SelectField(
            _l("Subcategory"), coerce=lambda v: int(v) if v not in (None, "", "None") else None,
            validate_choice=True,
        )
        return form_class

    def create_form(self, obj=None):
        return self._subcategory_choices(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._subcategory_choices(super().edit_form(obj))

    def check(self, model):
        check_code_unique(db.session, model)
        check_package(db.session, model)

    def on_model_change(self, form, model, is_created):
        # Unticking "active" would stop sales without showing who is concerned: one way to do it.
        if not is_created and inspect(model).attrs.active.history.deleted == [True] and not model.active:
            raise ValidationError(_("Stop the sales of package %(code)s with its own action (the link in the "
                                    "list): it shows the devices and companies concerned first.", code=model.code))
        super().on_model_change(form, model, is_created)

    def delete_model(self, model):
        """Delete an unused package; one in use is refused with its usage (nothing changes)."""
        with unit_of_work() as work:
            delete_package(db.session, current_user, model)
        if work.failed:
            return False
        return True

    @expose("/stop-sales/<int:package_id>/", methods=("GET", "POST"))
    def stop_sales_view(self, package_id: int):
        """停售: the devices and companies concerned (counts, first rows), then stop on confirmation."""
        package = self.get_one(str(package_id))
        if package is None:
            abort(404)
        if request.method == "POST":
            previewed = request.form.get("devices", "")
            try:
                usage = stop_sales(db.session, current_user, package,
                                   int(previewed) if previewed.isdecimal() else -1)
                code = package.code
                db.session.commit()
            except DomainError as exc:
                db.session.rollback()
                flash(str(exc), "error")
                return redirect(url_for(".stop_sales_view", package_id=package_id))
            flash(_("Sales of package %(code)s are stopped. Its %(n)s devices keep it until they are rebound "
                    "(from the renewal center or the customer extension config).", code=code, n=usage.devices),
                  "success")
            return redirect(url_for(".index_view"))
        return self.render("renewdesk/package_stop_sales.html", package=package,
                           usage=package_usage(db.session, package))


def sales_flow_cell(view, context, model, name):
    """ON / OS as a badge, with what it means for paying."""
    return Markup('<span class="badge badge-{}">{}</span> <small class="text-muted">{}</small>').format(
        "warning" if model.sales_flow == "OS" else "info", model.sales_flow, SALES_FLOWS.get(model.sales_flow, ""))


class ServiceView(ScopedModelView):
    """Dịch vụ (seed 003): the services sold by subscription. Tech support sets the flow each is sold in: ON
    (paid online or from the balance) or OS (the customer may pay cash). Plans, cycles and terms come with the
    service (demo data, migrations); no service is created or deleted here."""

    roles = frozenset({"tech_support"})
    can_create = can_delete = False
    column_list = ("code", "name", "currency", "sales_flow", "active")
    column_details_list = ("code", "name", "description", "currency", "sales_flow", "renewal_days_before",
                           "grace_days", "active")
    column_labels = {**LABELS, "sales_flow": _l("Sales flow"), "description": _l("Description"),
                     "renewal_days_before": _l("Renewal order (days before the period ends)"),
                     "grace_days": _l("Grace days")}
    column_formatters = {"sales_flow": sales_flow_cell}
    column_formatters_export = {"sales_flow": lambda view, context, model, name: model.sales_flow}
    column_choices = {"sales_flow": [(code, code) for code in SALES_FLOWS]}
    column_filters = ("sales_flow", "currency", "active")
    column_searchable_list = ("code", "name")
    form_columns = ("name", "description", "sales_flow")
    form_choices = {"sales_flow": list(SALES_FLOWS.items())}
    form_args = {"sales_flow": {"description": _l("ON: checkout offers the balance and online payment (cash only "
                                                  "through sales). OS: the customer may choose cash, paid to sales "
                                                  "and confirmed by finance, or the balance.")}}

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        form.sales_flow.choices = [(code, f"{code} — {label}") for code, label in SALES_FLOWS.items()]
        return form

    def on_model_change(self, form, model, is_created):
        """The name is one line (the price table, checkout and every subscription show it); the description
        a block of text, trimmed."""
        try:
            model.name = one_line(model.name, _l("Name"), 200)
            model.description = text_block(model.description, _l("Description"), 4000)
        except DomainError as exc:
            raise ValidationError(str(exc)) from exc
        super().on_model_change(form, model, is_created)


def register(admin, category) -> None:
    admin.add_view(PackageCategoryView(PackageCategory, name=_l("Package categories"),
                                       category=category, endpoint="packagecategory"))
    admin.add_view(PackageSubcategoryView(PackageSubcategory, name=_l("Package subcategories"),
                                          category=category, endpoint="packagesubcategory"))
    admin.add_view(PackageView(Package, name=_l("Packages"), category=category))
    admin.add_view(ServiceView(Service, name=_l("Services"), category=category, endpoint="service"))
