"""actions.pricing.price_order: the one pricing engine (issue 11's five steps and worked example)."""
from __future__ import annotations

from decimal import Decimal

import pytest

from actions import DomainError
from actions.pricing import Line, Promotion, price_order

D = Decimal


def test_worked_example_holds_exactly(app):
    priced = price_order(
        [Line("plan", D("1200.00"), Promotion("percent", D("15"))),
         Line("addon-a", D("360.00"), Promotion("fixed", D("50.00"))),
         Line("addon-b", D("499.00"), Promotion("percent", D("12.5")))],
        Promotion("percent", D("7")), currency="CNY")
    assert [line.item_discount for line in priced.lines] == [D("180.00"), D("50.00"), D("62.38")]
    assert priced.subtotal == D("1766.62")
    assert priced.invoice_discount == D("123.66")
    assert [line.invoice_share for line in priced.lines] == [D("71.40"), D("21.70"), D("30.56")]
    assert [line.net for line in priced.lines] == [D("948.60"), D("288.30"), D("406.06")]
    assert priced.total == D("1642.96")
    assert str(priced.total) == "1642.96"  # in the currency's exponent
    assert priced.line("addon-b").gross == D("499.00")


def test_percent_is_capped_and_never_above_the_gross(app):
    priced = price_order([Line(1, D("1000.00"), Promotion("percent", D("50"), max_discount=D("120.00"))),
                          Line(2, D("30.00"), Promotion("fixed", D("50.00")))], currency="CNY")
    assert [line.item_discount for line in priced.lines] == [D("120.00"), D("30.00")]
    assert priced.lines[1].net == D("0.00")
    assert priced.total == D("880.00")


def test_vnd_has_no_minor_unit_and_rounds_half_up(app):
    priced = price_order([Line("plan", D("1990000"), Promotion("percent", D("12.5")))],
                         Promotion("percent", D("3")), currency="VND")
    line = priced.lines[0]
    assert line.item_discount == D("248750")
    assert priced.invoice_discount == D("52238")  # 3 % of 1,741,250 = 52,237.5 → half up
    assert line.net == D("1689012") and priced.total == D("1689012")
    assert line.net.as_tuple().exponent == 0


def test_invoice_shares_add_up_and_ties_go_to_the_earlier_line(app):
    priced = price_order([Line("a", D("1.00")), Line("b", D("1.00")), Line("c", D("1.00"))],
                         Promotion("fixed", D("0.10")), currency="CNY")
    assert [line.invoice_share for line in priced.lines] == [D("0.04"), D("0.03"), D("0.03")]
    assert priced.total == D("2.90")


def test_total_may_be_zero(app):
    priced = price_order([Line("a", D("10.00"), Promotion("percent", D("100")))],
                         Promotion("fixed", D("5.00")), currency="CNY")
    assert priced.total == D("0.00") and priced.invoice_discount == D("0.00")


@pytest.mark.parametrize(("lines", "invoice", "message"), [
    ([Line("addon-a", D("360.00"), Promotion("fixed", D("50.00"), currency="USD"))], None, "addon-a"),
    ([Line("addon-a", D("-1.00"))], None, "addon-a"),
    ([Line("addon-a", D("1.001"))], None, "addon-a"),
    ([Line("addon-a", 1.5)], None, "addon-a"),
    ([Line("addon-a", D("10.00"), Promotion("percent", D("101")))], None, "addon-a"),
    ([Line("addon-a", D("10.00"), Promotion("bogus", D("1")))], None, "addon-a"),
    ([Line("addon-a", D("10.00"), Promotion("fixed", D("0.001")))], None, "addon-a"),
    ([Line("x", D("1.00")), Line("x", D("2.00"))], None, "x"),
    ([Line("plan", D("10.00"))], Promotion("fixed", D("1.00"), currency="VND"), "Invoice promotion"),
    ([], None, "at least one line"),
])
def test_bad_input_names_the_line(app, lines, invoice, message):
    with pytest.raises(DomainError) as caught:
        price_order(lines, invoice, currency="CNY")
    assert message in str(caught.value)


def test_fixed_vnd_promotion_needs_whole_dong(app):
    with pytest.raises(DomainError, match="plan"):
        price_order([Line("plan", D("100000"), Promotion("fixed", D("0.50")))], currency="VND")
