"""Approval flows: an administrator puts an action (send a quote, accept a discount, delete a record…) behind
the approval of a role, the owner's team leader or a named user, one level or several in order, when the
record's values satisfy a condition (:mod:`core.conditions`).

- Addons declare what may be approved (``crm_approvable_actions``; the kernel adds ``core.delete`` for every
  API resource) and call :func:`require` before doing it.
- :func:`require` raises :class:`ApprovalPending` (recorded, approvers told) until the approvers approved a
  request for the same values; a held action with ``perform`` then runs by itself as the requester.
- Approvers decide in the inbox (``/approvals``, ``/api/approvals``); administrators write the rules
  (``/admin/approvals``, ``/api/admin/approvals/rules``).
"""

from __future__ import annotations

from core.approvals.flow import ApprovalPending, ApprovalRejected, decide, require
from core.approvals.registry import DELETE

__all__ = ["DELETE", "ApprovalPending", "ApprovalRejected", "decide", "require"]
