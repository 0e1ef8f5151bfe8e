#!/usr/bin/env bash
# Installs the Debian packages nabla needs, if missing: scripts/deps.sh run|test
#   run   what `make run` needs: to build the library and the tool with their fast backends
#         and pictures, and to train on Fashion-MNIST: a C compiler (gcc, libc6-dev; not
#         build-essential, whose C++ compiler and Perl nabla does not use), make,
#         pkg-config, zlib, cJSON, OpenBLAS and oneDNN (fast matrix products), cairo (the
#         training curves), and the Fashion-MNIST data set.
#   test  all of run's, plus what `make test`, `make bench`, `make fuzz` and .ci/run need:
#         PyTorch and numpy (the comparison tests and the benchmark), ONNX and OpenCV (the
#         ONNX export tests), protobuf-c (ONNX files), Open MPI (distributed training:
#         mpirun -np N nabla train), Graphviz (nabla graph --png), clang and its libFuzzer
#         runtime (the fuzzers).
# Runs apt-get (through sudo unless root) only when something is missing.
set -eu
profile=${1:-}
run_pkgs="gcc libc6-dev make pkg-config zlib1g-dev libcjson-dev libopenblas-dev libdnnl-dev
          libcairo2-dev dataset-fashion-mnist"
test_pkgs="python3-torch python3-numpy python3-onnx python3-opencv libprotobuf-c-dev
           protobuf-c-compiler libopenmpi-dev openmpi-bin graphviz clang libclang-rt-14-dev"
case $profile in
run) pkgs=$run_pkgs ;;
test) pkgs="$run_pkgs $test_pkgs" ;;
*) echo "usage: scripts/deps.sh run|test" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "nabla: installing missing packages ($profile):$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
