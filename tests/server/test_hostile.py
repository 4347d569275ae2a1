"""flashblock serve against hostile clients, on loopback. Each case must get
the right 4xx (or a closed connection where no reply is possible) and leave
the server healthy, answering the same greedy text as before, with its
memory and open descriptors back near where they started:
  - malformed, truncated and wrongly typed JSON, huge numbers, invalid UTF-8;
  - a 10 MB body (with Content-Length and chunked), thousands of stop
    strings, max_tokens of 10^9;
  - a client that trickles its headers or its body one byte a second
    (408 after --read-timeout);
  - clients that never read their streams (memory stays bounded);
  - hundreds of connections opened and dropped, some mid-request, some
    mid-stream (their sequences are freed).
Then graceful shutdown: SIGTERM lets a stream in flight finish while new
requests get 503, a second SIGTERM or the end of --grace cancels."""
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

from harness import Server, check, data_paths, error_ok, finish

fb, data_dir = sys.argv[1], sys.argv[2]
model, tok = data_paths(data_dir)
# under AddressSanitizer the allocator's quarantine alone holds hundreds of MiB
# and everything runs several times slower: the memory bound is wider there
with open(fb, "rb") as f:
    SANITIZED = b"__asan_init" in f.read()
RSS_BOUND_KIB = (512 if SANITIZED else 64) * 1024
GREEDY = {"prompt": "Once upon a time", "max_tokens": 60, "temperature": 0}


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def n_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def raw_conn(S, timeout=30):
    s = socket.create_connection(("127.0.0.1", S.port), timeout=timeout)
    return s


def post_bytes(path, body, extra=b""):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
            str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


def read_status(s):
    """The status of an HTTP reply on a raw socket (None if closed first) and the whole reply."""
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
            if b"\r\n\r\n" in data:
                head, _, rest = data.partition(b"\r\n\r\n")
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    break
    except (socket.timeout, ConnectionError):
        pass
    if not data.startswith(b"HTTP/1."):
        return None, data
    return int(data.split(b" ", 2)[1]), data


def healthy(S, want, what):
    st, _, r = S.post("/v1/completions", GREEDY)
    check(st == 200 and r["choices"][0]["text"] == want, "%s: the server no longer answers the same: %s %.200s" % (what, st, r))


S = Server(fb, model, tok, "--parallel", "4", "--read-timeout", "3")
pid = S.proc.pid
st, _, r = S.post("/v1/completions", GREEDY)
want = r["choices"][0]["text"]
check(st == 200 and want, "greedy reference: %s %s" % (st, r))
rss0, fd0 = rss_kib(pid), n_fds(pid)

# ---- malformed and wrongly typed bodies ----
for raw, what in ((b'{"prompt": "x",', "truncated JSON"), (b'{"prompt": "ab', "truncated string"),
                  (b'{"prompt": "x"}}', "extra brace"), (b'{prompt: "x"}', "unquoted key"), (b"\x00\x01\x02", "binary"),
                  (b'{"prompt": "x", "max_tokens": 1e999}', "number overflow"),
                  (b'{"prompt": "caf\xc3"}', "truncated UTF-8 sequence"), (b'{"prompt": "\xff\xfe x"}', "invalid UTF-8"),
                  (b'{"prompt": "\xed\xa0\x80"}', "UTF-8 surrogate"), (b"[" * 100000, "deep nesting"),
                  (b'{"a":' * 5000 + b"1" + b"}" * 5000, "deep objects")):
    st, _, e = S.post("/v1/completions", None, raw=raw)
    error_ok(st, e, 400, what=what)
