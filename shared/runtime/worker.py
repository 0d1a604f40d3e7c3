"""A worker process: imports the entry script, calls ``init()`` once, ``run()`` per batch, ``shutdown()``.

Forked by the agent's fork server (:mod:`shared.runtime.workerpool`), which has already imported the
heavy modules, so a worker — and a replacement after a crash or a timeout — starts in milliseconds
plus whatever ``init()`` takes. :func:`forked_main` then makes the process its own: a new session (so
a kill reaches anything it starts), its working directory, its environment (``AZUREML_BI_OUTPUT_PATH``,
the job's ``environment_variables``, ``CUDA_VISIBLE_DEVICES``), stdout/stderr redirected to the user
log files, and ``sys.argv`` = the entry script's path followed by the program arguments.

Loader threads materialise the next mini-batches (download / read their byte ranges), two at a time,
while the current ``run()`` executes, so data loading overlaps compute and small downloads overlap each
other; they are handed to ``run()`` in the order the agent sent them. After ``run()`` returns, the worker
checks the result (list, tuple or DataFrame), counts items, stages the rows as one output block when
``append_row_to`` is set, and reports one ``result`` line. An exception is reported, its full traceback
appended to ``logs/user/error/<node>/<process>.txt``; the worker then goes on with the next mini-batch
(the agent decides about retries). The agent kills a worker whose ``run()`` outlives its timeout.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

from shared.errors import EntryScriptError
from shared.runtime import rows
from shared.runtime.protocol import (
    ErrorCategory,
    EventKind,
    StopOrder,
    TaskOrder,
    WorkerConfig,
    WorkerEvent,
    parse_order,
)

logger = logging.getLogger(__name__)

COMPAT_DIR = Path(__file__).resolve().parent / "compat"
#: Mini-batches loaded at the same time. With one running, at most three are in memory — as with one
#: loader and one loaded in advance — but two downloads overlap their round trips (small files).
LOADERS = 2
Loaded = tuple[TaskOrder, Any, BaseException | None, float]
EXIT_INIT_FAILED = 72
EXIT_ORPHANED = 70


class MiniBatchContext:
    """The second argument of ``run(mini_batch, mini_batch_context)``."""

    def __init__(self, index: int, partition_key_value: dict[str, Any] | None, dataset: Any) -> None:
        self.minibatch_index = index
        self.partition_key_value = partition_key_value or {}
        self.dataset = dataset

    def __repr__(self) -> str:
        return f"MiniBatchContext(minibatch_index={self.minibatch_index}, {self.partition_key_value})"


class Channel:
    """The worker's end of the pipes (writes are serialised: two threads report)."""

    def __init__(self, inbound: Connection, outbound: Connection) -> None:
        self._inbound = inbound
        self._outbound = outbound
        self._lock = threading.Lock()

    def send(self, event: WorkerEvent) -> None:
        """Send one event to the agent (callable from the loader and the run thread alike)."""
        with self._lock:
            self._outbound.send_bytes(event.model_dump_json().encode())

    def orders(self) -> Iterator[TaskOrder | StopOrder]:
        """Orders from the agent until it says stop or goes away."""
        while True:
            try:
                data = self._inbound.recv_bytes()
            except (EOFError, OSError):
                return
            yield parse_order(data.decode())


def load_entry_script(code_dir: Path, entry_script: str) -> ModuleType:
    """Import the entry script as a module named after its file (like Azure ML does)."""
    path = (code_dir / entry_script).resolve()
    if not path.is_file():
        raise EntryScriptError(f"entry script {entry_script} not found in the code folder", path=str(path))
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EntryScriptError(f"cannot import entry script {entry_script}", path=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "run", None)):
        raise EntryScriptError(f"entry script {entry_script} does not define run(mini_batch)", path=str(path))
    return module


def wants_context(run: Any) -> bool:
    """True when ``run`` accepts a second positional argument (``mini_batch_context``)."""
    try:
        parameters = list(inspect.signature(run).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)


