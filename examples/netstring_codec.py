"""A codec of your own: netstrings ("5:hello,"), in about 30 lines."""

from collections.abc import Iterator

from wsframed import DecodeError, FrameTooLarge, IncompleteFrame
from wsframed.codecs import Buffer


class NetstringCodec:
    def __init__(self, max_frame_size: int = 64 * 1024):
        self.max_frame_size = max_frame_size

    def encode(self, item: bytes) -> bytes:
        if len(item) > self.max_frame_size:
            raise FrameTooLarge(len(item), self.max_frame_size, local=True)
        return b"%d:%s," % (len(item), item)

    def decoder(self) -> "NetstringDecoder":
        return NetstringDecoder(self.max_frame_size)


class NetstringDecoder:
    def __init__(self, max_frame_size: int):
        self.limit = max_frame_size
        self.buf = bytearray()

    def feed(self, data: Buffer) -> None:
        self.buf += data

    def __iter__(self) -> Iterator[bytes]:
        while (colon := self.buf.find(b":", 0, 21)) >= 0:
            if not self.buf[:colon].isdigit():
                raise DecodeError("netstring length is not a number")
            size = int(self.buf[:colon])
            if size > self.limit:  # refuse at the header, before buffering the body
                raise FrameTooLarge(size, self.limit)
            end = colon + 1 + size
            if len(self.buf) <= end:
                return  # wait for more bytes
            if self.buf[end] != ord(","):
                raise DecodeError("netstring does not end with ','")
            yield bytes(self.buf[colon + 1 : end])
            del self.buf[: end + 1]
        if len(self.buf) > 20:
            raise DecodeError("netstring length has more than 20 digits")

    def feed_eof(self) -> None:
        if self.buf:
            raise IncompleteFrame(len(self.buf))


if __name__ == "__main__":
    codec = NetstringCodec()
    decoder = codec.decoder()
    for chunk in (b"5:hel", b"lo,0:,", b"3:abc,"):
        decoder.feed(chunk)
        for frame in decoder:
            print(frame)
    decoder.feed_eof()
