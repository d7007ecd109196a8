"""A pure-Python reader of GGUF headers: metadata and tensor layout, without loading llama.cpp.

The reader checks what llama.cpp would otherwise fail on later, with a one-line :class:`InputError` naming the
file: a missing or empty file, a wrong magic number, an unsupported version, truncated metadata or tensor
infos, tensor data that runs past the end of the file, and counts or lengths too large to be real.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import InputError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

#: Longest metadata string kept in :attr:`GGUFInfo.metadata`; longer strings (and all arrays) are skipped.
MAX_KEPT_STRING = 512
#: Upper bounds that no real model reaches; a header claiming more is treated as corrupt.
MAX_STRING_BYTES = 64 << 20
MAX_KEY_BYTES = 1 << 16
MAX_TENSOR_DIMS = 8

# GGUF metadata value types.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL, _STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(13)
_SCALAR_FORMATS: dict[int, str] = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<?",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}

#: ggml tensor types: (elements per block, bytes per block).
GGML_BLOCK_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # F32
    1: (1, 2),  # F16
    2: (32, 18),  # Q4_0
    3: (32, 20),  # Q4_1
    6: (32, 22),  # Q5_0
    7: (32, 24),  # Q5_1
    8: (32, 34),  # Q8_0
    9: (32, 36),  # Q8_1
    10: (256, 84),  # Q2_K
    11: (256, 110),  # Q3_K
    12: (256, 144),  # Q4_K
    13: (256, 176),  # Q5_K
    14: (256, 210),  # Q6_K
    15: (256, 292),  # Q8_K
    16: (256, 66),  # IQ2_XXS
    17: (256, 74),  # IQ2_XS
    18: (256, 98),  # IQ3_XXS
    19: (256, 50),  # IQ1_S
    20: (32, 18),  # IQ4_NL
    21: (256, 110),  # IQ3_S
    22: (256, 82),  # IQ2_S
    23: (256, 136),  # IQ4_XS
    24: (1, 1),  # I8
    25: (1, 2),  # I16
    26: (1, 4),  # I32
    27: (1, 8),  # I64
    28: (1, 8),  # F64
    29: (256, 56),  # IQ1_M
    30: (1, 2),  # BF16
    34: (256, 54),  # TQ1_0
    35: (256, 66),  # TQ2_0
    39: (32, 17),  # MXFP4
}

#: ``general.file_type`` values (llama.cpp's ``llama_ftype``) and their usual names.
FILE_TYPE_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}
_FILE_TYPE_GUESSED = 1024


@dataclass(frozen=True)
class GGUFInfo:
    """What the header of a GGUF file says about the model inside."""

    path: Path
    version: int
    architecture: str
    name: str | None
    context_length: int | None
    file_type: str | None
    has_chat_template: bool
    chat_template: str | None
    size_bytes: int
    tensor_count: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class _Truncated(Exception):
    pass


class _Reader:
    """Little-endian reads from a memory-mapped file that refuse to read past its end."""

    def __init__(self, buffer: mmap.mmap, size: int) -> None:
        self._buffer = buffer
        self.size = size
        self.position = 0

    @property
    def remaining(self) -> int:
        return self.size - self.position

    def read(self, count: int) -> bytes:
        if count > self.remaining:
            raise _Truncated
        data = self._buffer[self.position : self.position + count]
        self.position += count
        return data

    def skip(self, count: int) -> None:
        if count > self.remaining:
            raise _Truncated
        self.position += count

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if size > self.remaining:
            raise _Truncated
        value = struct.unpack_from(fmt, self._buffer, self.position)[0]
        self.position += size
        return value

    def skip_strings(self, count: int) -> int | None:
        """Skip ``count`` length-prefixed strings; return the first length over the limit, if any."""
        buffer, position, size = self._buffer, self.position, self.size
        unpack_length = struct.Struct("<Q").unpack_from
        for _ in range(count):
            if position + 8 > size:
                raise _Truncated
            (length,) = unpack_length(buffer, position)
            if length > MAX_STRING_BYTES:
                self.position = position
                return int(length)
            position += 8 + length
            if position > size:
                raise _Truncated
        self.position = position
        return None


class _HeaderParser:
    def __init__(self, path: Path, reader: _Reader) -> None:
        self.path = path
        self.reader = reader
        self.where = "header"

    def fail(self, message: str) -> InputError:
        return InputError(self.path, message, where=f"{self.where}, byte {self.reader.position}")

    def string(self, limit: int = MAX_STRING_BYTES) -> bytes:
        length = self.reader.unpack("<Q")
        if length > limit:
            raise self.fail(f"string length {length} is larger than the {limit}-byte limit")
        return self.reader.read(length)

    def text(self, limit: int = MAX_STRING_BYTES) -> str:
        return self.decode(self.string(limit))

    def decode(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"string is not valid UTF-8 ({exc.reason})") from exc

    def value(self, value_type: int, *, keep: bool) -> Any:
        """Read one metadata value; return it when ``keep`` and it is small, else skip it and return None."""
        if value_type in _SCALAR_FORMATS:
            return self.reader.unpack(_SCALAR_FORMATS[value_type])
        if value_type == _STRING:
            length = self.reader.unpack("<Q")
            if length > MAX_STRING_BYTES:
                raise self.fail(f"string length {length} is larger than the {MAX_STRING_BYTES}-byte limit")
            if keep and length <= MAX_KEPT_STRING:
                return self.decode(self.reader.read(length))
            self.reader.skip(length)
            return None
        if value_type == _ARRAY:
            self.skip_array()
            return None
        raise self.fail(f"unknown metadata value type {value_type}")

    def skip_array(self) -> None:
        item_type = self.reader.unpack("<I")
        count = self.reader.unpack("<Q")
        if item_type in _SCALAR_FORMATS:
            item_size = struct.calcsize(_SCALAR_FORMATS[item_type])
            if count * item_size > self.reader.remaining:
                raise self.fail(f"array of {count} items runs past the end of the file")
            self.reader.skip(count * item_size)
        elif item_type == _STRING:
            if count * 8 > self.reader.remaining:
                raise self.fail(f"array of {count} strings runs past the end of the file")
            too_long = self.reader.skip_strings(count)
            if too_long is not None:
                raise self.fail(f"string length {too_long} is larger than the {MAX_STRING_BYTES}-byte limit")
        elif item_type == _ARRAY:
            if count * 12 > self.reader.remaining:
                raise self.fail(f"array of {count} arrays runs past the end of the file")
            for _ in range(count):
                self.skip_array()
        else:
            raise self.fail(f"unknown array item type {item_type}")


def _check_count(parser: _HeaderParser, count: int, what: str, min_bytes_each: int) -> None:
    if count * min_bytes_each > parser.reader.remaining:
        raise parser.fail(f"header claims {count} {what}, more than the file can hold")


def read_gguf_info(path: Path) -> GGUFInfo:
    """Read and check the header of the GGUF file at ``path``."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, "model file not found") from None
    except OSError as exc:
        raise InputError(path, f"cannot read model file ({exc.strerror or exc})") from None
    if not path.is_file():
        raise InputError(path, "not a file")
    if size == 0:
        raise InputError(path, "model file is empty")
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            return _parse(path, _Reader(buffer, size))
    except OSError as exc:
        raise InputError(path, f"cannot read model file ({exc.strerror or exc})") from None


