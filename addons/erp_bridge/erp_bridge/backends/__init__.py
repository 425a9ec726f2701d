"""ERP backends. Import the interface from `erp_bridge.backends.base`; implementations are
looked up by name through the ``crm.erp_backends`` entry-point group (``tryton``, ``fake``)."""

from __future__ import annotations

from .base import *  # noqa: F403 - this package re-exports the interface, nothing more
from .base import __all__ as __all__