class Worker:
    """The loop of one worker process."""

    def __init__(self, config: WorkerConfig, channel: Channel) -> None:
        self.config = config
        self.channel = channel
        self.module: ModuleType | None = None
        # Loads in progress or done, in the order the agent sent them (None: no more work).
        self._loaded: queue.Queue[Future[Loaded] | None] = queue.Queue(maxsize=LOADERS)
        self._reader: Any = None
        self._clients: Any = None
        self._with_context: bool | None = None

    # --- start-up -----------------------------------------------------------------------------
    def start(self) -> bool:
        """Import the entry script and call ``init()``; False (reported) when that fails."""
        config = self.config
        code_dir = Path(config.code_dir)
        sys.path.insert(0, str((code_dir / config.entry_script).resolve().parent))
        sys.path.insert(1, str(code_dir))
        sys.path.append(str(COMPAT_DIR))
        sys.argv = [str(code_dir / config.entry_script), *config.argv]
        import azureml_user.parallel_run as compat  # type: ignore[import-not-found]

        compat._configure(
            node_id=str(config.node_id),
            process_name=config.process_name,
            log_dir=config.entry_script_log_dir,
            entry_script_dir=str((code_dir / config.entry_script).resolve().parent),
            working_dir=config.working_dir,
            logging_level=config.logging_level,
        )
        try:
            self.module = load_entry_script(code_dir, config.entry_script)
            init = getattr(self.module, "init", None)
            if callable(init):
                init()
        except BaseException as exc:  # noqa: BLE001 - anything from user code is reported, then we exit
            self._log_error("init()", exc)
            self.channel.send(
                WorkerEvent(
                    event=EventKind.INIT_FAILED,
                    ok=False,
                    error_category=ErrorCategory.RUN_EXCEPTION,
                    error_message=_describe(exc),
                )
            )
            return False
        from shared.runtime.inputs import BatchReader
        from shared.settings import get_settings
        from shared.storage import StorageClients

        self._clients = StorageClients.from_settings(get_settings()).with_resolved_environment()
        self._reader = BatchReader(self._clients, Path(config.manifest_file), Path(config.cache_dir))
        self.channel.send(WorkerEvent(event=EventKind.READY))
        return True

    # --- the loop -----------------------------------------------------------------------------
    def serve(self) -> None:
        """Run mini-batches until the agent says stop (or goes away)."""
        loader = threading.Thread(target=self._load_loop, name="loader", daemon=True)
        loader.start()
        while True:
            future = self._loaded.get()
            if future is None:
                break
            order, batch, load_error, load_seconds = future.result()
            self._run_one(order, batch, load_error, load_seconds)
        shutdown = getattr(self.module, "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception as exc:  # noqa: BLE001 - user code: reported in the error log
                self._log_error("shutdown()", exc)
        self.channel.send(WorkerEvent(event=EventKind.SHUTDOWN_DONE))

    def _load_loop(self) -> None:
        """Read orders and load them, :data:`LOADERS` at a time, handing them over in order."""
        with ThreadPoolExecutor(max_workers=LOADERS, thread_name_prefix="loader") as loaders:
            for order in self.channel.orders():
                if isinstance(order, StopOrder):
                    break
                self._loaded.put(loaders.submit(self._load, order))  # waits while LOADERS are unclaimed
        self._loaded.put(None)

    def _load(self, order: TaskOrder) -> Loaded:
        began = time.perf_counter()
        try:
            batch, error = self._reader.materialize(order.mini_batch), None
        except Exception as exc:  # noqa: BLE001 - any load failure fails this try, reported
            batch, error = None, exc
        return order, batch, error, time.perf_counter() - began

    def _run_one(self, order: TaskOrder, batch: Any, load_error: BaseException | None, load_s: float) -> None:
        report = {"index": order.index, "attempt": order.attempt, "load_seconds": load_s}
        if load_error is not None:
            self._log_error(f"loading mini-batch {order.index}", load_error)
            self._fail(report, ErrorCategory.LOAD_ERROR, load_error)
            return
        items = int(batch.items)
        report["items"] = items
        context = MiniBatchContext(order.index, batch.partition_key_value, getattr(batch, "dataset", None))
        run = self.module.run  # type: ignore[union-attr]
        if self._with_context is None:
            self._with_context = wants_context(run)
        started_at = time.time()
        self.channel.send(WorkerEvent(event=EventKind.STARTED, index=order.index, attempt=order.attempt))
        began = time.perf_counter()
        try:
            result = run(batch.data, context) if self._with_context else run(batch.data)
        except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt from run() fail the try
            report |= {"run_seconds": time.perf_counter() - began, "started_at": started_at}
            self._log_error(f"run() on mini-batch {order.index}", exc)
            self._fail(report, ErrorCategory.RUN_EXCEPTION, exc)
            return
        report |= {"run_seconds": time.perf_counter() - began, "started_at": started_at}
        try:
            returned = rows.result_length(result)
        except EntryScriptError as exc:
            self._log_error(f"run() on mini-batch {order.index}", exc, with_traceback=False)
            self._fail(report, ErrorCategory.RUN_RESULT_INVALID, exc)
            return
        if returned > items:
            logger.warning(
                "run() returned %d results for mini-batch %d of %d items; counting %d as succeeded",
                returned,
                order.index,
                items,
                items,
            )
        block_id, header = "", ""
        append = self.config.append_row
        if append is not None and returned:
            try:
                data, header = rows.format_rows(
                    result, append.format, dataframe_header=append.dataframe_header
                )
                if data:
                    block_id = self._stage(order.index, data)
            except Exception as exc:  # noqa: BLE001 - str() of user objects or storage: fails the try
                self._log_error(f"writing the rows of mini-batch {order.index}", exc)
                self._fail(report, ErrorCategory.OUTPUT_ERROR, exc)
                return
        self.channel.send(
            WorkerEvent(
                event=EventKind.RESULT,
                returned=returned,
                block_id=block_id,
                header=header,
                finished_at=time.time(),
                **report,
            )
        )

    def _stage(self, index: int, data: bytes) -> str:
        from shared.runtime.appendrow import OutputTarget, stage_rows

        append = self.config.append_row
        assert append is not None
        target = OutputTarget(
            final=append.final,
            total_mini_batches=append.total_mini_batches,
            blocks_per_blob=append.blocks_per_blob,
            staging_prefix=append.staging_prefix,
        )
        return stage_rows(self._clients, target, index, data)

    def _fail(self, report: dict[str, Any], category: ErrorCategory, exc: BaseException) -> None:
        self.channel.send(
            WorkerEvent(
                event=EventKind.RESULT,
                ok=False,
                error_category=category,
                error_message=_describe(exc),
                finished_at=time.time(),
                **report,
            )
        )

    def _log_error(self, where: str, exc: BaseException, *, with_traceback: bool = True) -> None:
        path = Path(self.config.error_log)
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        text = "".join(traceback.format_exception(exc)) if with_traceback else f"{_describe(exc)}\n"
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} UTC {self.config.process_name}: error in {where}\n{text}\n")
        logger.error("error in %s: %s", where, _describe(exc))


