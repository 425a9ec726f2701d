"""The quote PDF in Chinese and English: two pages, labels, totals, page numbers, an embedded CJK font."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import crm_sales
import pytest
from babel import Locale
from babel.numbers import format_decimal, format_percent
from crm_sales.pricing import QuoteLineInput, format_money, quote_totals
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from PIL import Image

from core.reports import CJK_FONTS, render_pdf

PACKAGE = Path(crm_sales.__file__).parent
ASSETS = {"crm_sales": PACKAGE / "static" / "crm_sales"}

# What the zh_CN catalog will say; the test passes it as a plain mapping-based `_`.
ZH = {
    "Quote": "报价单",
    "Quote No.": "报价单号",
    "Version": "版本",
    "Date": "日期",
    "Valid until": "有效期至",
    "Currency": "币种",
    "Customer": "客户",
    "Attn.": "联系人：",
    "Phone": "电话",
    "Email": "邮箱",
    "Tax ID": "税号",
    "Prepared by": "报价人",
    "Code": "编码",
    "Description": "描述",
    "Qty": "数量",
    "Unit price": "单价",
    "Discount": "折扣",
    "Tax": "税额",
    "Tax rate": "税率",
    "Amount": "金额",
    "Subtotal": "小计",
    "Untaxed amount": "不含税金额",
    "Total": "合计",
    "Terms and conditions": "条款与条件",
    "Accepted by (signature and company seal)": "客户确认（签字并盖章）",
    "Page {page} of {pages}": "第 {page} 页 共 {pages} 页",
}

PRODUCTS = [
    ("SRV-R740", "机架式服务器 Rack server 2U", "1", "48500.00", "5", "0.13"),
    ("NET-S5735", "千兆交换机 48 口", "4", "6380.00", "10", "0.13"),
    ("LIC-OS-STD", "操作系统授权（标准版）", "10", "1299.00", "0", "0.13"),
    ("SVC-INST", "上门安装与调试服务", "3", "2800.00", "0", "0.06"),
    ("SVC-MAINT-3Y", "三年原厂维保 3-year support", "1", "15600.50", "12.5", "0.06"),
]


def quote_context(lang: str) -> dict[str, Any]:
    locale = Locale.parse("zh_CN" if lang == "zh-CN" else "en")
    catalog: Mapping[str, str] = ZH if lang == "zh-CN" else {}
    # 25 lines: enough to need a second page.
    rows = [
        {
            "code": f"{code}-{i:02d}",
            "description": desc,
            "quantity": Decimal(q),
            "unit": "",
            "unit_price": Decimal(price),
            "discount_percent": Decimal(disc),
            "tax_rate": Decimal(rate),
            "detail": "含运输 incl. delivery" if i % 4 == 0 else "",
        }
        for i in range(25)
        for code, desc, q, price, disc, rate in [PRODUCTS[i % len(PRODUCTS)]]
    ]
    totals = quote_totals(
        [QuoteLineInput(r["quantity"], r["unit_price"], r["discount_percent"], r["tax_rate"]) for r in rows],
        "CNY",
    )

    def money(amount: Decimal) -> str:
        return format_money(amount, "CNY", locale)

    def number(value: Decimal) -> str:
        return str(format_decimal(value, locale=locale))

    def percent(value: Decimal) -> str:
        return str(format_percent(value, "#,##0.##%", locale=locale))

    def gettext(message: str) -> str:
        return catalog.get(message, message)

    return {
        "_": gettext,
        "lang": lang,
        "money": money,
        "number": number,
        "percent": percent,
        "company": {
            "name": "杭州云杉科技有限公司 Yunshan Tech",
            "address": ["浙江省杭州市西湖区文三路 90 号"],
            "phone": "0571-8888 6666",
            "email": "sales@yunshan.example",
            "tax_id": "91330106MA2XXXXX0Q",
            "logo": None,
        },
        "customer": {
            "name": "上海华东贸易有限公司",
            "contact": "王建国",
            "address": ["上海市浦东新区世纪大道 100 号"],
            "phone": "021-5555 1234",
            "tax_id": "91310115MA1XXXXX3K",
        },
        "quote": {
            "number": "Q-2026-00042",
            "version": 3,
            "date": "2026-11-23",
            "valid_until": "2026-12-23",
            "currency": "CNY",
            "salesperson": "李娜 Li Na",
            "notes": "",
            "terms": [
                "价格含税，有效期 30 天。 Prices include VAT; valid for 30 days.",
                "付款方式：合同签订后 30% 预付，验收后 70%。",
            ],
        },
        "lines": rows,
        "totals": totals,
    }


def render(lang: str) -> tuple[bytes, dict[str, Any]]:
    env = Environment(
        loader=FileSystemLoader(PACKAGE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )
    context = quote_context(lang)
    html = env.get_template("crm_sales/quote_pdf.html").render(**context)
    return render_pdf(html, assets=ASSETS, strict=True), context


def poppler(tool: str, *args: str) -> str:
    exe = shutil.which(tool)
    assert exe, f"{tool} not found: install the Debian package poppler-utils"
    return subprocess.run([exe, *args], capture_output=True, check=True, text=True).stdout


@pytest.fixture(scope="module", params=["zh-CN", "en"])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    pdf, context = render(request.param)
    path = tmp_path_factory.mktemp("quote") / f"quote-{request.param}.pdf"
    path.write_bytes(pdf)
    return request.param, path, context


def squeeze(text: str) -> str:
    # pdftotext drops or adds spaces around CJK glyphs; compare without any whitespace.
    return re.sub(r"\s+", "", text)


def test_two_pages_with_page_numbers(rendered: Any) -> None:
    lang, path, _ = rendered
    info = poppler("pdfinfo", str(path))
    assert re.search(r"^Pages:\s+2$", info, re.M), info
    page1 = squeeze(poppler("pdftotext", "-f", "1", "-l", "1", str(path), "-"))
    page2 = squeeze(poppler("pdftotext", "-f", "2", "-l", "2", str(path), "-"))
    if lang == "zh-CN":
        assert "第1页共2页" in page1 and "第2页共2页" in page2
    else:
        assert "Page1of2" in page1 and "Page2of2" in page2
    # Pages after the first carry the quote number in the running header; the table header repeats.
    assert "Q-2026-00042" in page2
    assert ("单价" if lang == "zh-CN" else "Unitprice") in page2


def test_labels_customer_and_totals(rendered: Any) -> None:
    lang, path, context = rendered
    text = squeeze(poppler("pdftotext", str(path), "-"))
    assert "上海华东贸易有限公司" in text and "王建国" in text
    labels = ["Quote", "Unit price", "Untaxed amount", "Total", "Terms and conditions"]
    for label in labels:
        expected = ZH[label] if lang == "zh-CN" else label
        assert squeeze(expected) in text, label
    if lang == "en":
        assert "报价单" not in text
    totals = context["totals"]
    for figure in (totals.untaxed, totals.tax, totals.total):
        assert squeeze(context["money"](figure)) in text
    # zh_CN prints ¥, en prints CN¥: the locale reached the formatting.
    assert ("CN¥" in text) == (lang == "en")


def test_hand_checked_total() -> None:
    context = quote_context("en")
    total = context["totals"].total
    assert total == sum((line.total for line in context["totals"].lines), Decimal(0))
    assert total.as_tuple().exponent == -2


def test_cjk_font_embedded(rendered: Any) -> None:
    _, path, _ = rendered
    fonts = poppler("pdffonts", str(path))
    cjk = [
        line for line in fonts.splitlines() if any(name.replace(" ", "") in line.replace("-", "") for name in CJK_FONTS)
    ]
    assert cjk, fonts
    assert all(re.search(r"\byes\s+yes\b", line) for line in cjk), cjk  # embedded and subset


def test_page_is_not_blank_and_logo_drawn(rendered: Any) -> None:
    _, path, _ = rendered
    png = subprocess.run(
        [shutil.which("pdftoppm") or "pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(path)],
        capture_output=True,
        check=True,
    ).stdout
    img = Image.open(io.BytesIO(png)).convert("RGB")
    data = img.tobytes()
    pixels = [(data[i], data[i + 1], data[i + 2]) for i in range(0, len(data), 3)]
    ink = sum(1 for r, g, b in pixels if r + g + b < 600)
    navy = sum(1 for r, g, b in pixels if abs(r - 0x1F) < 25 and abs(g - 0x3A) < 25 and abs(b - 0x5F) < 25)
    assert ink > len(pixels) // 50, "page 1 is (nearly) blank"
    assert navy > 100, "logo / table header colour missing"


def test_css_names_the_kernels_cjk_fonts() -> None:
    css = (ASSETS["crm_sales"] / "quote.css").read_text()
    for name in CJK_FONTS:
        assert f'"{name}"' in css


def test_every_label_is_translated() -> None:
    # Every _("...") in the template has a zh entry here (and so should the addon's zh_CN catalog).
    source = (PACKAGE / "templates" / "crm_sales" / "quote_pdf.html").read_text()
    used = set(re.findall(r'_\("([^"]+)"\)', source))
    assert used <= set(ZH), used - set(ZH)


def test_language_picks_labels() -> None:
    translate: Callable[[str], str] = quote_context("zh-CN")["_"]
    assert translate("Quote") == "报价单"
    assert quote_context("en")["_"]("Quote") == "Quote"


def test_optional_fields_may_be_left_out() -> None:
    # StrictUndefined, as in the kernel's environment: a context without the optional keys still renders.
    context = quote_context("en")
    context["company"].pop("logo")
    context["quote"].pop("notes")
    context["quote"].pop("terms")
    for row in context["lines"]:
        row.pop("detail")
        row.pop("unit")
    env = Environment(
        loader=FileSystemLoader(PACKAGE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )
    html = env.get_template("crm_sales/quote_pdf.html").render(**context)
    assert "crm-asset:/crm_sales/logo.svg" in html and "Terms and conditions" not in html


def test_manifest_static_dir_serves_the_pdf_assets() -> None:
    # The kernel passes templating.static_dirs() as `assets`, so crm-asset:/crm_sales/quote.css is looked up
    # in static/<addon>/ under the directory the manifest declares: that must be where the files are.
    from crm_sales.manifest import ADDON

    from core import templating

    assert ADDON.static, "crm_sales declares no static directory"
    folder = templating.static_dirs([ADDON])["crm_sales"]
    assert (folder / "quote.css").is_file() and (folder / "logo.svg").is_file(), (
        f"manifest static={ADDON.static!r} resolves to {folder}; the PDF assets are in {ASSETS['crm_sales']}"
    )
