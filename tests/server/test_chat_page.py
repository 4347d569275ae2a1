"""The chat page of flashblock serve in headless Chromium (Debian's chromium
and chromium-driver, driven over WebDriver with http.client): load /, set
greedy sampling, send two messages, wait for the streamed replies, compare
them with /v1/chat/completions, and save a screenshot.

    python3 test_chat_page.py FLASHBLOCK DATA_DIR SCREENSHOT.png
Without chromium: skipped (77), or a failure when CI=true."""
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from harness import Server, check, data_paths, finish

fb, data_dir, shot = sys.argv[1], sys.argv[2], sys.argv[3]
model, tok = data_paths(data_dir)
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
driver = shutil.which("chromedriver")
if not chromium or not driver:
    if os.environ.get("CI") == "true":
        print("FAIL: chromium or chromedriver missing (CI=true; scripts/install-deps.sh installs them)")
        sys.exit(1)
    print("SKIP: chromium and chromium-driver are needed for the page test")
    sys.exit(77)


class WebDriver:
    def __init__(self, port):
        self.port = port
        self.sid = None

    def call(self, method, path, body=None, timeout=60, session=True):
        """A WebDriver command; path is relative to the session unless session=False."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if session:
            path = "/session/%s%s" % (self.sid, path)
        c.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        out = json.loads(r.read() or b"{}")
        c.close()
        if r.status != 200:
            raise RuntimeError("WebDriver %s %s: %s %s" % (method, path, r.status, out))
        return out.get("value")

    def find(self, css):
        v = self.call("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(v.values()))

    def js(self, script, *args):
        return self.call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def type_into(self, css, text):
        e = self.find(css)
        self.call("POST", "/element/%s/clear" % e, {})
        self.call("POST", "/element/%s/value" % e, {"text": text})

    def click(self, css):
        self.call("POST", "/element/%s/click" % self.find(css), {})


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


S = Server(fb, model, tok, "--parallel", "2")
profile = tempfile.mkdtemp(prefix="fb-chromium-")
dport = free_port()
drv = subprocess.Popen([driver, "--port=%d" % dport], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
wd = WebDriver(dport)
try:
    t0 = time.time()
    while True:   # chromedriver up?
        try:
            c = http.client.HTTPConnection("127.0.0.1", dport, timeout=2)
            c.request("GET", "/status")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.time() - t0 > 30:
            raise RuntimeError("chromedriver did not start")
        time.sleep(0.1)
    caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": chromium,
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-extensions", "--disable-background-networking", "--window-size=1000,700",
                 "--user-data-dir=" + profile]}}}}
    wd.sid = wd.call("POST", "/session", caps, timeout=120, session=False)["sessionId"]
    wd.call("POST", "/url", {"url": "http://127.0.0.1:%d/" % S.port})
    t0 = time.time()
    while "stories260K.bin" not in (wd.js("return document.getElementById('model').textContent") or ""):
        if time.time() - t0 > 20:
            check(False, "the page did not show the model name")
            break
        time.sleep(0.1)
    wd.type_into("#temperature", "0")
    wd.type_into("#max_tokens", "48")

    history = []
    for turn, msg in enumerate(["Tell me a story about a red ball.", "What happened next?"]):
        history.append({"role": "user", "content": msg})
        st, _, want = S.post("/v1/chat/completions", {"messages": history, "temperature": 0, "max_tokens": 48})
        check(st == 200, "API reply: %s %s" % (st, want))
        want = want["choices"][0]["message"]["content"]
        history.append({"role": "assistant", "content": want})
        wd.type_into("#input", msg)
        wd.click("#send")
        t0 = time.time()
        state = ""
        while time.time() - t0 < 60:
            state = wd.js("return document.body.dataset.state")
            n = wd.js("return document.querySelectorAll('.msg.assistant').length")
            if state in ("done", "error") and n == turn + 1:
                break
            time.sleep(0.05)
        check(state == "done", "turn %d: the page ended in state %r" % (turn, state))
        got = wd.js("var a = document.querySelectorAll('.msg.assistant'); var e = a[a.length - 1];"
                    "return [e.textContent, e.dataset.chunks, e.dataset.finish];")
        check(got[0] == want, "turn %d: the page shows %r, the API says %r" % (turn, got[0], want))
        check(int(got[1]) > 3, "turn %d: the reply came in %s chunks (not streamed?)" % (turn, got[1]))
        check(got[2] in ("stop", "length"), "turn %d: finish reason %r" % (turn, got[2]))
        print("turn %d: %d chunks, %r" % (turn, int(got[1]), got[0][:60]))
    png = base64.b64decode(wd.call("GET", "/screenshot"))
    os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
    with open(shot, "wb") as f:
        f.write(png)
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    check(png[:8] == b"\x89PNG\r\n\x1a\n" and w >= 800 and h >= 500 and len(png) > 10000,
          "screenshot: %d bytes, %dx%d" % (len(png), w, h))
    print("screenshot: %s (%dx%d, %d bytes)" % (shot, w, h, len(png)))
finally:
    try:
        if wd.sid:
            wd.call("DELETE", "")
    except Exception as e:   # noqa: BLE001 - cleanup
        print("note: closing the browser: %s" % e)
    drv.terminate()
    try:
        drv.wait(10)
    except subprocess.TimeoutExpired:
        drv.kill()
    shutil.rmtree(profile, ignore_errors=True)
    S.stop("server")
finish("server_chat_page")
