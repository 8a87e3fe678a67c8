"""The scope sweep: every registered view and custom route, read from the app (admin views and the
url_map), walked as customer administrators with rows of companies outside their tree in the
database. A new view or route is swept without anyone adding it here.

The world: Acme (→ North → Fleet, → South) and Globex, from conftest, with Acme, North and Globex
verified distributors holding cards, card customers, commission rules, paid card orders, commission
entries, a statement and a withdrawal. The actors: Acme's administrator (Globex is foreign) and
North's (Acme, South and Globex are foreign: the parent's rows too).

For each view the actor may use:
- its list (all rows: ?show=all) names no foreign row and offers none to tick; nor do its exports;
- each foreign row's details and edit pages answer 302/403/404 and name nothing foreign;
- delete and every action posted with the foreign row ids change nothing;
- every other GET and POST route of the view (custom pages, forms, ajax lookups) filled with foreign
  ids, company ids and order numbers names nothing foreign and changes nothing.
For each view the actor may not use, every POST route answers 403 (anonymous users: the login page);
tests/test_access.py and test_hostile_url_roles.py hold the same for every GET route.
tests/test_scope.py and test_hostile_foreign_ids.py keep their hand-written cases (the renewal center,
payers, tokens): this sweep is the net under them.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa
from flask_login import login_user
from werkzeug.datastructures import MultiDict

from actions.card_orders import confirm_receipt, place_order, ship
from actions.card_quotes import LineInput, save_quote
from actions.cards import CardInput, add_card, post_stock_document, review_verification, submit_verification
from actions.crypto import vault as current_vault
from actions.distribution import prepare_settlement, release_held, save_rule, submit_withdrawal
from actions.orders import pay_with_balance
from actions.wallets import credit, wallet_for
from admin_views.base import ScopedModelView
from admin_views.cards import DistributorAccess
from conftest import Login, WorldRows, build_world, csrf_token, make_user
from console_urls import fill, views_by_endpoint
from db_snapshot import changed_tables, snapshot
from models import CardCustomer, Company, Order, Package, PackageCategory, User, db

TODAY = date.today()
# What of Globex must never reach another tenant (world fixture and the distribution rows below).
GLOBEX_MARKERS = ("Globex", "GX0001", "GX0002", "globex-member", "organizer@globex.test", "RC-GLOBEX", "SE-GLOBEX",
                  "ap@globex.example", "Globex Card Buyer", "8986000000000077", "Globex Payee")
ACME_MARKERS = ("AC0001", "SO0001", "Acme Card Buyer", "8986000000000066", "Acme South")
ACTORS = {"customer": GLOBEX_MARKERS, "north": GLOBEX_MARKERS + ACME_MARKERS}
COMPANY_FIELDS = ("company_id", "company", "payer_id", "parent", "seller_id", "holder")
ID_FIELDS = ("id", "rowid", "ids", "only", *COMPANY_FIELDS, "customer_id", "order", "order_id")
SKIP_BLUEPRINTS = {"auth", "payment_callbacks", "static"}  # signing in and out; signed provider callbacks
ACCOUNT = "6222020200112233445"
LISTED = re.compile(r'class="action-checkbox" value="(\d+)"|name="rowid" value="(\d+)"')


# --- the world ----------------------------------------------------------------------------------

def _distributor(company: Company, user: User, admin: User, legal_name: str) -> None:
    profile = submit_verification(db.session, user, current_vault(), company, legal_name=legal_name,
                                  id_type="resident_id", id_number="110101199003074512")
    review_verification(db.session, admin, profile, approve=True)


def _cards(support: User, holder: Company, prefix: str, count: int) -> list[str]:
    iccids = [f"{prefix}{n:04d}" for n in range(count)]
    for n, iccid in enumerate(iccids):
        card = CardInput(iccid, f"13{prefix[-6:]}{n:03d}", f"{prefix[-2:]}{n:04d}", "SIM-39",
                         TODAY + timedelta(days=365))
        add_card(db.session, support, current_vault(), card, TODAY)
    post_stock_document(db.session, support, "transfer", iccids, to_holder=holder.id)
    return iccids


def _sell(seller: Company, user: User, support: User, iccids: list[str], customer: CardCustomer) -> None:
    package = db.session.query(Package).filter_by(code="SIM-39").one()
    card_order = place_order(db.session, user, seller=seller, package=package, quantity=1, holder_key=seller.id,
                             customer=customer)
    pay_with_balance(db.session, user, card_order.order, TODAY)
    ship(db.session, user, card_order, iccids[:1], "SF", f"SF-{seller.id}", TODAY)
    confirm_receipt(db.session, user, card_order, TODAY)


def build_sweep_world():
    """conftest's world, and the distribution area's rows for Acme (with North below it) and Globex."""
    world = build_world()
    users = world.users
    admin, support, finance = users["admin"], users["support"], users["finance"]
    for company, user, name in ((world.acme, users["customer"], "Acme Cards"),
                                (world.north, users["north"], "Acme North Cards"),
                                (world.globex, users["globex"], "Globex Payee")):
        _distributor(company, user, admin, name)
    category = PackageCategory(code="SIM", name="SIM cards", kind="card")
    db.session.add(category)
    db.session.flush()
    package = Package(code="SIM-39", name="39 plan", category_id=category.id, kind="card",
                      amount=Decimal("39.00"), pricing="per_month", currency="CNY")
    db.session.add(package)
    db.session.flush()
    for company, prefix, buyer in ((world.acme, "8986000000000066", "Acme Card Buyer"),
                                   (world.globex, "8986000000000077", "Globex Card Buyer")):
        save_rule(db.session, finance, company, None, mode="override", kind="percent", level1_percent="10",
                  hold_days=0)
        iccids = _cards(support, company, prefix, 3)
        customer = CardCustomer(company_id=company.id, name=buyer, phone="13900000000", address=f"{buyer} Road 1")
        db.session.add(customer)
        credit(db.session, wallet_for(db.session, company.id, "CNY"), Decimal("500.00"), "offline_recharge",
               f"sweep:fund:{company.id}", admin)
        seller_user = users["customer" if company is world.acme else "globex"]
        _sell(company, seller_user, support, iccids, customer)
        save_quote(db.session, seller_user, seller=company, valid_until=TODAY + timedelta(days=30), today=TODAY,
                   lines=[LineInput(package, 2, "35.00")], customer=customer)
    make_user("south", "customer_admin", world.south)  # a customer that is no distributor
    world.devices["GX0002"].status = "suspended"  # the suspended devices' list has a foreign row too
    world.devices["SO0002"].status = "suspended"
    save_rule(db.session, finance, world.north, None, mode="split", kind="percent", level1_percent="5",
              level2_percent="8", hold_days=0)
    release_held(db.session, TODAY)
    prepare_settlement(db.session, finance, world.globex, TODAY.strftime("%Y-%m"))
    credit(db.session, wallet_for(db.session, world.globex.id, "CNY", kind="commission"), Decimal("50.00"),
           "commission", "sweep:commission:globex", admin)
    submit_withdrawal(db.session, users["globex"], current_vault(), world.globex, amount="11.50", bank_name="ICBC",
                      account_name="Globex Payee", account_number=ACCOUNT)
    db.session.commit()
    return world


@pytest.fixture(scope="module")
def _sweep_rows(_session_app) -> WorldRows:
    rows = WorldRows(build_sweep_world)
    with _session_app.app_context():
        rows.build()
        db.session.remove()
    return rows


@pytest.fixture
def sweep(app, _sweep_rows):
    _sweep_rows.write()
    return _sweep_rows.load()


# --- what is foreign to an actor, and where it must not show --------------------------------------

def _user(username: str) -> User:
    return db.session.query(User).filter_by(username=username).one()


def _may_use(view, user: User) -> bool:
    """Who may use a view, as the views declare it: staff by roles, customers by roles or as distributors."""
    if user.role == "admin" or user.role in view.roles:
        return True
    return (isinstance(view, DistributorAccess) and user.role == "customer_admin"
            and _is_verified_distributor(user.company_id))


def _is_verified_distributor(company_id: int) -> bool:
    from actions.cards import distributor_profile

    profile = distributor_profile(db.session, company_id)
    return profile is not None and profile.status == "verified"


class Foreign:
    """A row foreign to the actor: its id, and its own name when it has one (not "#12" or a bare repr)."""

    def __init__(self, row):
        self.id = row.id
        text = str(row)
        self.marker = None if len(text) < 4 or text.startswith(("#", "<")) or text.isdigit() else text


def _foreign_rows(app, view, actor: User) -> list[Foreign]:
    """The rows of `view` an administrator sees whose company is outside the actor's tree."""
    own = set(db.session.scalars(actor.company.subtree_ids()))
    with app.test_request_context():
        login_user(_user("admin"))
        column = getattr(view.model, view.scope_column)
        rows = [Foreign(row) for row in view.get_query().filter(column.notin_(own) | column.is_(None)).limit(20)]
    db.session.expire_all()
    return rows


