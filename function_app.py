"""Composition root of the Function App: one ``df.DFApp``; the blueprints of ``functions/`` are
registered here explicitly and nothing else happens at import time (STYLE habit 2).

Functions: the HTTP API (one function per route, ``functions/http_api.py``), the blob triggers on the
``specs`` and ``snapshots`` drop zones (``functions/ingest.py``), the events-queue trigger
(``functions/events.py``), and the durable orchestrators and activities.
"""

import azure.durable_functions as df
import azure.functions as func

from functions import activities, events, http_api, ingest, orchestrators

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(http_api.bp)
app.register_functions(ingest.bp)
app.register_functions(events.bp)
app.register_functions(orchestrators.bp)
app.register_functions(activities.bp)
