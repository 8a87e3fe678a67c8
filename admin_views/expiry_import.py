"""销售操作 → 批量设置过期时间: download the template, upload, preview, commit."""
from __future__ import annotations

from flask_admin import expose
from flask_babel import lazy_gettext as _l

from admin_views.base import RoleView


class ExpiryImportView(RoleView):
    roles = frozenset({"sales"})

    @expose("/")
    def index(self):
        return self.render("admin/index.html")


def register(admin, category) -> None:
    admin.add_view(ExpiryImportView(name=_l("Expiry import"), category=category, endpoint="expiry_import"))