def _markers(actor: str, rows: list[Foreign]) -> tuple[str, ...]:
    return ACTORS[actor] + tuple(row.marker for row in rows if row.marker)


# Numbers and logins of Globex's typed into the text boxes that take them (device batches, seats, card picks).
TYPED = [("numbers", "GX0001\nGX0002\n89860000000000770001"), ("logins", "globex-member"), ("pin", "770001")]
# What the actor typed, echoed back in a return URL, a kept text box or the confirmation page's copy of the
# submitted form (hidden inputs posted again with the token): not a leak.
ECHOED = re.compile(r"order(?:=|%3D)[\w-]+|GX0001(?:\n|\r\n|%0A)GX0002(?:\n|\r\n|%0A)89860000000000770001"
                    r'|<input type="hidden" name="(?!csrf_token|confirm_token)[^"]+" value="[^"]*">')


def _text(answer) -> str:
    return ECHOED.sub("", answer.data.decode("utf-8", "replace"))


def _leaks(text: str, markers) -> list[str]:
    return [marker for marker in markers if marker and marker in text]


def _ids_listed(text: str) -> set[int]:
    return {int(a or b) for a, b in LISTED.findall(text)}


def _export_text(answer, export_type: str) -> str:
    if export_type == "csv":
        return "\n".join(",".join(row) for row in csv.reader(io.StringIO(_text(answer))))
    book = openpyxl.load_workbook(io.BytesIO(answer.data), read_only=True)
    return "\n".join(" ".join(str(c) for c in row if c is not None) for sheet in book.worksheets
                     for row in sheet.iter_rows(values_only=True))


