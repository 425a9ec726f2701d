"""The CRM kernel: addon contract, lifecycle, composition, jobs, security.

Nothing in this package names a bundled addon.
"""

__version__ = "0.1.0"
