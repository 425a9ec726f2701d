"""Custom fields and form layouts: fields an admin adds to any extensible model, with no code, shown wherever a
built-in field is (API and OpenAPI, settings forms, addons' forms and pages, lists, filters, exports, imports,
report datasets, the audit log) under the same field rules. See docs/engines.md, "Custom fields".

- :mod:`.definitions`: a field (:class:`FieldDef`) and a layout (:class:`Layout`) as values;
- :mod:`.registry`: which models take custom fields (``Resource(custom="custom")``) and the cached definitions;
- :mod:`.values`: one stored shape per kind, text in and out, JSON Schema;
- :mod:`.records`: the write path (:func:`prepare`, :func:`merge`) and the read path (:func:`present`);
- :mod:`.storage`: SQL (filters, sorting, expression indexes, purge); :mod:`.forms`: HTML forms and layouts;
- :mod:`.admin`: the admin's operations (audited); :mod:`.routes`: ``/admin/fields`` and ``/api/admin/…``.
"""

from __future__ import annotations

from core.customfields.definitions import KINDS, FieldDef, Layout, Option, Section
from core.customfields.forms import Group, Input, arrange, check_required, inputs, parse
from core.customfields.records import Shown, cells, flat, loaded, merge, prepare, present, shown, visible
from core.customfields.registry import (
    Extensible,
    by_name,
    column_of,
    definition,
    definitions,
    extensible,
    extension,
    fresh,
    layout,
)
from core.customfields.storage import SORTABLE, CustomKeyset, filter_clause
from core.customfields.values import display, from_text

__all__ = [
    "KINDS", "SORTABLE", "CustomKeyset", "Extensible", "FieldDef", "Group", "Input", "Layout", "Option", "Section",
    "Shown",
    "arrange", "by_name", "cells", "check_required", "column_of", "definition", "definitions", "display",
    "extensible", "extension", "filter_clause", "flat", "fresh", "from_text", "inputs", "layout", "loaded",
    "merge", "parse", "prepare", "present", "shown", "visible",
]
