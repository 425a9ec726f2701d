"""Seconds per two-page quote PDF, warm, through core.reports.render_pdf; target ≤ 0.6 s per document.

Renders the document the crm_sales PDF tests check (25 lines, Chinese and English text, two pages) N times
after a warm-up, and prints p50/p95 wall-clock and CPU seconds per document, the Jinja2 share, peak RSS,
and — as the raw baseline, measured in the same run — plain WeasyPrint on the same HTML with its default
fetcher reading the same files from disk, so the cost of core.reports' guarded fetcher is visible.

    PYTHONPATH=.:addons/crm_sales .venv/bin/python bench/quote_pdf.py [-n 30] [--lang zh-CN|en]

CPU seconds are the fairer figure on a shared machine: wall-clock includes time waiting for a core.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from weasyprint import HTML

ROOT = Path(__file__).resolve().parent.parent
# The sample quote lives with the tests that check its content, so the benchmark measures that document.
sys.path.insert(0, str(ROOT / "addons" / "crm_sales" / "tests"))

from test_quote_pdf import ASSETS, quote_context  # noqa: E402

from core.reports import render_pdf  # noqa: E402

TARGET_SECONDS = 0.6


def measure(fn: Callable[[], object], n: int) -> tuple[list[float], list[float]]:
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return wall, cpu


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, wall: list[float], cpu: list[float]) -> str:
    return (
        f"{name:<34} wall p50 {statistics.median(wall):.3f}  p95 {pct(wall, 0.95):.3f}   "
        f"cpu p50 {statistics.median(cpu):.3f}  p95 {pct(cpu, 0.95):.3f}  s/doc"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="documents per measurement (default 20)")
    parser.add_argument("--lang", default="zh-CN", choices=["zh-CN", "en"])
    args = parser.parse_args()

    import crm_sales
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(crm_sales.__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )
    template = env.get_template("crm_sales/quote_pdf.html")
    context = quote_context(args.lang)

    def document() -> bytes:
        return render_pdf(template.render(**context), assets=ASSETS, strict=True)

    html = template.render(**context)
    raw_html = html.replace("crm-asset:/crm_sales/", ASSETS["crm_sales"].as_uri() + "/")

    def baseline() -> bytes:
        return HTML(string=raw_html).write_pdf()  # type: ignore[no-any-return]

    pdf = document()
    for _ in range(2):  # warm-up: fontconfig cache, Python imports, Babel data
        document()
        baseline()

    jinja_wall, jinja_cpu = measure(lambda: template.render(**context), args.n)
    wall, cpu = measure(document, args.n)
    base_wall, base_cpu = measure(baseline, args.n)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux

    print(f"quote PDF ({args.lang}, {len(context['lines'])} lines, {len(pdf) / 1024:.0f} KiB), n={args.n}")
    print(line("jinja2 template only", jinja_wall, jinja_cpu))
    print(line("core.reports.render_pdf (template+pdf)", wall, cpu))
    print(line("baseline: weasyprint default fetcher", base_wall, base_cpu))
    print(f"peak RSS {peak_mb:.0f} MB")
    p50 = statistics.median(cpu)
    verdict = "OK" if p50 <= TARGET_SECONDS else "OVER TARGET"
    print(f"target ≤ {TARGET_SECONDS} s/doc (cpu p50): {verdict}")
    return 0 if p50 <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
