"""The log tree of a parallel job, and the uploader that streams a node's logs while it runs.

Layout under ``shared.storage.logs_path(run, job)`` (Azure ML's, reference §5)::

    readme.txt                                   this layout, in words
    job_result.txt                               the result, why, and where to look first
    job_error.txt                                failed mini-batches with their errors
    job_progress_overview.<yyyymmddhh>.txt       scheduling and progress lines (one file per hour)
    sys/master_role.0.txt                        what the orchestrating side did (plan, dispatch, stop,
                                                 finalize)
    sys/job_report/processed_mini-batches.csv    one row per mini-batch attempt, every node
    sys/job_report/process_summary.csv           the attempts summed by process (written at finalize)
    sys/job_report/node_summary.csv              the attempts summed by node (written at finalize)
    sys/node/<node>/_main.txt                    the agent: worker starts, exits with return codes,
                                                 timeouts, init failures
    sys/node/<node>/<process>.txt                per-process mini-batch pick/complete lines
    sys/perf/<node>/node_resource_usage.csv      CPU/memory/disk/network every resource_monitor_interval s
    sys/perf/<node>/processes_resource_usage.csv CPU %/RSS of the agent and of each worker, same cadence
    user/stdout/<node>/<process>.stdout.txt      print() and logging output of the entry script
    user/stderr/<node>/<process>.stderr.txt      its stderr
    user/error/<node>/<process>.txt              full tracebacks of init()/run() exceptions
    user/entry_script_log/<node>/<process>.log.txt   EntryScript().logger

A node writes its files locally (under its work folder, same relative layout) and :class:`LogUploader`
appends the new bytes to append blobs every few seconds, so logs are readable while the job runs.
``processed_mini-batches.csv`` is one blob shared by all nodes: every append holds whole lines, so rows
of different nodes never interleave inside a line.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from shared.orchestration.contracts import StepRef
from shared.storage import Container, StorageClients, logs_path, run_logs_path

logger = logging.getLogger(__name__)

PROCESSED_CSV = "sys/job_report/processed_mini-batches.csv"
PROCESSED_COLUMNS = (
    "Mini-batch Id",
    "Picked Count",
    "Node",
    "Process",
    "Start Time (UTC)",
    "Total",
    "Succeeded",
    "Failed",
    "Elapsed Seconds",
    "Process Seconds",
    "Run Method Seconds",
    "Status",
    "Error Category",
    "Error Message",
    "Mini-batch Detail",
)
MASTER_ROLE = "sys/master_role.0.txt"
PROCESS_SUMMARY = "sys/job_report/process_summary.csv"
NODE_SUMMARY = "sys/job_report/node_summary.csv"
#: Copied to the run's own log folder with ``--copy_logs_to_parent True`` (with the progress overviews).
PARENT_FILES = ("job_result.txt", "job_error.txt")
#: Largest append-block payload (service limit 4 MiB on older API versions; keep to that).
MAX_APPEND_BYTES = 4 * 1024 * 1024

README = """\
Logs of a Fanout parallel job (the same layout as Azure ML's parallel run step).

Start with job_result.txt: it says whether the job succeeded, why it failed, and where to look.

job_result.txt                      final result and reason
job_error.txt                       the failed mini-batches and their errors (first lines of each)
job_progress_overview.<hour>.txt    scheduling and progress over time (one file per hour, UTC)
sys/master_role.0.txt               planning, dispatch, stop and finalize of the job
sys/job_report/processed_mini-batches.csv
                                    one row per mini-batch attempt: id, picked count, node, process,
                                    start time, total/succeeded/failed items, timings, status, error
sys/job_report/process_summary.csv  those attempts summed by process, and node_summary.csv by node
sys/node/<node>/_main.txt           the node agent: worker processes started, their exits and return
                                    codes (e.g. -9 = killed: out of memory or a run() timeout)
sys/node/<node>/<process>.txt       mini-batches picked and completed by each worker process
sys/perf/<node>/node_resource_usage.csv
                                    CPU, memory, disk and network of the node (resource_monitor_interval)
sys/perf/<node>/processes_resource_usage.csv
                                    CPU % and memory of the agent and of each worker process, and of the
                                    processes a worker started
user/stdout/<node>/<process>.stdout.txt   print() and logging output of your entry script
user/stderr/<node>/<process>.stderr.txt   what your entry script wrote to stderr
user/error/<node>/<process>.txt           full tracebacks of exceptions in init() and run()
user/entry_script_log/<node>/<process>.log.txt   EntryScript().logger output

Nodes are numbered 0..instance_count-1; processes are process000, process001, ... (a replaced worker
gets the next number). Logs are uploaded every few seconds while the job runs. With
--copy_logs_to_parent True, job_result.txt, job_error.txt and the progress overviews are also copied to
the run's own log folder, logs/<job>/ next to the run's jobs.
"""


def blob_path(step: StepRef, relative: str) -> str:
    """The blob name (in ``runs``) of a file of the job's log tree, e.g. ``job_result.txt``."""
    return logs_path(step.run_id, step.job, relative)


def _blob(clients: StorageClients, step: StepRef, relative: str) -> BlobClient:
    return clients.container(Container.RUNS).get_blob_client(blob_path(step, relative))


def write_text(clients: StorageClients, step: StepRef, relative: str, text: str) -> None:
    """Write (replace) a whole log file."""
    _blob(clients, step, relative).upload_blob(text.encode(), overwrite=True)


def append_text(clients: StorageClients, step: StepRef, relative: str, text: str) -> None:
    """Append to a log file kept as an append blob (created on first use)."""
    blob = _blob(clients, step, relative)
    _ensure_append_blob(blob)
    data = text.encode()
    for offset in range(0, len(data), MAX_APPEND_BYTES):
        blob.append_block(data[offset : offset + MAX_APPEND_BYTES])


def append_line(clients: StorageClients, step: StepRef, relative: str, line: str) -> None:
    """Append one timestamped line (UTC)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    append_text(clients, step, relative, f"{stamp} {line}\n")


def progress_overview_name(now: datetime) -> str:
    """The progress overview file of the UTC hour of ``now`` (one file per hour, as in Azure ML)."""
    return f"job_progress_overview.{now.astimezone(UTC):%Y%m%d%H}.txt"


def ensure_processed_csv(clients: StorageClients, step: StepRef) -> None:
    """Create the shared processed_mini-batches.csv with its header (once)."""
    blob = _blob(clients, step, PROCESSED_CSV)
    with contextlib.suppress(ResourceExistsError, ResourceModifiedError):
        blob.create_append_blob(match_condition=MatchConditions.IfMissing)
        blob.append_block((",".join(PROCESSED_COLUMNS) + "\n").encode())


def _ensure_append_blob(blob: BlobClient) -> None:
    with contextlib.suppress(ResourceExistsError, ResourceModifiedError):
        blob.create_append_blob(match_condition=MatchConditions.IfMissing)


def read_text(clients: StorageClients, step: StepRef, relative: str) -> str:
    """A whole log file as text (undecodable bytes replaced). Raises ResourceNotFoundError if absent."""
    return _blob(clients, step, relative).download_blob().readall().decode("utf-8", errors="replace")


def write_job_summaries(clients: StorageClients, step: StepRef) -> None:
    """``process_summary.csv`` and ``node_summary.csv``: the job's tries summed by process and node."""
    from shared.runtime.reports import job_summaries

    try:
        processed = read_text(clients, step, PROCESSED_CSV)
    except ResourceNotFoundError:
        processed = ""  # no try was ever reported: the summaries have their headers only
    by_process, by_node = job_summaries(processed, PROCESSED_COLUMNS)
    write_text(clients, step, PROCESS_SUMMARY, by_process)
    write_text(clients, step, NODE_SUMMARY, by_node)


def copy_to_parent(clients: StorageClients, step: StepRef) -> list[str]:
    """``--copy_logs_to_parent True``: the job's result, error and progress files, copied into the run's
    own log folder ``<run>/logs/<job>/`` (the pipeline's view of its jobs). Returns the names copied."""
    container = clients.container(Container.RUNS)
    overview = [
        name.rsplit("/", 1)[1]
        for name in container.list_blob_names(name_starts_with=blob_path(step, "job_progress_overview."))
    ]
    copied = []
    for name in [*PARENT_FILES, *sorted(overview)]:
        try:
            text = read_text(clients, step, name)
        except ResourceNotFoundError:
            continue
        container.upload_blob(run_logs_path(step.run_id, step.job, name), text.encode(), overwrite=True)
        copied.append(name)
    return copied


class LogUploader:
    """Appends what a node wrote under ``root`` to the step's log blobs, every ``interval`` seconds."""

    def __init__(self, clients: StorageClients, step: StepRef, root: Path, interval: float = 3.0) -> None:
        self._clients = clients
        self._step = step
        self._root = root
        self._interval = interval
        self._offsets: dict[Path, int] = {}
        self._created: set[Path] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="log-uploader", daemon=True)

    def start(self) -> None:
        """Start uploading in a background thread; :meth:`close` does the last pass."""
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and upload everything that is left (whole files, partial lines included)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.upload(final=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.upload()
            except Exception:  # logs must never stop the agent; the next round retries
                logger.warning("uploading logs failed; will retry", exc_info=True)

    def upload(self, *, final: bool = False) -> None:
        """One round: append the new bytes of every file under the root."""
        with self._lock:
            for path in self._files():
                self._upload_file(path, final=final)

    def _files(self) -> Iterable[Path]:
        if not self._root.exists():
            return []
        return sorted(p for p in self._root.rglob("*") if p.is_file())

    def _upload_file(self, path: Path, *, final: bool) -> None:
        offset = self._offsets.get(path, 0)
        size = path.stat().st_size
        if size <= offset:
            if path not in self._created:
                self._blob_for(path)  # an empty file still appears in the tree (created before the exit)
            return
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(size - offset)
        if not final:
            cut = data.rfind(b"\n")
            if cut < 0:
                return  # wait for a whole line
            data = data[: cut + 1]
        blob = self._blob_for(path)
        for start in range(0, len(data), MAX_APPEND_BYTES):
            blob.append_block(data[start : start + MAX_APPEND_BYTES])
        self._offsets[path] = offset + len(data)

    def _blob_for(self, path: Path) -> BlobClient:
        relative = path.relative_to(self._root).as_posix()
        blob = _blob(self._clients, self._step, relative)
        if path not in self._created:
            _ensure_append_blob(blob)
            self._created.add(path)
        return blob
