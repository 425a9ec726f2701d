"""Every page the menu reaches, on a desk (1366×900) and a phone (390×844), in English and Chinese, every demo
role signed in: no page scrolls sideways, the phone menu stays collapsed, Chinese pages show no English message of
the catalogs and no raw key (``snake_case`` names, ``[]``, JSON). One demo server, one browser, one context per
role and language: each page is checked at both sizes by resizing the viewport. A screenshot of each goes to
``test-artifacts/screenshots/<role>-<size>-<lang>-<page>.png`` for people to look at.

A page is checked once per language, as the first role whose menu reaches it (the administrator last: the others
see their pages as they do, with their rights); every role's home page in Chinese. A role with no page left to
check in English is not signed in again for it: the same template as another role, checked again, finds nothing
new and cost half the run."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from core.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
SIZES = {"desk": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
LANGUAGES = {"en": "en-US", "zh": "zh-CN"}
SHOT_HEIGHT = 3000

#: the visible text of the page: text nodes, placeholders and labels of form controls, each trimmed; identifiers
#: shown on purpose (in ``<code>``, or marked ``translate="no"`` like a login) are not text to translate
VISIBLE_TEXT = """() => {
  const out = [];
  const shown = el => el && el.checkVisibility && el.checkVisibility({checkVisibilityCSS: true});
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    const el = n.parentElement;
    if (text && shown(el) && !el.closest('script, style, code, pre, [translate="no"]')) out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder], [aria-label], [title]')) {
    if (!shown(el)) continue;
    for (const a of ['placeholder', 'aria-label', 'title']) { const v = el.getAttribute(a); if (v) out.push(v.trim()); }
  }
  return out;
}"""
#: what a person should never read: an identifier (``product_interest``, ``crm_contacts.person``), an empty list
#: or dict, JSON, Python's None
RAW = re.compile(r"^(?:[a-z]+(?:_[a-z0-9]+)+|[a-z_]+\.[a-z_]+(?:\.[a-z_]+)*|\[\]|\{\}|\{\".*|\[\".*|None)$")


def catalog_messages() -> dict[str, str]:
    """English msgid → Chinese msgstr over the kernel's and every present addon's catalog, for messages whose
    translation differs from the English (``PDF`` stays ``PDF``)."""
    from babel.messages.pofile import read_po

    from core import contract
    from core.discovery import discover

    out: dict[str, str] = {}
    for package in ["core", *(a.package for a in discover().addons.values())]:
        path = contract.catalog_path(package, "zh_CN")
        with path.open("rb") as fh:
            for entry in read_po(fh, locale="zh_CN"):
                ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
                strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
                for msgid, msgstr in zip(ids, strings, strict=False):
                    if msgid and msgstr and msgstr != msgid and "%(" not in msgid:
                        out[msgid] = msgstr
    return out


def demo_roles() -> list[str]:
    """Every demo role, the administrator last (it reaches every page: the others first, each with its own view)."""
    from core.discovery import discover
    from core.security.policy import compile_policy

    return sorted(compile_policy(discover().addons.values()).roles, key=lambda r: (r == "admin", r))


def login(browser: Any, server: str, role: str, lang: str) -> tuple[Any, Any]:
    """A context speaking ``lang`` logged in as the demo user of ``role``, its language set on the preferences
    page (a user's stored language wins over the browser's)."""
    locale = LANGUAGES[lang]
    context = browser.new_context(viewport=SIZES["desk"], locale=locale, extra_http_headers={"Accept-Language": locale})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(server + "/login")
    page.fill("input[name=login]", role)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/")
    wanted = "zh-CN" if lang == "zh" else "en"
    if page.get_attribute("html", "lang") != wanted:
        page.goto(server + "/account/preferences")
        page.select_option("form#preferences select[name=language]", "zh_CN" if lang == "zh" else "en")
        page.click("form#preferences button[type=submit]")
        page.wait_for_url("**/account/preferences?done=*")
    assert page.get_attribute("html", "lang") == wanted, f"{role} could not switch to {lang}"
    return context, page


def menu_pages(page: Any, server: str, *, hubs: bool = False) -> list[str]:
    """The menu's links and the header's own (preferences, notifications), without duplicates; with ``hubs``, also
    the pages the settings and administration pages list (their own menus)."""
    page.goto(server + "/")
    hrefs = ["/", *(a.get_attribute("href") for a in page.locator("nav#main-nav a").all()), "/notifications",
             "/account/preferences"]
    for hub in ("/settings", "/admin/users") if hubs else ():
        if hub in hrefs:
            page.goto(server + hub)
            hrefs += [a.get_attribute("href") for a in page.locator("main .settings-section a, main nav.tabs a").all()]
    return list(dict.fromkeys(h for h in hrefs if h and h.startswith("/")))


def slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def page_problems(page: Any, lang: str, size: str, english: dict[str, str]) -> list[str]:
    out: list[str] = []
    if page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"):
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e =>
            e.getBoundingClientRect().right > window.innerWidth + 1 && e.checkVisibility()).slice(0, 3)
            .map(e => e.tagName + '.' + e.className)""")
        out.append(f"scrolls sideways at {size} ({', '.join(wide)})")
    if size == "phone" and page.locator("nav#main-nav").is_visible():
        out.append("the menu is open on the phone")
    if size != "desk":  # the same document: its words were read at the desk size
        return out
    texts: Iterable[str] = page.evaluate(VISIBLE_TEXT)
    for text in dict.fromkeys(texts):
        if RAW.match(text):
            out.append(f"raw key {text!r}")
        elif lang == "zh" and text.rstrip(":：").strip() in english:
            out.append(f"untranslated {text!r}")
    return out


