"""Azure Functions triggers: thin adapters over ``shared/`` (DESIGN decision 7, STYLE habit 1).

This package and ``function_app.py`` are the only code that imports ``azure.functions`` or
``azure.durable_functions`` (enforced by ruff's banned-api rule).
"""
