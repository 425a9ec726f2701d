"""crm_service: the service desk. This module is the addon's table of contents (cheap to import)."""

from __future__ import annotations

from core.addon import Action, Addon, Every, FieldRule, Grant, Menu, Role

TICKET = "crm_service.ticket"
MESSAGE = "crm_service.message"
TEAM = "crm_service.team"
RULE = "crm_service.routing_rule"
SLA = "crm_service.sla_policy"
CALENDAR = "crm_service.calendar"
CALENDAR_DAY = "crm_service.calendar_day"
ARTICLE = "crm_service.article"
MAIL = "crm_service.inbound_mail"
CANNED = "crm_service.canned_reply"

_CRUD: tuple[Action, ...] = ("create", "read", "update", "delete", "export")
_SETUP = (TEAM, RULE, SLA, CALENDAR, CALENDAR_DAY, ARTICLE, CANNED)  # what a service manager configures


def _grants() -> tuple[Grant, ...]:
    out: list[Grant] = [
        # agents work the tickets of their teams (and those assigned to them)
        Grant("service_agent", TICKET, ("create", "read", "update"), scope="team"),
        Grant("service_agent", MESSAGE, ("create", "read"), scope="team"),
        Grant("service_manager", TICKET, _CRUD, scope="all"),
        Grant("service_manager", MESSAGE, ("create", "read", "export"), scope="all"),
        Grant("service_manager", MAIL, ("read", "update")),
        Grant("service_agent", ARTICLE, ("read",)),
        Grant("service_agent", CANNED, ("read",)),
        Grant("service_agent", CALENDAR, ("read",)),
        Grant("service_agent", SLA, ("read",)),
        Grant("service_agent", TEAM, ("read",)),
        Grant("readonly", ARTICLE, ("read",)),
    ]
    out += [Grant("service_manager", model, _CRUD) for model in _SETUP]
    return tuple(out)


def _field_rules() -> tuple[FieldRule, ...]:
    # copies of the customer's address: masked as crm_contacts masks the contact's own for agents (who may reveal
    # it, audited); read-only users get the least of these, masked too; managers, with no rule, see it
    return (FieldRule("service_agent", TICKET, "customer_email", "masked", masker="email", reveal=True),
            FieldRule("service_agent", MESSAGE, "author_email", "masked", masker="email", reveal=True))


ADDON = Addon(
    name="crm_service", version="1.0.0", depends=("crm_contacts",),
    label="Service",
    summary="Service desk: tickets from e-mail and the web, SLA on business hours, dispatch, knowledge base",
    models="crm_service.models", migrations="crm_service.migrations",
    routes="crm_service.views:ROUTES", mount="/service",
    templates="crm_service:templates",
    actors="crm_service.actors", hooks=("crm_service.hooks", "crm_service.portal_hooks"),
    hookspecs="crm_service.hookspecs",
    schedules=(
        Every(minutes=5, actor="crm_service.check_sla"),
        Every(minutes=2, actor="crm_service.fetch_mail"),
    ),
    roles=(
        # service_agent is crm_contacts' role (it reads contacts' service data); the manager implies it
        Role("service_manager", "Service manager", implies=("service_agent",)),
    ),
    permissions=_grants(),
    field_rules=_field_rules(),
    menus=(
        Menu("Tickets", "/service/", model=TICKET, order=30),
        Menu("Knowledge base", "/service/articles", model=ARTICLE, order=31),
        Menu("Service setup", "/settings/service/routing-rules", model=RULE, order=32),
        Menu("Inbound mail", "/service/mail", model=MAIL, order=33),
    ),
    data=("data/crm_service_calendar.csv", "data/crm_service_sla_policy.csv"),
    demo=(
        "demo/crm_service_team.csv",
        "demo/crm_service_calendar_day.csv", "demo/crm_service_sla_policy.csv", "demo/crm_service_routing_rule.csv",
        "demo/crm_service_article.csv", "demo/crm_service_ticket.csv", "demo/crm_service_state_change.csv",
        "demo/crm_service_message.csv",
        # the customer of the first demo ticket signs in to /service/public/portal/login with the demo password
        "demo/crm_service_portal_account.csv",
    ),
)
