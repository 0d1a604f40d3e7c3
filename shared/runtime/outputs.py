"""A node's local output folders and their upload to the outputs' blob locations.

An entry script writes files into the paths it got for ``${{outputs.x}}`` (and into
``AZUREML_BI_OUTPUT_PATH`` / ``EntryScript().output_dir``). The agent uploads new and changed files
before it records the mini-batches that produced them as settled, so a mini-batch counted as succeeded
never has its files only on a node that may die. The ``append_row_to`` file itself is never uploaded from
disk: it is assembled from staged blocks (:mod:`shared.runtime.appendrow`).
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from shared.plan import BlobData, DataType, OutputPlan
from shared.storage import StorageClients

logger = logging.getLogger(__name__)


@dataclass
class LocalOutput:
    """One output: the local folder the script writes to and where its files go."""

    name: str
    local_dir: Path
    location: BlobData
    is_file: bool = False
    skip: set[str] = field(default_factory=set)

    @property
    def placeholder_path(self) -> Path:
        """What ``${{outputs.<name>}}`` becomes: the folder, or the file for a ``uri_file`` output."""
        if self.is_file:
            return self.local_dir / posixpath.basename(self.location.path)
        return self.local_dir


def local_output(name: str, plan: OutputPlan, root: Path) -> LocalOutput:
    """Output ``name`` of a job, written under ``root/<name>`` on this node."""
    return LocalOutput(
        name=name, local_dir=root / name, location=plan.location, is_file=plan.type is DataType.URI_FILE
    )


class OutputSync:
    """Uploads files that changed since the last pass (by size and modification time)."""

    def __init__(self, clients: StorageClients, outputs: list[LocalOutput]) -> None:
        self._clients = clients
        self._outputs = outputs
        self._seen: dict[Path, tuple[int, int]] = {}
        for output in outputs:
            output.local_dir.mkdir(parents=True, exist_ok=True)

    def sync(self) -> int:
        """One pass; returns how many files were uploaded."""
        uploaded = 0
        for output in self._outputs:
            for path in sorted(p for p in output.local_dir.rglob("*") if p.is_file()):
                relative = path.relative_to(output.local_dir).as_posix()
                if relative in output.skip or path.name.endswith(".fanout-tmp"):
                    continue
                stat = path.stat()
                signature = (stat.st_size, stat.st_mtime_ns)
                if self._seen.get(path) == signature:
                    continue
                self._upload(output, relative, path)
                self._seen[path] = signature
                uploaded += 1
        return uploaded

    def _upload(self, output: LocalOutput, relative: str, path: Path) -> None:
        if output.is_file and relative == posixpath.basename(output.location.path):
            blob_name = output.location.path
        elif output.is_file:
            blob_name = posixpath.join(posixpath.dirname(output.location.path), relative)
        else:
            blob_name = f"{output.location.path.rstrip('/')}/{relative}"
        client = self._clients.blob.get_blob_client(output.location.container, blob_name)
        with path.open("rb") as handle:
            client.upload_blob(handle, overwrite=True)
        logger.debug("uploaded %s to %s/%s", path, output.location.container, blob_name)
