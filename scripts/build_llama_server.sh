#!/usr/bin/env bash
# Builds llama.cpp's own HTTP server (llama-server) from the llama.cpp that ships inside the pinned
# llama-cpp-python source package, and prints the binary's path. The tests of the token route to a llama.cpp server
# and the P2 benchmark's C++ baseline use it (through STUDIO_LLAMA_SERVER); without it they skip.
# The build is portable (no -march=native) and kept in .cache/llama-server, so a second run only prints the path.
# NATIVE=1 builds for this machine's CPU instead (GGML_NATIVE, what `pip install` compiles from source: AVX-512 and
# VNNI where the CPU has them) into .cache/llama-server-native, to compare against a native llama-cpp-python.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.3.36
if [ "${NATIVE:-0}" = 1 ]; then
  OUT="$PWD/.cache/llama-server-native"; GGML_NATIVE=ON
else
  OUT="$PWD/.cache/llama-server"; GGML_NATIVE=OFF
fi
BIN="$OUT/bin/llama-server"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# A throwaway virtual environment gives a pip that can fetch the source package whatever the system Python lacks.
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK" >&2
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
GEN=(); command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
cmake -S "$SRC" -B "$WORK/build" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE="$GGML_NATIVE" -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
cmake --build "$WORK/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$OUT/bin"
cp "$WORK/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "$BIN"
