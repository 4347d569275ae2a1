"""Test harness for `flashblock serve`: start the server on 127.0.0.1 with
port 0 (the port is read from its "listening on" line), talk to it with
http.client, stop it with SIGTERM and check it exits 0 (with no sanitizer
report on stderr).

Every test script takes the flashblock binary and the data folder:
    python3 test_x.py FLASHBLOCK DATA_DIR
With the data missing it exits 77 (skipped), or 1 when CI=true.
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

SKIP = 77
failures = []
counted = [0]


def check(cond, msg):
    counted[0] += 1
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, flush=True)
    return cond


def finish(name):
    if failures:
        print("%s: %d check(s) failed" % (name, len(failures)))
        sys.exit(1)
    print("%s: all %d checks passed" % (name, counted[0]))
    sys.exit(0)


def data_paths(data_dir):
    data_dir = os.environ.get("FLASHBLOCK_DATA", data_dir)
    model = os.path.join(data_dir, "llama2c", "stories260K.bin")
    tok = os.path.join(data_dir, "llama2c", "tok512.bin")
    if not (os.path.isfile(model) and os.path.isfile(tok)):
        if os.environ.get("CI") == "true":
            print("FAIL: %s or %s missing (CI=true)" % (model, tok))
            sys.exit(1)
        print("SKIP: %s not found" % model)
        sys.exit(SKIP)
    return model, tok


class Server:
    """One `flashblock serve` process."""

    def __init__(self, binary, model, tok, *args, env=None):
        self.binary = binary
        cmd = [binary, "serve", "-m", model, "-z", tok, "--port", "0", "--threads", os.environ.get("FB_TEST_SERVER_THREADS", "1")] + list(args)
        e = dict(os.environ)
        e.update(env or {})
        self.log = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e)
        self.port = None
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(30):
            self.proc.kill()
            raise RuntimeError("server did not print its port: " + "".join(self.log))
        deadline = time.time() + 60
        while time.time() < deadline:
            st, _, _ = self.request("GET", "/health")
            if st == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("server never became healthy: " + "".join(self.log))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.ready.set()
        self.ready.set()

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=60, raw=None):
        """(status, headers dict, body bytes); body: dict -> JSON."""
        c = self.conn(timeout)
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            out = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, out
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            return None, {}, str(e).encode()
        finally:
            c.close()

    def post(self, path, body, **kw):
        st, h, out = self.request("POST", path, body, **kw)
        try:
            return st, h, json.loads(out)
        except ValueError:
            return st, h, out

    def stream(self, path, body, headers=None):
        """(status, headers, [parsed events], raw text): SSE data lines; "[DONE]" stays a string."""
        c = self.conn()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request("POST", path, body=json.dumps(body).encode(), headers=h)
        r = c.getresponse()
        text = r.read().decode("utf-8")
        c.close()
        events = []
        for block in text.split("\n\n"):
            if not block.strip():
                continue
            for line in block.split("\n"):
                if line.startswith("data: "):
                    d = line[6:]
                    events.append(d if d == "[DONE]" else json.loads(d))
        return r.status, {k.lower(): v for k, v in r.getheaders()}, events, text

    def metrics(self):
        st, _, out = self.request("GET", "/metrics")
        vals = {}
        for line in out.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
        return vals

    def cpu_ticks(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])   # utime + stime

    def stop(self, name="server"):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "timeout"
        self.reader.join(5)
        log = "".join(self.log)
        check(rc == 0, "%s exited %s after SIGTERM; log tail:\n%s" % (name, rc, log[-3000:]))
        for bad in ("ERROR: AddressSanitizer", "LeakSanitizer", "runtime error:"):
            check(bad not in log, "%s: sanitizer report on stderr:\n%s" % (name, log[-6000:]))
        return log


def error_ok(st, body, status, code=None, what=""):
    """An OpenAI error object with the given status (and code); the error dict."""
    ok = check(st == status, "%s: status %s, want %d: %.300s" % (what, st, status, body))
    ok = ok and check(isinstance(body, dict) and isinstance(body.get("error"), dict), "%s: no error object: %.300s" % (what, body))
    if ok:
        e = body["error"]
        check(all(k in e for k in ("message", "type", "code")) and e["message"], "%s: error object fields: %s" % (what, e))
        if code:
            check(e["code"] == code, "%s: code %s, want %s" % (what, e["code"], code))
    return body["error"] if ok else {}


def run_together(fn, items, timeout=120):
    """fn(*item) for every item, all released at once from a barrier; the results in order."""
    out = [None] * len(items)
    barrier = threading.Barrier(len(items))

    def go(i):
        barrier.wait()
        out[i] = fn(*items[i])
    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return out


def completion_text(resp, i=0):
    return resp["choices"][i]["text"]