def shoot(page: Any, path: Path, viewport: dict[str, int]) -> None:
    """The page from its top, at most :data:`SHOT_HEIGHT` px of it (a 200-row list is 12,000 px on a phone, and
    encoding that costs more than loading the page)."""
    height = min(int(page.evaluate("document.documentElement.scrollHeight")), SHOT_HEIGHT)
    page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": viewport["width"],
                                                           "height": max(height, viewport["height"])})


def crawl(browser: Any, server: str, roles: list[str]) -> tuple[int, list[str]]:
    """(pages checked, problems) for ``roles`` in both languages at both sizes."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    english = catalog_messages()
    checked = 0
    problems: list[str] = []
    seen: dict[str, set[str]] = {lang: set() for lang in LANGUAGES}
    reaches: dict[str, list[str]] = {}  # role → its menu's pages, read once (in Chinese, the first pass)
    for lang in ("zh", "en"):
        for role in roles:
            if lang == "en" and not set(reaches[role]) - seen[lang]:
                continue  # nothing this role shows in English that another role's pass did not check
            context, page = login(browser, server, role, lang)
            # the administrator sees every settings and administration page: the others' are the same templates
            # with fewer rows, left out to keep the run within a few minutes
            if role not in reaches:
                reaches[role] = menu_pages(page, server, hubs=role == "admin")
            # every role's home in Chinese (each has its own widgets); any other page once per language
            todo = [p for p in reaches[role] if p not in seen[lang] or (lang == "zh" and p == "/")]
            seen[lang].update(todo)
            for path in todo:
                page.set_viewport_size(SIZES["desk"])
                response = page.goto(server + path)
                if response is None or response.status >= 400:
                    problems.append(f"{role} {lang} {path}: HTTP {response.status if response else '?'}")
                # one load, both sizes: the layout reflows when the viewport shrinks, as on a turned tablet
                for size, viewport in SIZES.items():
                    page.set_viewport_size(viewport)
                    checked += 1
                    problems += [f"{role} {size} {lang} {path}: {p}" for p in page_problems(page, lang, size, english)]
                    shoot(page, SHOTS / f"{role}-{size}-{lang}-{slug(path)}.png", viewport)
            context.close()
    return checked, problems


def test_every_menu_page_for_every_role_size_and_language(demo_server: str, browser: Any) -> None:
    checked, problems = crawl(browser, demo_server, demo_roles())
    print(f"\n{checked} pages checked")
    assert checked > 0
    assert not problems, "\n".join(problems)
