// Live comparison of flashblock's GPT-2 tokenizer with OpenAI's GPT-2
// tokenizer as implemented by js-tiktoken (encoding "gpt2") and by
// gpt-3-encoder. Run from CTest (tests/tokenizer/run_node_reference.sh):
//   node compare.mjs TOK_DUMP GPT2_DIR STRESS.json [CORPUS...]
// gpt-3-encoder is compared on the stress set; on whole corpora only with
// FB_NODE_GPT3_CORPUS=1 (it takes minutes for Tiny Shakespeare).
// Exit 0: identical; 1: a difference (printed); 77: references not installed
// and CI is not "true" (skip).
import { createRequire } from 'module';
import { execFileSync } from 'child_process';
import fs from 'fs';

const require = createRequire(import.meta.url);
const ci = process.env.CI === 'true';
let tiktoken, gpt3;
try {
  tiktoken = require('js-tiktoken');
  gpt3 = require('gpt-3-encoder');
} catch (e) {
  console.error(`node references not installed (${e.code || e.message}); run npm ci in tests/tokenizer/node`);
  process.exit(ci ? 1 : 77);
}

const [dump, gpt2dir, stressPath, ...corpora] = process.argv.slice(2);
const enc = tiktoken.getEncoding('gpt2');
const cases = JSON.parse(fs.readFileSync(stressPath, 'utf8'));
let failures = 0, refDisagree = 0;

function ours(args) {
  const out = execFileSync(dump, [`gpt2:${gpt2dir}`, ...args], { maxBuffer: 1 << 30, encoding: 'utf8' });
  return out.split('\n').slice(0, -1).map(l => (l.length ? l.split(' ').map(Number) : []));
}
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
function firstDiff(a, b) { let i = 0; while (i < a.length && i < b.length && a[i] === b[i]) i++; return i; }
const show = s => JSON.stringify(s.length > 80 ? s.slice(0, 80) + '...' : s);

// 1. stress set, <|endoftext|> as ordinary text (tiktoken: disallowedSpecial none)
const mine = ours(['--cases', stressPath]);
const mineSpecial = ours(['--cases', stressPath, '--special']);
if (mine.length !== cases.length || mineSpecial.length !== cases.length) {
  console.error(`tok_dump returned ${mine.length}/${mineSpecial.length} lines for ${cases.length} cases`);
  process.exit(1);
}
for (let i = 0; i < cases.length; i++) {
  const s = cases[i];
  const tk = enc.encode(s, [], []);
  const g3 = gpt3.encode(s);
  if (!same(tk, g3)) {
    refDisagree++;
    console.log(`NOTE case ${i} ${show(s)}: js-tiktoken and gpt-3-encoder disagree:\n  js-tiktoken   ${tk}\n  gpt-3-encoder ${g3}`);
  }
  if (!same(mine[i], tk)) {
    failures++;
    console.log(`FAIL case ${i} ${show(s)}:\n  flashblock  ${mine[i]}\n  js-tiktoken ${tk}`);
  }
  const tks = enc.encode(s, 'all');
  if (!same(mineSpecial[i], tks)) {
    failures++;
    console.log(`FAIL case ${i} (special allowed) ${show(s)}:\n  flashblock  ${mineSpecial[i]}\n  js-tiktoken ${tks}`);
  }
  // js-tiktoken decodes with TextDecoder, which drops a leading U+FEFF (BOM)
  if (enc.decode(mine[i]) !== s.replace(/^\ufeff/, '')) { failures++; console.log(`FAIL case ${i}: js-tiktoken does not decode our ids back`); }
}
console.log(`stress set: ${cases.length} cases, ${failures} failure(s), ${refDisagree} reference disagreement(s)`);

// 2. whole corpora
for (const path of corpora) {
  const text = fs.readFileSync(path, 'utf8');
  const [m] = ours(['--file', path]);
  const tk = enc.encode(text, [], []);
  // gpt-3-encoder needs minutes for a 1 MB corpus; only on request
  const g3 = process.env.FB_NODE_GPT3_CORPUS === '1' ? gpt3.encode(text) : tk;
  const tag = `${path}: ${m.length} tokens (js-tiktoken ${tk.length}${g3 !== tk ? `, gpt-3-encoder ${g3.length}` : ''})`;
  if (!same(m, tk)) { failures++; const d = firstDiff(m, tk); console.log(`FAIL ${tag}; first difference at token ${d}: ${m[d]} vs ${tk[d]}`); }
  else console.log(`ok ${tag}`);
  if (!same(tk, g3)) { refDisagree++; console.log(`NOTE ${path}: js-tiktoken and gpt-3-encoder disagree at token ${firstDiff(tk, g3)}`); }
}
process.exit(failures ? 1 : 0);
