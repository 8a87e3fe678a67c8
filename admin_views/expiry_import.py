"""销售操作 → 批量设置过期时间: download the template, upload, preview, commit.

The workbook is parsed once, on upload, outside SQLite's write lock; its parsed rows are kept
beside it (importers.expiry.save_parsed) and the commit reads those, previews them again
against today's devices (still outside the lock), then applies the changes a chunk per short
transaction (importers.expiry.commit); an interrupted commit resumes when committed again.
"""
from __future__ import annotations

import uuid
from pathlib import Path

from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from actions import DomainError
from admin_views.base import RoleView, without_write_lock
from importers.expiry import (
    IMPORT_ROLES,
    MAX_UNCOMPRESSED_BYTES,
    ImportRejected,
    ParsedFile,
    build_template,
    check_archive,
    check_committable,
    commit,
    describe_size,
    error_texts,
    file_sha256,
    first_error,
    load_parsed,
    parsed_path,
    plan_path,
    preview,
    read_rows,
    record_preview,
    refuse_commit,
    save_parsed,
    store_workbook,
    stored_refusal,
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

    def _read(self, data: bytes, filename: str | None = None) -> ParsedFile:
        """Check the archive, then parse it with every guard (sizes, inflated bytes, rows)."""
        config = current_app.config
        max_uncompressed = config.get("IMPORT_MAX_UNCOMPRESSED_BYTES", MAX_UNCOMPRESSED_BYTES)
        check_archive(data, filename=filename, max_bytes=config["IMPORT_MAX_BYTES"],
                      max_uncompressed=max_uncompressed)
        return read_rows(data, config["IMPORT_MAX_ROWS"], max_uncompressed=max_uncompressed)

    def _parsed_for(self, import_record: ExpiryImport) -> ParsedFile:
        """The rows parsed on upload; an import older than that keeping is read from its workbook."""
        parsed = load_parsed(parsed_path(self._folder, import_record.id), import_record.file_sha256)
        if parsed is not None:
            return parsed
        path = self._folder / f"{import_record.file_sha256}.xlsx"
        if not import_record.file_sha256 or not path.is_file():
            raise ImportRejected(_l("The file of import #%(id)s is no longer stored; upload it again.",
                                    id=import_record.id))
        return self._read(path.read_bytes())

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
        first_errors = {item.id: text for item in imports if (text := first_error(item))}
        return self.render("renewdesk/expiry_import.html", imports=imports, first_errors=first_errors,
                           max_rows=self._limits()["max_rows"], max_size=describe_size(self._limits()["max_bytes"]))

    @expose("/template")
    def template(self):
        """The blank workbook, headers in the user's language."""
        data = build_template(str(get_locale() or "en"), **self._limits())
        return Response(data, mimetype=XLSX, headers={
            "Content-Disposition": "attachment; filename=expiry-import-template.xlsx"})

    @expose("/upload", methods=("POST",))
    def upload(self):
        """Check and parse the workbook, keep it and its rows, record the import and show the preview."""
        file = request.files.get("file")
        if file is None or not file.filename:
            flash(_("Choose an .xlsx file to upload."), "error")
            return redirect(url_for(".index"))
        limit = self._limits()["max_bytes"]
        data = file.stream.read(limit + 1)  # never more than one byte past the limit
        filename = file.filename[-255:]
        digest = file_sha256(data) if len(data) <= limit else ""
        rejected = None
        with without_write_lock():
            try:
                parsed = self._read(data, filename)
            except ImportRejected as exc:
                rejected = exc
            else:
                report = preview(db.session, current_user, parsed)
                pending = self._folder / f"{digest}.{uuid.uuid4().hex}.rows.part"
                save_parsed(parsed, pending, digest)
        if rejected is not None:
            # Recorded so the recent imports show the attempt; the file itself is not kept.
            db.session.add(ExpiryImport(actor_id=current_user.id, filename=filename, status="failed",
                                        file_sha256=digest, **stored_refusal(rejected)))
            db.session.commit()
            flash(str(rejected), "error")
            return redirect(url_for(".index"))
        store_workbook(data, self._folder)
        import_record = ExpiryImport(actor_id=current_user.id, filename=filename, file_sha256=digest)
        record_preview(import_record, report)
        db.session.add(import_record)
        try:
            db.session.flush()
            pending.replace(parsed_path(self._folder, import_record.id))
            db.session.commit()
        finally:
            pending.unlink(missing_ok=True)
        return self._render_preview(import_record, report)

    @expose("/preview/<int:import_id>")
    def show(self, import_id: int):
        """The preview of an earlier upload, from its kept rows, against today's devices."""
        import_record = self._get_import(import_id)
        try:
            report = preview(db.session, current_user, self._parsed_for(import_record))
        except ImportRejected as exc:
            flash(str(exc), "error")
            return redirect(url_for(".index"))
        return self._render_preview(import_record, report)

    @expose("/commit/<int:import_id>", methods=("POST",))
    def apply(self, import_id: int):
        """Preview the kept rows again outside the write lock, then apply them a chunk per transaction
        (or resume an interrupted commit where it stopped)."""
        try:
            with without_write_lock():
                import_record = self._get_import(import_id)
                check_committable(import_record)
                report = None  # an import being committed resumes from its kept changes
                if import_record.status == "previewed":
                    report = preview(db.session, current_user, self._parsed_for(import_record))
            if report is not None and not report.ok:
                # The devices changed since the preview (say one was deleted): record why.
                refuse_commit(db.session, import_record, report)
                db.session.commit()
                flash(_("The file now has %(n)s bad rows; nothing was changed.", n=report.rows_failed), "error")
                return self._render_preview(import_record, report)
            if report is not None and not report.changes:
                flash(_("Nothing to change: every device in the file already has that expiry date."), "info")
                return redirect(url_for(".index"))
            changed = commit(db.session, current_user, report, import_record,
                             plan_file=plan_path(self._folder, import_id), commit=db.session.commit)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(".index"))
        except Exception:
            db.session.rollback()
            raise
        flash(_("Import #%(id)s committed: %(n)s devices have a new expiry date.", id=import_id, n=changed),
              "success")
        return redirect(url_for(".index"))

    def _render_preview(self, import_record: ExpiryImport, report):
        return self.render("renewdesk/expiry_preview.html", record=import_record, report=report,
                           errors=error_texts(report.errors), changes=report.changes[:SHOWN_CHANGES],
                           shown_changes=SHOWN_CHANGES)


def register(admin, category) -> None:
    admin.add_view(ExpiryImportView(name=_l("Batch set expiry dates"), category=category,
                                    endpoint="expiry_import"))
