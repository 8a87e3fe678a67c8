"""The same share saved many times at once, on several gunicorn worker processes, leaves one rule: the unique
keys (company, package) and (company) for every package decide, on SQLite and on PostgreSQL."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from actions.distribution import save_rule
from live_server import Browser, shared_gunicorn
from models import AuditEvent, CommissionRule, db

pytest_plugins = ("card_fixtures",)
pytestmark = pytest.mark.xdist_group("gunicorn")
SENDERS = 8


@pytest.fixture(scope="module")
def server(database_url):
    with shared_gunicorn(database_url) as live:
        yield live


@pytest.mark.parametrize("every_plan", [True, False])
def test_a_share_saved_eight_times_at_once_makes_one_rule(server, cards, every_plan):
    a, b, package = cards["a"], cards["b"], cards["package"]
    save_rule(db.session, cards["users"]["finance"], a, None, mode="override", kind="percent", level1_percent="10")
    save_rule(db.session, cards["users"]["finance"], a, package.id, mode="override", kind="percent",
              level1_percent="10")
    db.session.commit()
    distributor = Browser(server.base).login("a_admin")
    browsers = [distributor.clone() for _ in range(SENDERS)]
    barrier = threading.Barrier(SENDERS)
    package_id = "" if every_plan else str(package.id)
    b_id = b.id  # read here: the threads have no application context

    def send(numbered):
        number, browser = numbered
        form = [("company_id", str(b_id)), ("package_id", package_id), ("share", str(number + 1))]
        barrier.wait(timeout=120)
        return browser.post("/admin/commissionrule/share/", form, follow=False)

    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        answers = list(pool.map(send, enumerate(browsers)))
    db.session.expire_all()
    rules = db.session.scalars(select(CommissionRule).where(CommissionRule.company_id == b_id)).all()
    assert len(rules) == 1 and 100 <= rules[0].level1_rate_bp <= SENDERS * 100
    assert [a.status for a in answers] == [302] * SENDERS
    saves = db.session.scalar(select(db.func.count()).select_from(AuditEvent).where(
        AuditEvent.model == "commission_rule", AuditEvent.ids == f",{rules[0].id},"))
    assert saves == SENDERS
