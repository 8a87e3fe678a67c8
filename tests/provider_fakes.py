"""Local fakes of the payment providers, served on 127.0.0.1 by the tests (no network).

Each fake speaks its provider's real formats: it checks the merchant's request signatures, signs
its answers and builds notifications exactly as the provider does, with keys the test generated.
The adapters reach it through configuration only (`WECHATPAY_API_URL`, …).
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def rsa_sign(key, text: str) -> str:
    return base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


class FakeServer:
    """Serve a WSGI app on 127.0.0.1 (a free port) in a thread until `stop()`."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class FakeWeChatPay:
    """WeChat Pay API v3 (direct merchant, WeChat Pay public key mode): Native order, query, refund (answered
    PROCESSING, as WeChat Pay answers most; `pay_out` moves it on) and its query, and the TRANSACTION.SUCCESS
    and REFUND.* notifications (signed, resource AES-256-GCM encrypted)."""

    AUTH = re.compile(r'^WECHATPAY2-SHA256-RSA2048 mchid="([^"]*)",nonce_str="([^"]*)",signature="([^"]*)",'
                      r'timestamp="([^"]*)",serial_no="([^"]*)"$')

    def __init__(self, mchid="1900000109", appid="wx8888888888888888"):
        self.mchid, self.appid = mchid, appid
        self.merchant_key = rsa_key()
        self.merchant_serial = "5157F09EFDC096DE15EBE81A47057A72" + secrets.token_hex(4).upper()
        self.platform_key = rsa_key()
        self.public_key_id = "PUB_KEY_ID_0119" + secrets.token_hex(8).upper()
        self.apiv3_key = secrets.token_hex(16)  # 32 characters
        self.trades: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.refund_notify_urls: dict[str, str | None] = {}  # where each refund's REFUND.* notification goes
        self.refuse_refunds: str | None = None
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def pay_out(self, out_refund_no: str, status: str = "SUCCESS") -> None:
        """What happens to an accepted refund later: SUCCESS (paid out), ABNORMAL or CLOSED."""
        with self.lock:
            self.refunds[out_refund_no]["status"] = status

    def config(self, url: str) -> dict:
        """The app's configuration for this merchant, pointed at the fake."""
        return {"WECHATPAY_MCHID": self.mchid, "WECHATPAY_APPID": self.appid,
                "WECHATPAY_CERT_SERIAL_NO": self.merchant_serial, "WECHATPAY_PRIVATE_KEY": private_pem(self.merchant_key),
                "WECHATPAY_APIV3_KEY": self.apiv3_key, "WECHATPAY_PUBLIC_KEY": public_pem(self.platform_key),
                "WECHATPAY_PUBLIC_KEY_ID": self.public_key_id, "WECHATPAY_API_URL": url}

    # --- what WeChat Pay sends ----------------------------------------------------------------

    def signed_headers(self, body: str, key=None, timestamp: int | None = None, serial: str | None = None) -> dict:
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(16).upper()
        return {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": rsa_sign(key or self.platform_key, f"{timestamp}\n{nonce}\n{body}\n"),
                "Wechatpay-Serial": serial or self.public_key_id,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}

    def pay(self, out_trade_no: str) -> dict:
        """The payer scans and pays: the trade succeeds (as the query will say)."""
        with self.lock:
            trade = self.trades[out_trade_no]
            if trade["trade_state"] != "SUCCESS":
                trade.update(trade_state="SUCCESS", transaction_id="4200" + secrets.token_hex(12),
                             success_time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            return dict(trade)

    def notification(self, trade: dict, key=None, timestamp: int | None = None, apiv3_key: str | None = None,
                     serial: str | None = None) -> tuple[dict, bytes]:
        """The TRANSACTION.SUCCESS notification of `trade`: headers and body, as WeChat Pay posts them."""
        resource = {k: trade[k] for k in ("mchid", "appid", "out_trade_no", "transaction_id", "trade_type",
                                          "trade_state", "trade_state_desc", "bank_type", "success_time",
                                          "payer", "amount")}
        nonce = secrets.token_hex(6)
        cipher = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), b"transaction")
        body = json.dumps({
            "id": "EV-" + secrets.token_hex(10), "create_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(cipher).decode(), "associated_data": "transaction",
                         "nonce": nonce},
        }, ensure_ascii=False)
        return self.signed_headers(body, key, timestamp, serial), body.encode()

    def refund_notification(self, out_refund_no: str, /, key=None, **changes) -> tuple[dict, bytes]:
        """The REFUND.SUCCESS / ABNORMAL / CLOSED notification of a refund paid out or given up (`pay_out`),
        as WeChat Pay posts it to the refund's notify_url; `changes` edit the resource before it is encrypted."""
        refund = self.refunds[out_refund_no]
        resource = {"mchid": self.mchid, "out_trade_no": refund["out_trade_no"],
                    "transaction_id": refund["transaction_id"], "out_refund_no": out_refund_no,
                    "refund_id": refund["refund_id"], "refund_status": refund["status"],
                    "success_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "user_received_account": "支付用户零钱",
                    "amount": {"total": refund["amount"]["total"], "refund": refund["amount"]["refund"],
                               "payer_total": refund["amount"]["total"], "payer_refund": refund["amount"]["refund"]},
                    **changes}
        nonce = secrets.token_hex(6)
        cipher = AESGCM(self.apiv3_key.encode()).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), b"refund")
        summary = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}[refund["status"]]
        body = json.dumps({
            "id": "EV-" + secrets.token_hex(10),
            "create_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource", "event_type": f"REFUND.{refund['status']}", "summary": summary,
            "resource": {"original_type": "refund", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(cipher).decode(), "associated_data": "refund",
                         "nonce": nonce},
        }, ensure_ascii=False)
        return self.signed_headers(body, key), body.encode()

    # --- the API --------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data(as_text=True)
        path = request.path + (f"?{request.query_string.decode()}" if request.query_string else "")
        self.requests.append((request.method, path))
        if not self._authorized(request, path, body):
            return self._reply({"code": "SIGN_ERROR", "message": "签名错误"}, 401)(environ, start_response)
        native = re.fullmatch(r"/v3/pay/transactions/native", request.path)
        by_number = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", request.path)
        refund_query = re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", request.path)
        if native and request.method == "POST":
            response = self._create(json.loads(body))
        elif by_number and request.method == "GET":
            trade = self.trades.get(by_number.group(1))
            response = self._reply({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}, 404) if trade is None \
                else self._reply({k: v for k, v in trade.items() if k != "notify_url"})
        elif request.path == "/v3/refund/domestic/refunds" and request.method == "POST":
            response = self._refund(json.loads(body))
        elif refund_query and request.method == "GET":
            refund = self.refunds.get(refund_query.group(1))
            response = self._reply({"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}, 404) if refund is None \
                else self._reply(refund)
        else:
            response = self._reply({"code": "NOT_FOUND", "message": "not found"}, 404)
        return response(environ, start_response)

    def _authorized(self, request, path: str, body: str) -> bool:
        match = self.AUTH.match(request.headers.get("Authorization", ""))
        if not match:
            return False
        mchid, nonce, signature, timestamp, serial = match.groups()
        if mchid != self.mchid or serial != self.merchant_serial:
            return False
        message = f"{request.method}\n{path}\n{timestamp}\n{nonce}\n{body}\n".encode()
        try:
            self.merchant_key.public_key().verify(base64.b64decode(signature), message, padding.PKCS1v15(),
                                                  hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True

    def _reply(self, data: dict, status: int = 200) -> Response:
        body = json.dumps(data, ensure_ascii=False)
        return Response(body, status=status, headers=self.signed_headers(body), content_type="application/json")

    def _create(self, data: dict) -> Response:
        number = data["out_trade_no"]
        with self.lock:
            trade = self.trades.get(number)
            if trade is None:
                trade = self.trades[number] = {
                    "mchid": data["mchid"], "appid": data["appid"], "out_trade_no": number,
                    "transaction_id": "", "trade_type": "NATIVE", "trade_state": "NOTPAY",
                    "trade_state_desc": "", "bank_type": "OTHERS", "success_time": "",
                    "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
                    "amount": dict(data["amount"], payer_total=data["amount"]["total"],
                                   payer_currency=data["amount"]["currency"]),
                    "notify_url": data["notify_url"], "code_url": "weixin://wxpay/bizpayurl?pr=" + secrets.token_hex(4),
                }
            elif trade["amount"]["total"] != data["amount"]["total"]:
                return self._reply({"code": "INVALID_REQUEST", "message": "201 商户订单号重复"}, 400)
        return self._reply({"code_url": trade["code_url"]})

    def _refund(self, data: dict) -> Response:
        if self.refuse_refunds:
            return self._reply({"code": "NOT_ENOUGH", "message": self.refuse_refunds}, 403)
        trade = next((t for t in self.trades.values() if t["transaction_id"] == data.get("transaction_id")), None)
        if trade is None or trade["trade_state"] != "SUCCESS":
            return self._reply({"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}, 404)
        with self.lock:
            refund = self.refunds.setdefault(data["out_refund_no"], {
                "refund_id": "5030" + secrets.token_hex(12), "out_refund_no": data["out_refund_no"],
                "transaction_id": trade["transaction_id"], "out_trade_no": trade["out_trade_no"],
                "channel": "ORIGINAL", "status": "PROCESSING", "amount": dict(data["amount"]),
            })
            self.refund_notify_urls[data["out_refund_no"]] = data.get("notify_url")
        return self._reply(refund)


class FakeAlipay:
    """Alipay's Open Platform gateway (RSA2, public-key mode): page pay (the cashier page), pre-create,
    query, refund, and the asynchronous notification (form fields signed with Alipay's key)."""

    def __init__(self, app_id="2021000117600000", seller_id="2088102177846875"):
        self.app_id, self.seller_id = app_id, seller_id
        self.app_key = rsa_key()
        self.alipay_key = rsa_key()
        self.trades: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.refuse_refunds: str | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def config(self, url: str, mode: str = "page") -> dict:
        bare = "".join(public_pem(self.alipay_key).strip().splitlines()[1:-1])  # as Alipay's console shows it
        return {"ALIPAY_APP_ID": self.app_id, "ALIPAY_APP_PRIVATE_KEY": private_pem(self.app_key),
                "ALIPAY_PUBLIC_KEY": bare, "ALIPAY_GATEWAY": f"{url}/gateway.do", "ALIPAY_MODE": mode}

    @staticmethod
    def signed_text(fields: dict, leave_out=("sign",)) -> str:
        return "&".join(f"{k}={v}" for k, v in sorted(fields.items()) if k not in leave_out)

    def pay(self, out_trade_no: str) -> dict:
        with self.lock:
            trade = self.trades[out_trade_no]
            if trade["trade_status"] != "TRADE_SUCCESS":
                trade.update(trade_status="TRADE_SUCCESS", trade_no="2026" + secrets.token_hex(12),
                             gmt_payment=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"))
            return dict(trade)

    def notification(self, trade: dict, key=None, **changes) -> tuple[dict, bytes]:
        """The trade_status_sync notification Alipay posts (form encoded), fields changed before signing."""
        from urllib.parse import urlencode

        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        fields = {"gmt_create": now, "charset": "utf-8", "seller_email": "merchant@example.com",
                  "subject": trade["subject"], "sign_type": "RSA2", "buyer_id": "2088102177846880",
                  "invoice_amount": trade["total_amount"], "notify_id": secrets.token_hex(16),
                  "fund_bill_list": json.dumps([{"amount": trade["total_amount"], "fundChannel": "ALIPAYACCOUNT"}]),
                  "notify_type": "trade_status_sync", "trade_status": trade["trade_status"],
                  "receipt_amount": trade["total_amount"], "buyer_pay_amount": trade["total_amount"],
                  "app_id": self.app_id, "seller_id": self.seller_id, "gmt_payment": trade.get("gmt_payment", now),
                  "notify_time": now, "version": "1.0", "out_trade_no": trade["out_trade_no"],
                  "total_amount": trade["total_amount"], "trade_no": trade["trade_no"], "auth_app_id": self.app_id,
                  "buyer_logon_id": "csq***@sandbox.com", "point_amount": "0.00"}
        fields.update(changes)
        fields["sign"] = rsa_sign(key or self.alipay_key, self.signed_text(fields, ("sign", "sign_type")))
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(fields).encode()

    def __call__(self, environ, start_response):
        request = Request(environ)
        params = dict(request.args.items())
        self.requests.append(params)
        signature = params.get("sign", "")
        try:
            self.app_key.public_key().verify(base64.b64decode(signature), self.signed_text(params).encode(),
                                             padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return self._reply("error_response", {"code": "40002", "msg": "Invalid Arguments",
                                                  "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"},
                               signed=False)(environ, start_response)
        method, biz = params.get("method"), json.loads(params.get("biz_content") or "{}")
        if params.get("app_id") != self.app_id:
            response = self._reply("error_response", {"code": "40002", "sub_code": "isv.invalid-app-id"})
        elif method == "alipay.trade.page.pay":
            self._open(biz, params)
            response = Response(f"<html><title>支付宝 收银台</title><body>{biz['out_trade_no']} ¥{biz['total_amount']}"
                                "</body></html>", content_type="text/html; charset=utf-8")
        elif method == "alipay.trade.precreate":
            trade = self._open(biz, params)
            response = self._reply("alipay_trade_precreate_response", {
                "code": "10000", "msg": "Success", "out_trade_no": trade["out_trade_no"],
                "qr_code": "https://qr.alipay.com/bax0" + secrets.token_hex(10)})
        elif method == "alipay.trade.query":
            trade = self.trades.get(biz.get("out_trade_no"))
            response = self._reply("alipay_trade_query_response", {
                "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在",
            } if trade is None else {"code": "10000", "msg": "Success", "buyer_pay_amount": trade["total_amount"],
                                     **{k: trade[k] for k in ("out_trade_no", "trade_no", "trade_status",
                                                              "total_amount")}})
        elif method == "alipay.trade.refund":
            response = self._refund(biz)
        else:
            response = self._reply("error_response", {"code": "40004", "sub_code": "isv.invalid-method"})
        return response(environ, start_response)

    def _open(self, biz: dict, params: dict) -> dict:
        with self.lock:
            return self.trades.setdefault(biz["out_trade_no"], {
                "out_trade_no": biz["out_trade_no"], "total_amount": biz["total_amount"], "subject": biz["subject"],
                "trade_status": "WAIT_BUYER_PAY", "trade_no": "", "notify_url": params.get("notify_url"),
                "return_url": params.get("return_url")})

    def _refund(self, biz: dict) -> Response:
        if self.refuse_refunds:
            return self._reply("alipay_trade_refund_response", {
                "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.SELLER_BALANCE_NOT_ENOUGH",
                "sub_msg": self.refuse_refunds})
        trade = next((t for t in self.trades.values() if t["trade_no"] == biz.get("trade_no")), None)
        if trade is None:
            return self._reply("alipay_trade_refund_response", {
                "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在"})
        with self.lock:
            self.refunds.setdefault(biz["out_request_no"], dict(biz))
        return self._reply("alipay_trade_refund_response", {
            "code": "10000", "msg": "Success", "fund_change": "Y", "refund_fee": biz["refund_amount"],
            "trade_no": trade["trade_no"], "out_trade_no": trade["out_trade_no"]})

    def _reply(self, name: str, content: dict, signed: bool = True) -> Response:
        inner = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        body = f'{{"{name}":{inner}'
        body += f',"sign":"{rsa_sign(self.alipay_key, inner)}"}}' if signed else "}"
        return Response(body, content_type="application/json; charset=utf-8")


class FakePayPal:
    """PayPal's REST API: OAuth client credentials, Orders v2 (create, approve page, get, capture),
    refunds of captures, and webhooks with their verify-webhook-signature postback."""

    def __init__(self, client_id="AYSq3RDGsmBLJE-otTkBtM-jBRd1TCQwFf9RGfwddNXWz0uFU9ztymylOhRS",
                 client_secret="EGnHDxD_qRPdaLdZz8iCr8N7_MzF-YHPTkjs6NKYQvQSBngp4PTTVWkPZRbL",
                 webhook_id="8PT597110X687430LKGECATA"):
        self.client_id, self.client_secret, self.webhook_id = client_id, client_secret, webhook_id
        self.cert_key = rsa_key()
        self.tokens: set[str] = set()
        self.orders: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.sent_webhooks: dict[str, bytes] = {}
        self.refuse_refunds: str | None = None
        self.refund_status = "COMPLETED"  # what a new refund answers; PENDING: `pay_out` moves it on
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.url = ""

    def config(self, url: str) -> dict:
        return {"PAYPAL_CLIENT_ID": self.client_id, "PAYPAL_CLIENT_SECRET": self.client_secret,
                "PAYPAL_WEBHOOK_ID": self.webhook_id, "PAYPAL_API_URL": url}

    # --- what the payer and PayPal do ---------------------------------------------------------

    def approve(self, paypal_order_id: str) -> None:
        with self.lock:
            self.orders[paypal_order_id]["status"] = "APPROVED"

    def capture(self, number: str) -> dict:
        """The payer approved and the capture went through at PayPal (our side never heard of it)."""
        order = self.order_for(number)
        self.approve(order["id"])
        self._capture(order["id"])
        return self.capture_completed(number)

    def order_for(self, number: str) -> dict:
        return next(o for o in self.orders.values() if o["purchase_units"][0]["custom_id"] == number)

    def webhook(self, event_type: str, resource: dict, key=None, webhook_id: str | None = None) -> tuple[dict, bytes]:
        """A webhook event as PayPal posts it, with its transmission headers and signature."""
        import zlib

        body = json.dumps({"id": "WH-" + secrets.token_hex(8).upper(), "event_version": "1.0",
                           "create_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "resource_type": "capture" if event_type.startswith("PAYMENT.") else "checkout-order",
                           "resource_version": "2.0", "event_type": event_type, "summary": event_type,
                           "resource": resource}).encode()
        transmission_id = secrets.token_hex(16)
        when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"{transmission_id}|{when}|{webhook_id or self.webhook_id}|{zlib.crc32(body)}"
        self.sent_webhooks[transmission_id] = body
        return {"PAYPAL-TRANSMISSION-ID": transmission_id, "PAYPAL-TRANSMISSION-TIME": when,
                "PAYPAL-TRANSMISSION-SIG": rsa_sign(key or self.cert_key, message),
                "PAYPAL-CERT-URL": f"{self.url}/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
                "PAYPAL-AUTH-ALGO": "SHA256withRSA", "Content-Type": "application/json"}, body

    def capture_completed(self, number: str) -> dict:
        """The PAYMENT.CAPTURE.COMPLETED resource of our order's capture."""
        return self.order_for(number)["purchase_units"][0]["payments"]["captures"][0]

    # --- the API --------------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.requests.append((request.method, request.path))
        return self._route(request)(environ, start_response)

    def _route(self, request) -> Response:
        path, verb = request.path, request.method
        if path == "/v1/oauth2/token" and verb == "POST":
            auth = request.authorization
            if not auth or (auth.username, auth.password) != (self.client_id, self.client_secret):
                return self._reply({"error": "invalid_client", "error_description": "Client Authentication failed"},
                                   401)
            token = "A21AA" + secrets.token_hex(20)
            self.tokens.add(token)
            return self._reply({"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                                "token_type": "Bearer", "app_id": "APP-80W284485P519543T", "expires_in": 32400})
        if path == "/checkoutnow" and verb == "GET":
            return Response(f"<html><title>PayPal Checkout</title><body>{request.args.get('token')}</body></html>",
                            content_type="text/html")
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return self._reply({"name": "AUTHENTICATION_FAILURE", "message": "Authentication failed"}, 401)
        data = request.get_json(silent=True) or {}
        match = re.fullmatch(r"/v2/checkout/orders/([A-Z0-9]+)(/capture)?", path)
        refund = re.fullmatch(r"/v2/payments/captures/([A-Z0-9]+)/refund", path)
        refund_query = re.fullmatch(r"/v2/payments/refunds/([A-Z0-9]+)", path)
        if path == "/v2/checkout/orders" and verb == "POST":
            return self._create(data, request.headers.get("PayPal-Request-Id"))
        if match and not match.group(2) and verb == "GET":
            order = self.orders.get(match.group(1))
            return self._reply(order, 200) if order else self._reply({"name": "RESOURCE_NOT_FOUND"}, 404)
        if match and match.group(2) and verb == "POST":
            return self._capture(match.group(1))
        if refund and verb == "POST":
            return self._refund(refund.group(1), data, request.headers.get("PayPal-Request-Id"))
        if refund_query and verb == "GET":
            found = next((r for r in self.refunds.values() if r["id"] == refund_query.group(1)), None)
            return self._reply(found) if found else self._reply({"name": "RESOURCE_NOT_FOUND"}, 404)
        if path == "/v1/notifications/verify-webhook-signature" and verb == "POST":
            return self._verify(data)
        return self._reply({"name": "NOT_FOUND"}, 404)

    def _reply(self, data: dict, status: int = 200) -> Response:
        return Response(json.dumps(data), status=status, content_type="application/json")

    def _create(self, data: dict, request_id: str | None) -> Response:
        with self.lock:
            existing = next((o for o in self.orders.values() if request_id and o["request_id"] == request_id), None)
            if existing is not None:
                return self._reply(existing)
            order_id = secrets.token_hex(9).upper()[:17]
            unit = data["purchase_units"][0]
            self.orders[order_id] = {
                "id": order_id, "intent": data["intent"], "status": "PAYER_ACTION_REQUIRED", "request_id": request_id,
                "purchase_units": [{"reference_id": unit["reference_id"], "custom_id": unit["custom_id"],
                                    "invoice_id": unit["invoice_id"], "amount": dict(unit["amount"])}],
                "experience": data["payment_source"]["paypal"]["experience_context"],
                "links": [{"href": f"{self.url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
                          {"href": f"{self.url}/checkoutnow?token={order_id}", "rel": "payer-action", "method": "GET"}],
            }
            return self._reply(self.orders[order_id], 200)

    def _capture(self, order_id: str) -> Response:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return self._reply({"name": "RESOURCE_NOT_FOUND"}, 404)
            if order["status"] == "COMPLETED":
                return self._reply({"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_ALREADY_CAPTURED"}]},
                                   422)
            if order["status"] != "APPROVED":
                return self._reply({"name": "UNPROCESSABLE_ENTITY", "details": [{"issue": "ORDER_NOT_APPROVED"}]},
                                   422)
            unit = order["purchase_units"][0]
            unit["payments"] = {"captures": [{
                "id": secrets.token_hex(9).upper()[:17], "status": "COMPLETED", "amount": dict(unit["amount"]),
                "custom_id": unit["custom_id"], "invoice_id": unit["invoice_id"], "final_capture": True,
                "supplementary_data": {"related_ids": {"order_id": order_id}}}]}
            order["status"] = "COMPLETED"
            return self._reply(order, 201)

    def _refund(self, capture_id: str, data: dict, request_id: str | None) -> Response:
        if self.refuse_refunds:
            return self._reply({"name": "UNPROCESSABLE_ENTITY", "message": "The requested action could not be "
                                "performed.", "details": [{"issue": "REFUND_FAILED_INSUFFICIENT_FUNDS",
                                                           "description": self.refuse_refunds}]}, 422)
        captures = [u["payments"]["captures"][0] for o in self.orders.values() for u in o["purchase_units"]
                    if "payments" in u]
        if not any(c["id"] == capture_id for c in captures):
            return self._reply({"name": "RESOURCE_NOT_FOUND"}, 404)
        with self.lock:
            refund = self.refunds.setdefault(request_id or secrets.token_hex(4), {
                "id": secrets.token_hex(9).upper()[:17], "status": self.refund_status, "amount": data["amount"],
                "invoice_id": data.get("invoice_id"), "capture_id": capture_id})
        return self._reply(refund, 201)

    def pay_out(self, refund_id: str, status: str = "COMPLETED", reason: str = "") -> None:
        """What happens to a PENDING refund later: COMPLETED, FAILED or CANCELLED (with PayPal's reason)."""
        with self.lock:
            refund = next(r for r in self.refunds.values() if r["id"] == refund_id)
            refund["status"] = status
            if reason:
                refund["status_details"] = {"reason": reason}

    def _verify(self, data: dict) -> Response:
        """SUCCESS only for an event this fake sent, unchanged, whose signature checks with its certificate."""
        import zlib

        sent = self.sent_webhooks.get(data.get("transmission_id", ""))
        status = "FAILURE"
        if sent is not None and data.get("webhook_event") == json.loads(sent) \
                and data.get("webhook_id") == self.webhook_id and data.get("auth_algo") == "SHA256withRSA":
            message = f"{data['transmission_id']}|{data['transmission_time']}|{self.webhook_id}|{zlib.crc32(sent)}"
            try:
                self.cert_key.public_key().verify(base64.b64decode(data.get("transmission_sig", "")),
                                                  message.encode(), padding.PKCS1v15(), hashes.SHA256())
                status = "SUCCESS"
            except (InvalidSignature, ValueError):
                pass
        return self._reply({"verification_status": status})


class FakeVNPTPay:
    """VNPT Pay as actions/providers/vnptpay.py describes it: INIT (redirect), the payment page, QUERY,
    REFUND, and the PAY_RESULT IPN, every message carrying its SECURE_CODE."""

    def __init__(self, merchant_service_id="5000123", service_id="1", secret_key=None):
        self.merchant_service_id, self.service_id = merchant_service_id, service_id
        self.secret_key = secret_key or secrets.token_hex(16)
        self.trades: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.refuse_refunds: str | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.url = ""

    def config(self, url: str) -> dict:
        return {"VNPTPAY_MERCHANT_SERVICE_ID": self.merchant_service_id, "VNPTPAY_SERVICE_ID": self.service_id,
                "VNPTPAY_SECRET_KEY": self.secret_key, "VNPTPAY_API_URL": url}

    def signed(self, fields: dict, message: str, secret: str | None = None) -> dict:
        from actions.providers.vnptpay import secure_code

        return dict(fields, SECURE_CODE=secure_code(fields, message, secret or self.secret_key))

    def pay(self, number: str) -> dict:
        with self.lock:
            trade = self.trades[number]
            if trade["PAYMENT_STATUS"] != "SUCCESS":
                trade.update(PAYMENT_STATUS="SUCCESS", VNPTPAY_TRANSACTION_ID="VP" + secrets.token_hex(10),
                             PAY_DATE=datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S"))
            return dict(trade)

    def notification(self, trade: dict, secret: str | None = None, **changes) -> tuple[dict, bytes]:
        fields = {"ACTION": "PAY_RESULT", "RESPONSE_CODE": "00", "MERCHANT_SERVICE_ID": self.merchant_service_id,
                  "MERCHANT_ORDER_ID": trade["MERCHANT_ORDER_ID"], "AMOUNT": trade["AMOUNT"], "CURRENCY_CODE": "704",
                  "VNPTPAY_TRANSACTION_ID": trade["VNPTPAY_TRANSACTION_ID"], "PAYMENT_METHOD": "VNPTPAY",
                  "PAY_DATE": trade["PAY_DATE"], "ADDITIONAL_INFO": ""}
        fields.update(changes)
        return {"Content-Type": "application/json"}, json.dumps(self.signed(fields, "PAY_RESULT", secret)).encode()

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/paygate":
            return Response(f"<html><title>VNPT Pay</title><body>{request.args.get('token')}</body></html>",
                            content_type="text/html")(environ, start_response)
        data = request.get_json(silent=True) or {}
        self.requests.append(data)
        from actions.providers.vnptpay import secure_code

        action = data.get("ACTION")
        if action not in ("INIT", "QUERY", "REFUND") or data.get("SECURE_CODE") != secure_code(
                data, action, self.secret_key) or data.get("MERCHANT_SERVICE_ID") != self.merchant_service_id:
            reply = {"RESPONSE_CODE": "05", "DESCRIPTION": "Sai chữ ký"}
        elif action == "INIT":
            with self.lock:
                trade = self.trades.setdefault(data["MERCHANT_ORDER_ID"], {
                    "MERCHANT_ORDER_ID": data["MERCHANT_ORDER_ID"], "AMOUNT": data["AMOUNT"],
                    "CURRENCY_CODE": data["CURRENCY_CODE"], "PAYMENT_STATUS": "PENDING", "VNPTPAY_TRANSACTION_ID": "",
                    "PAY_DATE": "", "RETURN_URL": data.get("RETURN_URL"), "NOTIFY_URL": data.get("NOTIFY_URL"),
                    "TOKEN": secrets.token_hex(8)})
            reply = self.signed({"RESPONSE_CODE": "00", "MERCHANT_SERVICE_ID": self.merchant_service_id,
                                 "MERCHANT_ORDER_ID": trade["MERCHANT_ORDER_ID"], "CREATE_DATE": data["CREATE_DATE"],
                                 "REDIRECT_URL": f"{self.url}/paygate?token={trade['TOKEN']}"}, "INIT_RESULT")
        elif action == "QUERY":
            trade = self.trades.get(data["MERCHANT_ORDER_ID"])
            reply = {"RESPONSE_CODE": "01", "DESCRIPTION": "Không tìm thấy giao dịch"} if trade is None else \
                self.signed({"RESPONSE_CODE": "00", "MERCHANT_SERVICE_ID": self.merchant_service_id,
                             **{k: trade[k] for k in ("MERCHANT_ORDER_ID", "AMOUNT", "CURRENCY_CODE", "PAYMENT_STATUS",
                                                      "VNPTPAY_TRANSACTION_ID")}}, "QUERY_RESULT")
        elif self.refuse_refunds:
            reply = {"RESPONSE_CODE": "12", "DESCRIPTION": self.refuse_refunds}
        else:
            with self.lock:
                refund = self.refunds.setdefault(data["REFUND_ID"], dict(
                    data, REFUND_TRANSACTION_ID="VR" + secrets.token_hex(10)))
            reply = self.signed({"RESPONSE_CODE": "00", "MERCHANT_SERVICE_ID": self.merchant_service_id,
                                 "REFUND_ID": refund["REFUND_ID"],
                                 "REFUND_TRANSACTION_ID": refund["REFUND_TRANSACTION_ID"]}, "REFUND_RESULT")
        return Response(json.dumps(reply, ensure_ascii=False), content_type="application/json")(environ, start_response)


def provider_fixtures(fake_class, name: str):
    """The fixtures a provider's test module needs, named `<name>` (the fake, one server per module),
    `<name>_apps` (two app instances configured for it: test body, requests), `app` and `client`."""
    import pytest

    from conftest import empty_database, make_app
    from models import db

    @pytest.fixture(scope="module", name=name)
    def fake():
        provider = fake_class()
        server = FakeServer(provider)
        provider.url = server.url
        yield provider
        server.stop()

    @pytest.fixture(scope="module", name=f"{name}_apps")
    def apps(request, database_url):
        provider = request.getfixturevalue(name)
        config = provider.config(provider.url)
        return make_app(database_url, **config), make_app(database_url, **config)

    @pytest.fixture(name="app")
    def app(request):
        provider = request.getfixturevalue(name)
        body_app = request.getfixturevalue(f"{name}_apps")[0]
        provider.refuse_refunds = None
        if hasattr(provider, "refund_status"):
            provider.refund_status = "COMPLETED"
        if isinstance(getattr(provider, "requests", None), list):
            provider.requests.clear()
        with body_app.app_context():
            yield body_app
            db.session.rollback()
            db.session.remove()
            empty_database()

    @pytest.fixture(name="client")
    def client(request, app):
        return request.getfixturevalue(f"{name}_apps")[1].test_client()

    return fake, apps, app, client
