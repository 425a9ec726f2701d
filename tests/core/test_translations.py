"""Chinese is complete: every message of the kernel and of every bundled addon (Babel's python and jinja2
extractors over templates and code, plus the labels of menus and roles) has a non-empty, non-fuzzy zh_CN
translation in a catalog loaded with it."""

from __future__ import annotations

import pytest

from core import contract
from core.discovery import discover


def test_kernel_messages_are_translated() -> None:
    problems = contract.kernel_translation_problems()
    assert not problems, f"{len(problems)} kernel messages untranslated:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", sorted(discover().addons))
def test_bundled_addon_messages_are_translated(name: str) -> None:
    found = discover()
    problems = contract.translation_problems(found.addons[name], found)
    assert not problems, f"{len(problems)} messages of {name} untranslated:\n" + "\n".join(problems)


def test_the_extraction_sees_code_templates_and_labels() -> None:
    """The check is only as good as the extraction: a template message, a Python one and a marked label."""
    found = contract.kernel_messages()
    assert "Log in" in found  # core/templates/core/login.html
    assert "System status" in found  # core/web.py, i18n.gettext
    assert "Administrator" in found  # a kernel role's label


def test_messages_formatted_in_english_are_shown_translated() -> None:
    """What code raises or stores in English (``N_("… %(limit)s …") % {...}``, a ValidationError summary) reads
    in Chinese where it is shown (``i18n.translate``, the templates' ``|t``); anything else is left as it is."""
    from core import i18n

    i18n.load(["core", *(a.package for a in discover().addons.values())])
    try:
        i18n.set_language("zh_CN")
        assert i18n.translate("is longer than 60 characters") == "超过 60 个字符"
        assert i18n.translate("name: is required; phone: is longer than 60 characters") == \
            f"{i18n.gettext('Name')}: 为必填项; {i18n.gettext('Phone')}: 超过 60 个字符"
        assert i18n.translate("Wrong login or password.") == "账号或密码错误。"
        assert i18n.translate("Acme Ltd") == "Acme Ltd" and i18n.translate("") == ""
        assert i18n.translate("50% off") == "50% off"  # a "%" in data is text
        i18n.set_language("en")
        assert i18n.translate("is longer than 60 characters") == "is longer than 60 characters"
    finally:
        i18n.set_language("en")