def _signed_in(web_app, username: str):
    client = web_app.test_client()
    assert Login(client)(username).status_code == 302
    return client


def _foreign_values(sweep, actor: str) -> dict[str, list[str]]:
    """Company ids and order numbers foreign to the actor, typed into every field that takes one."""
    own = set(db.session.scalars(_user(actor).company.subtree_ids()))
    companies = [str(c.id) for c in db.session.query(Company).order_by(Company.id) if c.id not in own]
    numbers = [o.number for o in db.session.query(Order).order_by(Order.id) if o.company_id not in own and o.number]
    return {"companies": companies, "numbers": numbers}


# --- the sweep ------------------------------------------------------------------------------------

def test_the_sweep_reaches_every_view_a_customer_may_use(app, sweep):
    """Every model view a distributor's administrator may use has foreign rows in the sweep's world (give
    build_sweep_world some when a new view fails here), and the walk covers the card views too."""
    customer = _user("customer")
    missing, walked = [], []
    for endpoint, view in views_by_endpoint(app).items():
        if not _may_use(view, customer):
            continue
        walked.append(endpoint)
        if isinstance(view, ScopedModelView) and not _foreign_rows(app, view, customer):
            missing.append(endpoint)
    assert missing == []
    for expected in ("device", "order_record", "memberaccount", "simcard", "cardorder", "cardcustomer",
                     "commissionrule", "commissionentry", "commissionsettlement", "withdrawal", "card_report",
                     "card_finance", "renewal_center", "account_config", "cardquote"):
        assert expected in walked, expected


