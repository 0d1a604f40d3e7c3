"""Azure ML's ``azureml_user`` package as entry scripts import it, provided by Fanout's workers.

Only worker processes put the ``compat`` folder on ``sys.path``; nothing else in Fanout imports it.
"""
