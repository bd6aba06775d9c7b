#!/usr/bin/env bash
# Build llama.cpp's llama-server and llama-quantize (from the sources inside the PyPI
# llama-cpp-python sdist) once per machine, and a tiny random-weight Llama in three GGUF
# quantizations for this clone: `engine-up llamacpp --model cpu-tiny --quant q4_k_m` serves it.
#
# usage: scripts/real-llamacpp/install.sh [DIR=build/real-llamacpp]
#
# The binaries live in a cache OUTSIDE the clone, keyed by the source version and shared by
# every clone on the machine ($SERVEBENCH_CACHE, default ~/.cache/servebench):
#   CACHE/llamacpp-VERSION/tools-venv/   gguf, tokenizers, safetensors, numpy, cmake, ninja
#   CACHE/llamacpp-VERSION/bin/          llama-server, llama-quantize (the source and build
#                                        trees are removed once these are copied: ~250 MB)
#   CACHE/llamacpp-VERSION/build-time.txt  the build's wall/user/sys time, then "total Ns"
#   CACHE/llamacpp-VERSION/.ok           written last: binaries and tools are complete
# The clone side (small, deterministic, remade in well under a minute):
#   DIR/bin -> CACHE/llamacpp-VERSION/bin
#   DIR/tiny-llama/                      config and the locally trained tokenizer
#                                        (scripts/real-vllm/make_tiny_llama.py, no weights)
#   DIR/tiny-llama-{fp16,q8_0,q4_k_m}.gguf  F16 from make_gguf.py (random weights, seed 0),
#                                        Q8_0 and Q4_K_M from llama-quantize
#   DIR/.ok                              written last; holds "model MODEL_VERSION": an install
#                                        of an older model version (v1: random weights with a
#                                        nearly uniform output) is remade
# Needs python3 with venv, a C++ compiler (Debian build-essential) and PyPI. The build takes
# about 20-30 minutes on 2 busy cores. Idempotent: nothing is redone when both .ok markers
# exist; a partial install is redone (a finished build whose copy was interrupted is reused).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VERSION=0.3.36
# The tiny model's version (make_gguf.py): 2 = the sharpened output distribution.
MODEL_VERSION=2
CACHE=${SERVEBENCH_CACHE:-$HOME/.cache/servebench}/llamacpp-$VERSION
DIR=${1:-build/real-llamacpp}
mkdir -p "$DIR" "$CACHE"
DIR=$(cd "$DIR" && pwd)
t0=$(date +%s)
say() { echo "real-llamacpp: [$(( $(date +%s) - t0 )) s] $*" >&2; }

if grep -qx "model $MODEL_VERSION" "$DIR/.ok" 2>/dev/null && [ -f "$CACHE/.ok" ] && [ -x "$DIR/bin/llama-server" ]; then
  exit 0
fi

# One build at a time per cache (two clones running `make test` at once wait for each other).
exec 9>"$CACHE.lock"
flock 9

# ---- the binaries, once per machine -------------------------------------------------------
built() { [ -x "$CACHE/build/bin/llama-server" ] && [ -x "$CACHE/build/bin/llama-quantize" ] \
  && grep -q '^total ' "$CACHE/build-time.txt" 2>/dev/null; }
if [ ! -f "$CACHE/.ok" ]; then
  cd "$CACHE"
  if ! built; then
    say "building llama-server and llama-quantize $VERSION in $CACHE (20-30 min on 2 cores)"
    rm -rf tools-venv dl src build bin build-time.txt
    b0=$(date +%s)
    python3 -m venv tools-venv
    tools-venv/bin/pip install -q --disable-pip-version-check gguf==0.19.0 tokenizers==0.23.3 \
      safetensors==0.8.0 numpy==2.3.5 cmake==4.4.4 ninja==1.13.2
    # the llama-cpp-python sdist vendors the whole llama.cpp tree (tools/server included)
    tools-venv/bin/pip download -q --disable-pip-version-check --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$VERSION" -d dl
    mkdir src && tar xzf "dl/llama_cpp_python-$VERSION.tar.gz" -C src
    SRC=src/llama_cpp_python-$VERSION/vendor/llama.cpp
    PATH="$CACHE/tools-venv/bin:$PATH" cmake -S "$SRC" -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DGGML_NATIVE=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF > cmake-configure.log
    if command -v /usr/bin/time >/dev/null; then
      PATH="$CACHE/tools-venv/bin:$PATH" /usr/bin/time -f "wall=%es user=%Us sys=%Ss" -o build-time.txt \
        cmake --build build --target llama-server llama-quantize -j "$(nproc)" > cmake-build.log
    else
      PATH="$CACHE/tools-venv/bin:$PATH" cmake --build build --target llama-server llama-quantize \
        -j "$(nproc)" > cmake-build.log
      : > build-time.txt
    fi
    echo "total $(( $(date +%s) - b0 ))s" >> build-time.txt
  fi
  rm -rf bin && mkdir bin
  cp build/bin/llama-server build/bin/llama-quantize bin/
  rm -rf src build dl
  touch .ok
  say "binaries ready in $CACHE/bin (build: $(tr '\n' ' ' < build-time.txt))"
  cd "$ROOT"
fi
flock -u 9

# ---- the tiny model, per clone --------------------------------------------------------------
rm -f "$DIR/.ok"
rm -rf "$DIR/tiny-llama" "$DIR"/tiny-llama-*.gguf "$DIR/bin"
ln -s "$CACHE/bin" "$DIR/bin"
PY="$CACHE/tools-venv/bin/python"
"$PY" "$ROOT/scripts/real-vllm/make_tiny_llama.py" "$DIR/tiny-llama" --no-weights >/dev/null 2>&1
"$PY" "$HERE/make_gguf.py" "$DIR/tiny-llama" "$DIR/tiny-llama-fp16.gguf" >/dev/null
for q in q8_0 q4_k_m; do
  Q=$(echo "$q" | tr a-z A-Z)
  "$DIR/bin/llama-quantize" "$DIR/tiny-llama-fp16.gguf" "$DIR/tiny-llama-$q.gguf" "$Q" 2 \
    > "$DIR/quantize-$q.log" 2>&1 || { tail -20 "$DIR/quantize-$q.log" >&2; exit 1; }
done
echo "model $MODEL_VERSION" > "$DIR/.ok"
say "done: $DIR ($(cd "$DIR" && ls -s --block-size=K tiny-llama-*.gguf | tr '\n' ' '))"