@pytest.mark.parametrize("actor", sorted(ACTORS))
def test_lists_and_exports_show_no_foreign_row(app, web_app, sweep, actor):
    client = _signed_in(web_app, actor)
    user = _user(actor)
    problems = []
    for endpoint, view in views_by_endpoint(app).items():
        if not isinstance(view, ScopedModelView) or not _may_use(view, user):
            continue
        rows = _foreign_rows(app, view, user)
        ids = {row.id for row in rows}
        markers = _markers(actor, rows)
        base = view.url.rstrip("/") + "/"
        answer = client.get(base + "?show=all&page_size=500")
        text = _text(answer)
        if answer.status_code != 200:
            problems.append((endpoint, "list", answer.status_code))
        problems += [(endpoint, "list names", leak) for leak in _leaks(text, markers)]
        problems += [(endpoint, "list offers", pk) for pk in _ids_listed(text) & ids]
        for pk in _own_rows(app, view, user)[:1]:  # the actor's own row: its pages offer nothing foreign either
            for page in ("details/", "edit/"):
                answer = client.get(f"{base}{page}?id={pk}")
                problems += [(endpoint, page, "own", leak) for leak in _leaks(_text(answer), markers)]
        if view.can_export:
            for export_type in view.export_types:
                answer = client.get(f"{base}export/{export_type}/?show=all")
                if answer.status_code != 200:
                    problems.append((endpoint, export_type, answer.status_code))
                    continue
                problems += [(endpoint, export_type, leak) for leak in _leaks(_export_text(answer, export_type),
                                                                              markers)]
    assert problems == [], "\n".join(map(repr, problems))


@pytest.mark.parametrize("actor", sorted(ACTORS))
def test_foreign_rows_cannot_be_opened_deleted_or_acted_on(app, web_app, sweep, actor):
    client = _signed_in(web_app, actor)
    user = _user(actor)
    token = csrf_token(client)
    problems = []
    before = snapshot()
    for endpoint, view in views_by_endpoint(app).items():
        if not isinstance(view, ScopedModelView) or not _may_use(view, user):
            continue
        rows = _foreign_rows(app, view, user)
        markers = _markers(actor, rows)
        base = view.url.rstrip("/") + "/"
        for row in rows:
            for page in ("details/", "edit/"):
                answer = client.get(f"{base}{page}?id={row.id}")
                if answer.status_code not in (302, 403, 404):
                    problems.append((endpoint, page, row.id, answer.status_code))
                problems += [(endpoint, page, leak) for leak in _leaks(_text(answer), markers)]
        pks = [str(row.id) for row in rows]
        posts = [("delete/", [("id", pk) for pk in pks[:1]]),
                 ("edit/?id=" + (pks[0] if pks else "0"), [("id", pks[0] if pks else "0")])]
        posts += [("action/", [("action", name), ("confirm", "1")] + [("rowid", pk) for pk in pks])
                  for name in view._actions_data]
        for page, form in posts:
            answer = client.post(base + page, data=MultiDict(form + [("csrf_token", token)]), follow_redirects=True)
            if answer.status_code >= 500:
                problems.append((endpoint, page, form[:1], answer.status_code))
            problems += [(endpoint, page, form[:1], leak) for leak in _leaks(_text(answer), markers)]
        changed = changed_tables(before)
        if set(changed) - {"audit_event"}:  # an action that found no rows still records that it ran
            problems.append((endpoint, "changed", changed))
            before = snapshot()
    assert problems == [], "\n".join(map(repr, problems))


def _rules_of(app, view_endpoints: set[str]):
    """The rules of the given views, and those outside the console (but signing in and provider callbacks)."""
    views = views_by_endpoint(app)
    for rule in app.url_map.iter_rules():
        blueprint, _dot, page = rule.endpoint.partition(".")
        if blueprint in view_endpoints or blueprint not in views and blueprint not in SKIP_BLUEPRINTS:
            yield rule, blueprint, page


