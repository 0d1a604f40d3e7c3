"""The mini-batch runtime: step phases, the node agent and its workers, records, output staging, logs.

Public entry points (imported from their modules, so ``import shared.runtime`` stays cheap):

- :mod:`shared.runtime.phases`: ``plan_step``, ``dispatch_step``, ``read_progress``, ``stop_step``,
  ``finalize_step`` — the activities of a parallel step;
- :mod:`shared.runtime.records`: ``read_progress``, ``apply_completion_event``, ``request_stop``,
  ``record_command_exit``, the record/tally model;
- :mod:`shared.runtime.messages`: ``WorkMessage``, ``CompletionEvent``, ``SettleNotice``;
- :mod:`shared.runtime.launch`: ``run_node`` (what ``fanout agent`` runs); :mod:`shared.runtime.agent`:
  ``Agent``, the node's loop; :mod:`shared.runtime.tries`: what each try's end means;
- :mod:`shared.runtime.command`: the node side of command jobs.

See ``docs/runtime.md``.
"""
