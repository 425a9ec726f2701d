"""Maskers for sensitive values: enough left to recognise, not enough to use."""

from __future__ import annotations

from collections.abc import Callable


def mask_phone(value: str) -> str:
    digits = value.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return f"{digits[:-8]}****{digits[-4:]}" if digits.startswith("+") else f"{digits[:3]}****{digits[-4:]}"


def mask_email(value: str) -> str:
    local, at, domain = value.partition("@")
    if not at:
        return "****"
    return f"{local[:1]}***@{domain}"


def mask_default(value: str) -> str:
    return "****" if value else ""


MASKERS: dict[str, Callable[[str], str]] = {
    "phone": mask_phone, "email": mask_email, "default": mask_default,
}


def mask(value: object, masker: str) -> object:
    if value is None or value == "":
        return value
    if isinstance(value, list):
        return [mask(v, masker) for v in value]
    return MASKERS.get(masker, mask_default)(str(value))
