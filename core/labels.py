"""What people read instead of the keys the kernel stores: audit actions, models and roles. Labels are English,
marked for extraction, and translated where they are shown."""

from __future__ import annotations

from core import i18n
from core.i18n import N_

#: audit log actions (``core.security.audit.record``); an action not listed reads as its words, capitalized
ACTION_LABELS = {
    "create": N_("Created"), "update": N_("Changed"), "delete": N_("Deleted"), "archive": N_("Archived"),
    "restore": N_("Restored"), "export": N_("Exported"), "import": N_("Imported"), "merge": N_("Merged"),
    "merge_repoint": N_("Moved after a merge"), "erase": N_("Erased"), "gdpr_export": N_("Personal data exported"),
    "reveal": N_("Revealed a masked value"), "search": N_("Searched"), "assign": N_("Assigned"),
    "qualify": N_("Qualified"), "stage_move": N_("Moved to another stage"), "send": N_("Sent"),
    "revise": N_("Revised"), "revert": N_("Reverted"), "accept": N_("Accepted"), "decline": N_("Declined"),
    "cancel": N_("Cancelled"), "redrive": N_("Retried a sync"), "reconcile": N_("Reconciled"),
    "purge": N_("Purged"), "login": N_("Logged in"), "logout": N_("Logged out"), "login_failed": N_("Failed login"),
    "login_throttled": N_("Login throttled"), "password_change": N_("Password changed"),
    "revoke": N_("Revoked"), "denied": N_("Refused"), "auth_failed": N_("Failed authentication"),
    "csrf_failed": N_("Refused form (CSRF)"), "jobs_retry": N_("Retried jobs"),
    "notify_failed": N_("Notification failed"), "idempotent_replay": N_("Repeated request answered again"),
}
#: the kernel's own models; an addon's are named by the menu entry that lists them
KERNEL_MODELS = {"core.user": N_("Users"), "core.api_token": N_("API tokens"), "core.team": N_("Teams"),
                 "core.custom_role": N_("Roles"), "core.audit_log": N_("Audit log")}


def humanize(key: str) -> str:
    """``stage_move`` → ``Stage move``: the fallback label of a key nobody labelled."""
    return key.replace("_", " ").replace(".", " ").strip().capitalize()


def action(key: str) -> str:
    """An audit action in the reader's language."""
    return i18n.translate(ACTION_LABELS.get(key) or humanize(key))


def model(key: str) -> str:
    """A model in the reader's language: the kernel's own, else the label of the menu entry listing it, else
    its name's last part in words (``crm_sales.quote_line`` → "Quote line")."""
    from core.errors import ConfigError
    from core.runtime import current

    if key in KERNEL_MODELS:
        return i18n.gettext(KERNEL_MODELS[key])
    try:
        addons = current().addons
    except ConfigError:  # not booted (a script): the name will do
        addons = []
    for addon in addons:
        for menu in addon.menus:
            if menu.model == key:
                return i18n.gettext(menu.label)
    return i18n.translate(humanize(key.rpartition(".")[2])) if key else ""
