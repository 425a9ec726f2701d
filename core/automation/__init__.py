"""Automation rules: when something happens to a record (created, updated, a field changed to a value, deleted,
an addon's named event) or when time passes (N hours after a date, no activity for N days, every day at HH:MM),
and the record satisfies a condition (:mod:`core.conditions`), run actions (set a field, assign, tag, notify,
e-mail, webhook, or an addon's own).

- Addons declare what may be automated (``crm_automation_models``) and add action kinds
  (``crm_automation_actions``); write paths report changes with :func:`record_changed` inside their transaction.
- Everything runs off the request path through the outbox, once per (rule, event) (:mod:`.runs`), with a run log
  per rule, loop protection (:mod:`.events`) and a dry run (:mod:`.rules`).
"""

from __future__ import annotations

from core.automation.events import record_changed, record_event

__all__ = ["record_changed", "record_event"]
