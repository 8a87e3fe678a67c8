"""A web worker imports what it serves: no payment SDK without its keys, no openpyxl before a workbook,
no Alembic before a migration, no cryptography before a card secret."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from actions.providers import CONFIG_PREFIXES, adapter_classes

ROOT = Path(__file__).resolve().parent.parent


def test_every_required_provider_key_carries_its_adapters_prefix():
    """configured_providers skips an adapter none of whose prefixed keys is set: its keys must all carry it."""
    adapters = adapter_classes()
    assert set(adapters) == set(CONFIG_PREFIXES)
    for method, cls in adapters.items():
        assert cls.REQUIRED and all(key.startswith(CONFIG_PREFIXES[method]) for key in cls.REQUIRED), method


def test_the_app_starts_without_the_payment_sdks_or_openpyxl(tmp_path):
    script = (
        "import json, sys\n"
        "from app import create_app\n"
        f"create_app({{'ENV_NAME': 'testing', 'TESTING': True, 'SECRET_KEY': 'x', "
        f"'SQLALCHEMY_DATABASE_URI': 'sqlite:///{tmp_path / 'start.db'}'}})\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                               env={"PATH": "/usr/bin:/bin", "ENV_NAME": "testing"}, check=True)
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert "flask_admin" in loaded  # the app did start
    assert not loaded & {"alipay", "wechatpayv3", "requests", "Cryptodome", "openpyxl", "alembic", "phonenumbers",
                          "captcha", "cryptography"}


def test_an_adapter_whose_keys_are_set_is_still_served():
    from actions.providers import configured_providers

    providers, missing = configured_providers({"PAYPAL_CLIENT_ID": "id"})
    assert providers == {} and set(missing) == {"PAYPAL_CLIENT_SECRET", "PAYPAL_WEBHOOK_ID"}


def test_flask_db_commands_still_migrate(tmp_path):
    """Flask-Migrate is loaded by the `flask db` command that needs it: upgrade, then current."""
    from app import create_app

    app = create_app({"ENV_NAME": "testing", "TESTING": True, "SECRET_KEY": "x",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'cli.db'}"})
    runner = app.test_cli_runner()
    upgraded = runner.invoke(args=["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    current = runner.invoke(args=["db", "current"])
    assert current.exit_code == 0, current.output
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as connection:
        (head,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert head and "device" in {row[0] for row in sqlite3.connect(tmp_path / "cli.db").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
