from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt
from piccolo.columns.column_types import JSON
from piccolo.columns.column_types import Serial
from piccolo.columns.column_types import Text
from piccolo.columns.column_types import Timestamptz
from piccolo.columns.column_types import Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T19:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "record timelines: notes and followers"

#: (Piccolo runs raw steps before it adds tables: this one only touches an existing table.)
#: a record's timeline reads its audit rows: (model, record_id) finds them without scanning the model's rows
AUDIT_INDEX = "CREATE INDEX IF NOT EXISTS core_audit_log_model_record ON core_audit_log (model, record_id)"


async def install_indexes() -> None:
    from core.db import current

    await current().run_ddl(AUDIT_INDEX)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="core", description=DESCRIPTION)

    manager.add_table(class_name="RecordNote", tablename="core_record_note", schema=None, columns=None)
    manager.add_table(class_name="RecordFollower", tablename="core_record_follower", schema=None, columns=None)
    manager.add_column(table_class_name="RecordNote", tablename="core_record_note", column_name="model", db_column_name="model", column_class_name="Varchar", column_class=Varchar, params={"default": '', "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False, "length": 100}, schema=None)
    manager.add_column(table_class_name="RecordNote", tablename="core_record_note", column_name="record_id", db_column_name="record_id", column_class_name="BigInt", column_class=BigInt, params={"default": 0, "null": False, "primary_key": False, "unique": False, "index": True, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)
    manager.add_column(table_class_name="RecordNote", tablename="core_record_note", column_name="body", db_column_name="body", column_class_name="Text", column_class=Text, params={"default": '', "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)
    manager.add_column(table_class_name="RecordNote", tablename="core_record_note", column_name="author_id", db_column_name="author_id", column_class_name="BigInt", column_class=BigInt, params={"default": None, "null": True, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)
    manager.add_column(table_class_name="RecordNote", tablename="core_record_note", column_name="mentions", db_column_name="mentions", column_class_name="JSON", column_class=JSON, params={"default": '[]', "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)
    manager.add_column(table_class_name="RecordNote", tablename="core_record_note", column_name="url", db_column_name="url", column_class_name="Varchar", column_class=Varchar, params={"default": '', "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False, "length": 500}, schema=None)
    manager.add_column(table_class_name="RecordNote", tablename="core_record_note", column_name="created_at", db_column_name="created_at", column_class_name="Timestamptz", column_class=Timestamptz, params={"default": TimestamptzNow(), "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)
    manager.add_column(table_class_name="RecordFollower", tablename="core_record_follower", column_name="model", db_column_name="model", column_class_name="Varchar", column_class=Varchar, params={"default": '', "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False, "length": 100}, schema=None)
    manager.add_column(table_class_name="RecordFollower", tablename="core_record_follower", column_name="record_id", db_column_name="record_id", column_class_name="BigInt", column_class=BigInt, params={"default": 0, "null": False, "primary_key": False, "unique": False, "index": True, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)
    manager.add_column(table_class_name="RecordFollower", tablename="core_record_follower", column_name="user_id", db_column_name="user_id", column_class_name="BigInt", column_class=BigInt, params={"default": 0, "null": False, "primary_key": False, "unique": False, "index": True, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)
    manager.add_column(table_class_name="RecordFollower", tablename="core_record_follower", column_name="url", db_column_name="url", column_class_name="Varchar", column_class=Varchar, params={"default": '', "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False, "length": 500}, schema=None)
    manager.add_column(table_class_name="RecordFollower", tablename="core_record_follower", column_name="created_at", db_column_name="created_at", column_class_name="Timestamptz", column_class=Timestamptz, params={"default": TimestamptzNow(), "null": False, "primary_key": False, "unique": False, "index": False, "index_method": IndexMethod.btree, "choices": None, "db_column_name": None, "secret": False}, schema=None)

    manager.add_raw(install_indexes)
    return manager

