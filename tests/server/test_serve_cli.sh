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
# 503 while loading: the model is a FIFO, so loading blocks in open() until
# a writer comes; /health and the API answer 503 with Retry-After meanwhile.
mkfifo "$tmp/slow.bin"
"$fb" serve -m "$tmp/slow.bin" -z "$data/tok512.bin" --port 0 2> "$tmp/slow.err" &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$tmp/slow.err" && break; sleep 0.1; done
port=$(grep -o 'http://127.0.0.1:[0-9]*' "$tmp/slow.err" | cut -d: -f3)
got=$(python3 - "$port" <<'PY'
import http.client, json, sys
out = []
for method, path, body in (("GET", "/health", None), ("POST", "/v1/completions", b'{"prompt": "x"}'), ("GET", "/v1/models", None)):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
    c.request(method, path, body=body)
    r = c.getresponse()
    e = json.loads(r.read())["error"]
    out.append("%s %s %d %s %s" % (method, path, r.status, r.getheader("Retry-After"), e["type"]))
print("; ".join(out))
PY
)
want="GET /health 503 5 unavailable_error; POST /v1/completions 503 5 unavailable_error; GET /v1/models 503 5 unavailable_error"
if [ "$got" = "$want" ]; then echo "ok: while loading: $got"; else echo "FAIL: while loading: '$got', want '$want'"; fail=1; fi
: > "$tmp/slow.bin"   # a writer that closes at once: the loader sees a FIFO, not a model
wait "$pid"; rc=$?
if [ $rc -eq 1 ] && [ "$(grep -c "^flashblock: error: $tmp/slow.bin: " "$tmp/slow.err")" = 1 ]; then
    echo "ok: a model that fails to load exits 1: $(grep '^flashblock: error' "$tmp/slow.err")"
else echo "FAIL: failed load: rc=$rc $(cat "$tmp/slow.err")"; fail=1; fi

"$fb" serve --help | grep -q -- "--kv-mem" || { echo "FAIL: serve --help"; fail=1; }
"$fb" --help | grep -q "serve" || { echo "FAIL: serve missing from flashblock --help"; fail=1; }
exit $fail
