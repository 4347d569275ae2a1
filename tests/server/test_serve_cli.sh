#!/bin/bash
# flashblock serve: every bad flag is a usage error (exit 2, one line naming
# it); a model that cannot be loaded, a port in use, an unresolvable host or
# a KV budget below one context are runtime errors (exit 1, one line).
fb="$1"; data="${FLASHBLOCK_DATA:-$2}/llama2c"
if [ ! -f "$data/stories260K.bin" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: $data/stories260K.bin missing (CI=true)"; exit 1; fi
    echo "SKIP: $data/stories260K.bin not found"; exit 77
fi
m=(-m "$data/stories260K.bin" -z "$data/tok512.bin")
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${hold:-}" ] && kill "$hold" 2>/dev/null' EXIT

# expect RC PATTERN ARGS...: serve ARGS exits RC with one error line matching PATTERN
expect() {
    local want="$1" pat="$2" rc; shift 2
    timeout 30 "$fb" serve "$@" > "$tmp/out" 2> "$tmp/err"; rc=$?
    if [ "$rc" != "$want" ]; then echo "FAIL: serve $* exited $rc, want $want: $(cat "$tmp/err")"; fail=1; return; fi
    if ! grep -q -E -- "$pat" "$tmp/err"; then echo "FAIL: serve $*: no '$pat' in: $(cat "$tmp/err")"; fail=1; return; fi
    if [ "$(grep -c 'error' "$tmp/err")" -gt 1 ] || [ "$(grep -c -v '^flashblock serve: listening' "$tmp/err")" -gt 1 ]; then
        echo "FAIL: serve $*: more than one error line: $(cat "$tmp/err")"; fail=1; return
    fi
    echo "ok: serve $* -> $rc: $(grep -v '^flashblock serve: listening' "$tmp/err")"
}

expect 2 "-m MODEL is required"
expect 2 "unknown option '--bogus'" "${m[@]}" --bogus
expect 2 "--port: expected an integer" "${m[@]}" --port abc
expect 2 "--port: expected an integer in \[0, 65535\]" "${m[@]}" --port 70000
expect 2 "--parallel: expected an integer" "${m[@]}" --parallel 0
expect 2 "--kv-mem: expected a number" "${m[@]}" --kv-mem -1
expect 2 "--max-batch-tokens" "${m[@]}" --max-batch-tokens x
expect 2 "unknown template 'nope'" "${m[@]}" --chat-template nope
expect 2 "--api-key needs a value" "${m[@]}" --api-key
expect 2 "--api-key: empty" "${m[@]}" --api-key ""
expect 1 "no-such-model" -m "$tmp/no-such-model.bin" -z "$data/tok512.bin" --port 0
expect 1 "--kv-mem 0.01 MiB holds 0 blocks" "${m[@]}" --port 0 --kv-mem 0.01
expect 1 "cannot resolve --host" "${m[@]}" --port 0 --host no-such-host.invalid
# a port that is taken
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(60)' > "$tmp/port" &
hold=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
expect 1 "cannot listen on 127.0.0.1:$(cat "$tmp/port"): Address already in use" "${m[@]}" --port "$(cat "$tmp/port")"
kill "$hold"; hold=""
"$fb" serve --help | grep -q -- "--kv-mem" || { echo "FAIL: serve --help"; fail=1; }
"$fb" --help | grep -q "serve" || { echo "FAIL: serve missing from flashblock --help"; fail=1; }
exit $fail
