#!/usr/bin/env bash
# The main job (make run): train the default classifier on Fashion-MNIST's 60,000 training
# images, evaluate it on the 10,000 test images, save it, and print the test accuracy.
set -euo pipefail
nabla=${1:-build/nabla}
out=${OUT:-out}
mkdir -p "$out"
model="$out/fashion-mnist.safetensors"
# Training curves need a tool built with cairo; without it, train without the picture.
curves="$out/fashion-mnist-curves.png"; plot=(--plot "$curves")
if ! "$nabla" --version | grep -qE '^  cairo: +yes'; then
    echo "note: $nabla was built without cairo: no training curves (install libcairo2-dev, rebuild)"
    curves="(none: built without cairo)"; plot=()
fi
start=$(date +%s.%N)
"$nabla" train 784-256-128-10 --data fashion-mnist --test fashion-mnist-test \
    --epochs 15 --batch 128 --optimizer sgd --lr 0.05 --momentum 0.9 --schedule cosine \
    --weight-decay 5e-4 --normalize feature --init-scheme kaiming-uniform --seed 1 \
    -o "$model" --log "$out/fashion-mnist.csv" "${plot[@]}"
end=$(date +%s.%N)
echo
"$nabla" eval "$model" --data fashion-mnist-test
printf '\nmodel: %s\ntraining log: %s\ntraining curves: %s\nwall time (train + test): %.1f s\n' \
    "$model" "$out/fashion-mnist.csv" "$curves" \
    "$(awk "BEGIN {print $end - $start}")"
