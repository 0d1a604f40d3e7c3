"""The job graph: edges from data bindings, a stable topological order, and cycles spelled out.

An edge ``consumer -> producer`` exists when a job's input is bound to
``${{parent.jobs.<producer>.outputs.<o>}}``. The order is Kahn's algorithm with ties broken by the
order jobs are written in, so independent jobs keep the author's order. A cycle is reported as the
path that closes it, e.g. ``a -> b -> c -> a`` (each arrow: "consumes an output of").
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def topological_order(jobs: Sequence[str], depends_on: Mapping[str, set[str]]) -> tuple[list[str], list[str]]:
    """``(order, cycle)``: every job in dependency order, or an empty order and one cycle.

    Args:
        jobs: job names in the order they are written.
        depends_on: for each job, the jobs whose outputs it consumes.
    """
    position = {name: index for index, name in enumerate(jobs)}
    waiting = {name: len({d for d in depends_on.get(name, set()) if d in position}) for name in jobs}
    consumers: dict[str, list[str]] = {name: [] for name in jobs}
    for name in jobs:
        for producer in {d for d in depends_on.get(name, set()) if d in position}:
            consumers[producer].append(name)
    ready = [position[name] for name in jobs if waiting[name] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        chosen = jobs[heapq.heappop(ready)]
        order.append(chosen)
        for consumer in consumers[chosen]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, position[consumer])
    if len(order) < len(jobs):
        placed = set(order)
        rest = [name for name in jobs if name not in placed]
        return [], find_cycle(rest, {n: depends_on.get(n, set()) - placed for n in rest})
    return order, []


def find_cycle(jobs: Sequence[str], depends_on: Mapping[str, set[str]]) -> list[str]:
    """One cycle as a closed path ``[a, b, ..., a]`` (empty when there is none).

    Depth-first search with an explicit stack, so a long chain of jobs cannot exhaust recursion.
    """
    position = {name: index for index, name in enumerate(jobs)}

    def successors(node: str) -> list[str]:
        return sorted(depends_on.get(node, set()), key=lambda n: position.get(n, len(position)))

    done: set[str] = set()
    for root in jobs:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        pending: list[list[str]] = [successors(root)]
        while pending:
            if not pending[-1]:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                pending.pop()
                continue
            nxt = pending[-1].pop(0)
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt in done:
                continue
            path.append(nxt)
            on_path.add(nxt)
            pending.append(successors(nxt))
    return []
