"""The cron and operator commands given arguments a tired operator or a broken crontab would type:
each is refused before anything runs — a non-zero exit and a message naming the argument, never a
traceback — and nothing changes. A day outside 2000-01-01 – 2199-12-31 overflowed Python's dates
(auto-renew or subscriptions as of 9999-12-31, cards receive as of 0001-01-01); a negative --days
received every shipped card order at once; --month 2026-13 ran a true-up of a month that does not
exist."""
from __future__ import annotations

import pytest

from db_snapshot import changed_tables, snapshot

CASES = [
    (["billing", "auto-renew", "--today", "9999-12-31"], "--today"),
    (["billing", "auto-renew", "--today", "0001-01-01"], "--today"),
    (["billing", "auto-renew", "--today", "2026-02-30"], "--today"),
    (["billing", "subscriptions", "--today", "9999-12-31"], "--today"),
    (["billing", "remind", "--today", "9999-12-31"], "--today"),
    (["billing", "reconcile-payments", "--today", "１９９９-01-01"], "--today"),
    (["cards", "receive", "--today", "0001-01-01", "--days", "5"], "--today"),
    (["cards", "receive", "--days", "-5"], "--days"),
    (["cards", "receive", "--days", "99999999999"], "--days"),
    (["cards", "true-up", "--month", "2026-13"], "--month"),
    (["cards", "true-up", "--month", "0000-00"], "--month"),
    (["cards", "true-up", "--month", "²²²²-²²"], "--month"),
    (["seed-demo", "--devices", "-5"], "--devices"),
]


@pytest.mark.parametrize("args, option", CASES, ids=[" ".join(args) for args, _option in CASES])
def test_a_bad_argument_is_named_and_nothing_runs(app, world, args, option):
    before = snapshot()
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert f"Invalid value for '{option}'" in result.output, result.output
    assert changed_tables(before) == []


def test_the_edges_of_the_range_still_run(app, world):
    runner = app.test_cli_runner()
    for args in (["cards", "receive", "--today", "2199-12-31", "--days", "0"],
                 ["cards", "receive", "--today", "2000-01-01", "--days", "3650"],
                 ["billing", "subscriptions", "--today", "2199-12-31"],
                 ["cards", "true-up", "--month", "2026-11"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (args, result.output, result.exception)
    assert "cards true-up 2026-11:" in runner.invoke(args=["cards", "true-up", "--month", "2026-11"]).output
