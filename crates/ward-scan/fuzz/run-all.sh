#!/bin/sh
# Runs fuzz targets one after another for SECONDS each (default 60) on stable Rust and
# prints one summary line per target: executions, executions per second, peak memory,
# slowest input, edges covered, and whether libFuzzer stopped on a crash (exit != 0;
# the input is then in artifacts/<target>/).
#
#   ./run-all.sh [SECONDS] [TARGET...]      # from crates/ward-scan/fuzz
#
# RUSTC_BOOTSTRAP=1 lets stable rustc accept the -Z flags cargo-fuzz passes (sanitizer
# and coverage instrumentation); no nightly toolchain is needed.
set -u
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"scan_any pickle zip tar compressed sevenz numpy safetensors gguf onnx savedmodel keras_json hdf5"}
mkdir -p logs
export RUSTC_BOOTSTRAP=1
for t in $targets; do
    mkdir -p "corpus/$t"
    nice -n 10 cargo fuzz run "$t" -- -max_total_time="$seconds" -rss_limit_mb=1024 \
        -timeout=10 -print_final_stats=1 >"logs/$t.log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log")
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "logs/$t.log")
    slowest=$(sed -n 's/^stat::slowest_unit_time_sec: *//p' "logs/$t.log")
    cov=$(grep -o 'cov: [0-9]*' "logs/$t.log" | tail -n 1)
    echo "$t: ${seconds}s exit=$rc execs=${execs:-?} exec/s=${rate:-?} peak_rss_mb=${rss:-?}" \
        "slowest_unit_s=${slowest:-?} ${cov:-cov: ?}"
done