@pytest.mark.parametrize("actor", sorted(ACTORS))
def test_every_route_filled_with_foreign_ids_names_and_changes_nothing(app, web_app, sweep, actor):
    """Custom pages, forms and lookups: each GET and POST route of a view the actor may use (and the
    routes outside the console that take an order number), with every id field set to foreign ids."""
    client = _signed_in(web_app, actor)
    user = _user(actor)
    views = views_by_endpoint(app)
    allowed = {endpoint for endpoint, view in views.items() if _may_use(view, user)}
    foreign = _foreign_values(sweep, actor)
    row_ids = {endpoint: [str(row.id) for row in _foreign_rows(app, view, user)]
               for endpoint, view in views.items() if endpoint in allowed and isinstance(view, ScopedModelView)}
    token = csrf_token(client)
    problems = []
    before = snapshot()
    for rule, blueprint, page in sorted(_rules_of(app, allowed), key=lambda item: item[0].rule):
        if page in ("index", "index_view", "static", "details_view", "edit_view", "export") or (
                blueprint in views and "<" not in rule.rule and page == "delete_view"):
            continue  # the lists, details, edits, exports and deletes are swept above
        ids = row_ids.get(blueprint) or foreign["companies"]
        numbers = foreign["numbers"]
        markers = ACTORS[actor]
        urls = [url for number in numbers[:1] + numbers[-1:] for url in fill(rule.rule, ids[0], number)]
        fields = [(name, value) for name in ID_FIELDS for value in
                  (ids if name in ("id", "rowid", "ids", "only") else
                   numbers if name == "order" else foreign["companies"])]
        query = "&".join(f"{name}={value}" for name, value in fields
                         if name not in ("rowid", "only")) + "&name=company&query=G&query=A&method=wechat"
        for url in dict.fromkeys(urls):
            if "GET" in rule.methods:
                answer = client.get(f"{url}?{query}")
                problems += [(url, "GET", leak) for leak in _leaks(_text(answer), markers)]
                if answer.status_code >= 500:
                    problems.append((url, "GET", answer.status_code))
            if "POST" in rule.methods:
                actions = [name for name, _label in getattr(views.get(blueprint), "_actions", None) or []]
                for action in actions or [""]:
                    form = MultiDict(fields + TYPED + [("action", action), ("confirm", "1"), ("save", "1"),
                                               ("decision", "approve"), ("months", "12"), ("quantity", "1"),
                                               ("amount", "10.00"), ("csrf_token", token)])
                    answer = client.post(url, data=form, follow_redirects=True)
                    problems += [(url, "POST", action, leak)
                                 for leak in _leaks(_text(answer), markers)]
                    if answer.status_code >= 500:
                        problems.append((url, "POST", action, answer.status_code))
        changed = changed_tables(before)
        if set(changed) - {"audit_event"}:
            problems.append((rule.rule, "changed", changed))
            before = snapshot()
    assert problems == [], "\n".join(map(repr, problems))


def _own_rows(app, view, actor: User) -> list[str]:
    own = set(db.session.scalars(actor.company.subtree_ids()))
    with app.test_request_context():
        login_user(_user("admin"))
        column = getattr(view.model, view.scope_column)
        ids = [str(row.id) for row in view.get_query().filter(column.in_(own)).limit(2)]
    db.session.expire_all()
    return ids


