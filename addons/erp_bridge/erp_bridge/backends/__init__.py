"""ERP backends. Import the interface from `erp_bridge.backends.base`; implementations are
looked up by name through the ``crm.erp_backends`` entry-point group (``tryton``, ``fake``)."""

from __future__ import annotations

from .base import (
    Address,
    CustomerPayload,
    ErpBackend,
    ErpConflictError,
    ErpError,
    ErpPermanentError,
    ErpTransientError,
    OrderLinePayload,
    OrderPayload,
    RemoteInvoice,
    RemoteOrder,
    RemoteProduct,
)

__all__ = [
    "Address",
    "CustomerPayload",
    "ErpBackend",
    "ErpConflictError",
    "ErpError",
    "ErpPermanentError",
    "ErpTransientError",
    "OrderLinePayload",
    "OrderPayload",
    "RemoteInvoice",
    "RemoteOrder",
    "RemoteProduct",
]