for bad, what in (({"prompt": "x", "max_tokens": 10 ** 9}, "max_tokens 1e9"),
                  ({"prompt": "x", "max_tokens": 10 ** 30}, "max_tokens 1e30"),
                  ({"prompt": "x", "max_tokens": -1}, "negative max_tokens"),
                  ({"prompt": "x", "temperature": 1e308}, "temperature 1e308"),
                  ({"prompt": "x", "top_k": 2 ** 70}, "top_k 2^70"), ({"prompt": "x", "seed": 2 ** 80}, "seed 2^80"),
                  ({"prompt": "x", "n": 10 ** 12}, "n 1e12"), ({"prompt": "x", "logprobs": 10 ** 6}, "logprobs 1e6"),
                  ({"prompt": "x", "top_p": float("nan")}, "top_p NaN"), ({"prompt": [10 ** 15]}, "token id 1e15"),
                  ({"prompt": "x", "stop": ["a"] * 5000}, "5000 stop strings (the same)"),
                  ({"prompt": "x", "stop": ["s%d" % i for i in range(5000)]}, "5000 stop strings"),
                  ({"prompt": "x", "stop": ["y" * 100000]}, "a 100 KB stop string"),
                  ({"prompt": "x", "stream": 1}, "stream as a number"), ({"prompt": {"a": 1}}, "prompt an object"),
                  ({"messages": [{"role": "user", "content": "hi"}] * 3, "max_tokens": 10 ** 9}, "chat max_tokens 1e9")):
    path = "/v1/chat/completions" if "messages" in bad else "/v1/completions"
    body = json.dumps(bad, allow_nan=True).encode()
    st, _, e = S.post(path, None, raw=body)
    # the 5000 identical stops collapse into one and are accepted
    if what.startswith("5000 stop strings (the same)"):
        check(st == 200, "%s: %s %.200s" % (what, st, e))
        continue
    error_ok(st, e, 400, "context_length_exceeded" if "1e9" in what else None, what)
st, _, e = S.post("/v1/completions", {"prompt": "x", "max_tokens": 10 ** 9})
check("512" in e["error"]["message"], "max_tokens 1e9 names the context: %s" % e)
for what, body in (("10 MB body", b'{"prompt": "' + b"x" * (10 << 20) + b'"}'),):
    st, _, e = S.post("/v1/completions", None, raw=body)
    error_ok(st, e, 413, what=what + " (Content-Length)")
    c = S.conn()
    c.request("POST", "/v1/completions", body=iter([body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)]),
              headers={"Content-Type": "application/json"}, encode_chunked=True)
    try:
        resp = c.getresponse()
        check(resp.status == 413, what + " (chunked): %s" % resp.status)
        resp.read()
    except (ConnectionError, OSError) as ex:   # the server may close after its 413 while we still send
        check(False, what + " (chunked): no reply: %s" % ex)
    c.close()
healthy(S, want, "after the bad bodies")

# ---- slow clients: one byte a second ----
results = {}
body = json.dumps(GREEDY).encode()


def trickle(kind):
    """Send a request a byte a second (kind "headers": all of it; "body":
    the headers at once, then the body) and read what comes back."""
    msg = post_bytes("/v1/completions", body)
    s = raw_conn(S, timeout=20)
    start = 0
    if kind == "body":
        start = msg.index(b"\r\n\r\n") + 4
        s.sendall(msg[:start])
    t0 = time.time()
    try:
        for b in msg[start:]:
            s.sendall(bytes([b]))
            time.sleep(1.0)
            if time.time() - t0 > 12:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    st, data = read_status(s)
    s.close()
    results[kind] = (st, time.time() - t0, data)


th = [threading.Thread(target=trickle, args=(k,)) for k in ("headers", "body")]
for t in th:
    t.start()
# meanwhile the server serves others
st, _, r = S.post("/v1/completions", GREEDY)
check(st == 200 and r["choices"][0]["text"] == want, "served while two clients trickle: %s" % st)
for t in th:
    t.join(40)
for k in ("headers", "body"):
    st, dt, data = results.get(k, (None, 99, b""))
    check(st == 408 and dt < 8, "slow %s: status %s after %.1f s (want 408 after ~3 s): %.200r" % (k, st, dt, data))
    if st == 408:
        check(b'"error"' in data, "slow %s: 408 has an error object: %.200r" % (k, data))
