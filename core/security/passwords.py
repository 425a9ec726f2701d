"""Password hashing (argon2) and the password policy."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import ValidationError
from core.i18n import N_

MIN_LENGTH = 12
_hasher = PasswordHasher()


@cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_policy(password: str, *, login: str = "") -> None:
    """Raise ValidationError (field ``password``) unless the password is long and not a common one."""
    if len(password) < MIN_LENGTH:
        raise ValidationError({"password": N_("must be at least %(n)s characters") % {"n": MIN_LENGTH}})
    lowered = password.lower()
    if lowered in _common() or (login and login.lower() in lowered):
        raise ValidationError({"password": N_("is too easy to guess (a common password or your login)")})
    if len(set(password)) < 4:
        raise ValidationError({"password": N_("needs more different characters")})


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _dummy_hash() -> str:
    """A hash of a random secret made with the current hasher's parameters (tests swap the hasher)."""
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[1]


_dummy: tuple[PasswordHasher, str] | None = None


def verify(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``. Without a hash (unknown login, no password set) it is
    checked against a dummy hash of the same cost and refused: a wrong login takes as long as a wrong
    password, so timing does not tell which logins exist."""
    try:
        return _hasher.verify(stored_hash or _dummy_hash(), password) and bool(stored_hash)
    except (VerificationError, InvalidHashError):
        return False
