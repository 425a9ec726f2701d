"""p50/p95 of crm_service's agent ticket list (50 rows, team scope, filter + search) and of the knowledge-base
search, on PostgreSQL, through the whole app (ASGI: middleware, session, access layer, template; no network).

Creates the database ``crm_bench_service`` (dropped at the end unless ``--keep``), installs crm_service (and
crm_contacts), loads N customers and M tickets by ``INSERT … SELECT generate_series`` spread over 10 teams of 10
agents (subject, state and priority drawn independently), and K
articles (half Chinese, half English) whose words come from a vocabulary, stored segmented as
crm_service stores them. An agent of one team logs in through the real form: the team rule applies (~10 % of
the tickets visible). As the baseline in the same run, the kernel's notification page pays the same middleware,
session and layout cost with no ticket query. The ticket search is also timed in SQL both ways in the same run: the
previous substring ``ILIKE`` (its trigram index recreated for the comparison) and the jieba words now searched.

    .venv/bin/python bench/service_desk.py [-n 50] [--tickets 1000000] [--customers 300000] [--articles 50000]
        [--keep] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from httptiming import pct, timed

DB = "crm_bench_service"
#: the same middleware, session, menus and layout with one small query (the home page's dashboard now counts
#: the 300,000 customers: ~100 ms, no longer a fixed cost to compare with)
BASELINE = "/notifications"
PASSWORD = "Correct-Horse-42!"
SUBJECTS = ["打印机无法开机", "发票抬头错误", "申请退货退款", "物流一直没有更新", "密码重置失败", "VPN cannot connect",
            "屏幕碎了需要维修", "Invoice address wrong", "会员积分没有到账", "Refund not received"]
ZH = ["退货", "退款", "发票", "物流", "快递", "会员", "积分", "密码", "账户", "维修", "保修", "屏幕", "电池", "充电",
      "订单", "取消", "地址", "修改", "优惠券", "价格", "门店", "安装", "说明书", "配件", "蓝牙", "网络", "升级",
      "系统"]
EN = ["refund", "invoice", "shipping", "delivery", "account", "password", "warranty", "repair", "screen", "battery",
      "charger", "order", "cancel", "address", "coupon", "price", "store", "install", "manual", "bluetooth",
      "network", "upgrade", "printer", "driver", "login", "subscription", "plan", "billing"]
LISTS = [("active, team scope", "/service/"), ("state + search 退货", "/service/?state=open&q=退货"),
         ("search 退款 (mid-subject)", "/service/?q=退款"), ("search 耳机 (rare, mid-subject)", "/service/?q=耳机"),
         ("priority + search VPN", "/service/?state=active&priority=high&q=VPN"),
         ("search, no match", "/service/?q=nowhere"),
         ("page 2 (keyset)", None)]
KB = [("zh word mid-sentence", "/service/articles?q=退货"), ("zh two words", "/service/articles?q=会员+积分"),
      ("en word", "/service/articles?q=warranty"), ("rare pair", "/service/articles?q=蓝牙+说明书")]


async def seed_users() -> tuple[list[int], list[int]]:
    from core.security.users import create_team, create_user

    agents: list[int] = []
    teams: list[int] = []
    for t in range(10):
        members = [await create_user(f"agent_{t}_{i}", f"Agent {t}.{i}", PASSWORD, roles=["service_agent"])
                   for i in range(10)]
        teams.append(await create_team(f"Service team {t}", members=members))
        agents += members
    return agents, teams


async def bench_users() -> tuple[list[int], list[int]]:
    from core.security.models import Team, User

    agents = [r["id"] for r in await User.select(User.id).where(User.login.like("agent_%")).order_by(User.id)]
    teams = [r["id"] for r in await Team.select(Team.id).where(Team.name.like("Service team %")).order_by(Team.id)]
    return agents, teams


async def load(url: str, customers: int, tickets: int, articles: int, agents: list[int], teams: list[int]) -> float:
    import asyncpg
    from crm_service.kb import search_text
    from crm_service.ticket_search import text_of

    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO crm_contacts_person (name, email, email_key, language) SELECT '客户' || g, "
            "'c' || g || '@example.cn', 'c' || g || '@example.cn', 'zh_CN' FROM generate_series(1, $1::int) g",
            customers)
        first = await conn.fetchval("SELECT min(id) FROM crm_contacts_person")
        subjects = "ARRAY[" + ",".join(f"'{s}'" for s in SUBJECTS) + "]"
        # each subject's words as crm_service stores them, plus the ticket's number (" #123" segments to "123")
        words = [text_of(s, "") for s in SUBJECTS]
        for start in range(0, tickets, 200_000):
            n = min(200_000, tickets - start)
            await conn.execute(
                "INSERT INTO crm_service_ticket (subject, search_text, person, channel, ticket_type, priority, state, "
                "owner, team, created_at, updated_at, resolution_due_at) SELECT "
                f"CASE WHEN g % 10000 = 0 THEN '{RARE}' ELSE ({subjects})[1 + (g % 10)] END || ' #' || g, "
                "CASE WHEN g % 10000 = 0 THEN $8 ELSE ($7::text[])[1 + (g % 10)] END || g || ' ', "
                "$1::int + (g % $2::int), "
                "(ARRAY['email','portal','web','phone','api'])[1 + (g % 5)], 'question', "
                "(ARRAY['low','normal','high','urgent'])[1 + ((g / 60) % 4)], "
                "(ARRAY['new','open','pending_customer','resolved','closed','closed'])[1 + ((g / 10) % 6)], "
                "($3::int[])[1 + (g % 100)], ($4::int[])[1 + ((g % 100) / 10)], "
                "now() - (g || ' minutes')::interval, now(), now() + interval '1 day' "
                "FROM generate_series($5::int, $6::int) g", first, customers, agents, teams, start + 1, start + n,
                words, text_of(RARE, ""))
        rows = []
        for i in range(articles):
            words = ZH if i % 2 == 0 else EN
            picked = [words[(i * 7 + k * 13) % len(words)] for k in range(12)]
            title = ("".join(picked[:3]) if i % 2 == 0 else " ".join(picked[:3])) + f" {i}"
            body = ("，".join(picked) + "。") if i % 2 == 0 else " ".join(picked) + "."
            rows.append((title, body, "zh_CN" if i % 2 == 0 else "en", True, search_text(title, body)))
        await conn.copy_records_to_table("crm_service_article", records=rows,
                                         columns=["title", "body", "language", "is_public", "search_text"])
        # as autovacuum would after a bulk load: statistics, and the GIN indexes' pending entries merged
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


SCOPED = ("SELECT id, subject FROM crm_service_ticket WHERE (team = $1 OR owner = $2) "
          "AND state NOT IN ('resolved', 'closed') AND {match} ORDER BY id DESC LIMIT 51")
SUBSTRING = "subject ILIKE $3"  # the list's search before ticket_search.py, served by a trigram index
WORDS = "crm_service_ticket.search_vector @@ plainto_tsquery('simple', $3)"
RARE = "蓝牙耳机没有声音"  # one ticket in 10,000: a two-character word ("耳机") that few tickets have


async def compare_search(url: str, agent: int, team: int, n: int) -> None:
    """The list query of one agent (team scope, active tickets, 51 rows) searched the previous way (substring,
    trigram index) and by words (full-text, GIN index), in SQL, same database, same run."""
    import asyncpg
    from crm_service.kb import words

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        await conn.execute("CREATE INDEX IF NOT EXISTS bench_subject_trgm ON crm_service_ticket "
                           "USING gin (subject gin_trgm_ops)")
        await conn.execute("ANALYZE crm_service_ticket")
        print("ticket search in SQL (team scope, active, 51 rows): substring ILIKE + trigram index (before) vs "
              f"jieba words + full-text GIN index (now), {n} queries each")
        # one prepared statement for all, as the app's: the slow rare word last, so its plans weigh on no other
        for term in ("退货", "退款", "VPN", "nowhere", "耳机"):
            old: list[float] = []
            new: list[float] = []
            for _ in range(n):
                t = time.perf_counter()
                a = await conn.fetch(SCOPED.format(match=SUBSTRING), team, agent, f"%{term}%")
                old.append(time.perf_counter() - t)
                t = time.perf_counter()
                b = await conn.fetch(SCOPED.format(match=WORDS), team, agent, " ".join(words(term)))
                new.append(time.perf_counter() - t)
            print(f"  {term:10s} before p50 {pct(old, 0.5):7.1f} ms p95 {pct(old, 0.95):7.1f} ms ({len(a)} rows)"
                  f" | now p50 {pct(new, 0.5):7.1f} ms p95 {pct(new, 0.95):7.1f} ms ({len(b)} rows)"
                  f" | {pct(old, 0.95) / max(pct(new, 0.95), 0.001):6.1f}x faster")
        await conn.execute("DROP INDEX bench_subject_trgm")
    finally:
        await conn.close()


#: the plan the search had before the (updated_at, id) index: every match fetched from the expression's GIN index
#: and sorted (ordered by an expression so the planner cannot take the new index: walking it with ``to_tsvector``
#: on each row takes 400 ms for two frequent words that never meet)
KB_BEFORE = ("SELECT id, title FROM crm_service_article WHERE to_tsvector('simple', search_text) "
             "@@ plainto_tsquery('simple', $1) ORDER BY updated_at + interval '0 s' DESC LIMIT 50")


async def compare_kb(url: str, n: int) -> None:
    """The knowledge-base search in SQL before (every match fetched and sorted, expression GIN index recreated
    for the comparison) and now (``kb.search``: the window of the newest articles, then all when it holds
    fewer than a page), same database, same run, alternating."""
    import asyncpg
    from crm_service import kb

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE INDEX IF NOT EXISTS bench_article_fts ON crm_service_article "
                           "USING gin (to_tsvector('simple', search_text))")
        await conn.execute("ANALYZE crm_service_article")
        window = ("SELECT id, title FROM crm_service_article WHERE search_vector @@ plainto_tsquery('simple', $1) "
                  "AND (updated_at, id) >= (SELECT a.updated_at, a.id FROM crm_service_article a "
                  f"ORDER BY a.updated_at DESC, a.id DESC OFFSET {kb.WINDOW - 1} LIMIT 1) "
                  "ORDER BY updated_at DESC, id DESC LIMIT 50")
        rest = ("SELECT id, title FROM crm_service_article WHERE search_vector @@ plainto_tsquery('simple', $1) "
                "ORDER BY updated_at + interval '0 s' DESC, id DESC LIMIT 50")
        print(f"knowledge-base search in SQL, 50 rows: before (sort every match) vs now (window, then all), "
              f"{n} queries each; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        for label, path in KB:
            term = " ".join(kb.words(path.split("q=", 1)[1].replace("+", " ")))
            old: list[float] = []
            new: list[float] = []
            for _ in range(n):
                t = time.perf_counter()
                await conn.fetch(KB_BEFORE, term)
                old.append(time.perf_counter() - t)
                t = time.perf_counter()
                rows = await conn.fetch(window, term)
                if len(rows) < 50:
                    rows = await conn.fetch(rest, term)
                new.append(time.perf_counter() - t)
            print(f"  {label:22s} before p50 {pct(old, 0.5):6.1f} ms p95 {pct(old, 0.95):6.1f} ms"
                  f" | now p50 {pct(new, 0.5):6.1f} ms p95 {pct(new, 0.95):6.1f} ms ({len(rows)} rows)"
                  f" | {pct(old, 0.95) / max(pct(new, 0.95), 0.001):5.1f}x")
        print(f"  load average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        await conn.execute("DROP INDEX bench_article_fts")
    finally:
        await conn.close()


def report(title: str, rows: list[tuple[str, list[float]]], baseline: list[float], target_ms: float) -> None:
    print(title)
    base = pct(baseline, 0.95)
    print(f"  {'baseline: ' + BASELINE:34s} p50 {pct(baseline, 0.5):7.1f} ms  p95 {base:7.1f} ms")
    for label, times in rows:
        p95 = pct(times, 0.95)
        print(f"  {label:34s} p50 {pct(times, 0.5):7.1f} ms  p95 {p95:7.1f} ms  ({p95 / base:4.1f}x baseline)"
              f"  {'ok' if p95 <= target_ms else 'OVER'} (target {target_ms:.0f} ms)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--articles", type=int, default=50_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="time the database a --keep run left (no load)")
    parser.add_argument("--compare", action="store_true",
                        help="also time the substring search of before in SQL (minutes at 1M: 耳机 reads the table)")
    parser.add_argument("--kb-only", action="store_true",
                        help="the knowledge-base search only: SQL before/now, then through the app")
    args = parser.parse_args()
    import re
    import tempfile
    from pathlib import Path

    import httpx

    from core import db, lifecycle
    from core.app import create_app, freeze_boot_objects
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings
    from core.testing import login_client, pg_admin

    url = args.pg.rsplit("/", 1)[0] + "/" + DB
    if not args.reuse:
        await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{DB}"')
    try:
        settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench")
        db.configure(url)
        if args.reuse:
            await lifecycle.upgrade(["crm_service"], discover())  # newer migrations on the kept data
            runtime = await boot(settings)
            agents, teams = await bench_users()
        else:
            await lifecycle.ensure_kernel()
            await lifecycle.install(["crm_service"], discover())
            runtime = await boot(settings)
            agents, teams = await seed_users()
            took = await load(url, args.customers, args.tickets, args.articles, agents, teams)
            print(f"loaded {args.customers:,} customers, {args.tickets:,} tickets, {args.articles:,} articles "
                  f"in {took:.0f} s")
        print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} (2-core machine, shared)")
        if args.compare:
            await compare_search(url, agents[0], teams[0], args.n)
        if args.compare or args.kb_only:
            await compare_kb(url, args.n)
        app = create_app(runtime=runtime, run_jobs=False)
        freeze_boot_objects()  # as the app's lifespan does when it boots itself (uvicorn --factory)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
            await login_client(client, "agent_0_0")
            await db.current().start_connection_pool(min_size=2, max_size=4)
            try:
                first = (await client.get("/service/")).text
                nxt = re.search(r'href="(/service/\?[^"]*after=\d+)"', first)
                lists = [(label, path or (nxt.group(1).replace("&amp;", "&") if nxt else "/service/"))
                         for label, path in LISTS]
                baseline = await timed(client, BASELINE, args.n)
                if not args.kb_only:
                    report(f"agent ticket list, 50 rows, {args.tickets:,} tickets / {args.customers:,} customers, "
                           f"PostgreSQL, pooled, {args.n} requests each",
                           [(label, await timed(client, path, args.n)) for label, path in lists], baseline,
                           100.0)
                report(f"knowledge-base search over {args.articles:,} articles (zh + en), pooled",
                       [(label, await timed(client, path, args.n)) for label, path in KB], baseline, 50.0)
                print(f"load average after {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            finally:
                await db.current().close_connection_pool()
    finally:
        if not args.keep:
            await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
