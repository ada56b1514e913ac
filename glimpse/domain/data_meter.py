"""Image data counted as it flows in, through the DataMeter port: the domain knows no metrics library.

Bytes count when they arrive, before they are checked or stored, so a fetch cut off half-way counts the part
that came: the figure is the traffic the node took in, as the API's own upload counts are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from glimpse.domain.ports import DataMeter


def counted(chunks: Iterable[bytes], meter: DataMeter | None, operation: str) -> Iterable[bytes]:
    """The same chunks, each one's size told to `meter` as it passes (nothing to do without a meter)."""
    if meter is None:
        return chunks
    return _counting(chunks, meter, operation)


def _counting(chunks: Iterable[bytes], meter: DataMeter, operation: str) -> Iterator[bytes]:
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            if chunk:
                meter.received(operation, len(chunk))
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # a fetch stopped early lets go of its connection now
            close()
