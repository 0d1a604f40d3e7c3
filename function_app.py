"""Composition root of the Function App: one ``df.DFApp``; the blueprints of ``functions/`` are
registered here explicitly and nothing else happens at import time (STYLE habit 2)."""

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
