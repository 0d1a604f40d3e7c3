"""Benchmark: compiling a pipeline spec, against parsing the same YAML alone.

    python -m bench.spec_compile [--jobs 50] [--repeat 5]

Prints, for the iris example and for a generated pipeline of ``--jobs`` parallel jobs in a chain
(each consuming the previous job's output, with runtime flags and bindings):

- baseline: ruamel.yaml's round-trip load of the text (what any located loader must spend);
- compile: ``compile_text`` — loading with positions, validation, bindings, graph, freezing.

Validation should cost about as much again as parsing, not an order of magnitude more: a spec is
compiled once per submission and once more by the ingest trigger.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from ruamel.yaml import YAML

from shared.spec import bundle_file, compile_text

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "iris-batch-prediction" / "pipeline.yml"


def generated(jobs: int) -> str:
    """A pipeline of ``jobs`` parallel jobs, each reading the previous one's output."""
    lines = ["type: pipeline", "inputs:", "  size: 10kb", "  nodes: 2", "jobs:"]
    for i in range(jobs):
        source = (
            "azureml://datastores/workspaceblobstore/paths/in"
            if i == 0
            else f"${{{{parent.jobs.j{i - 1}.outputs.out}}}}"
        )
        lines += [
            f"  j{i}:",
            "    type: parallel",
            "    compute: azureml:cpu-cluster",
            "    inputs:",
            f"      data: {{type: uri_folder, path: '{source}'}}",
            "      rate: 0.5",
            "    outputs:",
            "      out: {type: uri_folder}",
            "    input_data: ${{inputs.data}}",
            "    mini_batch_size: ${{parent.inputs.size}}",
            "    resources: {instance_count: '${{parent.inputs.nodes}}'}",
            "    retry_settings: {max_retries: 2, timeout: 60}",
            "    task:",
            "      code: azureml://datastores/snapshots/paths/sha256-0",
            "      entry_script: score.py",
            "      program_arguments: --rate ${{inputs.rate}} --out ${{outputs.out}} --error_threshold 5",
            "      append_row_to: ${{outputs.out}}",
        ]
    return "\n".join(lines) + "\n"


def best_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def measure(name: str, text: str, repeat: int) -> None:
    yaml = YAML(typ="rt", pure=True)
    parse = best_ms(lambda: yaml.load(text), repeat)
    plan = compile_text(text, source=name, run_id="bench")
    compile_ms = best_ms(lambda: compile_text(text, source=name, run_id="bench"), repeat)
    print(
        f"{name}: {len(plan.jobs)} jobs, {len(text) / 1024:.1f} KiB — baseline parse {parse:.1f} ms, "
        f"compile {compile_ms:.1f} ms ({compile_ms / parse:.1f}× the parse)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    measure("iris example (bundled)", bundle_file(EXAMPLE), args.repeat)
    measure(f"{args.jobs} chained parallel jobs", generated(args.jobs), args.repeat)


if __name__ == "__main__":
    main()
