#!/usr/bin/env bash
# Installs the Debian packages nabla needs to build, test and do its main job, if missing.
# Required: a C compiler, make, pkg-config, zlib, cJSON. Optional but installed: OpenBLAS,
# oneDNN (fast matrix products), libpng (pictures), PyTorch (the comparison tests),
# Open MPI (distributed training: mpirun -np N nabla train),
# and the Fashion-MNIST data set.
set -eu
pkgs="build-essential pkg-config zlib1g-dev libcjson-dev libopenblas-dev libdnnl-dev libcairo2-dev
      python3-torch python3-numpy dataset-fashion-mnist libopenmpi-dev openmpi-bin"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "nabla: installing missing packages:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y --no-install-recommends $missing
