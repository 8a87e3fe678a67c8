"""No page title drawn twice: the console layout writes the view's name as the page title, and a page with
a heading of its own puts it in that place (`{% block page_title %}`) instead of adding a second one.
Every console page each role opens (menus, and the links found on them) is read in Chinese."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from models import User, db
from tests.test_no_english import MAX_PAGES, ROLES, SKIP, start_urls


class Headings(HTMLParser):
    """The text of each h1–h5 and the page's links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.headings: list[str] = []
        self.links: list[str] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if re.fullmatch(r"h[1-5]", tag):
            self._open = []
        if tag == "a" and dict(attrs).get("href"):
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag):
        if re.fullmatch(r"h[1-5]", tag) and self._open is not None:
            self.headings.append(" ".join("".join(self._open).split()))
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open.append(data)


def doubled_titles(client, app) -> dict[str, list[str]]:
    """{page: headings that appear twice} over the console pages this client opens."""
    queue, seen, found = ["/admin/", *start_urls(app)], set(), {}
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if urlsplit(url).path in seen or any(part in url for part in SKIP):
            continue
        seen.add(urlsplit(url).path)
        answer = client.get(url)
        if answer.status_code != 200 or answer.mimetype != "text/html":
            continue
        page = Headings()
        page.feed(answer.get_data(as_text=True))
        twice = sorted({h for h in page.headings if h and page.headings.count(h) > 1})
        if twice:
            found[url] = twice
        for link in page.links:
            target = urlsplit(urljoin(url, link.replace("&amp;", "&")))
            if target.netloc in ("", "localhost") and target.path.startswith("/admin"):
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return found


@pytest.mark.parametrize("username", ROLES)
def test_no_page_draws_its_title_twice(client, login, world, web_app, username):
    db.session.scalar(db.select(User).where(User.username == username)).locale = "zh_Hans_CN"
    db.session.commit()
    login(username)
    assert doubled_titles(client, web_app) == {}
