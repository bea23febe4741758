"""A WriteRequest as the switch received it: header parsed, updates left as bytes.

Parsing a request of a thousand flow entries costs about a microsecond per
update, as much as the write fast path (:mod:`p4ctl.switch.exact_writes`)
then takes to apply one. That path reads plain updates from the request's
bytes, so only the header is parsed up front, and the updates only when one
of them is not plain: then the whole request is parsed before any update is
applied, so a malformed request is refused whole, as it was when the gRPC
layer parsed it.
"""

from __future__ import annotations

from p4.v1 import p4runtime_pb2

from p4ctl.p4rt.wire import field_number, split_field

__all__ = ["ReceivedWrite"]

_UPDATES = field_number(p4runtime_pb2.WriteRequest.DESCRIPTOR, "updates")


class ReceivedWrite:
    """One WriteRequest: :attr:`header`, and its updates by index."""

    __slots__ = ("_request", "data", "header", "spans")

    def __init__(self, data: bytes) -> None:
        """Read the header of a serialized request (DecodeError if it is not one)."""
        self.data = data
        self._request: p4runtime_pb2.WriteRequest | None = None
        #: each update's span of :attr:`data`; None if the bytes could not be walked
        self.spans: list[tuple[int, int]] | None = None
        split = split_field(data, _UPDATES)
        if split is None:
            self.header = self.parse()
        else:
            header, self.spans = split
            #: the request's fields other than its updates (all of them if
            #: the bytes could not be walked)
            self.header = p4runtime_pb2.WriteRequest.FromString(header)

    @classmethod
    def of(cls, request: p4runtime_pb2.WriteRequest) -> ReceivedWrite:
        """A request held as a message (an in-process caller's)."""
        received = cls(request.SerializeToString())
        received._request = request
        return received

    def parse(self) -> p4runtime_pb2.WriteRequest:
        """The whole request, parsed once (DecodeError if it is malformed)."""
        if self._request is None:
            self._request = p4runtime_pb2.WriteRequest.FromString(self.data)
        return self._request

    def __len__(self) -> int:
        return len(self.spans) if self.spans is not None else len(self.parse().updates)

    def update(self, i: int) -> p4runtime_pb2.Update:
        """Update ``i``, parsed from its own bytes unless the request was."""
        if self._request is not None or self.spans is None:
            return self.parse().updates[i]
        start, end = self.spans[i]
        return p4runtime_pb2.Update.FromString(self.data[start:end])
