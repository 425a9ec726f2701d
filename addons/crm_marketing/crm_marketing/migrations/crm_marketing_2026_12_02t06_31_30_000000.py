"""The default value tiers (data, editable afterwards on the RFM page), seeded once into an empty table; a
migration of its own because Piccolo runs a migration's raw steps before the tables it adds."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import JSON, Boolean, Integer, Varchar
from piccolo.table import Table

ID = "2026-12-02T06:31:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "default value tiers"

#: the default value tiers (editable afterwards on the RFM page); a customer gets the first whose rule holds
DEFAULT_TIERS = (
    ("dormant", "Dormant", "沉睡客户", {"field": "recency_days", "op": "gte", "value": 180}, 10),
    ("gold", "Gold", "高价值客户",
     {"all": [{"field": "r", "op": "gte", "value": 4}, {"field": "m", "op": "gte", "value": 4}]}, 20),
    ("loyal", "Loyal", "忠诚客户", {"field": "f", "op": "gte", "value": 4}, 30),
    ("new", "New", "新客户",
     {"all": [{"field": "orders", "op": "eq", "value": 1}, {"field": "recency_days", "op": "lt", "value": 30}]}, 40),
    ("regular", "Regular", "普通客户", {}, 90),
)


async def seed_tiers() -> None:
    import json

    from core.db import current

    class _Tier(Table, tablename="crm_marketing_value_tier"):  # the table as this migration leaves it
        key = Varchar(length=40)
        name_en = Varchar(length=100)
        name_zh = Varchar(length=100)
        rule = JSON()
        sequence = Integer()
        is_active = Boolean()
        version = Integer()

    _Tier._meta.db = current()
    if await _Tier.count() > 0:
        return
    await _Tier.insert(*(_Tier(key=key, name_en=en, name_zh=zh, rule=json.dumps(rule), sequence=seq,
                               is_active=True, version=1)
                         for key, en, zh, rule, seq in DEFAULT_TIERS))



async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="crm_marketing", description=DESCRIPTION)
    manager.add_raw(seed_tiers)
    return manager
