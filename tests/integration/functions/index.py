"""The Function App's functions by name, indexed once per process.

``FunctionApp.get_functions()`` validates and records the function names it returns; a second call in
the same process fails on "duplicate" names. The Python worker calls it once; so do the tests, here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import function_app


@lru_cache(maxsize=1)
def indexed_functions() -> dict[str, Any]:
    return {function.get_function_name(): function for function in function_app.app.get_functions()}
