"""The kernel's own migrations describe its tables: ``crm addons makemigrations core`` would find nothing to
write (the addons' contract test checks the same for each addon)."""

from __future__ import annotations

import contextlib
import io
from itertools import chain


async def test_kernel_models_match_kernel_migrations(crm_db_url: str) -> None:
    from piccolo.apps.migrations.commands.new import AutoMigrationManager

    from core.migrations_registry import app_config

    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints a summary table
        found = await AutoMigrationManager(auto_input="y").get_alter_statements(app_config=app_config(None))
    pending = list(chain.from_iterable(s.statements for s in found))
    assert not pending, f"kernel models differ from core/migrations (run crm addons makemigrations core): {pending}"


async def test_new_users_have_no_language_until_they_log_in(crm_db_url: str) -> None:
    from core.security.models import User

    await User.insert(User(login="raw", name="Raw"))
    row = await User.select(User.language, User.timezone, User.has_email_notifications).first()
    assert row == {"language": "", "timezone": "", "has_email_notifications": True}
