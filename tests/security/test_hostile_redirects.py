"""`next` never sends a user off the site: every disguise of another host, a script URL or a header
injection on /login (query string) and /language (form field, or the Referer) lands on the console."""
from __future__ import annotations

from urllib.parse import unquote, quote, urljoin, urlsplit

import pytest

from conftest import PASSWORD, csrf_token, post

HOSTILE = [
    "//evil.example",
    "//evil.example/admin/",
    "///evil.example",
    "https://evil.example",
    "https://evil.example/admin/",
    "http:/evil.example",
    "https:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example",
    " //evil.example",
    "%2F%2Fevil.example",
    "%2f%2fevil.example",
    "/%2F%2Fevil.example/../..//evil.example",  # resolves to a path on this site: allowed, checked below
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "/admin/\r\nLocation: https://evil.example",
    "/admin/\r\nSet-Cookie: session=stolen",
    "/\x00//evil.example",
    "evil.example",
]
HOME = "/admin/"
SITE = "https://renewdesk.test/login"


def assert_stays_on_site(answer, target):
    """The browser, resolving Location against our page, stays on our host (and on the console's
    home page, except for a relative path that only looks hostile)."""
    if "\x00" in unquote(unquote(target)) and answer.status_code == 400:
        return  # input with a NUL is refused whole before anything reads it (app.py)
    assert answer.status_code == 302, (target, answer.status_code)
    location = answer.headers["Location"]
    assert "\r" not in location and "\n" not in location, (target, location)
    assert "stolen" not in answer.headers.get("Set-Cookie", ""), target
    resolved = urlsplit(urljoin(SITE, location))
    assert (resolved.scheme, resolved.netloc) == ("https", "renewdesk.test"), (target, location)
    if not target.startswith("/%2F"):
        assert location == HOME, (target, location)


def test_login_next_cannot_leave_the_site(client, world):
    for target in HOSTILE:
        # As a browser sends it (percent-encoded), and with a second layer of encoding.
        for encoded in (quote(target, safe=""), quote(quote(target, safe=""), safe="")):
            token = csrf_token(client)
            answer = client.post("/login?next=" + encoded, data={"username": "support", "password": PASSWORD,
                                                                   "csrf_token": token})
            assert_stays_on_site(answer, target)
            # Already logged in: GET /login?next= redirects at once.
            assert_stays_on_site(client.get("/login?next=" + encoded), target)
            if answer.status_code != 400:  # a refused (NUL) request logged nobody in
                post(client, "/logout", {})


def test_language_next_cannot_leave_the_site(client, login, world):
    login("support")
    for target in HOSTILE:
        assert_stays_on_site(post(client, "/language", {"locale": "en", "next": target}), target)


@pytest.mark.parametrize("referrer", ["https://evil.example//evil.example/x", "https://evil.example/\\evil.example",
                                      "https://evil.example", "javascript:alert(1)"])
def test_language_without_next_ignores_a_hostile_referer(client, login, world, referrer):
    login("support")
    answer = post(client, "/language", {"locale": "en"}, headers={"Referer": referrer})
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert urlsplit(location).netloc in ("", "localhost") and "evil" not in location, location


def test_a_path_on_the_site_is_still_followed(client, login, world):
    """The control: the checks above refuse disguises, not every `next`."""
    login("support")
    answer = post(client, "/language", {"locale": "en", "next": "/admin/device/?search=AC"})
    assert answer.headers["Location"] == "/admin/device/?search=AC"
