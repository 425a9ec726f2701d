"""crm_marketing capture forms and attribution: submission rate and attribution time, beside baselines of the
same run.

- Submissions: N form posts (``forms.submit``: values checked, phone/e-mail standardized, person created or
  matched by the duplicate check, tags, static list, submission row, audit; crm_sales installed, so a lead each),
  half from new people and half from people already there; baseline: ``crm_contacts.api.find_or_create_person``
  alone on the same values.
- Attribution: ``attribution.attributed`` over the leads those forms made, each person with a click on one of two
  campaigns and a UTM code of the other; baseline: reading the same touch rows without attributing.

    .venv/bin/python bench/marketing_forms.py [--posts 1000] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from marketing_send import PG_ADMIN  # noqa: E402


async def run(backend: str, posts: int) -> None:
    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings

    tmp = tempfile.mkdtemp()
    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp}/bench.sqlite3"
    try:
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_marketing", "crm_sales"], discover())
        await boot(Settings(data_dir=Path(tmp), database_url=url, redis_url=None, secret_key="bench"))
        from crm_contacts.api import find_or_create_person
        from crm_marketing import attribution, forms
        from crm_marketing.models import Campaign, CampaignEvent, CampaignRecipient, CaptureForm, FormSubmission

        from core.security.access import Access, policy
        from core.security.principal import load
        from core.testing import make_user

        spring = int((await Campaign.insert(Campaign(name="spring", utm_campaign="spring")))[0]["id"])
        summer = int((await Campaign.insert(Campaign(name="summer", utm_campaign="summer")))[0]["id"])
        form_id = int((await CaptureForm.insert(CaptureForm(name="f", tags=["bench"], fields=[
            {"field": "name", "required": True}, {"field": "email", "required": True},
            {"field": "phone"}])))[0]["id"])
        form = await forms.active(form_id)
        assert form is not None
        half = posts // 2
        values = [{"name": f"客户{i}", "email": f"c{i}@example.cn", "phone": f"1380013{i % 10000:04d}",
                   "utm_campaign": "summer"} for i in range(half)]
        values += [dict(v) for v in values]  # the second half: the same people again (matched, not created)

        started = time.perf_counter()
        for v in values:
            await forms.submit(form, v, {}, ip="203.0.113.1")
        submit_s = time.perf_counter() - started
        started = time.perf_counter()
        for v in values:
            await find_or_create_person(name=f"b{v['name']}", email=f"b{v['email']}", phone="")
        base_s = time.perf_counter() - started

        now = dt.datetime.now(dt.UTC)
        people = sorted({int(r["person"]) for r in await FormSubmission.select(FormSubmission.person)})
        for person in people:
            rows = await CampaignRecipient.insert(CampaignRecipient(campaign=spring, person=person, email="x",
                                                                    state="sent"))
            await CampaignEvent.insert(CampaignEvent(campaign=spring, recipient=rows[0]["id"], kind="click",
                                                     at=now - dt.timedelta(days=3)))
        admin = Access(await load(await make_user("admin", "admin"), implied=policy().implied))
        started = time.perf_counter()
        got = await attribution.attributed(admin)
        attr_s = time.perf_counter() - started
        started = time.perf_counter()
        await attribution.touches(people)
        touch_s = time.perf_counter() - started
        leads = (got[summer]["last"].leads or 0) + (got[spring]["last"].leads or 0)
        print(f"backend {backend}, {len(values)} posts ({half} new people, {len(values) - half} matched)")
        print(f"  forms.submit (person, tags, lead, submission, audit): {submit_s:.2f} s = "
              f"{len(values) / submit_s:.0f} posts/s")
        print(f"  baseline find_or_create_person alone:                 {base_s:.2f} s = "
              f"{len(values) / base_s:.0f} /s  (submit = {base_s / submit_s:.0%} of its rate)")
        print(f"  attribution of {leads} leads over {len(people)} people: {attr_s:.3f} s; "
              f"baseline reading their touches: {touch_s:.3f} s")
    finally:
        if backend == "postgres":
            import asyncpg

            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.backend, args.posts))
