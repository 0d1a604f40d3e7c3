"""Entity-group transactions without the SDK's MIME machinery: the agent's hot write path.

``TableClient.submit_transaction`` builds the ``$batch`` body with the standard library's ``email``
package and parses the answer the same way; for the agent's small entities that costs ~0.4-0.8 ms of
CPU per entity — more than everything else the agent does per mini-batch. :func:`submit_transaction`
keeps the SDK for what matters (each operation's request is built by the SDK's own
``TableBatchOperations``: entity encoding, keys, ETag conditions; the request is signed and retried
by the table client's own pipeline) and only writes the ``multipart/mixed`` envelope and reads the
answer with plain byte operations — the format of "Performing entity group transactions" in the Table
service REST reference. Same arguments, same result (a metadata dict with the ETag per operation),
same errors (:class:`~azure.data.tables.TableTransactionError` with the failing operation's index).

If the SDK's internals this relies on move, it falls back to ``TableClient.submit_transaction``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableClient, TableTransactionError

logger = logging.getLogger(__name__)

CRLF = b"\r\n"


def submit_transaction(table: TableClient, operations: Iterable[Sequence[Any]]) -> list[Mapping[str, Any]]:
    """Commit ``operations`` (``("create" | "update" | "upsert" | "delete", entity[, kwargs])``) atomically.

    Returns:
        One metadata mapping per operation, in order (``{"etag": ...}`` when the service sent one).

    Raises:
        TableTransactionError: an operation was refused (``index`` names it); nothing was written.
        HttpResponseError: the service refused the whole request.
    """
    operations = list(operations)
    try:
        from azure.core.rest import HttpRequest
        from azure.data.tables._table_batch import TableBatchOperations

        generated = table._client  # the table client's generated client (pipeline, config)
        batch = TableBatchOperations(
            config=generated._config,
            endpoint=f"{table.scheme}://{table._primary_hostname}",
            table_name=table.table_name,
            is_cosmos_endpoint=table._cosmos_endpoint,
        )
    except (ImportError, AttributeError):  # pragma: no cover - depends on the SDK version
        logger.debug("lean transactions unavailable in this SDK; using submit_transaction")
        return list(table.submit_transaction(operations))  # type: ignore[arg-type]
    if not operations:
        return []
    endpoint = f"{table.scheme}://{table._primary_hostname}"
    requests: list[Any] = []
    for operation in operations:
        if _plain_create(operation):
            batch._verify_partition_key(operation[1])  # one partition per transaction, as the SDK checks
            requests.append(_create_part(endpoint, table.table_name, generated._config.version, operation[1]))
        else:
            batch.add_operation(operation)  # type: ignore[arg-type]
            requests.append(batch.requests[-1])
    body, boundary = encode_batch(requests)
    request = HttpRequest(
        method="POST",
        url=f"{table.scheme}://{table._primary_hostname}/$batch",
        headers={
            "x-ms-version": generated._config.version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={boundary}",
            "Accept": "application/json",
        },
        content=body,
    )
    response = generated.send_request(request, stream=True)
    if response.status_code != 202:
        raise HttpResponseError(
            message=f"the transaction was refused (HTTP {response.status_code}): {response.text()[:500]}",
            response=response,
        )
    parts = decode_batch_response(response.headers.get("Content-Type", ""), response.read())
    for status, _headers, payload in parts:
        if not 200 <= status < 300:
            raise _transaction_error(status, payload)
    return [{"etag": headers["etag"]} if "etag" in headers else {} for _status, headers, _payload in parts]


@dataclass(frozen=True)
class _Part:
    """One operation of a changeset, as ``encode_batch`` reads it (what an SDK request offers)."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes


def _plain_create(operation: Sequence[Any]) -> bool:
    """An insert without options: the agent's records (built here, the SDK's way, without its request
    objects); anything else is built by the SDK."""
    kind = operation[0]
    return len(operation) == 2 and str(getattr(kind, "value", kind)).lower() == "create"


