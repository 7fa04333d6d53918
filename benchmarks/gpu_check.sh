#!/usr/bin/env bash
# The checks to run on a machine with a GPU, all in one go (about 8 minutes at most):
#
#   bash benchmarks/gpu_check.sh OUT_DIR      # PYTHON=... to use another interpreter than python3
#
# with this project importable (pip install -e ".[cuda,test,bench]", or on PYTHONPATH). Into
# OUT_DIR: log.txt (the GPU, versions, the default run and experiment=digits at each precision with
# their summary.json, a 256-job vmap sweep against one run), bench.txt and bench-gpu.json
# (scripts/benchmark.py), pytest.txt and junit.xml (the suite's tests that start no subprocess, on
# the GPU). Each stage has a time limit, so a hang costs that stage only.
set -u
out=${1:?usage: bash benchmarks/gpu_check.sh OUT_DIR}
py=${PYTHON:-python3}
mkdir -p "$out" && cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1 XDG_CACHE_HOME=${XDG_CACHE_HOME:-$(mktemp -d)}
runs=$(mktemp -d)

timed() {  # timed SECONDS COMMAND...: runs it, prints its exit status, wall time and last lines
  local start=$SECONDS
  timeout "$@" > "$runs/last.out" 2>&1
  echo "-- [${*:2}] rc=$? $((SECONDS - start)) s"
  tail -3 "$runs/last.out"
}

summary() {  # summary RUN_DIR: its summary.json without the config
  "$py" -c "import json, sys; d = json.load(open(sys.argv[1])); d.pop('config'); print(d)" "$1/summary.json" 2>&1
}

{
  echo "== the machine"; date -u; nvidia-smi -L; nproc
  "$py" -m pip list 2>/dev/null | grep -i -E "^(jax|jaxlib|jax-cuda1[23]-plugin|optax|orbax-checkpoint|numpy|torch|scikit-learn|hydra-core) "
  "$py" -c "import jax; print(jax.devices(), jax.default_backend())"
  echo "== runs: the default, then experiment=digits at each precision"
  i=0
  for extra in "" "experiment=digits" "experiment=digits trainer.precision=tensorfloat32" \
               "experiment=digits trainer.precision=bfloat16"; do
    i=$((i + 1))
    # shellcheck disable=SC2086
    timed 120 "$py" scripts/train.py "hydra.run.dir=$runs/$i" $extra
    summary "$runs/$i"
  done
  echo "== a vmap sweep of the note, 256 jobs of 2000 steps, against one run (each twice: cold, warm cache)"
  lrs=$("$py" -c "print(','.join(f'{0.01 * 1.3**i:.4g}' for i in range(16)))")
  for i in 1 2; do timed 120 "$py" scripts/train.py trainer.steps=2000 optimizer.lr=0.01 seed=0 "hydra.run.dir=$runs/single$i"; done
  for i in 1 2; do
    timed 180 "$py" scripts/train.py -m hydra/sweeper=vmap trainer.steps=2000 "optimizer.lr=$lrs" "seed=range(16)" \
      "hydra.sweep.dir=$runs/vmap$i"
  done
  summary "$runs/vmap2/255"
} > "$out/log.txt" 2>&1

echo "== scripts/benchmark.py" >> "$out/log.txt"
timeout 300 "$py" scripts/benchmark.py --repeats 5 --skip sklearn --json "$out/bench-gpu.json" > "$out/bench.txt" 2>&1
echo "benchmark rc=$?" >> "$out/log.txt"

echo "== the tests that start no subprocess, on the GPU" >> "$out/log.txt"
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 150 "$py" -m pytest -v --tb=short -n 8 -p no:cacheprovider -m "not slow" \
  --junitxml="$out/junit.xml" > "$out/pytest.txt" 2>&1
echo "pytest rc=$?" >> "$out/log.txt"

cat "$out/log.txt"
tail -c 3500 "$out/bench.txt"
grep -E "FAILED|ERROR|passed|failed" "$out/pytest.txt" | tail -40
