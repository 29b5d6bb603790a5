#!/usr/bin/env bash
# Run HERE (the build machine) before benchmarks/gpu_check.sh runs on a lent GPU machine.
# That machine has JAX, PyTorch, transformers and pandas but no keras, keras-hub or
# TensorFlow, and no internet, so this puts beside the checkout (both git-ignored):
#   .whl/    keras, keras-hub and the two of their needs it lacks (namex, optree), for
#            Python 3.12, at the versions of this project's venv
#   .bench/  the Track A train texts tokenised once: all 28 languages with the XLM-R
#            SentencePiece vocabulary of e5 (all-e5.npz, ~4 MB), English with MiniLM's
#            WordPiece (eng-minilm.npz)
# Needs: .venv (pip install -e '.[test,bench]') and scripts/setup_weights.py run.
# Cost: ~30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
version() { "$PY" -c "import importlib.metadata as m; print(m.version('$1'))"; }
wheels=()
for name in keras keras-hub namex optree; do wheels+=("$name==$(version "$name")"); done
rm -rf .whl && mkdir -p .whl .bench
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "${wheels[@]}"
"$PY" benchmarks/train_speed.py --languages all --tokenizer e5 --save-tokens .bench/all-e5.npz
"$PY" benchmarks/train_speed.py --languages eng --tokenizer minilm --save-tokens .bench/eng-minilm.npz
ls -l .whl .bench
echo "next: the device tool's run with carry [\".whl\", \".bench\"], timeout_s 600, command"
echo "      bash benchmarks/gpu_check.sh"
