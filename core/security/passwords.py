"""Password hashing (argon2) and the password policy."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import ValidationError

MIN_LENGTH = 12
_hasher = PasswordHasher()


@cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_policy(password: str, *, login: str = "") -> None:
    """Raise ValidationError (field ``password``) unless the password is long and not a common one."""
    if len(password) < MIN_LENGTH:
        raise ValidationError({"password": f"must be at least {MIN_LENGTH} characters"})
    lowered = password.lower()
    if lowered in _common() or (login and login.lower() in lowered):
        raise ValidationError({"password": "is too easy to guess (a common password or your login)"})
    if len(set(password)) < 4:
        raise ValidationError({"password": "needs more different characters"})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify(stored_hash: str, password: str) -> bool:
    if not stored_hash:
        _hasher.hash(password)  # same cost as a real check: no timing hint that the user is unknown
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
