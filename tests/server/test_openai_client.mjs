// flashblock serve driven by the official `openai` npm package (pinned in
// tests/server/node/package.json; `npm ci` there installs it):
// completions and chat, plain and streamed (`for await` over the client's
// Stream, and the client's own chat stream helper), stop strings, n, seeds,
// logprobs, cancellation through an AbortController (checked on /metrics),
// the client's APIError for a 400 and a 404, and SIGTERM during a stream
// (the server's error event reaches the client as an APIError). The server
// is started on 127.0.0.1 with port 0 and stopped with that SIGTERM: it
// must exit 0 with no sanitizer report on stderr.
//
// usage: node test_openai_client.mjs FLASHBLOCK DATA_DIR
// ($FLASHBLOCK_DATA overrides DATA_DIR.) Data or node_modules/openai missing:
// exit 77 (skipped), or 1 when CI=true.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const SKIP = 77;
const CI = process.env.CI === "true";
const here = dirname(fileURLToPath(import.meta.url));

function missing(what) {
    if (CI) { console.log(`FAIL: ${what} (required when CI=true)`); process.exit(1); }
    console.log(`SKIP: ${what}`);
    process.exit(SKIP);
}

const [fb, dataArg] = process.argv.slice(2);
if (!fb || !dataArg) { console.log("usage: node test_openai_client.mjs FLASHBLOCK DATA_DIR"); process.exit(2); }
const dataDir = process.env.FLASHBLOCK_DATA || dataArg;
const model = join(dataDir, "llama2c", "stories260K.bin"), tok = join(dataDir, "llama2c", "tok512.bin");
if (!existsSync(model) || !existsSync(tok)) missing(`${model} or ${tok} not found`);

// the client lives in tests/server/node/node_modules, not beside this file:
// import its ESM entry point by path
const pkgDir = join(here, "node", "node_modules", "openai");
if (!existsSync(join(pkgDir, "package.json")))
    missing("the openai npm package is not installed: (cd tests/server/node && npm ci)");
const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
const entry = pkg.exports?.["."]?.import?.default ?? pkg.exports?.["."]?.default ?? pkg.module ?? pkg.main;
const openai = await import(pathToFileURL(join(pkgDir, entry)).href);
const OpenAI = openai.default, { APIError, BadRequestError, NotFoundError } = openai;

// ---- checks ----
let counted = 0;
const failures = [];
function check(cond, msg) {
    counted++;
    if (!cond) { failures.push(msg); console.log("FAIL: " + msg); }
    return cond;
}
// what the checks since the previous note covered: ok, or FAILED
let mark = 0;
function note(msg) {
    console.log((failures.length === mark ? "ok: " : "FAILED: ") + msg);
    mark = failures.length;
}
// one group of checks: an exception fails it and the next group still runs
async function section(name, fn) {
    try { await fn(); } catch (e) { check(false, `${name}: unexpected exception: ${e?.stack ?? e}`); note(name); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const J = (x) => JSON.stringify(x);

// ---- the server ----
// --ctx 4096: a 4000-token request keeps the server busy long enough to be
// cancelled (stories260K runs thousands of tokens a second)
const args = ["serve", "-m", model, "-z", tok, "--port", "0", "--grace", "300", "--threads", process.env.FB_TEST_SERVER_THREADS || "1",
              "--ctx", "4096"];
const proc = spawn(fb, args, { stdio: ["ignore", "ignore", "pipe"] });
let log = "", port = null, exited = null, termSent = false;
// "close": the process has exited and its stderr is read to the end
const exitPromise = new Promise((res) => proc.on("close", (code, signal) => { exited = { code, signal }; res(exited); }));
const portPromise = new Promise((res, rej) => {
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (s) => {
        log += s;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(log);
        if (m && port === null) { port = Number(m[1]); res(port); }
    });
    proc.on("close", () => rej(new Error("server exited before printing its port:\n" + log)));
    setTimeout(() => rej(new Error("server did not print its port in 30 s:\n" + log)), 30000).unref();
});
proc.on("error", (e) => { console.log("FAIL: cannot start " + fb + ": " + e.message); process.exit(1); });

async function stopServer() {
    // one SIGTERM only: a second one while the server shuts down is not
    // caught (OpenBLAS's worker threads, started before the server blocks
    // the signals, take it) and kills the process
    if (exited === null && !termSent) proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 60000);
    const { code, signal } = await exitPromise;
    clearTimeout(timer);
    check(code === 0, `server exited with code ${code} signal ${signal} after SIGTERM; log tail:\n${log.slice(-3000)}`);
    for (const bad of ["AddressSanitizer", "LeakSanitizer", "runtime error:"])
        check(!log.includes(bad), `sanitizer report ("${bad}") on the server's stderr:\n${log.slice(-6000)}`);
    note(`the server's exit after SIGTERM: code ${code}, its stderr checked for sanitizer reports`);
}

