#!/usr/bin/env bash
# Wheels for a GPU host that cannot reach a package index but already has CUDA JAX and PyTorch (a cluster's compute
# node, a prebuilt CUDA container): the packages skeljax's trainer and the PyTorch reference of the benchmarks need
# beyond those, at the versions installed where this runs (the test suite's). Download them here, copy the folder
# over, then
#
#   bash scripts/offline_wheels.sh DEST [PYTHON_VERSION]             # here: DEST/*.whl for that Python (default 3.12)
#   SKELJAX_WHEELS=DEST OUT=/tmp/accel bash scripts/accelerator_check.sh   # there: installs them into a private folder
#
# The install there is `pip install --no-index --no-deps --target`, which touches nothing already installed; the
# check's preflight then imports everything it needs and prints the versions, so a missing package fails in seconds.
# Not in the list: what such images carry already (jax, jaxlib, flax, optax, orbax-checkpoint, numpy, torch, absl-py,
# etils, matplotlib, tqdm, protobuf, pyarrow, psutil, requests, wrapt, rich, pyyaml, opencv, scipy, einops).
set -euo pipefail
dest=${1:?usage: offline_wheels.sh DEST [PYTHON_VERSION]}
python_version=${2:-3.12}
packages=(
  # skeljax's own requirements (setup.cfg) and what tensorflow-datasets and grain import when skeljax loads a dataset
  ml_collections grain portpicker array_record tensorflow-datasets tensorboardX dm-tree immutabledict promise
  simple-parsing docstring_parser termcolor toml tensorflow-metadata googleapis-common-protos importlib_resources
  # The PyTorch reference of the benchmarks (skeljax/testing/torch_reference.py): MMAction2 1.2.0 on mmcv-lite and mmengine
  mmaction2 mmcv-lite mmengine addict yapf platformdirs importlib_metadata zipp
)
# The versions are this environment's (pip install -e ".[test]" first), so the host gets what the tests ran with.
mapfile -t requirements < <(python3 - "${packages[@]}" <<'PY'
import importlib.metadata
import sys

for name in sys.argv[1:]:
    try:
        print(f"{name}=={importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
        sys.exit(f"{name} is not installed here; install skeljax with its test extra first: pip install -e '.[test]'")
PY
)
[ ${#requirements[@]} -eq ${#packages[@]} ] || exit 1
mkdir -p "$dest"
# Each manylinux tag is matched exactly by pip, so name the ones these wheels are published under.
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64 \
  manylinux_2_24_x86_64 manylinux_2_31_x86_64; do
  platforms+=(--platform "$tag")
done
abi=cp${python_version/./}
# pure-Python packages come as py3-none-any wheels; sdist-only ones (promise, mmcv-lite...) are built here into wheels
for requirement in "${requirements[@]}"; do
  if ! python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
    --implementation cp --abi "$abi" --abi abi3 --abi none "${platforms[@]}" -d "$dest" "$requirement" 2>/dev/null; then
    echo "no binary wheel for $requirement; building one from its source distribution"
    python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$dest" "$requirement"
  fi
done
ls -1 "$dest"
du -sh "$dest"