m = S.metrics()
check(m.get('flashblock_requests_total{status="408"}', 0) >= 2, "408s counted: %s" % m.get('flashblock_requests_total{status="408"}'))
# a kept-alive connection that idles past --read-timeout is closed, with no
# reply on it (a 408 there would read as the answer to the next request)
s = raw_conn(S)
s.sendall(post_bytes("/v1/completions", json.dumps(dict(GREEDY, max_tokens=2)).encode()))
st, data = read_status(s)
check(st == 200 and b"connection: close" not in data.lower(), "a POST keeps its connection alive: %.200r" % data)
t0 = time.time()
s.settimeout(15)
try:
    rest = s.recv(1000)
except OSError as ex:
    rest = repr(ex).encode()
check(rest == b"" and 2.5 < time.time() - t0 < 8, "idle kept-alive connection: %r after %.1f s (want a plain close after ~3 s)" %
      (rest[:100], time.time() - t0))
s.close()

# ---- clients that never read their streams ----
readers = []
for i in range(6):
    s = raw_conn(S)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    b = json.dumps({"prompt": "Once upon a time", "max_tokens": 400, "temperature": 0.9, "seed": i, "stream": True,
                    "ignore_eos": True, "logprobs": 5}).encode()
    s.sendall(post_bytes("/v1/completions", b))
    readers.append(s)
peak = rss_kib(pid)
for _ in range(30):
    time.sleep(0.2)
    peak = max(peak, rss_kib(pid))
st, _, r = S.post("/v1/completions", GREEDY, timeout=60)
check(st == 200 and r["choices"][0]["text"] == want, "served beside 6 streams nobody reads: %s" % st)
check(peak - rss0 < RSS_BOUND_KIB, "RSS grew by %d KiB with 6 unread streams (bound %d)" % (peak - rss0, RSS_BOUND_KIB))
for s in readers:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

