"""Payment pages: the sandbox provider's pay page and the providers' callback (being written)."""
from flask import Blueprint

# Providers post here: no CSRF token (app.py exempts it); the HMAC signature is the check.
callbacks = Blueprint("payment_callbacks", __name__, url_prefix="/payments/callback")
# The stand-in for the providers' hosted pay pages.
sandbox = Blueprint("sandbox", __name__, url_prefix="/sandbox")
