"""Entry script of the summarize_files parallel job: one summary line per number file.

run(mini_batch) receives a list of local file paths (the input is a folder, so mini-batches are file
lists) and returns one string per file; Fanout appends them to the summary output.
"""

import argparse
from pathlib import Path

decimals = 3


def init():
    global decimals
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--decimals", type=int, default=3)
    args, _ = parser.parse_known_args()
    decimals = args.decimals


def run(mini_batch):
    lines = []
    for file_path in mini_batch:
        path = Path(file_path)
        values = [float(line) for line in path.read_text().split()]
        mean = sum(values) / len(values)
        lines.append(
            f"{path.name}: count={len(values)} min={min(values):.{decimals}f} "
            f"max={max(values):.{decimals}f} mean={mean:.{decimals}f}"
        )
    return lines
