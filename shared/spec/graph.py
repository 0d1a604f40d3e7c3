"""The job graph: edges from data bindings, a stable topological order, and cycles spelled out.

An edge ``consumer -> producer`` exists when a job's input is bound to
``${{parent.jobs.<producer>.outputs.<o>}}``. The order is Kahn's algorithm with ties broken by the
order jobs are written in, so independent jobs keep the author's order. A cycle is reported as the
path that closes it, e.g. ``a -> b -> c -> a`` (each arrow: "consumes an output of").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def topological_order(jobs: Sequence[str], depends_on: Mapping[str, set[str]]) -> tuple[list[str], list[str]]:
    """``(order, cycle)``: every job in dependency order, or an empty order and one cycle.

    Args:
        jobs: job names in the order they are written.
        depends_on: for each job, the jobs whose outputs it consumes.
    """
    position = {name: index for index, name in enumerate(jobs)}
    remaining = {name: {d for d in depends_on.get(name, set()) if d in position} for name in jobs}
    order: list[str] = []
    while remaining:
        ready = [name for name, deps in remaining.items() if not deps]
        if not ready:
            return [], find_cycle(jobs, remaining)
        ready.sort(key=position.__getitem__)
        chosen = ready[0]
        order.append(chosen)
        del remaining[chosen]
        for deps in remaining.values():
            deps.discard(chosen)
    return order, []


def find_cycle(jobs: Sequence[str], depends_on: Mapping[str, set[str]]) -> list[str]:
    """One cycle as a closed path ``[a, b, ..., a]`` (empty when there is none)."""
    position = {name: index for index, name in enumerate(jobs)}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(depends_on.get(node, set()), key=lambda n: position.get(n, len(position))):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for name in jobs:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return []
