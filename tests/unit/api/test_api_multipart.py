"""multipart/form-data parsing: what real clients send parses; malformed bodies are clear errors."""

from __future__ import annotations

import httpx
import pytest

from shared.api.multipart import MAX_PARTS, boundary_of, parse_multipart
from shared.errors import ApiError


def _encode(**kwargs: object) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://127.0.0.1/", **kwargs)  # type: ignore[arg-type]
    return request.read(), request.headers["content-type"]


def test_files_and_fields_from_httpx_parse_in_order() -> None:
    zip_bytes = b"PK\x03\x04\r\n\r\n--not-a-boundary\r\n" + bytes(range(256))
    body, content_type = _encode(
        data={"set": ["inputs.a=1", "inputs.b=x=y"]},
        files={
            "spec": ("pipeline.yml", b"type: pipeline\n", "application/yaml"),
            "snapshot": ("c.zip", zip_bytes),
        },
    )
    parts = parse_multipart(body, content_type)
    assert [(p.name, p.filename) for p in parts] == [
        ("set", None),
        ("set", None),
        ("spec", "pipeline.yml"),
        ("snapshot", "c.zip"),
    ]
    assert parts[1].text() == "inputs.b=x=y"
    assert parts[2].content_type == "application/yaml"
    assert parts[3].data == zip_bytes


def test_quoted_boundary_and_bare_parameters() -> None:
    body = b"--abc\r\nContent-Disposition: form-data; name=spec\r\n\r\nhello\r\n--abc--\r\n"
    (part,) = parse_multipart(body, 'multipart/form-data; boundary="abc"')
    assert (part.name, part.data) == ("spec", b"hello")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"no boundary here", "does not contain its boundary"),
        (b"--abc\r\nContent-Disposition: form-data; name=spec\r\n\r\nhello", "truncated"),
        (b"--abcX", "not followed by a line break"),
        (b"--abc\r\nContent-Disposition: form-data; name=spec\r\nhello\r\n--abc--", "no blank line"),
        (b"--abc\r\nbroken header\r\n\r\nx\r\n--abc--", "malformed header line"),
        (
            b"--abc\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--abc--",
            "not 'Content-Disposition: form-data'",
        ),
        (b"--abc\r\nContent-Disposition: form-data\r\n\r\nx\r\n--abc--", "has no field name"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(ApiError, match=message):
        parse_multipart(body, "multipart/form-data; boundary=abc")


def test_missing_boundary_parameter() -> None:
    with pytest.raises(ApiError, match="without a boundary"):
        boundary_of("multipart/form-data")


def test_too_many_parts() -> None:
    part = b"--abc\r\nContent-Disposition: form-data; name=set\r\n\r\na=b\r\n"
    body = part * (MAX_PARTS + 2) + b"--abc--"
    with pytest.raises(ApiError, match="more than"):
        parse_multipart(body, "multipart/form-data; boundary=abc")


def test_non_utf8_text_field() -> None:
    (part,) = parse_multipart(
        b"--abc\r\nContent-Disposition: form-data; name=spec\r\n\r\n\xff\xfe\r\n--abc--",
        "multipart/form-data; boundary=abc",
    )
    with pytest.raises(ApiError, match="'spec' is not UTF-8"):
        part.text()