def _parse(path: Path, reader: _Reader) -> GGUFInfo:
    parser = _HeaderParser(path, reader)
    try:
        magic = reader.read(4)
    except _Truncated:
        raise InputError(path, "not a GGUF file (shorter than the 4-byte magic number)") from None
    if magic != GGUF_MAGIC:
        raise InputError(path, f"not a GGUF file (magic {magic!r}, expected {GGUF_MAGIC!r})")
    try:
        version = reader.unpack("<I")
        if int.from_bytes(struct.pack("<I", version), "big") in SUPPORTED_VERSIONS:
            raise InputError(path, "big-endian GGUF files are not supported")
        if version not in SUPPORTED_VERSIONS:
            raise InputError(
                path, f"unsupported GGUF version {version} (supported: {', '.join(map(str, SUPPORTED_VERSIONS))})"
            )
        tensor_count = reader.unpack("<Q")
        kv_count = reader.unpack("<Q")
        # Smallest possible metadata entry: key length (8) + 1-byte key + type (4) + 1-byte value.
        _check_count(parser, kv_count, "metadata entries", 14)
        # Smallest possible tensor info: name length (8) + dims count (4) + one dim (8) + type (4) + offset (8).
        _check_count(parser, tensor_count, "tensors", 32)
        metadata, chat_template, alignment = _read_metadata(parser, kv_count)
        data_end = _read_tensor_infos(parser, tensor_count, alignment)
    except _Truncated:
        raise InputError(path, "file is truncated", where=parser.where) from None
    if data_end > reader.size:
        raise InputError(
            path,
            f"file is truncated: tensor data needs {data_end} bytes but the file has {reader.size}",
            where="tensor data",
        )
    architecture = metadata.get("general.architecture")
    if not isinstance(architecture, str) or not architecture:
        raise InputError(path, "GGUF metadata has no general.architecture")
    context_length = metadata.get(f"{architecture}.context_length")
    file_type_code = metadata.get("general.file_type")
    file_type: str | None = None
    if isinstance(file_type_code, int):
        code = file_type_code & ~_FILE_TYPE_GUESSED
        file_type = FILE_TYPE_NAMES.get(code, f"type {code}")
    name = metadata.get("general.name")
    return GGUFInfo(
        path=path,
        version=version,
        architecture=architecture,
        name=name if isinstance(name, str) else None,
        context_length=context_length if isinstance(context_length, int) else None,
        file_type=file_type,
        has_chat_template=bool(chat_template),
        chat_template=chat_template,
        size_bytes=reader.size,
        tensor_count=tensor_count,
        metadata=metadata,
    )


