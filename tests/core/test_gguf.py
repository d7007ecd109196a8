"""The GGUF header reader: real file, synthetic files, and every kind of broken file."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.errors import InputError
from studio.core.inference.gguf import read_gguf_info

STRING, ARRAY, UINT32, UINT64, FLOAT32, BOOL = 8, 9, 4, 10, 6, 7


def _string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _value(kind: int, value: Any) -> bytes:
    if kind == STRING:
        return _string(value)
    if kind == UINT32:
        return struct.pack("<I", value)
    if kind == UINT64:
        return struct.pack("<Q", value)
    if kind == FLOAT32:
        return struct.pack("<f", value)
    if kind == BOOL:
        return struct.pack("<?", value)
    if kind == ARRAY:
        item_kind, items = value
        return struct.pack("<IQ", item_kind, len(items)) + b"".join(_value(item_kind, item) for item in items)
    raise AssertionError(kind)


def build_gguf(
    metadata: list[tuple[str, int, Any]] | None = None,
    tensors: list[tuple[str, list[int], int]] | None = None,
    *,
    version: int = 3,
) -> bytes:
    """A GGUF file with the given metadata and tensors (name, dims, ggml type) laid out back to back."""
    if metadata is None:
        metadata = [
            ("general.architecture", STRING, "llama"),
            ("general.name", STRING, "Tiny Test"),
            ("llama.context_length", UINT32, 4096),
            ("general.file_type", UINT32, 7),
            ("tokenizer.ggml.tokens", ARRAY, (STRING, ["<s>", "</s>", "a", "b"])),
            ("tokenizer.chat_template", STRING, "{{ messages }}"),
        ]
    tensors = [("w", [64, 2], 8)] if tensors is None else tensors
    body = struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, kind, value in metadata:
        body += _string(key) + struct.pack("<I", kind) + _value(kind, value)
    offset = 0
    end = 0
    sizes = {0: (1, 4), 1: (1, 2), 8: (32, 34)}
    for name, dims, kind in tensors:
        body += _string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        body += struct.pack("<IQ", kind, offset)
        elements = 1
        for d in dims:
            elements *= d
        per_block, block_bytes = sizes[kind]
        end = offset + elements // per_block * block_bytes
        offset = (end + 31) // 32 * 32
    header = b"GGUF" + body
    padded = header + b"\0" * ((-len(header)) % 32)
    return padded + b"\x01" * end


def _write(tmp_path: Path, data: bytes, name: str = "m.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_reads_synthetic_header(tmp_path: Path) -> None:
    path = _write(tmp_path, build_gguf())
    info = read_gguf_info(path)
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.name == "Tiny Test"
    assert info.context_length == 4096
    assert info.file_type == "Q8_0"
    assert info.has_chat_template and info.chat_template == "{{ messages }}"
    assert info.size_bytes == path.stat().st_size
    assert info.tensor_count == 1
    assert "tokenizer.ggml.tokens" not in info.metadata  # arrays are skipped
    assert info.metadata["llama.context_length"] == 4096


def test_several_tensors_and_version_2(tmp_path: Path) -> None:
    tensors = [("a", [3, 5], 0), ("b", [7], 1), ("c", [32, 4], 8)]
    meta = [("general.architecture", STRING, "llama")]
    full = build_gguf(meta, tensors, version=2)
    info = read_gguf_info(_write(tmp_path, full))
    assert info.version == 2 and info.tensor_count == 3
    with pytest.raises(InputError, match="tensor data needs"):
        read_gguf_info(_write(tmp_path, full[:-1], "cut.gguf"))


def test_no_chat_template_no_file_type(tmp_path: Path) -> None:
    meta = [("general.architecture", STRING, "qwen2"), ("general.alignment", UINT32, 32)]
    info = read_gguf_info(_write(tmp_path, build_gguf(meta)))
    assert info.architecture == "qwen2"
    assert not info.has_chat_template and info.chat_template is None
    assert info.file_type is None and info.context_length is None and info.name is None


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (b"GG", "not a GGUF file"),
        (b"PK\x03\x04" + b"\0" * 64, "not a GGUF file"),
        (b"GGUF" + struct.pack("<I", 1) + b"\0" * 64, "unsupported GGUF version 1"),
        (b"GGUF" + struct.pack("<I", 99) + b"\0" * 64, "unsupported GGUF version 99"),
        (b"GGUF" + struct.pack(">I", 3) + b"\0" * 64, "big-endian"),
        (b"GGUF" + struct.pack("<I", 3), "truncated"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 60), "more than the file can hold"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0), "more than the file can hold"),
    ],
)
def test_broken_files_give_one_line_errors(tmp_path: Path, data: bytes, fragment: str) -> None:
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as caught:
        read_gguf_info(path)
    message = str(caught.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_gguf_info(tmp_path / "absent.gguf")


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a file"):
        read_gguf_info(tmp_path)


def test_absurd_string_length(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 62) + b"x" * 64
    with pytest.raises(InputError, match="limit") as caught:
        read_gguf_info(_write(tmp_path, data))
    assert "metadata entry 0" in str(caught.value)


def test_absurd_array_count(tmp_path: Path) -> None:
    meta = [("general.architecture", STRING, "llama"), ("big", ARRAY, (UINT32, [1, 2]))]
    data = bytearray(build_gguf(meta))
    marker = _string("big") + struct.pack("<I", ARRAY) + struct.pack("<IQ", UINT32, 2)
    at = bytes(data).index(marker) + len(marker) - 8
    data[at : at + 8] = struct.pack("<Q", 1 << 50)
    with pytest.raises(InputError, match="array of") as caught:
        read_gguf_info(_write(tmp_path, bytes(data)))
    assert "'big'" in str(caught.value)


def test_truncated_tensor_data(tmp_path: Path) -> None:
    full = build_gguf()
    with pytest.raises(InputError, match="tensor data needs"):
        read_gguf_info(_write(tmp_path, full[:-1]))


def test_truncated_inside_metadata(tmp_path: Path) -> None:
    full = build_gguf()
    cut = full.index(b"{{ messages }}") + 3
    with pytest.raises(InputError, match="truncated") as caught:
        read_gguf_info(_write(tmp_path, full[:cut]))
    assert "tokenizer.chat_template" in str(caught.value)


def test_missing_architecture(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"general\.architecture"):
        read_gguf_info(_write(tmp_path, build_gguf([("general.name", STRING, "x")])))


def test_bad_alignment(tmp_path: Path) -> None:
    meta = [("general.architecture", STRING, "llama"), ("general.alignment", UINT32, 24)]
    with pytest.raises(InputError, match="power of two"):
        read_gguf_info(_write(tmp_path, build_gguf(meta)))


def test_invalid_utf8_key(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _string(b"\xff\xfe") + struct.pack("<I", UINT32) + b"\0" * 4
    with pytest.raises(InputError, match="UTF-8"):
        read_gguf_info(_write(tmp_path, data))


def test_unknown_value_type(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + _string("k") + struct.pack("<I", 77) + b"\0" * 16
    with pytest.raises(InputError, match="unknown metadata value type 77"):
        read_gguf_info(_write(tmp_path, data))


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(build_gguf()) - 1))
def test_every_truncation_is_refused(tmp_path_factory: pytest.TempPathFactory, cut: int) -> None:
    path = _write(tmp_path_factory.mktemp("cut"), build_gguf()[:cut])
    with pytest.raises(InputError):
        read_gguf_info(path)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(min_size=0, max_size=300))
def test_random_bytes_after_magic_never_crash(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = _write(tmp_path_factory.mktemp("fuzz"), b"GGUF" + struct.pack("<I", 3) + data)
    try:
        read_gguf_info(path)
    except InputError as exc:
        assert "\n" not in str(exc)


@pytest.mark.real_model
def test_embedded_model_header(embedded_model: Path) -> None:
    info = read_gguf_info(embedded_model)
    assert info.architecture == "llama"
    assert info.file_type == "Q4_1"
    assert info.context_length == 8192
    assert info.has_chat_template and "<|im_start|>" in (info.chat_template or "")
    assert info.size_bytes == embedded_model.stat().st_size


@pytest.mark.real_model
def test_embedded_model_missing_last_byte(embedded_model: Path, tmp_path: Path) -> None:
    copy = tmp_path / "cut.gguf"
    shutil.copyfile(embedded_model, copy)
    with copy.open("r+b") as handle:
        handle.truncate(embedded_model.stat().st_size - 1)
    with pytest.raises(InputError, match="tensor data needs"):
        read_gguf_info(copy)
