"""销售操作 → 批量设置过期时间: download the template, upload, preview, commit."""
from __future__ import annotations

from pathlib import Path

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from admin_views.base import RoleView, unit_of_work
from importers.expiry import (
    IMPORT_ROLES,
    MAX_UNCOMPRESSED_BYTES,
    ImportRejected,
    build_template,
    check_archive,
    check_committable,
    commit,
    describe_size,
    file_sha256,
    preview,
    read_rows,
    record_preview,
    store_workbook,
)
from models import ExpiryImport, db

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHOWN_CHANGES = 1000
RECENT_IMPORTS = 50


class ExpiryImportView(RoleView):
    """Upload a workbook of device numbers and new expiry dates, check the preview, commit it."""

    roles = frozenset(IMPORT_ROLES)

    # --- helpers: configuration and the stored file ------------------------------------------
    @property
    def _folder(self) -> Path:
        """Where uploads are kept: IMPORT_FOLDER, else <instance>/imports."""
        return Path(current_app.config.get("IMPORT_FOLDER") or Path(current_app.instance_path) / "imports")

    def _limits(self) -> dict:
        config = current_app.config
        return {"max_bytes": config["IMPORT_MAX_BYTES"], "max_rows": config["IMPORT_MAX_ROWS"]}

    def _check(self, data: bytes, filename: str | None = None) -> None:
        config = current_app.config
        check_archive(data, filename=filename, max_bytes=config["IMPORT_MAX_BYTES"],
                      max_uncompressed=config.get("IMPORT_MAX_UNCOMPRESSED_BYTES", MAX_UNCOMPRESSED_BYTES),
                      max_rows=config["IMPORT_MAX_ROWS"])

    def _report_for(self, import_record: ExpiryImport):
        """Re-read the stored workbook of an import and preview it again against today's devices."""
        path = self._folder / f"{import_record.file_sha256}.xlsx"
        if not import_record.file_sha256 or not path.is_file():
            raise ImportRejected(_l("The file of import #%(id)s is no longer stored; upload it again.",
                                    id=import_record.id))
        data = path.read_bytes()
        self._check(data)
        return preview(db.session, current_user, read_rows(data, self._limits()["max_rows"]))

    def _get_import(self, import_id: int) -> ExpiryImport:
        import_record = db.session.get(ExpiryImport, import_id)
        if import_record is None:
            abort(404)
        return import_record

    # --- pages -------------------------------------------------------------------------------
    @expose("/")
    def index(self):
        """The upload form, the template link and the recent imports."""
        imports = db.session.scalars(
            select(ExpiryImport).options(joinedload(ExpiryImport.actor))
            .order_by(ExpiryImport.created_at.desc(), ExpiryImport.id.desc()).limit(RECENT_IMPORTS)
        ).all()
        return self.render("renewdesk/expiry_import.html", imports=imports, max_rows=self._limits()["max_rows"],
                           max_size=describe_size(self._limits()["max_bytes"]))

    @expose("/template")
    def template(self):
        """The blank workbook, headers in the user's language."""
        data = build_template(str(get_locale() or "en"), **self._limits())
        return Response(data, mimetype=XLSX, headers={
            "Content-Disposition": "attachment; filename=expiry-import-template.xlsx"})

    @expose("/upload", methods=("POST",))
    def upload(self):
        """Check and read the workbook, keep it, record the import and show the preview."""
        file = request.files.get("file")
        if file is None or not file.filename:
            flash(_("Choose an .xlsx file to upload."), "error")
            return redirect(url_for(".index"))
        limit = self._limits()["max_bytes"]
        data = file.stream.read(limit + 1)  # never more than one byte past the limit
        filename = file.filename[-255:]
        try:
            self._check(data, filename)
            parsed = read_rows(data, self._limits()["max_rows"])
        except ImportRejected as exc:
            # Recorded so the recent imports show the attempt; the file itself is not kept.
            with unit_of_work():
                db.session.add(ExpiryImport(
                    actor_id=current_user.id, filename=filename, status="failed", errors=str(exc),
                    file_sha256=file_sha256(data) if len(data) <= limit else "",
                ))
            flash(str(exc), "error")
            return redirect(url_for(".index"))
        digest, _path = store_workbook(data, self._folder)
        with unit_of_work() as work:
            report = preview(db.session, current_user, parsed)
            import_record = ExpiryImport(actor_id=current_user.id, filename=filename, file_sha256=digest)
            record_preview(import_record, report)
            db.session.add(import_record)
        if work.failed:
            return redirect(url_for(".index"))
        return self._render_preview(import_record, report)

    @expose("/preview/<int:import_id>")
    def show(self, import_id: int):
        """The preview of an earlier upload, read again from the kept file."""
        import_record = self._get_import(import_id)
        try:
            report = self._report_for(import_record)
        except ImportRejected as exc:
            flash(str(exc), "error")
            return redirect(url_for(".index"))
        return self._render_preview(import_record, report)

    @expose("/commit/<int:import_id>", methods=("POST",))
    def apply(self, import_id: int):
        """Re-read and re-check the kept file; apply it in this request's one transaction."""
        import_record = self._get_import(import_id)
        with unit_of_work() as work:
            check_committable(import_record)
            report = self._report_for(import_record)
            if not report.ok:
                # The devices changed since the preview (say one was deleted): record why.
                record_preview(import_record, report)
            elif report.changes:
                changed = commit(db.session, current_user, report, import_record)
        if work.failed:
            return redirect(url_for(".index"))
        if not report.ok:
            flash(_("The file now has %(n)s bad rows; nothing was changed.", n=report.rows_failed), "error")
            return self._render_preview(import_record, report)
        if not report.changes:
            flash(_("Nothing to change: every device in the file already has that expiry date."), "info")
            return redirect(url_for(".index"))
        flash(_("Import #%(id)s committed: %(n)s devices have a new expiry date.", id=import_id, n=changed),
              "success")
        return redirect(url_for(".index"))

    def _render_preview(self, import_record: ExpiryImport, report):
        return self.render("renewdesk/expiry_preview.html", record=import_record, report=report,
                           changes=report.changes[:SHOWN_CHANGES], shown_changes=SHOWN_CHANGES)


def register(admin, category) -> None:
    admin.add_view(ExpiryImportView(name=_l("Batch set expiry dates"), category=category,
                                    endpoint="expiry_import"))
