// llama.cpp as the reference for docent's language model: the same GGUF file, run by
// llama.cpp (through node-llama-cpp's prebuilt binaries), for
//   fixtures: token ids of tricky strings and a greedy continuation, written as JSON and
//             committed under crates/llm/tests/reference/ (the tests compare against them);
//   bench:    prefill and decode speed on a prompt read from a file, printed as one JSON line.
//
// Setup (once): bash scripts/llama-reference-setup.sh
// Usage:
//   node scripts/llama-reference.mjs fixtures MODEL.gguf PROMPT_FILE OUT.json [THREADS] [--top=K] [--steps=N]
//   node scripts/llama-reference.mjs bench MODEL.gguf PROMPT_FILE DECODE_TOKENS THREADS
// --top=K also writes llama.cpp's K largest logits at every greedy step, as lists of [token, logit]
// pairs, best first: `decode_top` from the greedy decoding itself (one token per evaluation) and
// `forced_top` with the prompt and the greedy tokens fed in one batch (teacher forcing). Random-weight
// models need them: their greedy choices are often near-ties, and llama.cpp's own two paths differ by
// a few hundredths to tenths on quantised weights (its kernels round activations differently by
// batch size), which these lists measure. --steps=N sets the number of greedy tokens (32).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import { homedir } from "node:os";

const home = process.env.DOCENT_LLAMACPP ?? join(homedir(), ".cache", "docent-llamacpp");
const require = createRequire(join(home, "package.json"));
const { getLlama } = await import(require.resolve("node-llama-cpp"));

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
};
const [mode, modelPath, promptFile, ...rest] = args.filter((x) => !x.startsWith("--"));
if (!mode || !modelPath || !promptFile) {
  console.error("usage: llama-reference.mjs fixtures|bench MODEL.gguf PROMPT_FILE ...");
  process.exit(2);
}

// Kept in step with the texts in crates/llm/tests/llm.rs.
const TRICKY = [
  "Hello, world!",
  "café naïve résumé",
  "日本語のテキスト",
  "👩‍👩‍👧 emoji",
  "a  b   c\t\td\n\n\ne",
  "   leading and trailing   ",
  "3.14159 and 1234567890",
  'fn main() { println!("hi"); }',
  "don't I'll we're",
  "e\u0301 combining",
  "Ünïcödé ΑΒΓ абв עברית العربية हिन्दी",
  "<|im_start|> <start_of_turn> </s> <eos>",
  "line one\r\nline two\r\n",
  "x".repeat(300),
  "<|turn>model\n<turn|> <|channel>thought<channel|> <think></think> <bos>",
];

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const threads = Number(rest[1] ?? 2);
const model = await llama.loadModel({ modelPath });
const prompt = readFileSync(promptFile, "utf8");

if (mode === "fixtures") {
  const out = {
    model: basename(modelPath),
    reference: "llama.cpp via node-llama-cpp",
    tokenize: TRICKY.map((text) => ({ text, ids: Array.from(model.tokenize(text, false)) })),
    prompt,
    prompt_ids: Array.from(model.tokenize(prompt, true)),
  };
  // An f32 KV cache, as docent keeps (llama.cpp's default f16 cache rounds keys and values).
  const ctx = await model.createContext({
    contextSize: 2048,
    threads,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
  });
  const seq = ctx.getSequence();
  const steps = flag("steps", 32);
  const top = flag("top", 0);
  const topOf = (logits) =>
    [...logits.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([t, l]) => [t, Math.round(l * 1e5) / 1e5]);
  const ids = [];
  if (top > 0) {
    // Greedy decoding one token per step (as in generation), keeping each step's top logits.
    const want = { generateNext: { logits: { filter: { tokens: [], includeTop: top } } } };
    out.decode_top = [];
    let input = [...out.prompt_ids.slice(0, -1), [out.prompt_ids.at(-1), want]];
    while (ids.length < steps) {
      const res = await seq.controlledEvaluate(input);
      const best = topOf(res.at(-1).next.logits);
      out.decode_top.push(best);
      ids.push(best[0][0]);
      input = [[best[0][0], want]];
    }
    // Teacher forcing in one batch: the prompt, then the greedy tokens but the last; the logits
    // after the last prompt token and after each greedy token predict the next greedy token.
    await seq.clearHistory();
    const forced = [...out.prompt_ids.slice(0, -1), [out.prompt_ids.at(-1), want], ...ids.slice(0, -1).map((t) => [t, want])];
    const res = await seq.controlledEvaluate(forced);
    const first = out.prompt_ids.length - 1;
    out.forced_top = ids.map((_, i) => topOf(res[first + i].next.logits));
    const flips = out.forced_top.map((s, i) => (s[0][0] === ids[i] ? null : i)).filter((i) => i !== null);
    let diff = 0;
    out.forced_top.forEach((s, i) => {
      const d = new Map(out.decode_top[i]);
      for (const [t, l] of s) if (d.has(t)) diff = Math.max(diff, Math.abs(d.get(t) - l));
    });
    const gaps = out.decode_top.map((s) => s[0][1] - s[1][1]);
    console.log(
      `decode vs batch: ${flips.length} steps with another first choice ${JSON.stringify(flips)}, largest logit difference ${diff.toFixed(4)}; ` +
        `smallest top-2 gap ${Math.min(...gaps).toFixed(4)}; ${new Set(ids).size} distinct of ${ids.length} tokens`,
    );
  } else {
    for await (const t of seq.evaluate(out.prompt_ids, { temperature: 0 })) {
      ids.push(t);
      if (ids.length >= steps) break;
    }
  }
  out.greedy_ids = ids;
  out.greedy_text = model.detokenize(ids);
  writeFileSync(rest[0], JSON.stringify(out, null, 1) + "\n");
  console.log(`wrote ${rest[0]}: ${out.prompt_ids.length} prompt tokens, ${JSON.stringify(out.greedy_text)}`);
} else if (mode === "bench") {
  const decode = Number(rest[0] ?? 64);
  const ids = model.tokenize(prompt, true);
  const ctx = await model.createContext({ contextSize: Math.max(2048, ids.length + decode + 16), threads, batchSize: 512 });
  const seq = ctx.getSequence();
  const start = performance.now();
  let first = null;
  let n = 0;
  for await (const _ of seq.evaluate(ids, { temperature: 0 })) {
    n += 1;
    if (first === null) first = performance.now();
    if (n >= decode) break;
  }
  const end = performance.now();
  const rss = Number(readFileSync("/proc/self/status", "utf8").match(/VmHWM:\s+(\d+)/)?.[1] ?? 0);
  console.log(JSON.stringify({
    engine: "llama.cpp",
    prompt_tokens: ids.length,
    ttft_ms: first - start,
    decode_tokens: n - 1,
    decode_ms: end - first,
    peak_rss_kib: rss,
  }));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
process.exit(0);