def _read_metadata(parser: _HeaderParser, kv_count: int) -> tuple[dict[str, Any], str | None, int]:
    metadata: dict[str, Any] = {}
    chat_template: str | None = None
    for index in range(kv_count):
        parser.where = f"metadata entry {index}"
        key = parser.text(MAX_KEY_BYTES)
        parser.where = f"metadata key {key!r}"
        value_type = parser.reader.unpack("<I")
        if key == "tokenizer.chat_template" and value_type == _STRING:
            chat_template = parser.text()
            continue
        value = parser.value(value_type, keep=True)
        if value is not None:
            metadata[key] = value
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0 or alignment & (alignment - 1):
        parser.where = "metadata key 'general.alignment'"
        raise parser.fail(f"alignment {alignment!r} is not a positive power of two")
    return metadata, chat_template, alignment


def _read_tensor_infos(parser: _HeaderParser, tensor_count: int, alignment: int) -> int:
    """Read the tensor infos and return the file size the tensor data needs."""
    extents: list[tuple[int, int]] = []
    for index in range(tensor_count):
        parser.where = f"tensor info {index}"
        name = parser.text(MAX_KEY_BYTES)
        parser.where = f"tensor {name!r}"
        dims_count = parser.reader.unpack("<I")
        if dims_count > MAX_TENSOR_DIMS:
            raise parser.fail(f"{dims_count} dimensions (at most {MAX_TENSOR_DIMS})")
        elements = 1
        for _ in range(dims_count):
            elements *= parser.reader.unpack("<Q")
        tensor_type = parser.reader.unpack("<I")
        offset = parser.reader.unpack("<Q")
        if offset % alignment:
            raise parser.fail(f"data offset {offset} is not a multiple of the alignment {alignment}")
        block = GGML_BLOCK_SIZES.get(tensor_type)
        if block is None:
            nbytes = 0  # a type newer than this reader: only its offset can be checked
        else:
            per_block, block_bytes = block
            if elements % per_block:
                raise parser.fail(f"{elements} elements do not fill whole blocks of {per_block} (type {tensor_type})")
            nbytes = elements // per_block * block_bytes
        extents.append((offset, nbytes))
    parser.where = "tensor data"
    header_end = parser.reader.position
    data_start = (header_end + alignment - 1) // alignment * alignment
    if not extents:
        return header_end
    return data_start + max(offset + nbytes for offset, nbytes in extents)
