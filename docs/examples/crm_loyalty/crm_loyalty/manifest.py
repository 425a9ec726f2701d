"""The table of contents of the loyalty addon: what it adds to the CRM, as data (cheap to import)."""

from __future__ import annotations

from core.addon import Addon, Every, Grant, Menu, Role

ADDON = Addon(
    name="crm_loyalty",
    version="1.0.0",
    summary="Loyalty points for customers, with a PDF statement",
    models="crm_loyalty.models",
    migrations="crm_loyalty.migrations",
    routes="crm_loyalty.views:ROUTES",
    mount="/loyalty",
    templates="crm_loyalty:templates",
    static="crm_loyalty:static",
    actors="crm_loyalty.actors",
    hooks=("crm_loyalty.hooks",),
    hookspecs="crm_loyalty.hookspecs",
    schedules=(Every(hours=24, actor="crm_loyalty.expire_points"),),
    roles=(Role("loyalty_clerk", "Loyalty clerk"),),
    # The kernel's ``admin`` may do everything and its ``readonly`` reads every addon model that has a grant:
    # neither needs one here.
    permissions=(Grant("loyalty_clerk", "crm_loyalty.account", ("read", "create", "update")),),
    menus=(Menu("Loyalty", "/loyalty/", model="crm_loyalty.account", order=60),),
    data=("data/crm_loyalty_tier.csv",),
)
