#!/usr/bin/env python3
"""Measures cited answers over the fixture corpus with one language model.

Indexes fixtures/ into a temporary data directory, asks every question of fixtures/questions.json
with `docent ask --json --model MODEL`, and reports:

  answerable questions
    cited        share of answers with at least one citation
    right file   share whose citations include the expected file (and page, for PDFs)
    fact         share whose text contains the expected fact (one of `expect.any`)
    refused      share refused although the documents answer them
  citations (all answers)
    quote found  share of citations whose quote is found in the cited file's text (read back
                 with `docent inspect --json`, whitespace-insensitive): docent builds quotes from
                 the source, so anything under 100% is a bug, not the model
    supported    share of citations not flagged weak (support >= ask.weak_support)
  unanswerable questions
    refused      share refused (by the relevance gate, or by the model saying the documents do
                 not say)

Usage:
  python3 scripts/eval-answers.py --model smollm2-135m-instruct [--docent PATH] [-k N]
      [--json OUT.json] [--only ID,ID]
  python3 scripts/eval-answers.py --validate     # checks the question set, runs nothing

Standard library only. It runs the model on every question: slow on 2 cores for large models
(run it with `nice -n 19`). --docent defaults to the release build in the cargo target directory,
then the debug one.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures")
QUESTIONS = os.path.join(FIXTURES, "questions.json")

# How a model says that the documents do not answer (the prompt asks it to "say that the
# documents do not say").
REFUSAL = re.compile(
    r"(documents?|sources?|passages?|context)\s+(do|does)\s*(not|n't)\s+(say|mention|contain|"
    r"specify|state|provide|include|give)|not (found|mentioned|stated|specified) in|"
    r"no information|cannot (find|answer)|can't (find|answer)|unable to (find|answer)",
    re.IGNORECASE,
)


def die(msg):
    sys.exit("eval-answers: error: " + msg)


def load_questions():
    with open(QUESTIONS, encoding="utf-8") as f:
        return json.load(f)


def validate(qs):
    """Every expected file exists, ids are unique, each answerable question has facts."""
    problems = []
    ids = set()
    for kind in ("answerable", "unanswerable"):
        for q in qs.get(kind, []):
            if q["id"] in ids:
                problems.append("duplicate id " + q["id"])
            ids.add(q["id"])
            if not q.get("question", "").strip():
                problems.append(q["id"] + ": empty question")
            if kind == "answerable":
                e = q.get("expect", {})
                if not e.get("any"):
                    problems.append(q["id"] + ": no expected fact")
                for p in e.get("path", []):
                    if not os.path.isfile(os.path.join(FIXTURES, p)):
                        problems.append(q["id"] + ": no file fixtures/" + p)
                if not e.get("path"):
                    problems.append(q["id"] + ": no expected file")
    return problems


def find_docent(given):
    if given:
        return given
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser("~/.cache/docent-target")
    for profile in ("release", "debug"):
        p = os.path.join(target, profile, "docent")
        if os.access(p, os.X_OK):
            return p
    found = shutil.which("docent")
    if found:
        return found
    die("no docent binary found; build it (cargo build --release) or pass --docent PATH")


def run(docent, env, args, check=True):
    p = subprocess.run([docent] + args, env=env, capture_output=True, text=True)
    if check and p.returncode not in (0, 3):
        die("docent %s failed (%d):\n%s" % (" ".join(args), p.returncode, p.stderr))
    return p


def norm(s):
    return " ".join(s.split()).lower()


def texts(value):
    """Every string stored under a "text" key, anywhere in an inspect --json structure."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "text" and isinstance(v, str):
                out.append(v)
            else:
                out.extend(texts(v))
    elif isinstance(value, list):
        for v in value:
            out.extend(texts(v))
    return out


class SourceText:
    """The text docent reads from each file, for checking quotes (cached per file)."""

    def __init__(self, docent, env):
        self.docent, self.env, self.cache = docent, env, {}

    def get(self, path):
        if path not in self.cache:
            p = run(self.docent, self.env, ["inspect", "--json", "--full", path], check=False)
            try:
                self.cache[path] = norm(" ".join(texts(json.loads(p.stdout))))
            except ValueError:
                self.cache[path] = ""
        return self.cache[path]


def rel(path):
    try:
        return os.path.relpath(path, FIXTURES)
    except ValueError:
        return path


def share(n, d):
    return None if d == 0 else round(n / d, 3)


