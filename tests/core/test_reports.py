"""core.reports: CJK text really printed, assets served only from static directories, nothing else fetched."""

from __future__ import annotations

import base64
import io
import logging
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from core import reports
from core.reports import AssetFetcher, AssetRefused, ReportError, check_cjk_font, render_pdf, render_pdf_async

RED_SQUARE = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="#ff0000"/></svg>'
)


def _poppler(tool: str, *args: str, pdf: bytes) -> bytes:
    exe = shutil.which(tool)
    # A missing tool must fail, not skip: these checks are the only proof the PDF is readable.
    assert exe, f"{tool} not found: install the Debian package poppler-utils"
    return subprocess.run([exe, *args], input=pdf, capture_output=True, check=True).stdout


def pdf_text(pdf: bytes) -> str:
    return _poppler("pdftotext", "-layout", "-", "-", pdf=pdf).decode()


def pdf_fonts(pdf: bytes) -> str:
    exe = shutil.which("pdffonts")
    assert exe, "pdffonts not found: install the Debian package poppler-utils"
    # pdffonts reads only files, not stdin.
    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(pdf)
        fh.flush()
        return subprocess.run([exe, fh.name], capture_output=True, check=True, text=True).stdout


def page_image(pdf: bytes, page: int = 1) -> Image.Image:
    png = _poppler("pdftoppm", "-png", "-r", "50", "-f", str(page), "-l", str(page), "-", pdf=pdf)
    return Image.open(io.BytesIO(png)).convert("RGB")


def count_pixels(img: Image.Image, predicate: Callable[[tuple[int, int, int]], bool]) -> int:
    data = img.tobytes()
    return sum(1 for i in range(0, len(data), 3) if predicate((data[i], data[i + 1], data[i + 2])))


def is_ink(px: tuple[int, int, int]) -> bool:
    return sum(px) < 600


def is_red(px: tuple[int, int, int]) -> bool:
    r, g, b = px
    return r > 200 and g < 60 and b < 60


def page(body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>"
        f"body {{ font-family: 'Liberation Sans', {reports.CJK_FONT_STACK}; font-size: 14pt }}"
        f"</style></head><body>{body}</body></html>"
    )


@pytest.fixture
def static(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "static" / "demo"
    root.mkdir(parents=True)
    (root / "red.svg").write_text(RED_SQUARE)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "escape.svg").symlink_to(tmp_path / "secret.txt")
    return {"demo": root}


def test_chinese_and_english_text_printed_with_an_embedded_cjk_font(static: dict[str, Path]) -> None:
    pdf = render_pdf(page("<p>Quotation 报价单 客户：上海华东贸易有限公司</p>"), assets=static)
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "Quotation" in text
    assert "报价单" in text and "上海华东贸易有限公司" in text
    fonts = pdf_fonts(pdf)
    cjk = [line for line in fonts.splitlines() if "WenQuanYi" in line or "CJK" in line or "SourceHan" in line]
    assert cjk, fonts
    assert " yes " in cjk[0], f"CJK font not embedded: {cjk[0]}"
    # Text extraction succeeds even with empty boxes, so look at the page: there must be ink.
    assert count_pixels(page_image(pdf), is_ink) > 200


def test_allowed_asset_is_embedded(static: dict[str, Path]) -> None:
    absolute = render_pdf(page('<img src="crm-asset:/demo/red.svg">'), assets=static)
    relative = render_pdf(page('<img src="demo/red.svg">'), assets=static)
    for pdf in (absolute, relative):
        assert count_pixels(page_image(pdf), is_red) > 50


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file'"),
        ("http://127.0.0.1:9/x.png", "scheme 'http'"),
        ("https://example.com/x.png", "scheme 'https'"),
        ("crm-asset:/demo/../../etc/passwd", "'..'"),
        ("crm-asset:/demo/%2e%2e/%2e%2e/etc/passwd", "'..'"),
        ("crm-asset://demo/red.svg", "without a host"),
        ("crm-asset:/other/red.svg", "no static directory"),
        ("crm-asset:/demo/missing.svg", "no such file"),
        ("crm-asset:/demo/escape.svg", "leaves the addon's static directory"),
        ("ftp://127.0.0.1/x.png", "scheme 'ftp'"),
    ],
)
def test_refused_urls(url: str, reason: str, static: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(AssetRefused, match=reason):
        AssetFetcher(static).fetch(url)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="core.reports"):
        pdf = render_pdf(page(f'<p>before</p><img src="{url}"><p>after</p>'), assets=static)
    assert "before" in pdf_text(pdf) and "after" in pdf_text(pdf)
    refusals = [r for r in caplog.records if r.name == "core.reports" and r.levelno == logging.WARNING]
    assert refusals and reason in refusals[0].getMessage()
    assert count_pixels(page_image(pdf), is_red) == 0


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.settimeout(0.2)
    yield sock
    sock.close()


def test_render_never_connects(static: dict[str, Path], listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    html = page(
        f'<link rel="stylesheet" href="http://127.0.0.1:{port}/a.css">'
        f'<img src="http://127.0.0.1:{port}/x.png"><p style="background: url(http://127.0.0.1:{port}/b.png)">x</p>'
    )
    render_pdf(html, assets=static)
    with pytest.raises(TimeoutError):
        listener.accept()


def test_stylesheet_from_assets_resolves_its_relative_urls(static: dict[str, Path]) -> None:
    (static["demo"] / "doc.css").write_text(".logo { width: 40px; height: 40px; background: url(red.svg) }")
    html = page('<link rel="stylesheet" href="crm-asset:/demo/doc.css"><div class="logo"></div>')
    assert count_pixels(page_image(render_pdf(html, assets=static)), is_red) > 50


def test_small_data_url_allowed_large_refused(static: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    small = "data:image/svg+xml;base64," + base64.b64encode(RED_SQUARE.encode()).decode()
    assert count_pixels(page_image(render_pdf(page(f'<img src="{small}">'), assets=static)), is_red) > 50

    padded = RED_SQUARE.replace("<rect", "<!--" + "x" * reports.MAX_DATA_URL_CHARS + "--><rect")
    large = "data:image/svg+xml;base64," + base64.b64encode(padded.encode()).decode()
    with caplog.at_level(logging.WARNING, logger="core.reports"):
        pdf = render_pdf(page(f'<img src="{large}">'), assets=static)
    assert count_pixels(page_image(pdf), is_red) == 0
    assert any("data: URL longer" in r.getMessage() for r in caplog.records)


def test_strict_mode_raises(static: dict[str, Path]) -> None:
    with pytest.raises(AssetRefused, match="scheme 'file'"):
        render_pdf(page('<img src="file:///etc/passwd">'), assets=static, strict=True)
    # A clean document renders in strict mode too.
    assert render_pdf(page('<img src="demo/red.svg">'), assets=static, strict=True).startswith(b"%PDF")


async def test_async_render(static: dict[str, Path]) -> None:
    pdf = await render_pdf_async(page("<p>异步 async</p>"), assets=static)
    assert "异步 async" in pdf_text(pdf)


def test_check_cjk_font_finds_the_installed_font() -> None:
    assert check_cjk_font() in reports.CJK_FONTS


def test_check_cjk_font_names_the_package_when_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fonts(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(args, 0, stdout="", stderr="")

    monkeypatch.setattr(reports.subprocess, "run", no_fonts)
    with pytest.raises(ReportError, match="fonts-wqy-microhei"):
        check_cjk_font()


def test_kernel_names_no_addon() -> None:
    source = Path(reports.__file__).read_text()
    assert "crm_sales" not in source and "crm_contacts" not in source
