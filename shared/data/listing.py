"""Flat blob listing that streams: names, sizes and times, in bounded memory.

The SDK's ``list_blobs`` builds a ``BlobProperties`` object per blob, and every SDK listing first parses
a whole page (5,000 blobs, ~6 MB of XML) into an element tree. Planning 100,000 mini-batches needs
only three fields per blob, so this module sends the same *List Blobs* request through the container
client's own pipeline (same authentication: key, SAS or token) with a streamed response, and reads
the XML incrementally, dropping each ``<Blob>`` element once its fields are taken.

It relies on the SDK's generated request builder; if a future SDK moves it, listing falls back to
``list_blobs`` (slower, same results).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, map_error
from azure.storage.blob import ContainerClient

logger = logging.getLogger(__name__)

#: Blobs per List Blobs request (the service's maximum).
PAGE_SIZE = 5000


def iter_blobs(container: ContainerClient, prefix: str) -> Iterator[tuple[str, int, int]]:
    """``(name, size, modified)`` of every blob whose name starts with ``prefix``, in name order.

    Raises:
        ResourceNotFoundError: the container does not exist.
        HttpResponseError: the service refused the listing.
    """
    try:
        from azure.storage.blob._generated.operations._container_operations import (
            build_list_blob_flat_segment_request,
        )

        generated = container._build_generated_client()  # type: ignore[attr-defined]
        config, client = generated.container._config, generated.container._client
    except (ImportError, AttributeError):  # pragma: no cover - depends on the SDK version
        logger.debug("streamed listing unavailable in this SDK; using list_blobs")
        for blob in container.list_blobs(name_starts_with=prefix or None):
            yield blob.name, int(blob.size), int(blob.last_modified.timestamp())
        return
    marker: str | None = None
    stamps: dict[str, int] = {}
    while True:
        request = build_list_blob_flat_segment_request(
            url=config.url,
            version=config.version,
            prefix=prefix or None,
            marker=marker,
            maxresults=PAGE_SIZE,
            restype="container",
            comp="list",
        )
        request.url = client.format_url(request.url)
        response = client._pipeline.run(request, stream=True).http_response
        try:
            if response.status_code != 200:
                response.read()
                map_error(
                    status_code=response.status_code,
                    response=response,
                    error_map={404: ResourceNotFoundError},
                )
                raise HttpResponseError(response=response)
            page = _Page(stamps)
            yield from page.parse(response.iter_bytes())
            marker = page.next_marker
        finally:
            response.close()
        if not marker:
            return


class _Page:
    """One List Blobs response, parsed incrementally."""

    def __init__(self, stamps: dict[str, int]) -> None:
        self.next_marker: str | None = None
        self._stamps = stamps

    def parse(self, chunks: Iterable[bytes]) -> Iterator[tuple[str, int, int]]:
        parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
        for chunk in chunks:
            parser.feed(chunk)
            yield from self._events(parser)
        parser.close()
        yield from self._events(parser)

    def _events(self, parser: ET.XMLPullParser[ET.Element]) -> Iterator[tuple[str, int, int]]:
        for event in parser.read_events():
            element = event[-1]
            if not isinstance(element, ET.Element):
                continue
            tag = element.tag
            if tag == "Blob":
                yield self._blob(element)
                element.clear()
            elif tag == "NextMarker":
                self.next_marker = element.text or None

    def _blob(self, element: ET.Element) -> tuple[str, int, int]:
        name_element = element.find("Name")
        name = (name_element.text or "") if name_element is not None else ""
        if name_element is not None and name_element.get("Encoded") == "true":
            name = unquote(name)
        size = int(element.findtext("Properties/Content-Length") or 0)
        stamp = element.findtext("Properties/Last-Modified") or ""
        modified = self._stamps.get(stamp)
        if modified is None:
            modified = self._stamps[stamp] = int(parsedate_to_datetime(stamp).timestamp()) if stamp else 0
        return name, size, modified
