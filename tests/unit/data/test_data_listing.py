"""Parsing streamed List Blobs responses: fields, escapes, chunk boundaries, the next marker."""

from __future__ import annotations

from shared.data.listing import _Page

RESPONSE = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<EnumerationResults ServiceEndpoint="http://x/" ContainerName="c">'
    b"<Prefix>p/</Prefix><MaxResults>3</MaxResults><Blobs>"
    b"<Blob><Name>p/a &amp; b &lt;1&gt;.txt</Name><Properties><Creation-Time>Sat, 21 Nov 2026 08:00:00 GMT"
    b"</Creation-Time><Last-Modified>Sat, 21 Nov 2026 08:00:00 GMT</Last-Modified><Etag>0x1</Etag>"
    b"<Content-Length>12</Content-Length><BlobType>BlockBlob</BlobType></Properties><OrMetadata /></Blob>"
    b'<Blob><Name Encoded="true">p%2Fbad%EF%BF%BEname</Name><Properties><Content-Length>0</Content-Length>'
    b"<Last-Modified>Sat, 21 Nov 2026 08:00:01 GMT</Last-Modified></Properties></Blob>"
    b"<Blob><Name>p/\xc3\xbc.txt</Name><Properties>"
    b"<Last-Modified>Sat, 21 Nov 2026 08:00:00 GMT</Last-Modified>"
    b"<Content-Length>7</Content-Length></Properties></Blob>"
    b"</Blobs><NextMarker>2!72!MDAwMDA&amp;x</NextMarker></EnumerationResults>"
)
EPOCH = 1_795_248_000  # Sat, 21 Nov 2026 08:00:00 GMT


def parse(chunk_size: int) -> tuple[list[tuple[str, int, int]], str | None]:
    page = _Page({})
    chunks = [RESPONSE[i : i + chunk_size] for i in range(0, len(RESPONSE), chunk_size)]
    return list(page.parse(chunks)), page.next_marker


def test_fields_escapes_and_marker() -> None:
    blobs, marker = parse(len(RESPONSE))
    assert blobs == [
        ("p/a & b <1>.txt", 12, EPOCH),
        ("p/bad\ufffename", 0, EPOCH + 1),
        ("p/ü.txt", 7, EPOCH),
    ]
    assert marker == "2!72!MDAwMDA&x"


def test_any_chunking_gives_the_same_result() -> None:
    whole = parse(len(RESPONSE))
    for size in (1, 7, 64, 1000):
        assert parse(size) == whole


def test_the_last_page_has_no_marker() -> None:
    page = _Page({})
    assert list(page.parse([b"<EnumerationResults><Blobs /><NextMarker /></EnumerationResults>"])) == []
    assert page.next_marker is None
