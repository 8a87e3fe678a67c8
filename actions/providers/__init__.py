"""Real payment providers behind the one interface of actions.payments (one module per provider).

Each adapter speaks its provider's own protocol and offers the same five things:

- `start(order, urls)` → `PaymentStart`: what the pay page shows (a QR code's text, or a URL to
  send the payer to);
- `parse_notification(headers, body, now)` → `ProviderPayment`: the provider's notification,
  verified as the provider specifies (BadNotification with the refusal reason otherwise), or None
  for a verified notice that pays nothing (a closed trade, a refund);
- `answer(accepted)` → what the provider expects back from the callback;
- `query(order, reference)` → `ProviderPayment` when the provider says the order is paid, else
  None (`reference`: what `start` opened there, kept as a `PaymentAttempt`);
- `refund(order, refund)` → the provider's refund id, or DomainError when the provider refuses.

Credentials come from the configuration (the environment in production; README "Going live with
payment providers"); a method whose credentials are set is served by its adapter, anywhere.
`actions.provider_settlement` applies a payment, verified or queried, through `mark_paid`: the same
idempotent path for a notification, the payer's return and `billing reconcile-payments`.
"""
from __future__ import annotations

from collections.abc import Mapping

from actions.payment_errors import PaymentConfigError
from actions.providers.base import (  # noqa: F401 - the interface, re-exported
    Answer, PaymentStart, Provider, ProviderError, ProviderPayment, ReturnUrls,
)


# The adapters by method, each with the configuration keys it needs (all of them, or none).
def adapter_classes() -> dict[str, type]:
    from actions.providers.alipay import Alipay
    from actions.providers.paypal import PayPal
    from actions.providers.vnptpay import VNPTPay
    from actions.providers.wechat import WeChatPay

    return {"wechat": WeChatPay, "alipay": Alipay, "paypal": PayPal, "vnptpay": VNPTPay}


# The prefix of every configuration key of each adapter (its REQUIRED ones included). An adapter
# is imported only when a key of its prefix is set: the four SDKs (requests, cryptography,
# pycryptodome) add 11 MB to every web worker that serves no such method.
CONFIG_PREFIXES = {"wechat": "WECHATPAY_", "alipay": "ALIPAY_", "paypal": "PAYPAL_", "vnptpay": "VNPTPAY_"}


def configured_providers(config: Mapping) -> tuple[dict[str, Provider], list[str]]:
    """The adapters whose credentials are set, and the names of keys missing from half-set ones."""
    providers, missing = {}, []
    wanted = [method for method, prefix in CONFIG_PREFIXES.items()
              if any(value for key, value in config.items() if key.startswith(prefix))]
    if not wanted:
        return providers, missing
    for method, cls in adapter_classes().items():
        if method not in wanted:
            continue
        present = [key for key in cls.REQUIRED if config.get(key)]
        if not present:
            continue
        absent = [key for key in cls.REQUIRED if not config.get(key)]
        if absent:
            missing.extend(absent)
            continue
        try:
            providers[method] = cls.from_config(config)
        except Exception as exc:  # the packages raise bare Exceptions for unreadable keys
            raise PaymentConfigError(f"The {method} credentials cannot be used ({', '.join(cls.REQUIRED)}): "
                                     f"{exc}") from None
    return providers, missing