def foreign_state(companies: set[int]) -> dict[str, list[tuple]]:
    """Every row that names one of `companies` (by a company column or a card holder), read fresh."""
    found = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            if table.name == "company":
                columns = [table.c.id, table.c.parent_id]
            else:
                columns = [c for c in table.columns if c.name.endswith("holder_key")
                           or any(fk.column.table.name == "company" for fk in c.foreign_keys)]
            if columns:
                rows = conn.execute(sa.select(table).where(sa.or_(*(c.in_(companies) for c in columns))))
                found[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return found


@pytest.mark.parametrize("actor", sorted(ACTORS))
def test_one_foreign_id_among_the_actors_own_changes_no_foreign_row(app, web_app, sweep, actor):
    """Each POST route of a view the actor may use, with the actor's own rows and companies in every id field
    but one, which holds a foreign company (a holder, a payer, a parent): no row of a foreign company changes
    and no new row names one. (The actor's own rows may change: the form may ignore that field.)"""
    client = _signed_in(web_app, actor)
    user = _user(actor)
    views = views_by_endpoint(app)
    foreign = _foreign_values(sweep, actor)
    companies = {int(c) for c in foreign["companies"]}
    package = db.session.query(Package).filter_by(code="SIM-39").one()
    own_company = str(user.company_id)
    own_numbers = [o.number for o in db.session.query(Order).filter(Order.company_id == user.company_id)
                   if o.number] or ["none"]
    token = csrf_token(client)
    problems = []
    before = foreign_state(companies)
    for endpoint, view in sorted(views.items()):
        if not _may_use(view, user):
            continue
        own_ids = (_own_rows(app, view, user) if isinstance(view, ScopedModelView) else []) or [own_company]
        actions = [name for name, _label in getattr(view, "_actions", None) or []] or [""]
        for rule in app.url_map.iter_rules():
            if rule.endpoint.partition(".")[0] != endpoint or "POST" not in rule.methods:
                continue
            if rule.endpoint.endswith((".ajax_update", ".delete_view", ".delete")):
                continue  # a foreign company cannot be named there
            for url in dict.fromkeys(fill(rule.rule, own_ids[0], own_numbers[0])):
                is_action = rule.endpoint.endswith(".action_view")  # rows by rowid: every company field at once
                for name in (COMPANY_FIELDS,) if is_action else COMPANY_FIELDS:
                    for action in actions if is_action else [""]:
                        fields = [(field, value) for field in ID_FIELDS if field not in COMPANY_FIELDS
                                  for value in (own_ids if field in ("id", "rowid", "ids", "only") else
                                                own_numbers[:1] if field == "order" else [own_ids[0]])]
                        fields += [(field, foreign["companies"][-1] if field in name else own_company)
                                   for field in COMPANY_FIELDS]
                        form = MultiDict(fields + [
                            ("action", action), ("confirm", "1"), ("save", "1"), ("package_id", str(package.id)),
                            ("quantity", "1"), ("months", "12"), ("amount", "10.00"), ("currency", "CNY"),
                            ("method", "balance"), ("csrf_token", token)])
                        answer = client.post(url, data=form)
                        if answer.status_code >= 500:
                            problems.append((url, name, action, answer.status_code))
                        after = foreign_state(companies)
                        if after != before:
                            problems.append((url, name, action, [t for t in after if after[t] != before.get(t)]))
                            before = after
    assert problems == [], "\n".join(map(repr, problems))


@pytest.mark.parametrize("username", ["support", "finance", "sales", "customer", "north", "south", None])
def test_post_routes_of_views_a_role_may_not_use_answer_403(app, web_app, sweep, username):
    """Every POST route of every view (forms, actions, inline edits, deletes) answers 403 to a role the
    view does not let in, and sends anonymous users to the login page; nothing changes."""
    client = _signed_in(web_app, username) if username else web_app.test_client()
    user = _user(username) if username else None
    token = csrf_token(client)
    before = snapshot()
    wrong = []
    for endpoint, view in views_by_endpoint(app).items():
        if user is not None and _may_use(view, user):
            continue
        for rule in app.url_map.iter_rules():
            if rule.endpoint.partition(".")[0] != endpoint or "POST" not in rule.methods:
                continue
            for url in dict.fromkeys(fill(rule.rule, "1")):
                answer = client.post(url, data={"csrf_token": token, "id": "1", "rowid": "1", "action": "delete"})
                if user is None:
                    if answer.status_code != 302 or not answer.headers["Location"].startswith("/login"):
                        wrong.append((url, answer.status_code))
                elif answer.status_code != 403:
                    wrong.append((url, answer.status_code))
    assert wrong == []
    assert changed_tables(before) == []
