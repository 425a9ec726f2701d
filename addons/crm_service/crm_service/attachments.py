"""Ticket attachments: what is accepted (images, PDF, text and office documents up to 10 MB) and what is refused
with a reason the sender can read (executables, anything whose bytes are not what its name says)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import ValidationError
from core.i18n import N_
from crm_service.models import Attachment

MAX_BYTES = 10 * 1024 * 1024
MAX_PER_TICKET = 20
EXECUTABLE = re.compile(r"\.(exe|bat|cmd|com|scr|pif|msi|jar|js|jse|vbs|vbe|wsf|ps1|sh|dll|cpl|hta|lnk|apk|app)$",
                        re.I)
#: accepted types by extension; images must also start with their format's signature
ALLOWED = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
           "heic": "image/heic", "pdf": "application/pdf", "txt": "text/plain", "csv": "text/csv",
           "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
SIGNATURES = {"image/jpeg": (b"\xff\xd8\xff",), "image/png": (b"\x89PNG\r\n\x1a\n",),
              "image/gif": (b"GIF87a", b"GIF89a"), "application/pdf": (b"%PDF",)}
EXECUTABLE_MAGIC = (b"MZ", b"\x7fELF", b"\xca\xfe\xba\xbe", b"#!")


@dataclass(frozen=True)
class Checked:
    filename: str
    content_type: str


def check(filename: str, data: bytes) -> Checked:
    """The file as it will be stored, or ``ValidationError`` on ``attachment`` saying why it is refused."""
    name = re.sub(r"[\x00-\x1f/\\]", "_", filename or "").strip()[-200:] or "attachment"
    if EXECUTABLE.search(name) or data.startswith(EXECUTABLE_MAGIC):
        raise ValidationError({"attachment": N_("%(name)s refused: executable files are not accepted") % {
            "name": name}})
    if len(data) > MAX_BYTES:
        raise ValidationError({"attachment": N_("%(name)s refused: larger than %(mb)s MB") % {
            "name": name, "mb": MAX_BYTES // (1024 * 1024)}})
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    kind = ALLOWED.get(ext)
    if kind is None:
        raise ValidationError({"attachment": N_("%(name)s refused: only images, PDF, text and office documents") % {
            "name": name}})
    if kind in SIGNATURES and not data.startswith(SIGNATURES[kind]):
        raise ValidationError({"attachment": N_("%(name)s refused: the content is not what its name says") % {
            "name": name}})
    return Checked(name, kind)


async def add(ticket_id: int, filename: str, data: bytes, *, message_id: int | None = None) -> int:
    """Store one checked file on the ticket (call ``check`` first for a readable refusal)."""
    checked = check(filename, data)
    if await Attachment.count().where(Attachment.ticket == ticket_id) >= MAX_PER_TICKET:
        raise ValidationError({"attachment": N_("at most %(n)s files per ticket") % {"n": MAX_PER_TICKET}})
    row = Attachment(ticket=ticket_id, message=message_id, filename=checked.filename, content_type=checked.content_type,
                     size=len(data), content=data)
    await row.save()
    return int(row.id)
