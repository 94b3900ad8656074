#!/usr/bin/env bash
# `make env`: create the environment, install the pinned stack (env/stack.txt), the pack and its
# patches, then run the doctor. Safe to run again: pip keeps what already matches.
#
# Knobs (environment variables or make variables):
#   TORCH_INDEX_URL  where torch comes from. Empty: PyPI's default build (CUDA 13.0 on Linux,
#                    needs driver >= 580), or the CPU wheel where one is on disk. Older drivers:
#                    https://download.pytorch.org/whl/cu126 (>= 560) or .../cu128 (>= 570);
#                    no GPU: https://download.pytorch.org/whl/cpu
#   ENV_KIND         venv | conda | auto (default: conda when conda/mamba is on PATH, else venv)
#   DEEPSPEED=1      also install the #@deepspeed pins
#   PYTHON           interpreter for the venv (default: python3)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
stack="$root/env/stack.txt"
kind=${ENV_KIND:-auto}
if [ "$kind" = auto ]; then
  if command -v mamba >/dev/null 2>&1 || command -v conda >/dev/null 2>&1; then kind=conda; else kind=venv; fi
fi

say() { printf '\n== %s\n' "$*"; }

if [ "$kind" = conda ]; then
  conda_bin=$(command -v mamba || command -v conda)
  prefix="$root/.conda"
  if [ ! -x "$prefix/bin/python" ]; then
    say "conda env from environment.yml into $prefix"
    # environment.yml's pip section installs the stack; torch comes from TORCH_INDEX_URL if set
    # (its local version, e.g. 2.13.0+cu126, outranks PyPI's 2.13.0 for pip).
    (cd "$root" && PIP_EXTRA_INDEX_URL="${TORCH_INDEX_URL:-}" \
      "$conda_bin" env create -y -p "$prefix" -f environment.yml)
  fi
  py="$prefix/bin/python"
else
  if [ ! -x "$root/.venv/bin/python" ]; then
    say "venv in $root/.venv (${PYTHON:-python3})"
    "${PYTHON:-python3}" -m venv "$root/.venv"
  fi
  py="$root/.venv/bin/python"
fi

pip() { "$py" -m pip --disable-pip-version-check "$@"; }
# Pins by group from the `#@group pin` lines of the stack file.
group() { sed -n "s/^#@$1[[:space:]]\{1,\}//p" "$stack"; }

torch_pin=$(grep -E '^torch==' "$stack")
say "$torch_pin ${TORCH_INDEX_URL:+from $TORCH_INDEX_URL}"
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  pip install -c "$stack" --index-url "$TORCH_INDEX_URL" "$torch_pin"
else
  pip install -c "$stack" "$torch_pin"
fi

say "xtuner without its own pins: $(group no-deps | tr '\n' ' ')"
# shellcheck disable=SC2046
pip install --no-deps $(group no-deps)

say "the stack (env/stack.txt)"
# llama-cpp-python has no Linux wheel on PyPI: pip builds it from its sdist once and keeps the
# wheel in its cache (a second `make env` reuses it). Only the library `make export` loads is
# built: no llava/mtmd library (imported lazily, for images only), no tests, examples or tools.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
pip install -c "$stack" -r "$stack"

# torchvision only where a matching build exists: beside a CUDA torch (PyPI's are CUDA builds),
# or from the index torch came from. Anywhere else patches/torchvision_optional.py stands in.
torch_cuda=$("$py" -c 'import importlib.util as u, runpy; print(runpy.run_path(u.find_spec("torch").submodule_search_locations[0] + "/version.py").get("cuda") or "")')
if [ -n "$torch_cuda" ] || [ -n "${TORCH_INDEX_URL:-}" ]; then
  say "torchvision for torch (CUDA ${torch_cuda:-none})"
  # shellcheck disable=SC2046
  pip install -c "$stack" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} $(group cuda)
  if ! "$py" -c 'import torchvision' >/dev/null 2>&1; then
    echo "torchvision does not load beside this torch; removing it (xtuner works without it)"
    pip uninstall -y torchvision
  fi
else
  say "no torchvision: torch is a CPU build and PyPI's torchvision is a CUDA build"
  if pip show torchvision >/dev/null 2>&1 && ! "$py" -c 'import torchvision' >/dev/null 2>&1; then
    pip uninstall -y torchvision
  fi
fi

if [ "${DEEPSPEED:-0}" = 1 ]; then
  say "DeepSpeed: $(group deepspeed | tr '\n' ' ')"
  # Its setup.py imports torch: build against this one, not a fresh torch in an isolated env.
  # shellcheck disable=SC2046
  DS_BUILD_OPS=0 pip install -c "$stack" --no-build-isolation $(group deepspeed)
fi

# llama.cpp's HF -> GGUF converter is a script inside the llama-cpp-python sdist, not in the wheel
# the stack built from it: unpack it (and its license) once per version for `make export`.
llama_v=$(sed -n 's/^llama-cpp-python==//p' "$stack")
conv_dir="$root/.cache/llama.cpp/$llama_v"
if [ -n "$llama_v" ] && [ ! -f "$conv_dir/convert_hf_to_gguf.py" ]; then
  say "llama.cpp's convert_hf_to_gguf.py from the llama-cpp-python $llama_v sdist -> $conv_dir"
  tmp=$(mktemp -d)
  pip download -q --no-deps --no-binary llama-cpp-python -d "$tmp" "llama-cpp-python==$llama_v"
  tar -xzf "$tmp"/llama_cpp_python-"$llama_v".tar.gz -C "$tmp" --wildcards \
    '*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/conversion/*' '*/vendor/llama.cpp/LICENSE'
  mkdir -p "$(dirname "$conv_dir")"
  rm -rf "$conv_dir.tmp" && mv "$tmp"/llama_cpp_python-"$llama_v"/vendor/llama.cpp "$conv_dir.tmp"
  mv "$conv_dir.tmp" "$conv_dir" && rm -rf "$tmp"
fi

say "the pack (editable) and its startup patches"
pip install -c "$stack" -e "$root"
"$py" -m patches install

# `make demo`'s real model (#@model in the stack file): the wheel is only a carrier for its GGUF,
# so it is downloaded without its requirements and never installed; the pack's own code converts
# it once into an HF model directory; once converted, nothing is downloaded again.
smollm2() { (cd "$root" && PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" "$py" -m demo.smollm2 "$@"); }
for pin in $(group model); do
  if smollm2 --built "$pin"; then
    say "$pin: converted already (.cache/smollm2-135m-instruct)"
    continue
  fi
  tmp=$(mktemp -d)
  say "$pin -> .cache/smollm2-135m-instruct (pip download --no-deps, converted by demo/smollm2.py)"
  pip download -q --no-deps -d "$tmp" "$pin"
  smollm2 --wheel "$tmp"/*.whl
  rm -rf "$tmp"
done

say "python -m doctor check"
"$py" -m doctor check || echo "(the doctor found problems above; the environment is installed)"