# ---- many connections opened and dropped ----
def drop(kind, i):
    try:
        s = raw_conn(S, timeout=10)
        if kind == 1:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
        elif kind == 2:
            s.sendall(post_bytes("/v1/completions", json.dumps(dict(GREEDY, max_tokens=300, ignore_eos=True)).encode()))
            time.sleep(0.01 * (i % 5))
        elif kind == 3:
            s.sendall(post_bytes("/v1/completions", json.dumps(dict(GREEDY, max_tokens=300, stream=True, ignore_eos=True)).encode()))
            s.recv(100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # RST, not FIN
        s.close()
    except OSError:
        pass


for wave in range(4):
    ts = [threading.Thread(target=drop, args=(k % 4, k)) for k in range(100)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
deadline = time.time() + 10
while time.time() < deadline:
    m = S.metrics()
    if m.get("flashblock_sequences_running", 1) == 0 and m.get("flashblock_sequences_waiting", 1) == 0:
        break
    time.sleep(0.2)
check(m.get("flashblock_sequences_running") == 0 and m.get("flashblock_sequences_waiting") == 0,
      "dropped clients left sequences behind: running %s waiting %s" % (m.get("flashblock_sequences_running"),
                                                                       m.get("flashblock_sequences_waiting")))
check(m.get("flashblock_kv_blocks_used", 0) == 0, "dropped clients left KV blocks in use: %s" % m.get("flashblock_kv_blocks_used"))
time.sleep(0.5)
check(n_fds(pid) <= fd0 + 4, "open descriptors %d -> %d after 400 dropped connections" % (fd0, n_fds(pid)))
healthy(S, want, "after 400 dropped connections")
st, _, _ = S.request("GET", "/health")
check(st == 200, "health after the hostile cases: %s" % st)
S.stop("hostile server")

# ---- graceful shutdown ----
def stream_start(S, body):
    s = raw_conn(S, timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(post_bytes("/v1/completions", json.dumps(body).encode()))
    first = s.recv(64)
    return s, first


def stream_rest(s, first):
    # a 4 KiB window would crawl (delayed ACKs): open it before reading on
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    data = first
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionError):
            break
        if not b:
            break
        data += b
        if data.endswith(b"data: [DONE]\n\n") or data.endswith(b"0\r\n\r\n"):
            break
    s.close()
    return data


def dechunk(data):
    """The body of a raw HTTP reply in chunked transfer encoding."""
    _, _, rest = data.partition(b"\r\n\r\n")
    out = b""
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += rest[:n]
        rest = rest[n + 2:]
    return out


def stream_text(data):
    text = ""
    for line in dechunk(data).decode("utf-8", "replace").split("\n"):
        if line.startswith("data: {"):
            text += "".join(c.get("text", "") for c in json.loads(line[6:])["choices"])
    return text


# long enough (and with logprobs, wide enough) that its reply outgrows the
# socket buffers of a client that does not read
LONG = {"prompt": "Once upon a time", "max_tokens": 4000, "temperature": 0, "stream": True, "ignore_eos": True,
        "logprobs": 20}
S = Server(fb, model, tok, "--grace", "30", "--ctx", "4096")
_, _, ref, _ = S.stream("/v1/completions", LONG)
ref_text = "".join(c["choices"][0]["text"] for c in ref[:-1] if c["choices"])
s, first = stream_start(S, LONG)     # held unread: its reply is still in flight
check(first.startswith(b"HTTP/1.1 200"), "stream started: %r" % first[:40])
t0 = time.time()
S.proc.send_signal(signal.SIGTERM)
time.sleep(0.5)
st, _, e = S.post("/v1/completions", GREEDY)
error_ok(st, e, 503, "unavailable", "a new request while draining")
st, _, _ = S.request("GET", "/health")
check(st == 503, "health while draining: %s" % st)
check(S.proc.poll() is None, "the server exited with a reply in flight")
data = stream_rest(s, first)
check(b"data: [DONE]" in dechunk(data), "the in-flight stream was cut: %.200r" % data[-200:])
check(stream_text(data) == ref_text, "the in-flight stream's text changed during shutdown")
try:
    rc = S.proc.wait(10)
except Exception:
    rc = "timeout"
S.reader.join(5)
log = "".join(S.log)
# it exits because the reply went out, not because the 30 s grace ran out
check(rc == 0 and time.time() - t0 < 30 and "grace period over" not in log,
      "exit after draining: rc %s after %.1f s" % (rc, time.time() - t0))
check("in flight get up to 30 s" in log, "drain announced: %s" % log[-500:])

# the grace period ends: what is still in flight is cancelled, exit 0
S = Server(fb, model, tok, "--grace", "1", "--ctx", "4096")
s, first = stream_start(S, LONG)
t0 = time.time()
S.proc.send_signal(signal.SIGTERM)
try:
    rc = S.proc.wait(15)
except Exception:
    rc = "timeout"
check(rc == 0 and 0.8 < time.time() - t0 < 10, "grace 1 s with an unread stream: rc %s after %.1f s" % (rc, time.time() - t0))
s.close()
S.reader.join(5)
check("grace period over" in "".join(S.log), "grace expiry logged")

# a second signal does not wait
S = Server(fb, model, tok, "--grace", "60", "--ctx", "4096")
s, first = stream_start(S, LONG)
t0 = time.time()
S.proc.send_signal(signal.SIGTERM)
time.sleep(0.3)
S.proc.send_signal(signal.SIGINT)
try:
    rc = S.proc.wait(15)
except Exception:
    rc = "timeout"
check(rc == 0 and time.time() - t0 < 10, "second signal: rc %s after %.1f s" % (rc, time.time() - t0))
s.close()
S.reader.join(5)
for bad in ("ERROR: AddressSanitizer", "runtime error:"):
    check(bad not in "".join(S.log), "sanitizer report")
finish("server_hostile")
