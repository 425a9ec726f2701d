"""Write demo/crm_contacts_organization.csv and demo/crm_contacts_person.csv (deterministic).

A few hundred contacts in Chinese and English, standardized with the addon's own rules (demo files load
straight into the tables), owned by the demo users, with planted duplicates for the review page:
the same person typed twice with another phone format, full-width letters, a case change or a typo.
Run: .venv/bin/python addons/crm_contacts/tools/make_demo.py
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from crm_contacts.cleaning import _search_text
from crm_contacts.standardize import canonical_region, email_key, normalize_email, normalize_name, normalize_phone

OUT = Path(__file__).resolve().parents[1] / "crm_contacts" / "demo"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
         "秀英", "霞", "平", "刚", "桂英", "建华", "文", "华", "红", "志强", "晓明", "海燕", "丹"]
FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
         "Susan", "Richard", "Jessica", "Thomas", "Sarah", "Daniel", "Karen", "Emma", "Oliver", "Sophie", "Lucas"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Moore",
        "Martin", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "O'Brien", "McDonald"]
CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "南京", "武汉", "西安", "苏州", "重庆", "天津", "厦门",
          "青岛"]
ORG_WORDS = ["科技", "贸易", "电子", "医疗", "物流", "食品", "教育", "咨询", "软件", "制造"]
EN_ORGS = ["Acme Trading Ltd", "Globex Corporation", "Initech Asia", "Umbrella Health", "Stark Components",
           "Wayne Logistics", "Soylent Foods", "Hooli China", "Vandelay Imports", "Pied Piper Software"]
STAGES = ["lead", "prospect", "customer", "loyal", "dormant", "lost"]
SOURCES = ["website", "trade fair", "referral", "wechat", "cold call", "partner"]
OWNERS = ["core.user_sales_rep", "core.user_sales_manager", ""]


def main() -> None:
    rnd = random.Random(20261123)
    orgs: list[dict[str, str]] = []
    for i in range(40):
        city = rnd.choice(CITIES)
        region = canonical_region(city)
        if i < 30:
            name = f"{city}{rnd.choice(SURNAMES)}{rnd.choice('信达恒通华兴瑞丰')}{rnd.choice(ORG_WORDS)}有限公司"
            industry = rnd.choice(ORG_WORDS)
        else:
            name, industry = EN_ORGS[i - 30], "Trading"
        tax = f"91{rnd.randint(110000, 659999)}MA{rnd.randint(10000000, 99999999)}X"[:18]
        orgs.append({"id": f"demo_org_{i}", "name": name, "tax_id": tax, "tax_id_key": tax, "industry": industry,
                     "province": region.province, "city": region.city or "", "stage": rnd.choice(STAGES),
                     "source": rnd.choice(SOURCES),
                     "search_text": _search_text({"name": name, "tax_id": tax}, industry),
                     "owner/ref": rnd.choice(OWNERS)})
    people: list[dict[str, str]] = []
    for i in range(300):
        chinese = i % 3 != 2
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN) if chinese else f"{rnd.choice(FIRST)} {rnd.choice(LAST)}"
        org = rnd.choice(orgs) if rnd.random() < 0.8 else None
        phone = f"{rnd.choice(['138', '139', '135', '186', '188', '150', '158'])}{rnd.randint(10000000, 99999999)}"
        mail_local = f"user{i}" if chinese else name.lower().replace(" ", ".").replace("'", "")
        email = f"{mail_local}@example.{'cn' if chinese else 'com'}"
        people.append(_person(f"demo_person_{i}", name, phone, email, org, rnd, chinese))
    # planted duplicates: the same customer entered again, differently
    for j in range(25):
        src = people[j * 7]
        variants = [src["phone_original"].replace("1", "+86 1", 1), f"{src['phone'][3:6]}-{src['phone'][6:10]}-"
                    f"{src['phone'][10:]}", src["phone"]]
        name = src["name"].upper() if src["name"].isascii() else src["name"]
        email = src["email"].upper() if j % 2 else ""
        org = next((o for o in orgs if o["id"] == src["organization/ref"].removeprefix("crm_contacts.")), None)
        people.append(_person(f"demo_dup_{j}", name, variants[j % 3], email, org, rnd, not name.isascii()))
    for filename, rows in (("crm_contacts_organization.csv", orgs), ("crm_contacts_person.csv", people)):
        with (OUT / filename).open("w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print(f"{len(orgs)} organizations, {len(people)} people written to {OUT}")


def _person(key: str, name: str, phone: str, email: str, org: dict[str, str] | None, rnd: random.Random,
            chinese: bool) -> dict[str, str]:
    region = canonical_region(org["city"] or org["province"]) if org else canonical_region(rnd.choice(CITIES))
    e164 = normalize_phone(phone).e164
    row = {"name": normalize_name(name), "email": normalize_email(email) if email else "", "phone": e164}
    return {"id": key, "name": row["name"], "organization/ref": f"crm_contacts.{org['id']}" if org else "",
            "job_title": rnd.choice(["经理", "总监", "采购", "工程师", "Sales Director", "CEO", "Buyer", ""]),
            "email": row["email"], "email_key": email_key(email) if email else "", "phone": e164,
            "phone_original": phone, "province": region.province, "city": region.city or "",
            "language": "zh_CN" if chinese else "en", "stage": rnd.choice(STAGES), "source": rnd.choice(SOURCES),
            "search_text": _search_text({**row, "phone_original": phone}, org["name"] if org else ""),
            "owner/ref": org["owner/ref"] if org else rnd.choice(OWNERS)}


if __name__ == "__main__":
    main()