def pct(x):
    return "  n/a" if x is None else "%4.0f%%" % (100 * x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model name in the models directory, or a .gguf path")
    ap.add_argument("--docent", help="the docent binary")
    ap.add_argument("-k", type=int, help="passages per question [default: ask.k]")
    ap.add_argument("--json", dest="json_out", help="also write the results here")
    ap.add_argument("--only", help="comma-separated question ids")
    ap.add_argument("--validate", action="store_true", help="check the question set and exit")
    a = ap.parse_args()

    qs = load_questions()
    problems = validate(qs)
    if problems:
        die("fixtures/questions.json:\n  " + "\n  ".join(problems))
    if a.validate:
        print("fixtures/questions.json: %d answerable, %d unanswerable questions, all valid"
              % (len(qs["answerable"]), len(qs["unanswerable"])))
        return
    if not a.model:
        die("--model is required (e.g. --model smollm2-135m-instruct)")
    only = set(a.only.split(",")) if a.only else None

    docent = find_docent(a.docent)
    home = tempfile.mkdtemp(prefix="docent-eval.")
    env = dict(os.environ, DOCENT_HOME=home, NO_COLOR="1")
    env.pop("DOCENT_CONFIG", None)
    try:
        run(docent, env, ["index", "-q", FIXTURES])
        sources = SourceText(docent, env)
        rows = []
        for kind in ("answerable", "unanswerable"):
            for q in qs[kind]:
                if only and q["id"] not in only:
                    continue
                args = ["ask", "--json", "--model", a.model]
                if a.k:
                    args += ["-k", str(a.k)]
                t0 = time.time()
                p = run(docent, env, args + [q["question"]])
                wall = time.time() - t0
                v = json.loads(p.stdout)
                rows.append(score(kind, q, v, wall, sources))
                r = rows[-1]
                print("%-20s %-12s cites %d  %s%s  %5.1f s  %s" % (
                    q["id"], kind, r["citations"],
                    "refused " if r["refused"] else "",
                    ("fact " if r.get("fact") else "") + ("file " if r.get("right_file") else ""),
                    wall, one_line(v["answer"])[:90]), file=sys.stderr)
        summary = summarize(rows)
        summary["model"] = a.model
        summary["model_reported"] = next((r["model"] for r in rows if r["model"]), None)
        summary["k"] = a.k
        print_summary(summary)
        if a.json_out:
            with open(a.json_out, "w", encoding="utf-8") as f:
                json.dump({"summary": summary, "questions": rows}, f, indent=2, ensure_ascii=False)
                f.write("\n")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def one_line(s):
    return " ".join(s.split())


def score(kind, q, v, wall, sources):
    answer = v.get("answer", "")
    cites = v.get("citations", [])
    refused = bool(v.get("refused")) or bool(REFUSAL.search(answer))
    found = 0
    supported = 0
    for c in cites:
        if c.get("quote") and norm(c["quote"]) in sources.get(c["path"]):
            found += 1
        if not c.get("weak"):
            supported += 1
    row = {
        "id": q["id"],
        "kind": kind,
        "question": q["question"],
        "answer": answer,
        "model": v.get("model"),
        "gated": bool(v.get("refused")),
        "refused": refused,
        "citations": len(cites),
        "quotes_found": found,
        "supported": supported,
        "removed_citations": len(v.get("removed_citations", [])),
        "cited": [[rel(c["path"]), c.get("page")] for c in cites],
        "ttft_ms": v.get("ttft_ms"),
        "tokens_per_s": v.get("tokens_per_s"),
        "wall_s": round(wall, 1),
    }
    if kind == "answerable":
        e = q["expect"]
        low = answer.lower()
        row["fact"] = any(x.lower() in low for x in e["any"])
        row["right_file"] = any(
            rel(c["path"]) in e["path"] and (e.get("page") is None or c.get("page") == e["page"])
            for c in cites)
    return row


def summarize(rows):
    ans = [r for r in rows if r["kind"] == "answerable"]
    una = [r for r in rows if r["kind"] == "unanswerable"]
    n_cites = sum(r["citations"] for r in rows)
    asked = [r for r in rows if not r["gated"]]
    tps = [r["tokens_per_s"] for r in asked if r["tokens_per_s"]]
    ttft = [r["ttft_ms"] for r in asked if r["ttft_ms"]]
    return {
        "answerable": len(ans),
        "answerable_cited": share(sum(r["citations"] > 0 for r in ans), len(ans)),
        "answerable_right_file": share(sum(r["right_file"] for r in ans), len(ans)),
        "answerable_fact": share(sum(r["fact"] for r in ans), len(ans)),
        "answerable_refused": share(sum(r["refused"] for r in ans), len(ans)),
        "citations": n_cites,
        "citations_quote_found": share(sum(r["quotes_found"] for r in rows), n_cites),
        "citations_supported": share(sum(r["supported"] for r in rows), n_cites),
        "citations_removed": sum(r["removed_citations"] for r in rows),
        "unanswerable": len(una),
        "unanswerable_refused": share(sum(r["refused"] for r in una), len(una)),
        "unanswerable_gated": share(sum(r["gated"] for r in una), len(una)),
        "mean_ttft_ms": round(sum(ttft) / len(ttft)) if ttft else None,
        "mean_tokens_per_s": round(sum(tps) / len(tps), 1) if tps else None,
    }


def print_summary(s):
    print("model %s (%s), k %s" % (s["model"], s["model_reported"], s["k"] or "default"))
    print("answerable (%d):   cited %s   right file %s   fact %s   refused %s" % (
        s["answerable"], pct(s["answerable_cited"]), pct(s["answerable_right_file"]),
        pct(s["answerable_fact"]), pct(s["answerable_refused"])))
    print("citations (%d):    quote found %s   supported %s   removed %d" % (
        s["citations"], pct(s["citations_quote_found"]), pct(s["citations_supported"]),
        s["citations_removed"]))
    print("unanswerable (%d): refused %s (by the relevance gate %s)" % (
        s["unanswerable"], pct(s["unanswerable_refused"]), pct(s["unanswerable_gated"])))
    print("speed:            first token %s ms, %s tokens/s (mean over questions asked)" % (
        s["mean_ttft_ms"], s["mean_tokens_per_s"]))


if __name__ == "__main__":
    main()