async function metrics(base) {
    const r = await fetch(base + "/metrics");
    const vals = {};
    for (const line of (await r.text()).split("\n")) {
        if (!line.trim() || line.startsWith("#")) continue;
        const i = line.lastIndexOf(" ");
        vals[line.slice(0, i)] = Number(line.slice(i + 1));
    }
    return vals;
}

async function main() {
    await portPromise;
    const base = `http://127.0.0.1:${port}`;
    const t0 = Date.now();
    let healthy = false;
    while (Date.now() - t0 < 60000) {
        try { if ((await fetch(base + "/health")).status === 200) { healthy = true; break; } } catch { /* not yet */ }
        await sleep(50);
    }
    if (!check(healthy, "server never became healthy:\n" + log)) return;
    console.log(`server on port ${port}, openai ${pkg.version}`);

    // maxRetries 0: a failing request must fail the test, not be retried
    const client = new OpenAI({ baseURL: base + "/v1", apiKey: "x", maxRetries: 0, timeout: 120000 });

    // ---- models ----
    const models = await client.models.list();
    const modelId = models.data?.[0]?.id;
    check(models.data.length === 1 && typeof modelId === "string" && modelId.length > 0, "models.list: " + J(models.data));
    const one = await client.models.retrieve(modelId);
    check(one.id === modelId && one.object === "model", "models.retrieve: " + J(one));
    note(`models.list / retrieve (${modelId})`);

    // ---- completions, greedy, plain; the same request through fetch ----
    const CREQ = { model: modelId, prompt: "Once upon a time", max_tokens: 48, temperature: 0 };
    const c = await client.completions.create(CREQ);
    const text = c.choices?.[0]?.text;
    check(c.object === "text_completion" && typeof c.id === "string" && typeof c.created === "number" && c.model === modelId,
          "completion head: " + J({ ...c, choices: undefined }));
    check(c.choices.length === 1 && c.choices[0].index === 0, "completion choices: " + J(c.choices));
    check(typeof text === "string" && text.length > 0, "completion text is not a non-empty string: " + J(text));
    check(["stop", "length"].includes(c.choices[0].finish_reason), "finish_reason: " + c.choices[0].finish_reason);
    const u = c.usage;
    check(u && u.prompt_tokens > 0 && u.completion_tokens > 0 && u.completion_tokens <= CREQ.max_tokens &&
          u.total_tokens === u.prompt_tokens + u.completion_tokens, "usage: " + J(u));
    check(c.choices[0].finish_reason !== "length" || u.completion_tokens === CREQ.max_tokens, "finish length with usage " + J(u));
    const raw = await (await fetch(base + "/v1/completions", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: J(CREQ) })).json();
    check(raw.choices?.[0]?.text === text, `the client's text ${J(text)} differs from fetch's ${J(raw.choices?.[0]?.text)}`);
    check(J(raw.usage) === J(u) && raw.choices[0].finish_reason === c.choices[0].finish_reason,
          `client and fetch disagree: ${J(u)} vs ${J(raw.usage)}`);
    note(`completions.create greedy (${u.completion_tokens} tokens, ${c.choices[0].finish_reason}): ${J(text)}`);

    // ---- completions, streamed ----
    await section("completions stream", async () => {
        const stream = await client.completions.create({ ...CREQ, stream: true, stream_options: { include_usage: true } });
        let s = "", last = null, usage = null, n = 0, odd = null;
        for await (const chunk of stream) {
            n++;
            if (chunk.object !== "text_completion" || (chunk.choices.length && chunk.choices[0].index !== 0)) odd ??= chunk;
            if (chunk.usage) usage = chunk.usage;
            if (!chunk.choices.length) continue;
            s += chunk.choices[0].text;
            last = chunk.choices[0];
        }
        check(odd === null, "a stream chunk with another object or index: " + J(odd));
        check(s === text, `streamed completion ${J(s)} differs from ${J(text)}`);
        check(last && last.finish_reason === c.choices[0].finish_reason, "streamed finish_reason: " + J(last));
        check(usage && J(usage) === J(u), `streamed usage ${J(usage)} vs ${J(u)}`);
        note(`completions.create stream (${n} chunks, same text, usage chunk)`);
    });

    // ---- chat, plain and streamed ----
    const MSG = [{ role: "system", content: "You tell short stories." }, { role: "user", content: "Tell me a story about a cat." }];
    const QREQ = { model: modelId, messages: MSG, max_tokens: 40, temperature: 0 };
    const q = await client.chat.completions.create(QREQ);
    const content = q.choices?.[0]?.message?.content;
    check(q.object === "chat.completion" && q.choices.length === 1 && q.choices[0].index === 0, "chat head: " + J(q));
    check(q.choices[0].message.role === "assistant", "chat role: " + J(q.choices[0].message));
    check(typeof content === "string" && content.length > 0, "chat content is not a non-empty string: " + J(content));
    check(["stop", "length"].includes(q.choices[0].finish_reason), "chat finish_reason: " + q.choices[0].finish_reason);
    check(q.usage && q.usage.total_tokens === q.usage.prompt_tokens + q.usage.completion_tokens && q.usage.completion_tokens > 0,
          "chat usage: " + J(q.usage));
    note(`chat.completions.create (${q.usage.completion_tokens} tokens, ${q.choices[0].finish_reason}): ${J(content)}`);
    await section("chat stream", async () => {
        const stream = await client.chat.completions.create({ ...QREQ, stream: true });
        let s = "", chunks = [], roles = [];
        for await (const chunk of stream) {
            chunks.push(chunk);
            const d = chunk.choices[0]?.delta ?? {};
            if (d.role) roles.push(d.role);
            if (typeof d.content === "string") s += d.content;
        }
        const lastc = chunks[chunks.length - 1];
        check(chunks.every((k) => k.object === "chat.completion.chunk" && k.choices.length === 1 && k.choices[0].index === 0),
              "chat chunks: " + J(chunks.find((k) => k.object !== "chat.completion.chunk" || k.choices.length !== 1)));
        check(s === content, `streamed chat ${J(s)} differs from ${J(content)}`);
        check(roles.length === 1 && roles[0] === "assistant" && chunks[0]?.choices[0].delta.role === "assistant",
              "chat stream roles: " + J(roles));
        check(lastc && lastc.choices[0].finish_reason === q.choices[0].finish_reason,
              "last chat chunk has no (or another) finish_reason: " + J(lastc));
        check(chunks.slice(0, -1).every((k) => k.choices[0].finish_reason === null), "finish_reason before the last chunk");
        note(`chat.completions.create stream (${chunks.length} chunks, same content, finish on the last)`);
    });
    // the client's own accumulating helper (it insists on a role and a finish_reason per choice)
    await section("chat.completions.stream helper", async () => {
        const runner = client.chat.completions.stream(QREQ);
        let deltas = "";
        runner.on("content", (d) => { deltas += d; });
        const fin = await runner.finalChatCompletion();
        check(fin.choices[0].message.content === content && deltas === content,
              `chat.completions.stream: ${J(fin.choices[0].message.content)} / ${J(deltas)} vs ${J(content)}`);
        check(fin.choices[0].finish_reason === q.choices[0].finish_reason && fin.choices[0].message.role === "assistant",
              "chat.completions.stream final: " + J(fin.choices[0]));
        note("chat.completions.stream helper, finalChatCompletion equals the plain reply");
    });

    // ---- stop strings ----
    await section("stop strings", async () => {
        // a piece of the greedy text that first occurs well inside it
        let stop = null;
        for (let pos = Math.floor(text.length / 3); pos < text.length - 4 && !stop; pos++) {
            const cand = text.slice(pos, pos + 4);
            if (text.indexOf(cand) === pos && cand.trim().length > 0) stop = cand;
        }
        if (check(stop !== null, "no stop string candidate in " + J(text))) {
            const prefix = text.slice(0, text.indexOf(stop));
            const r = await client.completions.create({ ...CREQ, stop: [stop] });
            check(r.choices[0].text === prefix, `stop ${J(stop)}: ${J(r.choices[0].text)}, expected ${J(prefix)}`);
            check(r.choices[0].finish_reason === "stop", "stop: finish_reason " + r.choices[0].finish_reason);
            const st = await client.completions.create({ ...CREQ, stop: stop, stream: true });
            let s = "", fin = null;
            for await (const chunk of st) { s += chunk.choices[0]?.text ?? ""; fin = chunk.choices[0]?.finish_reason ?? fin; }
            check(s === prefix && fin === "stop", `streamed stop ${J(stop)}: ${J(s)} (${fin}), expected ${J(prefix)}`);
            note(`stop ${J(stop)} ends the text before it (plain and streamed), finish_reason stop`);
        }
    });

    // ---- n = 2 with a seed ----
    await section("n = 2", async () => {
        const NREQ = { model: modelId, prompt: "A little bird", max_tokens: 24, temperature: 0.9, seed: 1234, n: 2 };
        const a = await client.completions.create(NREQ);
        const idx = a.choices.map((x) => x.index).sort();
        check(a.choices.length === 2 && J(idx) === "[0,1]", "n=2 indices: " + J(idx));
        check(a.choices.every((x) => typeof x.text === "string" && x.text.length > 0), "n=2 texts: " + J(a.choices));
        const b = await client.completions.create(NREQ);
        const byIdx = (r) => J([...r.choices].sort((x, y) => x.index - y.index).map((x) => x.text));
        check(byIdx(a) === byIdx(b), `seed 1234 n=2 twice differs: ${byIdx(a)} vs ${byIdx(b)}`);
        const one = await client.completions.create({ ...NREQ, n: 1 });
        const a0 = a.choices.find((x) => x.index === 0).text, a1 = a.choices.find((x) => x.index === 1).text;
        check(one.choices[0].text === a0, `choice 0 of n=2 ${J(a0)} differs from n=1 ${J(one.choices[0].text)}`);
        check(a0 !== a1, "the two choices are identical: " + J(a0));
        note(`n=2 seed 1234: choices 0 and 1, reproducible, choice 0 equals n=1`);
    });

    // ---- logprobs ----
    await section("logprobs", async () => {
        const r = await client.completions.create({ ...CREQ, max_tokens: 16, logprobs: 2 });
        const lp = r.choices[0].logprobs;
        const n = r.usage.completion_tokens;
        check(lp && Array.isArray(lp.token_logprobs) && lp.token_logprobs.length === n,
              `completions logprobs: ${lp?.token_logprobs?.length} token_logprobs for ${n} tokens`);
        check(lp && lp.tokens?.length === n && lp.top_logprobs?.length === n && lp.text_offset?.length === n,
              "completions logprobs arrays: " + J(lp));
        check(lp && lp.token_logprobs.every((x) => typeof x === "number" && x <= 0), "token_logprobs: " + J(lp?.token_logprobs));
        check(lp && lp.top_logprobs.every((d) => d && Object.keys(d).length >= 1 && Object.keys(d).length <= 2),
              "top_logprobs: " + J(lp?.top_logprobs));
        // greedy: the chosen token is the most likely one
        check(lp && lp.token_logprobs.every((x, i) => Math.abs(x - Math.max(...Object.values(lp.top_logprobs[i]))) < 1e-4),
              "greedy token is not the top alternative: " + J(lp));
        check(lp && lp.tokens.join("") === r.choices[0].text, `tokens ${J(lp?.tokens)} do not spell ${J(r.choices[0].text)}`);
        check(lp && lp.text_offset.every((o, i) => i === 0 || o >= lp.text_offset[i - 1]), "text_offset not monotonic");

        const q2 = await client.chat.completions.create({ ...QREQ, max_tokens: 12, logprobs: true, top_logprobs: 2 });
        const cont = q2.choices[0].logprobs?.content;
        check(Array.isArray(cont) && cont.length === q2.usage.completion_tokens,
              `chat logprobs: ${cont?.length} entries for ${q2.usage.completion_tokens} tokens`);
        check(Array.isArray(cont) && cont.every((e) => typeof e.token === "string" && typeof e.logprob === "number" && e.logprob <= 0 &&
              Array.isArray(e.bytes) && Array.isArray(e.top_logprobs) && e.top_logprobs.length === 2 &&
              e.top_logprobs.every((t) => typeof t.token === "string" && typeof t.logprob === "number")),
              "chat logprobs entries: " + J(cont));
        check(Array.isArray(cont) && cont.every((e) => e.token === e.top_logprobs[0].token &&
              Math.abs(e.logprob - e.top_logprobs[0].logprob) < 1e-4 && e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob),
              "chat greedy token is not the top alternative: " + J(cont));
        check(Array.isArray(cont) && cont.map((e) => e.token).join("") === q2.choices[0].message.content,
              "chat logprob tokens do not spell the content");
        note(`logprobs (completions: ${n} token_logprobs; chat: ${cont?.length} entries with top_logprobs)`);
    });

    // ---- cancellation through an AbortController ----
    await section("cancellation", async () => {
        const m0 = await metrics(base);
        const LONG = { model: modelId, prompt: "Once upon a time", max_tokens: 4000, temperature: 0.8, seed: 9,
                       ignore_eos: true, stream: true };
        const ac = new AbortController();
        const stream = await client.completions.create(LONG, { signal: ac.signal });
        let chunks = 0, running = null, threw = null;
        try {
            for await (const chunk of stream) {
                if (chunk.choices.length) chunks++;
                if (chunks === 3) {
                    running = (await metrics(base))["flashblock_sequences_running"];
                    ac.abort();
                }
            }
        } catch (e) { threw = e; }
        check(threw === null || threw instanceof openai.APIUserAbortError || threw.name === "AbortError",
              "the aborted stream threw " + threw);
        check(chunks >= 3, `only ${chunks} chunks before the abort`);
        check(running === 1, "flashblock_sequences_running while streaming: " + running);
        const ta = Date.now();
        let m = await metrics(base);
        while (m["flashblock_sequences_running"] !== 0 && Date.now() - ta < 3000) { await sleep(20); m = await metrics(base); }
        const dt = (Date.now() - ta) / 1000;
        check(m["flashblock_sequences_running"] === 0, "the aborted sequence still runs 3 s after the abort");
        const key = 'flashblock_request_finished_total{reason="cancelled"}';
        check(m[key] === m0[key] + 1, `cancelled counter ${m0[key]} -> ${m[key]}`);
        const gen = m["flashblock_generation_tokens_total"] - m0["flashblock_generation_tokens_total"];
        check(gen < LONG.max_tokens, `the aborted request ran to the end (${gen} tokens)`);
        check(m["flashblock_kv_blocks_used"] === 0, "KV blocks still used after the abort: " + m["flashblock_kv_blocks_used"]);
        const after = await client.completions.create(CREQ);
        check(after.choices[0].text === text, "the request after the abort differs: " + J(after.choices[0].text));
        note(`abort after ${chunks} chunks: sequence freed within ${dt.toFixed(3)} s (${gen} tokens generated), next request fine`);

        // not streamed: abort while waiting for the whole reply
        const m1 = await metrics(base);
        const ac2 = new AbortController();
        const pending = client.completions.create({ ...LONG, stream: false }, { signal: ac2.signal });
        let m2 = m1;
        const tw = Date.now();   // wait until it runs, then abort
        while (m2["flashblock_sequences_running"] !== 1 && Date.now() - tw < 3000) { await sleep(5); m2 = await metrics(base); }
        check(m2["flashblock_sequences_running"] === 1, "the plain long request never showed up as running");
        ac2.abort();
        let err = null;
        try { await pending; } catch (e) { err = e; }
        check(err instanceof openai.APIUserAbortError, "the aborted plain request did not throw APIUserAbortError: " + err);
        const tb = Date.now();
        m2 = await metrics(base);
        while (m2["flashblock_sequences_running"] !== 0 && Date.now() - tb < 3000) { await sleep(20); m2 = await metrics(base); }
        check(m2["flashblock_sequences_running"] === 0, "the aborted plain request still runs 3 s after the abort");
        check(m2[key] === m1[key] + 1, `cancelled counter (plain) ${m1[key]} -> ${m2[key]}`);
        const again = await client.chat.completions.create(QREQ);
        check(again.choices[0].message.content === content, "the chat request after the aborts differs");
        note(`abort of a plain request: APIUserAbortError, sequence freed within ${((Date.now() - tb) / 1000).toFixed(3)} s`);
    });

    // ---- errors ----
    await section("errors", async () => {
        let err = null;
        try { await client.completions.create({ ...CREQ, max_tokens: 1000000 }); } catch (e) { err = e; }
        check(err instanceof APIError && err instanceof BadRequestError && err.status === 400,
              "max_tokens 10^6: expected an APIError with status 400, got " + err);
        check(err?.code === "context_length_exceeded" && err?.param === "max_tokens" && typeof err?.message === "string" &&
              err.message.includes("context length"), `error fields: code ${err?.code} param ${err?.param} message ${err?.message}`);
        err = null;
        try {
            const s = await client.chat.completions.create({ ...QREQ, max_tokens: 1000000, stream: true });
            for await (const _ of s) { /* nothing should arrive */ }
        } catch (e) { err = e; }
        check(err instanceof BadRequestError && err.status === 400, "streamed max_tokens 10^6: expected a 400 APIError, got " + err);
        err = null;
        try { await client.completions.create({ ...CREQ, model: "no-such-model" }); } catch (e) { err = e; }
        check(err instanceof NotFoundError && err.status === 404 && err.code === "model_not_found", "unknown model: " + err);
        err = null;
        try { await client.completions.create({ ...CREQ, temperature: "hot" }); } catch (e) { err = e; }
        check(err instanceof BadRequestError && err.param === "temperature", "temperature as a string: " + err);
        note("errors: 400 context_length_exceeded (plain and streamed), 404 model_not_found, 400 invalid temperature");
    });

    // ---- SIGTERM while a stream runs: admission stops, the stream finishes (--grace) ----
    await section("shutdown mid-stream", async () => {
        const stream = await client.completions.create({ model: modelId, prompt: "Once upon a time", max_tokens: 4000,
                                                         ignore_eos: true, temperature: 0.8, seed: 5, stream: true });
        let chunks = 0, err = null, last = null, refused = null;
        try {
            for await (const chunk of stream) {
                last = chunk;
                if (++chunks === 3) {
                    termSent = true;
                    proc.kill("SIGTERM");
                    await sleep(200);
                    try { await client.completions.create(CREQ); } catch (e) { refused = e; }
                }
            }
        } catch (e) { err = e; }
        check(err === null, "SIGTERM mid-stream: the stream in flight must finish, got " + err);
        check(last?.choices?.[0]?.finish_reason === "length", "the drained stream ends with finish_reason length: " + J(last));
        check(refused instanceof APIError && refused.status === 503 && refused.code === "unavailable",
              "a new request while draining: expected a 503 APIError, got " + refused);
        note(`SIGTERM mid-stream: the stream finished (${chunks} chunks), a new request got ${refused?.status} ${J(refused?.code)}`);
    });
}

try {
    await main();
} catch (e) {
    check(false, "unexpected exception: " + (e?.stack ?? e));
}
await stopServer();
if (failures.length) {
    console.log(`server_openai_client: ${failures.length} of ${counted} check(s) failed`);
    process.exit(1);
}
console.log(`server_openai_client: all ${counted} checks passed`);
process.exit(0);
