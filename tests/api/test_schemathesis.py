"""Schemathesis over every operation of the JSON API: the OpenAPI document is the truth (DESIGN §5).

The app is served in-process (ASGI) with the bundled addons installed (crm_contacts, crm_sales, crm_service,
erp_bridge —
its ERP backend unconfigured) and explored twice, once with an admin API token and once with a sales rep's:
the examples, fuzzing and stateful phases (the links of the document: a created record → read, update,
delete, actions), positive and negative data, every built-in check; the coverage phase in the longer pass.

Pass line: no server error and no answer outside the document (status code, content type, body schema,
headers). The other checks (e.g. a request valid by the schema refused by a business rule) are counted and
printed, not failed on.

The default run is small so plain ``pytest`` stays quick; a longer pass by hand (see docs/security.md)::

    CRM_SCHEMATHESIS_EXAMPLES=100 CRM_SCHEMATHESIS_REP_EXAMPLES=100 CRM_SCHEMATHESIS_STEPS=50 \\
    CRM_SCHEMATHESIS_PHASES=examples,coverage,fuzzing,stateful .venv/bin/pytest -q -s tests/api/test_schemathesis.py

``CRM_SCHEMATHESIS_SEED`` replays a run; ``CRM_SCHEMATHESIS_BACKENDS=sqlite,postgres`` runs it on both.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.testing import BACKENDS as TEST_BACKENDS

ADDONS = ("crm_contacts", "crm_sales", "erp_bridge", "crm_service")
EXAMPLES = int(os.environ.get("CRM_SCHEMATHESIS_EXAMPLES", "3"))
#: the sales rep's pass: every operation still called as the rep (rights answered as the document says) and the
#: stateful links followed, with fewer generated cases each — the admin's pass explores the data itself
REP_EXAMPLES = int(os.environ.get("CRM_SCHEMATHESIS_REP_EXAMPLES", "1"))
STEPS = int(os.environ.get("CRM_SCHEMATHESIS_STEPS", "8"))
SEED = int(os.environ.get("CRM_SCHEMATHESIS_SEED", "0")) or random.randrange(1, 2**31)
BACKENDS = os.environ.get("CRM_SCHEMATHESIS_BACKENDS", "sqlite").split(",")
# the databases this run has (core.testing's CRM_TEST_BACKENDS) that schemathesis is asked to use: parametrized,
# not skipped, so a run never reports a skipped real component
RUN_ON = [b for b in BACKENDS if b in TEST_BACKENDS] or TEST_BACKENDS[:1]
#: the coverage phase (boundary values of every parameter, ~20 cases an operation) is for the longer pass
PHASES = os.environ.get("CRM_SCHEMATHESIS_PHASES", "examples,fuzzing,stateful").split(",")
IDENTITIES = os.environ.get("CRM_SCHEMATHESIS_IDENTITIES", "admin,sales_rep").split(",")
#: checks whose failures fail the test: the document must describe every answer the API gives
PASS_LINE = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
             "response_schema_conformance", "response_headers_conformance")


@dataclass
class Outcome:
    identity: str
    operations: int = 0
    cases: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    samples: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def failed(self) -> list[str]:
        return [f"[{self.identity}] {check} on {label}: {title}\n    {message}"
                for (check, label, title), message in sorted(self.samples.items()) if check in PASS_LINE]


def explore(app: Any, identity: str, token: str, examples: int = EXAMPLES) -> Outcome:
    """One schemathesis run (every phase, every check) as one API token; blocking (run it in a thread)."""
    import schemathesis
    from schemathesis.engine import Status, events, from_schema

    config = schemathesis.Config.from_dict({
        "seed": SEED,
        "headers": {"Authorization": f"Bearer {token}"},
        "workers": 1,
        "generation": {"max-examples": examples, "mode": "all", "database": "none"},
        "phases": {"examples": {"enabled": "examples" in PHASES}, "coverage": {"enabled": "coverage" in PHASES},
                   "fuzzing": {"enabled": "fuzzing" in PHASES},
                   "stateful": {"enabled": "stateful" in PHASES, "max-steps": STEPS}},
        "warnings": False,
    })
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=config)
    outcome = Outcome(identity, operations=sum(1 for _ in schema.get_all_operations()))
    for event in from_schema(schema).execute():
        if isinstance(event, (events.ScenarioFinished, events.FuzzScenarioFinished)):
            recorder = event.recorder
            outcome.cases[str(getattr(event, "phase", "fuzz"))] += len(recorder.cases)
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status != Status.FAILURE or check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    outcome.failures[check.name] += 1
                    key = (check.name, failure.operation or recorder.label, failure.title)
                    if key not in outcome.samples:
                        outcome.samples[key] = _describe(recorder, case_id, failure.message)
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            outcome.errors.append(str(getattr(event, "info", event))[:600])
    return outcome


def _describe(recorder: Any, case_id: str, message: str) -> str:
    """The failure, the request that caused it and the answer, short enough to read in a test report."""
    case = recorder.cases[case_id].value
    response = recorder.find_response(case_id=case_id)
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    sent = {k: v for k, v in (("path", case.path_parameters), ("query", case.query), ("headers", headers),
                              ("body", case.body)) if v not in (None, {}, [])}
    answer = (f"{response.status_code} {response.content[:300].decode(errors='replace')}" if response is not None
              else "no response")
    return f"{message.splitlines()[0][:200]} | sent {str(sent)[:300]} | got {answer}"


async def _tokens() -> dict[str, str]:
    from core.security.sessions import create_token
    from core.security.users import create_team
    from core.testing import make_user

    admin = await make_user("st_admin", "admin")
    rep = await make_user("st_rep", "sales_rep")
    await create_team("Schemathesis", leader=admin, members=[rep])
    return {"admin": await create_token(admin, "schemathesis", roles=["admin"]),
            "sales_rep": await create_token(rep, "schemathesis", roles=["sales_rep"])}


@pytest.mark.slow
@pytest.mark.parametrize("crm_db_url", RUN_ON, indirect=True)
async def test_every_operation_keeps_to_the_openapi_document(crm_boot: Any, crm_db_url: str) -> None:
    backend = "sqlite" if crm_db_url.startswith("sqlite") else "postgres"
    from core.app import create_app

    runtime = await crm_boot(*ADDONS)
    tokens = await _tokens()
    app = create_app(runtime=runtime, run_jobs=False)
    outcomes = [await asyncio.to_thread(explore, app, identity, token,
                                        REP_EXAMPLES if identity == "sales_rep" else EXAMPLES)
                for identity, token in tokens.items() if identity in IDENTITIES]
    print(f"\nschemathesis seed={SEED} examples={EXAMPLES} (rep {REP_EXAMPLES}) steps={STEPS} backend={backend}")
    for o in outcomes:
        print(f"  {o.identity}: {o.operations} operations, {sum(o.cases.values())} cases {dict(o.cases)}, "
              f"failures by check: "
              f"{dict(o.failures) or 'none'}")
        for (check, label, title), message in sorted(o.samples.items()):
            if check not in PASS_LINE:
                print(f"    (not on the pass line) {check} on {label}: {title}: {message[:200]!r}")
    assert all(o.operations for o in outcomes), "the document lists no operation"
    problems = [line for o in outcomes for line in o.failed()] + [e for o in outcomes for e in o.errors]
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems)
