"""奥维币 (coins): prices, buying them with CNY, and the whole-coin rule of the COIN wallet.

1 CNY buys 100 coins. A VIP account costs 72 CNY (7,200 coins) a year, an SVIP account 216 CNY
(21,600 coins); terms are a quarter, half a year or a year (seed 000: accounts × years × 72 or
216 CNY). Coins are whole numbers (the COIN currency has no minor unit): every amount that moves
through the COIN wallet goes through `whole_coins` first. A coin purchase is an Order of kind
"coins" in CNY; when it is paid (online, via actions.orders.mark_paid, or by a confirmed bank
transfer, which goes through mark_paid too) the company's COIN wallet is credited total × 100.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from actions import DomainError, in_scope, require_role
from actions.audit import record
from actions.money import parse, round_money, typed_number
from actions.texts import count_param, label_param, message, money_param
from actions.orders import LineSpec, open_order
from actions.payments import online_methods
from actions.wallets import credit, debit, wallet_for
from models import Company, Order, OrderLine, User

COINS_PER_CNY = 100
# CNY per account per year, by VIP level (seed 000).
YEARLY_PRICE_CNY: Mapping[str, Decimal] = {"vip": Decimal("72"), "svip": Decimal("216")}
# The terms the seed sells, in years, and the months each adds to an account's expiry.
TERM_MONTHS: Mapping[Decimal, int] = {Decimal("0.25"): 3, Decimal("0.5"): 6, Decimal("1"): 12}
TERM_LABELS = {Decimal("0.25"): _l("A quarter (0.25 year)"), Decimal("0.5"): _l("Half a year (0.5 year)"),
               Decimal("1"): _l("A year")}
MAX_ACCOUNTS = 100_000
COIN_PAYMENT_METHODS = tuple(online_methods("CNY")) + ("bank_transfer",)


def whole_coins(value, field: str = "coins") -> Decimal:
    """A positive whole number of coins as a Decimal (the COIN wallet never holds fractions)."""
    coins = value
    if not isinstance(value, Decimal):
        text = str(value).strip()
        coins = typed_number(text.removeprefix("-"))  # 10,000, in Vietnamese 10.000
        if coins is not None and text.startswith("-"):
            coins = -coins
    if coins is None:
        raise DomainError(_l("%(field)s: %(value)s is not a number of coins.", field=field, value=value))
    if not coins.is_finite() or coins <= 0:
        raise DomainError(_l("%(field)s: must be greater than zero.", field=field))
    if coins != coins.to_integral_value():
        raise DomainError(_l("%(field)s: coins are whole numbers (%(value)s is not).", field=field, value=coins))
    return coins.quantize(Decimal(1))


def coins_for_cny(cny) -> int:
    """How many coins a CNY amount buys (1 CNY = 100 coins; always whole for a 2-decimal amount)."""
    return int(whole_coins(parse(cny, "CNY") * COINS_PER_CNY))


def parse_years(value) -> Decimal:
    """A term the seed sells (0.25, 0.5 or 1 year), or DomainError."""
    years = typed_number(str(value))  # 0.5, in Vietnamese also 0,5
    for term in TERM_MONTHS:
        if years is not None and years.is_finite() and years == term:
            return term
    raise DomainError(_l("Term: choose 0.25, 0.5 or 1 year (not %(value)s).", value=value))


def parse_level(value) -> str:
    """A level that can be bought (vip or svip), or DomainError."""
    if value not in YEARLY_PRICE_CNY:
        raise DomainError(_l("VIP level: choose VIP or SVIP (not %(value)s).", value=value))
    return value


def parse_accounts(value) -> int:
    """A number of accounts between 1 and MAX_ACCOUNTS, or DomainError."""
    text = str(value).strip()
    if not text.isdecimal() or not 1 <= int(text) <= MAX_ACCOUNTS:
        raise DomainError(_l("Accounts: a whole number between 1 and %(max)s.", max=MAX_ACCOUNTS))
    return int(text)


def coin_price(level: str, accounts: int, years) -> tuple[Decimal, int]:
    """(CNY, coins) for `accounts` accounts at `level` for `years`: accounts × years × 72 or 216 CNY."""
    level = parse_level(level)
    accounts = parse_accounts(accounts)
    years = parse_years(years)
    cny = round_money(YEARLY_PRICE_CNY[level] * accounts * years, "CNY")
    return cny, int(cny * COINS_PER_CNY)


def create_coin_order(session: Session, actor: User, company: Company, cny_amount, method: str) -> Order:
    """A pending coin purchase of `company` (kind "coins", in CNY), to be paid with `method`.

    `method` is how the customer means to pay (WeChat Pay, Alipay or bank transfer); the order
    records the method actually used when it is paid.
    """
    require_role(actor, {"customer_admin"})
    if not in_scope(actor, company.id, session):
        raise DomainError(_l("Company %(name)s is outside your companies.", name=company.name))
    if method not in COIN_PAYMENT_METHODS:
        raise DomainError(_l("Payment method: choose WeChat Pay, Alipay or bank transfer."))
    amount = parse(cny_amount, "CNY", str(_l("Amount")))
    coins = coins_for_cny(amount)
    order = open_order(session, actor, kind="coins", company_id=company.id, currency="CNY",
                       lines=[LineSpec(description=message("order.line.coins", coins=count_param(coins)), gross=amount,
                                       quantity=coins,
                                       unit_price=Decimal("0.01"))])
    record(session, actor, "create", "order", [order.id],
           message("audit.order.coins", order=order.number, coins=count_param(coins), amount=money_param(amount, "CNY"),
                   company=company.name, method=label_param("payment_method", method)))
    session.flush()
    return order


def credit_coins(session: Session, order: Order, today) -> None:
    """A paid coin purchase credits the COIN wallet: 100 coins per CNY of the order's total."""
    wallet = wallet_for(session, order.company_id, "COIN")
    credit(session, wallet, whole_coins(order.total * COINS_PER_CNY), "coin_purchase", f"coins:order:{order.id}",
           None, order_id=order.id,
           memo=message("ledger.paid", order=order.number, method=label_param("payment_method", order.payment_method)))


def take_back_coins(session: Session, order: Order, lines: list[OrderLine]) -> None:
    """A refunded coin purchase takes its coins back (refused when they were spent)."""
    cny = sum((line.net for line in lines), Decimal(0))
    wallet = wallet_for(session, order.company_id, "COIN")
    debit(session, wallet, whole_coins(cny * COINS_PER_CNY), "refund",
          f"uncoins:order:{order.id}:" + ",".join(str(line.id) for line in lines), None, order_id=order.id,
          memo=message("ledger.refund", order=order.number))
