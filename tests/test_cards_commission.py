"""The commission engine (actions/commission.py): the issue's worked example holds to the cent."""
from __future__ import annotations

from decimal import Decimal as D

import pytest

from actions import DomainError
from actions.commission import (
    Tier, check_tiers, commission, format_tiers, level_rates, parse_tiers, reversal, sale_shares,
    tiered_commission, true_up,
)
from actions.money import allocate

TIERS = (Tier(D(0), D(10000), D("0.06")), Tier(D(10000), D(50000), D("0.08")), Tier(D(50000), None, D("0.10")))


def test_worked_example_split_mode_net_after_invoice_promotion():
    gross = [D("39.00")] * 10
    promotion = D("390.00") * D("0.05")
    net = [g - d for g, d in zip(gross, allocate(promotion, gross, "CNY"))]
    base = sum(net)
    assert base == D("370.50")
    shares = sale_shares(base=base, cards=10, currency="CNY", kind="percent", mode="split",
                         level1_rate=D("0.08"), level2_rate=D("0.10"), has_parent=True)
    assert [(s.level, s.amount) for s in shares] == [(1, D("29.64")), (2, D("7.41"))]
    assert reversal(D("29.64"), 2, 10, "CNY") == D("-5.93")
    assert reversal(D("7.41"), 2, 10, "CNY") == D("-1.48")


def test_worked_example_graduated_month_and_true_up():
    assert tiered_commission(D("62000.00"), TIERS, "graduated", "CNY") == D("5000.00")
    provisional = commission(D("62000.00"), D("0.06"), "CNY")
    assert provisional == D("3720.00")
    assert true_up(D("62000.00"), TIERS, "graduated", provisional, "CNY") == D("1280.00")


def test_volume_tiers_pay_the_whole_month_at_the_reached_rate():
    assert tiered_commission(D("62000.00"), TIERS, "volume", "CNY") == D("6200.00")
    assert tiered_commission(D("9999.99"), TIERS, "volume", "CNY") == D("600.00")
    assert tiered_commission(D("10000.00"), TIERS, "volume", "CNY") == D("800.00")
    assert tiered_commission(D("0"), TIERS, "graduated", "CNY") == D("0.00")


def test_override_mode_pays_both_rates_as_set():
    shares = sale_shares(base=D("370.50"), cards=10, currency="CNY", kind="percent", mode="override",
                         level1_rate=D("0.08"), level2_rate=D("0.02"), has_parent=True)
    assert [s.amount for s in shares] == [D("29.64"), D("7.41")]


def test_no_parent_means_one_level_only():
    shares = sale_shares(base=D("370.50"), cards=10, currency="CNY", kind="percent", mode="split",
                         level1_rate=D("0.08"), level2_rate=D("0.10"), has_parent=False)
    assert [(s.level, s.amount) for s in shares] == [(1, D("29.64"))]


def test_fixed_per_card_in_split_mode():
    shares = sale_shares(base=D("370.50"), cards=10, currency="CNY", kind="fixed", mode="split",
                         level1_rate=D(0), level2_rate=D(0), fixed_per_card=D("1.50"),
                         fixed_per_card_level2=D("2.00"), has_parent=True)
    assert [(s.level, s.amount) for s in shares] == [(1, D("15.00")), (2, D("5.00"))]


def test_split_share_above_parent_rate_is_refused():
    with pytest.raises(DomainError, match="cannot exceed"):
        level_rates("split", D("0.12"), D("0.10"))


def test_full_refund_reverses_the_whole_entry_and_half_up_rounding():
    assert reversal(D("29.64"), 10, 10, "CNY") == D("-29.64")
    assert commission(D("0.50"), D("0.01"), "CNY") == D("0.01")  # 0.005 rounds half up
    with pytest.raises(DomainError):
        reversal(D("29.64"), 11, 10, "CNY")


def test_tiers_read_as_a_chinese_or_vietnamese_keyboard_types_them_and_print_without_exponents():
    """A Chinese IME types "0-10000：6" (full-width colon) and ranges as "0～10000": refused as malformed. A
    Vietnamese reader's 50.000 is fifty thousand (it read 50). A 10 % tier was stored and shown as "1E+1"."""
    typed = parse_tiers("０-１００００：６\n10000～50000:8％\n50000-:10", locale="zh_Hans_CN")
    assert typed == (Tier(D(0), D(10000), D("0.06")), Tier(D(10000), D(50000), D("0.08")),
                     Tier(D(50000), None, D("0.1")))
    assert parse_tiers("0-50.000:6\n50.000-:12,5", locale="vi") == (Tier(D(0), D(50000), D("0.06")),
                                                                    Tier(D(50000), None, D("0.125")))
    assert parse_tiers("0-10,000:6\n10,000-:12.5", locale="en")[1] == Tier(D(10000), None, D("0.125"))
    assert format_tiers(typed) == "0-10000:6\n10000-50000:8\n50000-:10"
    assert parse_tiers(format_tiers(typed), locale="vi") == typed  # what is stored reads back in any language
    with pytest.raises(DomainError, match="Tier 2"):
        parse_tiers("0-100:6\n100-:1e1", locale="en")


def test_tiers_must_be_contiguous_and_round_trip_as_text():
    assert parse_tiers(format_tiers(TIERS)) == TIERS
    with pytest.raises(DomainError, match="Tier 2"):
        check_tiers((Tier(D(0), D(100), D("0.1")), Tier(D(200), None, D("0.2"))))
    with pytest.raises(DomainError, match="Tier 1"):
        parse_tiers("zero to ten: 6")
    with pytest.raises(TypeError):
        commission(D("1"), 0.1, "CNY")
