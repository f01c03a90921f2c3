// llama.cpp as the reference for docent's language model: the same GGUF file, run by
// llama.cpp (through node-llama-cpp's prebuilt binaries), for
//   fixtures: token ids of tricky strings and a greedy continuation, written as JSON and
//             committed under crates/llm/tests/reference/ (the tests compare against them);
//   bench:    prefill and decode speed on a prompt read from a file, printed as one JSON line.
//
// Setup (once): bash scripts/llama-reference-setup.sh
// Usage:
//   node scripts/llama-reference.mjs fixtures MODEL.gguf PROMPT_FILE OUT.json
//   node scripts/llama-reference.mjs bench MODEL.gguf PROMPT_FILE DECODE_TOKENS THREADS
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import { homedir } from "node:os";

const home = process.env.DOCENT_LLAMACPP ?? join(homedir(), ".cache", "docent-llamacpp");
const require = createRequire(join(home, "package.json"));
const { getLlama } = await import(require.resolve("node-llama-cpp"));

const [mode, modelPath, promptFile, ...rest] = process.argv.slice(2);
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
  const ids = [];
  for await (const t of seq.evaluate(out.prompt_ids, { temperature: 0 })) {
    ids.push(t);
    if (ids.length >= 32) break;
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
