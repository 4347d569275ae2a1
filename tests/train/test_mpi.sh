#!/bin/bash
# Data parallelism on OpenMPI (mpirun --oversubscribe on loopback, and two
# network namespaces joined by a veth pair as two hosts):
#  - 2 ranks == one process with --accum 2 on the same global batch (train
#    loss of 100 steps within 1e-6 relative; the sum is MPI's all-reduce of
#    per-rank means pre-scaled by 1/ranks, the single process accumulates
#    the same micro-batch gradients in its GEMMs); 4 ranks == --accum 4;
#  - the same N twice: bitwise identical loss curve and checkpoint;
#  - ZeRO-1: the same curve as plain data parallel, AdamW state per rank
#    1/N of the single-process bytes (within one shard's rounding);
#  - resume across layouts: 2 ranks (ZeRO) stopped half way, continued by
#    one process --accum 2 (and a 1-process checkpoint continued by 4
#    ranks) give the uninterrupted curve;
#  - a rank that dies stops the job (no hang), mpirun exits non-zero, the
#    last checkpoint is intact;
#  - two hosts: a 2-rank job across two namespaces over OpenMPI's TCP
#    transport gives the loss of the job on one host.
fb="$1"; work="$2"
set -u
rm -rf "$work"; mkdir -p "$work"
fail=0
die() { echo "FAIL: $*"; fail=1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Sanitizer builds: OpenMPI keeps allocations of its dlopen'ed components at
# MPI_Finalize, which LeakSanitizer cannot attribute (unknown module) or
# suppress; leak checking is off for these runs only (address and UB checks
# stay on; every other test checks leaks).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"   # last wins
mpi=(mpirun --oversubscribe --bind-to none)
for i in $(seq 1 400); do echo "line $i: the quick brown fox jumps over the lazy dog, said the $((i % 7))th cat."; done > "$work/corpus.txt"
common=(--data "$work/corpus.txt" --layers 2 --dim 64 --heads 4 --ctx 32 --batch 8 --eval-every 50 --eval-windows 4
        --save-every 1000 --seed 3 --threads 1 --lr 2e-3 --log-every 50)

loss() { tail -n +2 "$1/loss.csv" | cut -d, -f1,2; }
close() {   # close A B TOL: every train loss of curve A within TOL (relative) of B's
    /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys, csv
a = [float(r["train_loss"]) for r in csv.DictReader(open(sys.argv[1] + "/loss.csv"))]
b = [float(r["train_loss"]) for r in csv.DictReader(open(sys.argv[2] + "/loss.csv"))]
tol = float(sys.argv[3])
worst = max(abs(x - y) / abs(y) for x, y in zip(a, b)) if a and len(a) == len(b) else float("inf")
print(f"{len(a)} steps, max relative difference {worst:.3g}")
sys.exit(0 if worst <= tol else 1)
PY
}

"$fb" train "${common[@]}" --steps 100 --accum 2 --out "$work/one" --quiet || die "single process failed"
"${mpi[@]}" -np 2 "$fb" train "${common[@]}" --steps 100 --out "$work/dp2" > "$work/dp2.log" 2>&1 || { die "2-rank DP failed"; cat "$work/dp2.log"; }
r=$(close "$work/dp2" "$work/one" 1e-6) && echo "ok: 2 ranks vs one process --accum 2: $r" || die "2 ranks vs --accum 2: $r"
"${mpi[@]}" -np 2 "$fb" train "${common[@]}" --steps 100 --out "$work/dp2b" > /dev/null 2>&1 || die "2-rank DP (again) failed"
if [ "$(loss "$work/dp2")" = "$(loss "$work/dp2b")" ] && cmp -s "$work/dp2/model.safetensors" "$work/dp2b/model.safetensors"; then
    echo "ok: the same 2-rank job twice: bitwise identical loss curve and checkpoint"
else die "2-rank runs differ between runs"; fi
grep -q "hidden behind backward" "$work/dp2.log" || die "no communication report: $(tail -3 "$work/dp2.log")"

"${mpi[@]}" -np 2 "$fb" train "${common[@]}" --steps 100 --zero 1 --out "$work/z2" > "$work/z2.log" 2>&1 || { die "ZeRO-1 failed"; cat "$work/z2.log"; }
r=$(close "$work/z2" "$work/dp2" 1e-6) && echo "ok: ZeRO-1 vs plain DP (2 ranks): $r" || die "ZeRO-1 vs DP: $r"
full=$(grep -o 'AdamW state [0-9]* bytes' "$work/dp2.log" | grep -o '[0-9]*'); half=$(grep -o 'AdamW state [0-9]* bytes' "$work/z2.log" | grep -o '[0-9]*')
if [ -n "$full" ] && [ -n "$half" ] && [ $((half * 2 - full)) -le 128 ] && [ $((full - half * 2)) -le 128 ]; then
    echo "ok: ZeRO-1 AdamW state per rank $half bytes = 1/2 of $full"
else die "ZeRO-1 state per rank '$half' is not half of '$full'"; fi

"$fb" train "${common[@]}" --steps 40 --accum 4 --out "$work/one4" --quiet || die "single process --accum 4 failed"
"${mpi[@]}" -np 4 "$fb" train "${common[@]}" --steps 40 --zero 1 --out "$work/z4" > "$work/z4.log" 2>&1 || { die "4-rank ZeRO-1 failed"; cat "$work/z4.log"; }
r=$(close "$work/z4" "$work/one4" 1e-6) && echo "ok: 4 ranks ZeRO-1 vs one process --accum 4: $r" || die "4 ranks vs --accum 4: $r"

# resume across layouts
"$fb" train "${common[@]}" --steps 30 --accum 2 --out "$work/ref30" --quiet || die "reference run failed"
"${mpi[@]}" -np 2 "$fb" train "${common[@]}" --steps 30 --zero 1 --stop-after 15 --out "$work/lay" > /dev/null 2>&1 || die "2-rank first half failed"
"$fb" train "${common[@]}" --steps 30 --accum 2 --resume --out "$work/lay" --quiet || die "1-process resume of a 2-rank checkpoint failed"
r=$(close "$work/lay" "$work/ref30" 1e-6) && echo "ok: 2 ranks (ZeRO-1) -> 1 process resume: $r" || die "2 ranks -> 1 process resume: $r"
"$fb" train "${common[@]}" --steps 30 --accum 4 --out "$work/ref30b" --quiet || die "reference run (accum 4) failed"
"$fb" train "${common[@]}" --steps 30 --accum 4 --stop-after 10 --out "$work/lay4" --quiet 2>/dev/null || die "1-process first part failed"
"${mpi[@]}" -np 4 "$fb" train "${common[@]}" --steps 30 --resume --out "$work/lay4" > /dev/null 2>&1 || die "4-rank resume failed"
r=$(close "$work/lay4" "$work/ref30b" 1e-6) && echo "ok: 1 process -> 4 ranks resume: $r" || die "1 process -> 4 ranks resume: $r"

# a rank that dies: the job stops, non-zero, the checkpoint of step 10 intact
"$fb" train "${common[@]}" --steps 30 --save-every 10 --stop-after 10 --out "$work/die" --quiet 2>/dev/null || die "run before the fault failed"
cp "$work/die/model.safetensors" "$work/die.ref"
FLASHBLOCK_FAULT_KILL=1:15 timeout 120 "${mpi[@]}" -np 2 "$fb" train "${common[@]}" --steps 30 --save-every 10 --out "$work/die" --resume \
    > "$work/die.log" 2>&1; rc=$?
if [ $rc -eq 124 ]; then die "a dead rank left the job hanging"
elif [ $rc -eq 0 ]; then die "mpirun exited 0 after a rank died"
else echo "ok: a rank killed at step 15 stopped the job (mpirun exit $rc)"; fi
cmp -s "$work/die/model.safetensors" "$work/die.ref" && "$fb" eval -m "$work/die/model.safetensors" --data "$work/corpus.txt" > /dev/null 2>&1 \
    && echo "ok: the checkpoint of step 10 is intact" || die "the checkpoint changed or is unreadable after the fault"

# two hosts: network namespaces joined by a veth pair, TCP transport
two_hosts() {
    local a=fbA$$ b=fbB$$
    ip netns add $a && ip netns add $b || return 2
    trap "ip netns del $a 2>/dev/null; ip netns del $b 2>/dev/null" RETURN
    ip link add va$$ netns $a type veth peer name vb$$ netns $b || return 2
    ip -n $a addr add 10.77.0.1/24 dev va$$ && ip -n $b addr add 10.77.0.2/24 dev vb$$ || return 2
    for n in $a $b; do ip -n $n link set lo up; done
    ip -n $a link set va$$ up && ip -n $b link set vb$$ up || return 2
    cat > "$work/rsh.sh" <<RSH
#!/bin/bash
# rsh agent for mpirun: "host command..." runs command in that host's namespace
host=\$1; shift
case \$host in 10.77.0.1) ns=$a ;; 10.77.0.2) ns=$b ;; *) echo "unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec \$ns /bin/bash -c "\$*"
RSH
    chmod +x "$work/rsh.sh"
    printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$work/hosts"
    ip netns exec $a timeout 300 mpirun --hostfile "$work/hosts" -np 2 --bind-to none \
        --mca plm_rsh_agent "$work/rsh.sh" --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
        --mca oob_tcp_if_include 10.77.0.0/24 -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM -x ASAN_OPTIONS \
        "$fb" train "${common[@]}" --steps 100 --out "$work/hosts2" > "$work/hosts.log" 2>&1
}
two_hosts; rc=$?
if [ $rc -eq 2 ]; then
    if [ "${CI:-}" = true ]; then die "cannot make network namespaces (needs root / CAP_NET_ADMIN)"
    else echo "note: two-host test not run: cannot make network namespaces here"; fi
elif [ $rc -ne 0 ]; then die "two-host job failed: $(tail -5 "$work/hosts.log")"
else
    r=$(close "$work/hosts2" "$work/dp2" 0) && echo "ok: 2 ranks on two hosts (veth, TCP) == 2 ranks on one host: $r" || die "two hosts vs one host: $r"
fi

[ $fail -eq 0 ] && echo "test_mpi: all checks passed"
exit $fail
