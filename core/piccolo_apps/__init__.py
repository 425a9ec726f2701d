"""Synthetic Piccolo app modules live here (see core.migrations_registry)."""
