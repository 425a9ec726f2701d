from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T03:16:44:645713"
VERSION = "1.38.0"
DESCRIPTION = "escalation"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="crm_service", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Ticket",
        tablename="crm_service_ticket",
        column_name="escalation_of",
        db_column_name="escalation_of",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Ticket",
        tablename="crm_service_ticket",
        column_name="escalation_reason",
        db_column_name="escalation_reason",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 300,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
