"""The Content-MD5 of a committed ``append_row_to`` output, so identical outputs look identical.

Step reuse fingerprints data by name, size and Content-MD5 (the ETag when there is no MD5). A block
blob committed with Put Block List gets no Content-MD5 from the service, so two runs writing the same
rows would look different to the jobs downstream. MD5 chains through every byte in order: the digest
of a blob cannot be assembled from the digests of its blocks, and the service computes one only for
single-shot uploads. So :func:`set_content_md5` reads the committed blob once — streamed, from within
the region, constant memory — and stores its MD5 with Set Blob Properties, conditionally on the ETag
it read (a blob changed meanwhile is left without one rather than mislabelled). Outputs larger than
``FANOUT_OUTPUT_MD5_MAX_BYTES`` are left without one: downstream reuse then compares their ETags.
"""

from __future__ import annotations

import hashlib
import logging

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.storage.blob import ContentSettings

from shared.plan import BlobData
from shared.storage import StorageClients

logger = logging.getLogger(__name__)


def set_content_md5(clients: StorageClients, location: BlobData, *, max_bytes: int) -> bool:
    """Store the Content-MD5 of a committed blob (read once, streamed); True when it has one now.

    Idempotent: a blob that has an MD5 keeps it. A blob over ``max_bytes`` (0: never) is left
    without; a blob changed while it was read is left without too (the next finalize tries again).
    """
    client = clients.blob.get_blob_client(location.container, location.path)
    props = client.get_blob_properties()
    if props.content_settings.content_md5:
        return True
    if max_bytes <= 0 or props.size > max_bytes:
        logger.info("not computing the MD5 of %s: %d bytes, more than %d", client.url, props.size, max_bytes)
        return False
    digest = hashlib.md5(usedforsecurity=False)
    try:
        stream = client.download_blob(
            etag=props.etag, match_condition=MatchConditions.IfNotModified, max_concurrency=4
        )
        for chunk in stream.chunks():
            digest.update(chunk)
        current = props.content_settings
        client.set_http_headers(
            ContentSettings(
                content_type=current.content_type,
                content_encoding=current.content_encoding,
                content_language=current.content_language,
                content_disposition=current.content_disposition,
                cache_control=current.cache_control,
                content_md5=bytearray(digest.digest()),
            ),
            etag=props.etag,
            match_condition=MatchConditions.IfNotModified,
        )
    except ResourceModifiedError:
        logger.warning("%s changed while its MD5 was computed; it is left without one", client.url)
        return False
    return True
