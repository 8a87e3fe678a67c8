"""The routes the hostile-input tests walk, read from the app's url_map (so a new page is walked
without anyone remembering to add it)."""
from __future__ import annotations

import re

from admin_views import registered_views

ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
INDEX_PAGES = ("index", "index_view")  # tests/test_access.py opens those for every role
EXPORT_TYPES = ("csv", "xlsx")
ORDER_NUMBER = "RC-GLOBEX-0001"  # the world fixture's Globex order


def fill(rule: str, integer: str = "1", text: str = ORDER_NUMBER) -> list[str]:
    """The rule with its arguments filled in: `integer` for <int:…>, each export type for
    <export_type>, `text` for the rest."""
    urls = [rule]
    for converter, name in ARGUMENT.findall(rule):
        values = (integer,) if converter == "int" else EXPORT_TYPES if name == "export_type" else (text,)
        pattern = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?" + name + ">")
        urls = [pattern.sub(value, url) for url in urls for value in values]
    return urls


def views_by_endpoint(app) -> dict:
    return {view.endpoint: view for view in registered_views(app.extensions["admin"][0])}


def console_get_urls(app, integer: str = "1") -> list[tuple[str, object]]:
    """(URL, view) for every GET rule of a registered view but its index page; the URL carries
    ?id=<integer> for the pages that open one row."""
    views = views_by_endpoint(app)
    found = []
    for rule in app.url_map.iter_rules():
        view_endpoint, _dot, page = rule.endpoint.partition(".")
        view = views.get(view_endpoint)
        if "GET" not in rule.methods or view is None or page in INDEX_PAGES or page == "static":
            continue  # static files are public, as Flask serves them
        found += [(f"{url}?id={integer}", view) for url in fill(rule.rule, integer)]
    return sorted(found, key=lambda pair: pair[0])


def post_rules(app, skip_blueprints=()) -> list:
    """Every rule accepting POST, but those of `skip_blueprints`."""
    return sorted((rule for rule in app.url_map.iter_rules()
                   if "POST" in rule.methods and rule.endpoint.split(".")[0] not in skip_blueprints),
                  key=lambda rule: rule.rule)
