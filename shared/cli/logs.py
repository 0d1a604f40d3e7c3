"""``fanout logs RUN [--job J] [--file PATH] [-f]`` — print (and follow) a run's logs.

Each file of the jobs' log trees (Azure ML's layout: ``job_result.txt``, ``user/stdout/<node>/...``) is
printed under a ``==> job/path <==`` header; ``--job`` and ``--file`` narrow it down. ``-f`` keeps
reading new bytes (from where it stopped, by offset) until the run has ended.
"""

from __future__ import annotations

import time

import click

from shared.client import FanoutClient
from shared.orchestration.contracts import RunStatus
from shared.settings import get_settings


@click.command("logs")
@click.argument("run_id")
@click.option("--job", "jobs", multiple=True, help="Only this job (repeatable).")
@click.option("--file", "only_file", help="Only this file of the job's log tree, e.g. job_result.txt.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run has ended.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between reads when following.")
def logs(run_id: str, jobs: tuple[str, ...], only_file: str | None, follow: bool, interval: float) -> int:
    """Print RUN_ID's logs."""
    with FanoutClient.from_settings(get_settings()) as client:
        follower = LogFollower(client, run_id, jobs, only_file)
        while True:
            ended = RunStatus(client.get_run(run_id)["status"]).is_terminal
            follower.read_new()
            if not follow or ended:
                return 0
            time.sleep(interval)


class LogFollower:
    """Prints the new bytes of each log file since the last read."""

    def __init__(
        self, client: FanoutClient, run_id: str, jobs: tuple[str, ...], only_file: str | None
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.jobs = list(jobs) or [job["name"] for job in client.get_run(run_id)["jobs"]]
        self.only_file = only_file
        self.offsets: dict[tuple[str, str], int] = {}
        self.current: tuple[str, str] | None = None

    def read_new(self) -> None:
        """Print what each selected log file gained since the last call, a header before each file."""
        for job in self.jobs:
            for item in self.client.log_files(self.run_id, job):
                path = item["path"]
                if self.only_file is not None and path != self.only_file:
                    continue
                key = (job, path)
                offset = self.offsets.get(key, 0)
                if item["size"] <= offset:
                    continue
                while True:
                    chunk = self.client.read_log(self.run_id, job, path, offset)
                    if chunk.data:
                        self._print(key, chunk.data)
                    offset = chunk.next_offset
                    if not chunk.data or offset >= chunk.size:
                        break
                self.offsets[key] = offset

    def _print(self, key: tuple[str, str], data: bytes) -> None:
        if key != self.current:
            click.echo(f"==> {key[0]}/{key[1]} <==")
            self.current = key
        click.echo(data.decode("utf-8", errors="replace"), nl=False)
