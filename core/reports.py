"""PDF rendering: HTML (usually a Jinja2 template) to PDF with WeasyPrint, with no network and no disk access.

A document may only load what an installed addon ships in its static directory, addressed as
``crm-asset:/<addon>/<path>`` (relative URLs resolve against ``base_url``, ``crm-asset:/`` by default).
Everything else — ``file://``, ``http(s)://``, large ``data:`` URLs, other schemes, ``..`` — is refused by
:class:`AssetFetcher`: the refusal is logged and the resource left out, so a template that points somewhere
it should not still yields a PDF (or, with ``strict=True``, raises :class:`ReportError`).

Fonts come from fontconfig. Chinese needs a CJK font installed and named in the CSS ``font-family``
(:data:`CJK_FONT_STACK`); without one WeasyPrint draws empty boxes while ``pdftotext`` still extracts the
right characters, so :func:`check_cjk_font` exists to fail loudly at start-up instead.
Install Debian's ``libharfbuzz-subset0`` too: without it font subsetting falls back to fontTools and a
one-page Chinese quote takes seconds instead of tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import shutil
import subprocess
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment
from weasyprint import HTML
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from core.errors import CrmError

__all__ = [
    "ASSET_SCHEME",
    "CJK_FONTS",
    "CJK_FONT_STACK",
    "MAX_DATA_URL_CHARS",
    "AssetFetcher",
    "AssetRefused",
    "ReportError",
    "check_cjk_font",
    "render_pdf",
    "render_pdf_async",
    "render_template_pdf",
]

logger = logging.getLogger(__name__)

ASSET_SCHEME = "crm-asset"
# urljoin() only resolves relative references for schemes it knows; registering ours lets a stylesheet at
# crm-asset:/x/a.css say url(logo.svg). A process-wide list, but adding a name nobody else uses is inert.
if ASSET_SCHEME not in urllib.parse.uses_relative:
    urllib.parse.uses_relative.append(ASSET_SCHEME)

#: CJK families we know how to find, in order of preference (the Debian package that ships each).
CJK_FONTS: dict[str, str] = {
    "WenQuanYi Micro Hei": "fonts-wqy-microhei",
    "Noto Sans CJK SC": "fonts-noto-cjk",
    "Source Han Sans SC": "fonts-adobe-sourcehansans-cn",
    "WenQuanYi Zen Hei": "fonts-wqy-zenhei",
}
#: CSS ``font-family`` fallback for Chinese text; append it after a document's Latin font.
CJK_FONT_STACK = ", ".join(f'"{name}"' for name in CJK_FONTS) + ", sans-serif"

#: Inline images are fine for a small icon; anything bigger belongs in an addon's static directory.
MAX_DATA_URL_CHARS = 64 * 1024

# How many documents are laid out at once by render_pdf_async: each holds its whole layout in memory, and
# WeasyPrint is CPU-bound, so more threads than cores only add memory.
_ASYNC_SLOTS = threading.BoundedSemaphore(2)


class ReportError(CrmError):
    """A document could not be rendered."""

    code = "report"


class AssetRefused(ReportError):
    """The document asked for a resource outside the addons' static directories."""

    code = "report_asset_refused"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"refused to fetch {_shorten(url)!r}: {reason}", url=url, reason=reason)
        self.url = url
        self.reason = reason


def _shorten(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


class AssetFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint ships no type hints: URLFetcher is Any
    """WeasyPrint URL fetcher that serves ``crm-asset:/<addon>/<path>`` from ``assets`` and nothing else.

    ``assets`` maps an addon name to its static directory. Every refusal is logged at WARNING on
    ``core.reports`` and raised as :class:`AssetRefused`; WeasyPrint then leaves the resource out, unless
    ``strict`` is set, in which case the render stops.
    """

    def __init__(self, assets: Mapping[str, Path], *, strict: bool = False) -> None:
        # No handlers are used: fetch() below never reaches urllib's openers, so nothing can hit the network.
        super().__init__(fail_on_errors=strict, allowed_protocols=(ASSET_SCHEME, "data"))
        self._roots = {name: Path(root).resolve() for name, root in assets.items()}
        self.refused: list[AssetRefused] = []

    def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> URLFetcherResponse:
        """Return the asset at ``url`` or raise :class:`AssetRefused`."""
        try:
            scheme = urllib.parse.urlsplit(url).scheme.lower()
            if scheme == ASSET_SCHEME:
                return self._fetch_asset(url)
            if scheme == "data":
                return self._fetch_data(url)
            raise AssetRefused(url, f"scheme {scheme or '(none)'!r} is not allowed in documents")
        except AssetRefused as exc:
            self._refuse(exc)
            raise
        except ValueError as exc:  # urlsplit on a malformed URL
            refused = AssetRefused(url, f"malformed URL ({exc})")
            self._refuse(refused)
            raise refused from exc

    def _refuse(self, refused: AssetRefused) -> None:
        self.refused.append(refused)
        logger.warning("report asset refused: %s", refused.message)

    def _fetch_asset(self, url: str) -> URLFetcherResponse:
        parts = urllib.parse.urlsplit(url)
        if parts.netloc:
            raise AssetRefused(url, "write crm-asset:/<addon>/<path>, without a host")
        # Decode %2e%2e and friends before looking at segments, so an encoded '..' is caught too.
        segments = urllib.parse.unquote(parts.path).split("/")
        if segments and segments[0] == "":
            segments = segments[1:]
        if len(segments) < 2 or any(s in ("", ".", "..") or "\\" in s or "\0" in s for s in segments):
            raise AssetRefused(url, "path must be <addon>/<file> without '.', '..' or empty segments")
        addon, rest = segments[0], segments[1:]
        root = self._roots.get(addon)
        if root is None:
            raise AssetRefused(url, f"no static directory for addon {addon!r}")
        target = root.joinpath(*rest).resolve()
        # resolve() follows symlinks, so a link pointing out of the static directory is refused here.
        if not target.is_relative_to(root):
            raise AssetRefused(url, "path leaves the addon's static directory")
        if not target.is_file():
            raise AssetRefused(url, "no such file")
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, target.read_bytes(), {"Content-Type": mime})

    def _fetch_data(self, url: str) -> URLFetcherResponse:
        if len(url) > MAX_DATA_URL_CHARS:
            raise AssetRefused(url, f"data: URL longer than {MAX_DATA_URL_CHARS} characters")
        # urllib's DataHandler only decodes the URL itself; it has no way to reach a file or a host.
        return super().fetch(url)


