"""The lean entity-group transaction envelope: encoding a changeset, reading the service's answer."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.data.tables import TableTransactionError

from shared.runtime.transactions import _transaction_error, decode_batch_response, encode_batch

SUCCESS = (
    b"--batchresponse_1\r\n"
    b"Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    b"--changesetresponse_2\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nDataServiceVersion: 3.0;\r\n"
    b"ETag: W/\"datetime'2026-01-01T00%3A00%3A00.1Z'\"\r\n\r\n"
    b'{"PartitionKey":"p","RowKey":"a"}\r\n'
    b"--changesetresponse_2\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 204 No Content\r\netag: W/\"datetime'2026-01-01T00%3A00%3A00.2Z'\"\r\n\r\n\r\n"
    b"--changesetresponse_2--\r\n"
    b"--batchresponse_1--\r\n"
)

REFUSED = (
    b"--batchresponse_1\r\n"
    b"Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"
    b"--changesetresponse_2\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"HTTP/1.1 409 Conflict\r\nContent-ID: 2\r\n"
    b"Content-Type: application/json;odata=minimalmetadata;charset=utf-8\r\n\r\n"
    b'{"odata.error":{"code":"EntityAlreadyExists","message":{"lang":"en-US",'
    b'"value":"1:The specified entity already exists."}}}\r\n'
    b"--changesetresponse_2--\r\n"
    b"--batchresponse_1--\r\n"
)


def test_a_changeset_holds_each_request_with_its_headers_and_body() -> None:
    requests = [
        HttpRequest(
            "POST", "http://t/table", headers={"Content-Type": "application/json"}, content=b'{"a": 1}'
        ),
        HttpRequest("PATCH", "http://t/table(PartitionKey='p',RowKey='b')", content=b'{"b": "\\u00e9"}'),
    ]
    body, boundary = encode_batch(requests)
    assert boundary.startswith("batch_")
    [(headers, changeset)] = _parts(body, boundary)
    changeset_type = headers["content-type"]
    assert changeset_type.startswith("multipart/mixed; boundary=changeset_")
    inner = _parts(changeset, changeset_type.split("boundary=")[1])
    assert [h["content-id"] for h, _ in inner] == ["0", "1"]
    assert all(h["content-type"] == "application/http" for h, _ in inner)
    first = inner[0][1].decode()
    assert first.startswith("POST http://t/table HTTP/1.1\r\n")
    assert "Content-Length: 8\r\n" in first
    assert "x-ms-date: " in first
    assert first.endswith('\r\n\r\n{"a": 1}')
    assert inner[1][1].decode().startswith("PATCH http://t/table(PartitionKey='p',RowKey='b') HTTP/1.1\r\n")


def test_the_answer_gives_every_operation_its_status_and_etag() -> None:
    parts = decode_batch_response("multipart/mixed; boundary=batchresponse_1", SUCCESS)
    assert [status for status, _, _ in parts] == [201, 204]
    assert parts[0][1]["etag"] == "W/\"datetime'2026-01-01T00%3A00%3A00.1Z'\""
    assert parts[1][1]["etag"] == "W/\"datetime'2026-01-01T00%3A00%3A00.2Z'\""
    assert parts[0][2] == b'{"PartitionKey":"p","RowKey":"a"}'


def test_a_refused_operation_becomes_the_sdks_error_naming_its_index() -> None:
    parts = decode_batch_response('multipart/mixed; boundary="batchresponse_1"', REFUSED)
    [(status, _, payload)] = parts
    error = _transaction_error(status, payload)
    assert isinstance(error, TableTransactionError)
    assert error.index == 1
    assert error.status_code == 409
    assert error.error_code == "EntityAlreadyExists"
    assert "already exists" in str(error)


def test_an_error_without_a_json_body_keeps_its_text() -> None:
    error = _transaction_error(500, b"upstream failure")
    assert error.index == 0
    assert "upstream failure" in str(error)


def test_a_response_that_is_not_a_batch_answer_is_refused_with_what_it_was() -> None:
    with pytest.raises(HttpResponseError, match="without a multipart boundary"):
        decode_batch_response("application/json", b"{}")
    odd = b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
    with pytest.raises(HttpResponseError, match="unexpected part in a batch response: 'text/plain'"):
        decode_batch_response("multipart/mixed; boundary=b", odd)
    broken = b"--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 abc\r\n\r\n\r\n--b--\r\n"
    with pytest.raises(HttpResponseError, match="unexpected status line"):
        decode_batch_response("multipart/mixed; boundary=b", broken)


def _parts(body: bytes, boundary: str) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart body by its boundary (headers lower-cased, payload without the final CRLF)."""
    boundary = boundary.strip('"')
    sections = body.split(b"--" + boundary.encode())
    assert sections[-1].startswith(b"--"), "the body ends with the closing delimiter"
    parts = []
    for section in sections[1:-1]:
        head, _, payload = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        parts.append((headers, payload.removesuffix(b"\r\n")))
    return parts


def test_the_envelope_is_standard_mime() -> None:
    """The standard library's MIME reader (what the SDK uses) sees one changeset of two requests."""
    import email.parser
    import email.policy

    requests = [HttpRequest("POST", "http://t/table", content=b"{}"), HttpRequest("POST", "http://t/table")]
    body, boundary = encode_batch(requests)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode() + body
    )
    [changeset] = list(message.iter_parts())
    assert [part.get_content_type() for part in changeset.iter_parts()] == ["application/http"] * 2
