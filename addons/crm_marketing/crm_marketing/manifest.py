"""crm_marketing: who to reach (segments, lists), how (e-mail campaigns) and what it brought (ROI).

This module is the addon's table of contents (cheap to import). It depends on crm_contacts only: it installs,
works and uninstalls without crm_sales.
"""

from __future__ import annotations

from core.addon import Action, Addon, Every, Grant, Menu

SEGMENT = "crm_marketing.segment"  # dynamic segments and static lists, with their members
CAMPAIGN = "crm_marketing.campaign"  # e-mail campaigns, their recipients and tracked events
SUPPRESSION = "crm_marketing.suppression"  # the do-not-contact list (unsubscribes land here too)
JOURNEY = "crm_marketing.journey"  # nurture journeys, their enrollments and the custom events they count
FORM = "crm_marketing.form"  # public capture forms and their submissions

_CRUD: tuple[Action, ...] = ("create", "read", "update", "delete", "export")


def _grants() -> tuple[Grant, ...]:
    out: list[Grant] = []
    for model in (SEGMENT, CAMPAIGN, SUPPRESSION, JOURNEY, FORM):
        # crm_contacts declares the marketing role; its field rules mask contacts' phones and e-mails for it
        out.append(Grant("marketing", model, _CRUD))
        out.append(Grant("sales_manager", model, ("read",)))
    return tuple(out)


ADDON = Addon(
    name="crm_marketing",
    version="1.0.0",
    depends=("crm_contacts",),
    label="Marketing",
    summary="Segments, static and do-not-contact lists, e-mail campaigns with tracking, and ROI",
    models="crm_marketing.models",
    migrations="crm_marketing.migrations",
    routes="crm_marketing.views:ROUTES",
    mount="/marketing",
    templates="crm_marketing:templates",
    static="crm_marketing:static",
    actors="crm_marketing.actors",
    hooks=("crm_marketing.hooks",),
    schedules=(
        Every(hours=1, actor="crm_marketing.rebuild_segments"),
        Every(hours=24, actor="crm_marketing.rebuild_rfm"),  # RFM scores and value tiers, nightly
        Every(minutes=15, actor="crm_marketing.refresh_returns"),  # the ROI dataset, for unannounced order edits
        Every(minutes=1, actor="crm_marketing.send_scheduled"),
        Every(minutes=1, actor="crm_marketing.journeys_tick"),
        Every(minutes=5, actor="crm_marketing.fetch_bounces"),  # a no-op without a bounce mailbox
        Every(hours=24, actor="crm_marketing.date_triggers"),  # birthdays, dormant customers
        Every(minutes=1, actor="crm_marketing.decide_ab_tests"),
    ),
    permissions=_grants(),
    demo=(
        "demo/crm_marketing_segment.csv",
        "demo/crm_marketing_segment_member.csv",
        "demo/crm_marketing_campaign.csv",
        "demo/crm_marketing_campaign_recipient.csv",
        "demo/crm_marketing_campaign_event.csv",  # a sent campaign with opens, clicks and a scanner's hits
        "demo/crm_marketing_event.csv",
        "demo/crm_marketing_journey.csv",
        "demo/crm_marketing_journey_enrollment.csv",  # a running journey with people at different steps
        "demo/crm_marketing_form.csv",
        "demo/crm_marketing_form_submission.csv",  # a capture form with UTM-coded submissions and a honeypot hit
    ),
    menus=(
        Menu("Segments", "/marketing/segments", model=SEGMENT, order=40),
        Menu("RFM and value tiers", "/marketing/rfm", model=SEGMENT, order=44),
        Menu("Campaigns", "/marketing/", model=CAMPAIGN, order=41),
        Menu("Do not contact", "/marketing/suppressions", model=SUPPRESSION, order=42),
        Menu("Journeys", "/marketing/journeys", model=JOURNEY, order=43),
        Menu("Forms", "/marketing/forms", model=FORM, order=45),
    ),
)
