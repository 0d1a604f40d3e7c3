"""The Function App's functions, read without disturbing other tests.

``app.get_functions()`` refuses a second call in one process (it records the names it validated); the
Functions worker calls it once. Tests in several modules need the list, so this reads it with the
record emptied and then puts the record back exactly as it was.
"""

from __future__ import annotations

from typing import Any


def app_functions() -> list[Any]:
    import function_app

    app = function_app.app
    saved = app.functions_bindings
    app.functions_bindings = {}
    try:
        return list(app.get_functions())
    finally:
        app.functions_bindings = saved