def _create_part(endpoint: str, table_name: str, version: str, entity: Mapping[str, Any]) -> _Part:
    from azure.data.tables._serialize import _add_entity_properties

    content = json.dumps(_add_entity_properties(entity)).encode()
    headers = {
        "Content-Type": "application/json",
        "x-ms-version": version,
        "DataServiceVersion": "3.0",
        "Accept": "application/json;odata=minimalmetadata",
    }
    return _Part("POST", f"{endpoint}/{quote(table_name)}", headers, content)


def encode_batch(requests: Sequence[Any]) -> tuple[bytes, str]:
    """The ``multipart/mixed`` body of one changeset holding ``requests``, and its batch boundary."""
    batch = f"batch_{uuid.uuid4()}"
    changeset = f"changeset_{uuid.uuid4()}"
    date = formatdate(usegmt=True)
    out = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n".encode()]
    for position, request in enumerate(requests):
        content = request.content if isinstance(request.content, bytes) else (request.content or b"")
        if isinstance(content, str):
            content = content.encode()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("x-ms-date", "date")}
        headers["Content-Length"] = str(len(content))
        headers["x-ms-date"] = headers["Date"] = date
        lines = [f"{request.method} {request.url} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        out.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {position}\r\n\r\n".encode()
        )
        out.append("\r\n".join(lines).encode() + CRLF + CRLF + content + CRLF)
    out.append(f"--{changeset}--\r\n\r\n--{batch}--\r\n".encode())
    return b"".join(out), batch


def decode_batch_response(content_type: str, body: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """``(status, headers with lower-case names, body)`` of every operation answer in a batch response.

    Raises:
        HttpResponseError: the response is not a multipart batch answer.
    """
    parts: list[tuple[int, dict[str, str], bytes]] = []
    for part_headers, part_body in _multipart(content_type, body):
        inner_type = part_headers.get("content-type", "")
        if inner_type.startswith("multipart/mixed"):
            parts += decode_batch_response(inner_type, part_body)
        elif inner_type.startswith("application/http"):
            parts.append(_http_response(part_body))
        else:
            raise HttpResponseError(message=f"unexpected part in a batch response: {inner_type!r}")
    return parts


def _multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    boundary = _boundary(content_type)
    delimiter = b"--" + boundary.encode()
    sections = body.split(delimiter)
    parts = []
    for section in sections[1:]:
        if section.startswith(b"--"):
            break  # the closing delimiter
        head, _, payload = section.removeprefix(CRLF).partition(CRLF + CRLF)
        parts.append((_headers(head), payload.removesuffix(CRLF)))
    return parts


def _boundary(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    raise HttpResponseError(message=f"a batch response without a multipart boundary: {content_type!r}")


def _headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def _http_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, payload = data.partition(CRLF + CRLF)
    status_line, _, header_block = head.partition(CRLF)
    fields = status_line.split(b" ", 2)
    if len(fields) < 2 or not fields[1].isdigit():
        raise HttpResponseError(message=f"unexpected status line in a batch response: {status_line[:100]!r}")
    return int(fields[1]), _headers(header_block), payload.rstrip(CRLF)


def _transaction_error(status: int, payload: bytes) -> TableTransactionError:
    """The SDK's error for a refused operation: ``index`` comes from the ``"<index>:..."`` message."""
    code, message = "", payload.decode("utf-8", errors="replace")[:1000]
    try:
        error = json.loads(payload)["odata.error"]
        code, message = error.get("code", ""), error["message"]["value"]
    except (ValueError, KeyError, TypeError):
        pass
    text = f"{message}\nErrorCode:{code}" if code else message
    error = TableTransactionError(message=text)
    error.status_code = status
    error.error_code = code or None  # type: ignore[attr-defined]  # what the SDK's own errors carry
    return error
