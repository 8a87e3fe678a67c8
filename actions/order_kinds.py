"""The one visible place where the core's order kinds say what paying delivers and what a
refund undoes (actions.orders.register_kind). Areas register their own kinds the same way,
from their own module, imported once at start-up (app.py)."""
from __future__ import annotations

from actions.coins import credit_coins, take_back_coins
from actions.members import apply_vip_upgrade, undo_vip_upgrade
from actions.orders import apply_renewal, credit_recharge, register_kind, undo_recharge, undo_renewal
from actions.seats import add_purchased_seats, remove_purchased_seats
from actions.value_added import deliver_services, undo_services

register_kind("recharge", "RC", deliver=credit_recharge, undo=undo_recharge, balance_pays=False)
register_kind("renewal", "RN", deliver=apply_renewal, undo=undo_renewal)
# Coins are bought online or by bank transfer (seed 000 §2, 订单付款); a transfer of another amount is
# credited to the CNY balance (actions.bank_transfers.confirm_receipt), which then pays the order.
register_kind("coins", "CO", deliver=credit_coins, undo=take_back_coins)
register_kind("vip_upgrade", "VP", deliver=apply_vip_upgrade, undo=undo_vip_upgrade)
register_kind("seats", "SE", deliver=add_purchased_seats, undo=remove_purchased_seats)
register_kind("value_added", "VA", deliver=deliver_services, undo=undo_services)
