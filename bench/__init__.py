"""Benchmarks, run on demand and never in CI (``make bench`` or ``python -m bench``).

Each module in :data:`BENCHMARKS` has a ``main()`` that prints its figure next to a baseline measured
in the same run; run one alone with ``python -m bench.<name>``.
"""

#: Modules of this package that ``python -m bench`` runs, in order. Add yours here.
BENCHMARKS: list[str] = [
    "snapshot",
    "scale_plan",
    "spec_compile",
    "orchestration",
    "overhead",
    "throughput",
    "scale_dispatch",
    "resume",
]
