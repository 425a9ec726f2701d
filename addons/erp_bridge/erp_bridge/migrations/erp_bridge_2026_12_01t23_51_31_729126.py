from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Numeric
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod
import decimal

ID = "2026-12-01T23:51:31:729126"
VERSION = "1.38.0"
DESCRIPTION = "tax mapping: CRM tax rate to ERP tax"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="erp_bridge", description=DESCRIPTION
    )

    manager.add_table(
        class_name="TaxMapping",
        tablename="erp_bridge_tax_map",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="TaxMapping",
        tablename="erp_bridge_tax_map",
        column_name="rate",
        db_column_name="rate",
        column_class_name="Numeric",
        column_class=Numeric,
        params={
            "default": decimal.Decimal("0"),
            "digits": (6, 4),
            "null": False,
            "primary_key": False,
            "unique": True,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="TaxMapping",
        tablename="erp_bridge_tax_map",
        column_name="erp_tax",
        db_column_name="erp_tax",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 60,
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

    manager.add_column(
        table_class_name="TaxMapping",
        tablename="erp_bridge_tax_map",
        column_name="erp_tax_name",
        db_column_name="erp_tax_name",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 200,
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
