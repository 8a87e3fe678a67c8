"""Flask-Admin's own strings (list toolbar, actions menu, page sizes, save errors) in our words.

Flask-Admin translates its templates and messages through its own catalog ("admin" domain). Its
Chinese and Vietnamese catalogs lack a few strings ("Failed to save record.", the page-size menu's
"20 items") and use words a Chinese back office does not ("选中的", "项目"). `use_our_wording` makes
those lookups read our catalog. The strings below are Flask-Admin's; listing them here keeps them in
our catalog.
"""
from __future__ import annotations

from pathlib import Path

import wtforms
from babel import support
from flask_babel import get_locale, pgettext
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_ngettext as ngettext

# Flask-Admin's strings we translate ourselves (the rest keep Flask-Admin's own translation; our catalog
# is not laid over it whole, since the same English word means something else on our pages).
FLASK_ADMIN_STRINGS = (
    _l("Failed to create record."),
    _l("Failed to save record."),
    _l("With selected"),  # 批量操作
    _l("items"),  # the page-size button: "50 条/页"
    ngettext("20 item", "20 items", 20),
    ngettext("50 item", "50 items", 50),
    ngettext("100 item", "100 items", 100),
    ngettext("500 item", "500 items", 500),
    ngettext("1000 item", "1000 items", 1000),
)
OVERRIDDEN = ("Failed to create record.", "Failed to save record.", "With selected", "items",
              *((f"{n} item", 0) for n in (20, 50, 100, 500, 1000)))


def use_our_wording(translations: Path) -> None:
    """Look the OVERRIDDEN Flask-Admin strings up in our catalog (the compiled `messages` of `translations`),
    the others in Flask-Admin's. Idempotent: every app built in the process shares Flask-Admin's one domain object."""
    from flask_admin import babel as admin_babel

    domain = admin_babel.domain
    if getattr(domain, "renewdesk_wording", None) == str(translations):
        return
    flask_admins = type(domain).get_translations.__get__(domain)
    merged: dict[str, support.Translations] = {}

    def get_translations():
        theirs = flask_admins()
        if not isinstance(theirs, support.Translations):
            return theirs  # outside a request: no translations at all
        locale = str(get_locale())
        if locale not in merged:
            catalog = support.Translations()
            catalog.merge(theirs)
            ours = support.Translations.load(str(translations), [locale], "messages")
            # gettext's catalogs are dicts keyed by msgid, or (msgid, n) for plural forms (merge() does the same).
            catalog._catalog.update({key: ours._catalog[key] for key in OVERRIDDEN
                                     if key in getattr(ours, "_catalog", {})})
            if hasattr(theirs, "plural"):
                catalog.plural = theirs.plural
            merged[locale] = catalog
        return merged[locale]

    domain.get_translations = get_translations
    domain.renewdesk_wording = str(translations)
    translate_flask_admin_forms()


def picker_locale() -> dict:
    """The date pickers' words in the reader's language (Flask-Admin's daterangepicker is English):
    buttons, day and month names, Monday first outside English."""
    from babel.dates import get_day_names, get_month_names

    locale = get_locale() or "en"
    days = get_day_names("narrow" if str(locale) != "en" else "abbreviated", "stand-alone", locale=locale)
    months = get_month_names("abbreviated", "stand-alone", locale=locale)
    return {
        "applyLabel": pgettext("date picker", "Apply"), "cancelLabel": pgettext("date picker", "Cancel"),
        "fromLabel": pgettext("date picker", "From"), "toLabel": pgettext("date picker", "To"),
        "weekLabel": pgettext("date picker", "Wk"), "customRangeLabel": pgettext("date picker", "Custom range"),
        "daysOfWeek": [days[(i + 6) % 7] for i in range(7)],  # Babel counts from Monday, the picker from Sunday
        "monthNames": [months[i] for i in range(1, 13)],
        "firstDay": 0 if str(locale) == "en" else 1,
    }


# WTForms' own messages (a required field, a choice or number that does not parse): WTForms ships no
# Vietnamese catalog, and a plain `wtforms.Form` translates nothing, so "This field is required." and "Not a
# valid choice." were English on Vietnamese (and, for plain forms, Chinese) pages. Ours are in our catalog.
WTFORMS_STRINGS = (
    _l("Field must be equal to %(other_name)s."),
    ngettext("Field must be at least %(min)d character long.", "Field must be at least %(min)d characters long.", 1),
    ngettext("Field cannot be longer than %(max)d character.", "Field cannot be longer than %(max)d characters.", 1),
    ngettext("Field must be exactly %(max)d character long.", "Field must be exactly %(max)d characters long.", 1),
    _l("Field must be between %(min)d and %(max)d characters long."),
    _l("Number must be at least %(min)s."),
    _l("Number must be at most %(max)s."),
    _l("Number must be between %(min)s and %(max)s."),
    _l("Date must be at least %(min)s."),
    _l("Date must be at most %(max)s."),
    _l("Date must be between %(min)s and %(max)s."),
    _l("This field is required."),
    _l("Invalid input."),
    _l("Invalid email address."),
    _l("Invalid URL."),
    _l("Invalid value, must be one of: %(values)s."),
    _l("Invalid value, can't be any of: %(values)s."),
    _l("This field cannot be edited."),
    _l("This field is disabled and cannot have a value."),
    _l("Invalid CSRF Token."),
    _l("CSRF token missing."),
    _l("CSRF failed."),
    _l("CSRF token expired."),
    _l("Invalid Choice: could not coerce."),
    _l("Not a valid choice."),
    _l("Invalid choice(s): one or more data inputs could not be coerced."),
    ngettext("'%(value)s' is not a valid choice for this field.", "'%(value)s' are not valid choices for this field.", 1),
    _l("Not a valid datetime value."),
    _l("Not a valid date value."),
    _l("Not a valid time value."),
    _l("Not a valid integer value."),
    _l("Not a valid decimal value."),
    _l("Not a valid float value."),
)


class FormTranslations:
    """WTForms' `Meta.get_translations` object: our catalog first, then WTForms' own (through Flask-Admin)."""

    def gettext(self, string: str) -> str:
        from flask_babel import get_translations

        ours = get_translations().ugettext(string)
        return ours if ours != string else _theirs().gettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        from flask_babel import get_translations

        ours = get_translations().ungettext(singular, plural, n)
        return ours if ours not in (singular, plural) else _theirs().ngettext(singular, plural, n)


def _theirs():
    from flask_admin.babel import Translations

    return Translations()


FORM_TRANSLATIONS = FormTranslations()


class Form(wtforms.Form):
    """A plain form whose built-in messages read in the reader's language."""

    class Meta:
        def get_translations(self, form):
            return FORM_TRANSLATIONS


def translate_flask_admin_forms() -> None:
    """Flask-Admin's model forms read WTForms' messages through FORM_TRANSLATIONS too."""
    from flask_admin.form import BaseForm

    BaseForm.Meta._translations = FORM_TRANSLATIONS
