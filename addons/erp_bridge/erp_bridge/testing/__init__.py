"""Test helpers for the ERP bridge (a real throw-away Tryton server: `tryton_server`)."""
