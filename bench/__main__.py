"""``python -m bench``: run every benchmark listed in ``bench.BENCHMARKS``."""

from __future__ import annotations

import importlib

from bench import BENCHMARKS


def main() -> None:
    for name in BENCHMARKS:
        print(f"== bench.{name}")
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
