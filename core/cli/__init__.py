"""The ``crm`` command line."""
