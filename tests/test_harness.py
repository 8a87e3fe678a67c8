"""The test harness itself: the CSRF helper hands out the session's real token, the world written
from its stored rows is the world as built, and no security test skips."""
from __future__ import annotations

import re
from pathlib import Path

from itsdangerous import URLSafeTimedSerializer

from conftest import PASSWORD, build_world, csrf_token, empty_database
from models import Company, Device, User, db

FORM_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _raw(app, token: str) -> str:
    """The session value a signed form token stands for (Flask-WTF's own salt)."""
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").loads(token)


def test_the_helper_token_is_the_one_the_login_form_carries(client):
    form_token = FORM_TOKEN.search(client.get("/login").get_data(as_text=True)).group(1)
    assert _raw(client.application, csrf_token(client)) == _raw(client.application, form_token)


def test_the_helper_token_logs_in_and_one_of_another_session_is_refused(web_app, client, world):
    other = web_app.test_client()
    foreign = client.post("/login", data={"username": "support", "password": PASSWORD,
                                          "csrf_token": csrf_token(other)})
    assert foreign.status_code == 400 and b"CSRF" in foreign.data
    answer = client.post("/login", data={"username": "support", "password": PASSWORD,
                                         "csrf_token": csrf_token(client)})
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/"


def test_after_login_the_helper_follows_the_new_session(client, login, world):
    """Logging in clears the session; the token of the old session no longer works."""
    before = csrf_token(client)
    login("admin")
    after = csrf_token(client)
    assert _raw(client.application, before) != _raw(client.application, after)
    stale = client.post("/language", data={"locale": "vi", "csrf_token": before})
    assert stale.status_code == 400
    assert client.post("/language", data={"locale": "vi", "csrf_token": after}).status_code == 302


def _rows() -> dict[str, list[tuple]]:
    """Every table's rows in a stable order, without what differs between two builds: ids (and the
    companies' paths of ids), times and salted password hashes."""
    found = {}
    for table in db.metadata.sorted_tables:
        columns = [c for c in table.columns if not c.primary_key and not c.name.endswith(("_at", "_id"))
                   and c.name not in ("password_hash", "path")]
        rows = db.session.execute(db.select(*columns)).all() if columns else []
        found[table.name] = sorted(tuple(str(value) for value in row) for row in rows)
    return found


def test_the_written_world_is_the_world_as_built(app, world):
    written = _rows()
    assert world.acme.name == "Acme Logistics" and world.devices["FL0001"].company is world.fleet
    assert world.users["customer"].company is world.acme
    assert db.session.scalar(db.select(db.func.count()).select_from(Device)) == 10
    db.session.rollback()
    empty_database()
    build_world()
    assert _rows() == written


def test_world_objects_read_the_row_as_it_is_when_first_used(app, world):
    """As the objects of a freshly committed world: a change made over another connection (a request
    of the test client, a live server) is what the test sees, not a copy read when the fixture ran."""
    with db.engine.begin() as conn:
        conn.execute(db.update(Company).where(Company.name == "Globex <b>Trading</b>").values(name="Globex renamed"))
    assert world.globex.name == "Globex renamed"


def test_a_test_without_the_world_starts_empty(app):
    for model in (Company, User, Device):
        assert db.session.scalar(db.select(db.func.count()).select_from(model)) == 0


def test_no_security_test_skips():
    folder = Path(__file__).parent / "security"
    skipping = [path.name for path in folder.glob("*.py")
                if re.search(r"pytest\.(skip|importorskip)\(|mark\.skip(if)?\b|mark\.xfail", path.read_text())]
    assert skipping == []