def _describe(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, EntryScriptError) else str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def watch_parent(interval: float = 1.0) -> None:
    """Exit when the agent that started this worker is gone (its pipes alone do not stop a hung run())."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def forked_main(
    *,
    config_path: str,
    inbound: Connection,
    outbound: Connection,
    stdout_path: str,
    stderr_path: str,
    working_dir: str,
    environment: dict[str, str],
) -> None:
    """Entry point of a forked worker: become an independent process, then serve the agent."""
    os.setsid()
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(working_dir)
    _redirect(stdout_path, stderr_path)
    from shared.settings import get_settings

    get_settings.cache_clear()
    config = WorkerConfig.model_validate_json(Path(config_path).read_text())
    logging.basicConfig(
        level=config.logging_level,
        stream=sys.stdout,
        format="%(asctime)s|%(name)s|%(levelname)s|%(process)d|%(message)s",
        force=True,
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    watch_parent()
    worker = Worker(config, Channel(inbound, outbound))
    if not worker.start():
        sys.exit(EXIT_INIT_FAILED)
    worker.serve()
    sys.stdout.flush()
    sys.stderr.flush()


def _redirect(stdout_path: str, stderr_path: str) -> None:
    """Point fds 0/1/2 at /dev/null and the log files, and rebuild sys.stdout/sys.stderr over them."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, stdout_path), (2, stderr_path)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(handle, fd)
        os.close(handle)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
