"""Typed text is checked one way (actions.text_input): one-line fields refuse line breaks and invisible control
characters, blocks of lines keep their line breaks, and each refusal names the field and changes nothing."""
from __future__ import annotations

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from actions import DomainError
from actions.bank_transfers import submit_receipt
from actions.coins import create_coin_order
from actions.offline_recharge import create_application
from actions.text_input import one_line, text_block
from models import BankTransferReceipt, OfflineRecharge, db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def request_context(app):
    with app.test_request_context():
        yield


@pytest.mark.parametrize("typed", ["Acme\nLtd", "Acme\r\nLtd", "Acme\u2028Ltd", "Acme\x00Ltd", "Acme\u200bLtd",
                                   "Acme\x1bLtd"])
def test_a_line_refuses_breaks_and_invisible_characters(typed):
    with pytest.raises(DomainError, match="^Payer company: control characters and line breaks are not allowed"):
        one_line(typed, "Payer company", 200)


def test_a_line_is_trimmed_and_measured_after_trimming():
    assert one_line("  Acme 物流  ", "Name", 7) == "Acme 物流"
    assert one_line("   ", "Name", 7, required=False) is None
    with pytest.raises(DomainError, match="^Name is required"):
        one_line(" \t ", "Name", 7)
    with pytest.raises(DomainError, match="^Name: at most 7 characters"):
        one_line("Acme 物流公司", "Name", 7)


def test_a_block_keeps_its_lines_and_refuses_other_controls():
    assert text_block(" first line\r\n\tsecond line \n", "Reason", 100) == "first line\n\tsecond line"
    assert text_block(None, "Reason", 100) == ""
    with pytest.raises(DomainError, match="^Reason: control characters are not allowed"):
        text_block("first\x00second", "Reason", 100)
    with pytest.raises(DomainError, match="^Reason: at most 5 characters"):
        text_block("123456", "Reason", 5)


def test_the_refusal_reads_in_chinese_and_vietnamese():
    with force_locale("zh_Hans_CN"):
        with pytest.raises(DomainError) as refused:
            one_line("a\nb", "付款人", 20)
        assert str(refused.value) == "付款人：不允许包含控制字符和换行符。"
    with force_locale("vi"):
        with pytest.raises(DomainError) as refused:
            one_line("x" * 21, "Người trả", 20)
        assert str(refused.value) == "Người trả: tối đa 20 ký tự."


def test_an_offline_recharge_payer_with_a_line_break_is_refused_and_nothing_is_filed(world):
    """The payer was only measured: "Acme\\nLtd" was filed and broke the review list's rows and the export."""
    with pytest.raises(DomainError, match="Payer: control characters and line breaks are not allowed"):
        create_application(db.session, world.users["sales"], world.acme.id, "Acme\nLtd", "CNY", "100.00", "")
    with pytest.raises(DomainError, match="Reference number: control characters"):
        create_application(db.session, world.users["sales"], world.acme.id, "Acme Ltd", "CNY", "100.00", "TT\x00-1")
    assert db.session.scalar(select(func.count()).select_from(OfflineRecharge)) == 0


def test_a_bank_transfer_receipt_names_the_payer_field_at_fault(world, tmp_path):
    order = create_coin_order(db.session, world.users["customer"], world.acme, "2160.00", "bank_transfer")
    with pytest.raises(DomainError, match="^Payer bank account: control characters and line breaks"):
        submit_receipt(db.session, world.users["customer"], order, "Acme Logistics Ltd", "6222\u20280000",
                       "2160.00", "receipt.png", PNG, tmp_path)
    assert db.session.scalar(select(func.count()).select_from(BankTransferReceipt)) == 0