def render_pdf(
    html: str,
    *,
    assets: Mapping[str, Path],
    base_url: str = f"{ASSET_SCHEME}:/",
    strict: bool = False,
) -> bytes:
    """Render an HTML string to PDF bytes.

    ``assets`` maps an addon name to its static directory; the document may load
    ``crm-asset:/<addon>/<path>`` from those and nothing else. A refused resource is logged and left out;
    with ``strict=True`` it raises :class:`ReportError` instead. Synchronous and CPU-bound: call
    :func:`render_pdf_async` from a request handler.
    """
    fetcher = AssetFetcher(assets, strict=strict)
    try:
        document = HTML(string=html, base_url=base_url, url_fetcher=fetcher)
        pdf = document.write_pdf()
    except FatalURLFetchingError as exc:
        cause = exc.__cause__
        if isinstance(cause, AssetRefused):
            raise cause from exc
        raise ReportError(f"document could not be rendered: {exc}") from exc
    assert isinstance(pdf, bytes)
    return pdf


async def render_pdf_async(
    html: str,
    *,
    assets: Mapping[str, Path],
    base_url: str = f"{ASSET_SCHEME}:/",
    strict: bool = False,
) -> bytes:
    """Like :func:`render_pdf`, in a worker thread, so the event loop keeps serving requests.

    At most two documents are laid out at once per process, to bound memory.
    """

    def run() -> bytes:
        with _ASYNC_SLOTS:
            return render_pdf(html, assets=assets, base_url=base_url, strict=strict)

    return await asyncio.to_thread(run)


def render_template_pdf(
    env: Environment,
    template: str,
    *,
    assets: Mapping[str, Path],
    strict: bool = False,
    **context: Any,
) -> bytes:
    """Render the Jinja2 ``template`` with ``context``, then to PDF (see :func:`render_pdf`).

    ``CJK_FONT_STACK`` is added to the context so a template can write
    ``font-family: "Liberation Sans", {{ CJK_FONT_STACK }}``.
    """
    html = env.get_template(template).render(CJK_FONT_STACK=CJK_FONT_STACK, **context)
    return render_pdf(html, assets=assets, strict=strict)


def check_cjk_font() -> str:
    """Return the family name of an installed CJK font, preferring those in :data:`CJK_FONT_STACK`.

    Raises :class:`ReportError` naming the Debian package to install when fontconfig knows none; call it at
    start-up, because a missing font does not fail a render, it silently prints empty boxes.
    """
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        raise ReportError("fc-list not found: install the Debian package 'fontconfig' to check for CJK fonts")
    try:
        out = subprocess.run(
            [fc_list, ":lang=zh-cn", "family"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ReportError(f"fc-list failed: {exc}") from exc
    families: list[str] = []
    for line in out.splitlines():
        # One line per font, e.g. "WenQuanYi Micro Hei,文泉驛微米黑,文泉驿微米黑": every name is an alias.
        families.extend(name.strip() for name in line.split(",") if name.strip())
    for preferred in CJK_FONTS:
        if preferred in families:
            return preferred
    if families:
        logger.warning(
            "CJK font %r is installed but not named in CJK_FONT_STACK; Chinese relies on fontconfig fallback",
            families[0],
        )
        return families[0]
    raise ReportError(
        "no CJK font installed: Chinese text would print as empty boxes. "
        "Install the Debian package 'fonts-wqy-microhei' (small) or 'fonts-noto-cjk'."
    )
