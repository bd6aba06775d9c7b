#!/usr/bin/env python3
"""Validate configs/prompts.jsonl for servebench.

Usage: check_prompts.py [PATH]

PATH defaults to configs/prompts.jsonl relative to the repository root
(the parent of this script's directory). Exits 0 when the file is valid,
1 otherwise, printing one message per violation.

Token approximation (the project's documented rule):
  split the text into maximal runs of [A-Za-z0-9] and single other
  non-whitespace characters; whitespace counts 0; an alphanumeric run of
  length L counts ceil(L/8); every other non-whitespace character counts 1.
"""

import json
import re
import statistics
import sys
from pathlib import Path

CATEGORIES = ("short", "medium", "long", "code")
MIN_PER_CATEGORY = 50
ID_RE = re.compile(r"^(short|medium|long|code)-(\d{3})$")
TOKEN_RE = re.compile(r"[A-Za-z0-9]+|[^A-Za-z0-9\s]")


def approx_tokens(text):
    total = 0
    for m in TOKEN_RE.finditer(text):
        s = m.group(0)
        if s[0].isascii() and s[0].isalnum():
            total += (len(s) + 7) // 8
        else:
            total += 1
    return total


def in_range(category, n):
    if category == "short":
        return n < 50, "short must be < 50 tokens"
    if category == "medium":
        return 50 <= n <= 200, "medium must be 50..200 tokens"
    if category == "long":
        return n > 200, "long must be > 200 tokens"
    return True, ""


def main(argv):
    root = Path(__file__).resolve().parent.parent
    path = Path(argv[1]) if len(argv) > 1 else root / "configs" / "prompts.jsonl"
    errors = []
    counts = {c: [] for c in CATEGORIES}
    seen_ids = set()
    seen_prompts = {}
    numbers = {c: [] for c in CATEGORIES}

    try:
        raw = path.read_bytes()
    except OSError as e:
        print(f"error: cannot read {path}: {e}")
        return 1

    for i, b in enumerate(raw):
        if b > 127:
            errors.append(f"non-ASCII byte 0x{b:02x} at offset {i}")
            break

    text = raw.decode("utf-8", errors="replace")
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.strip() == "":
            if line != "":
                errors.append(f"line {lineno}: whitespace-only line")
            continue
        where = f"line {lineno}"
        if not line.isascii():
            errors.append(f"{where}: contains non-ASCII characters")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{where}: invalid JSON: {e}")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{where}: not a JSON object")
            continue
        keys = list(obj.keys())
        if keys != ["id", "category", "prompt"]:
            errors.append(f"{where}: keys must be exactly id, category, prompt in that order, got {keys}")
            continue
        pid, cat, prompt = obj["id"], obj["category"], obj["prompt"]
        if not all(isinstance(v, str) for v in (pid, cat, prompt)):
            errors.append(f"{where}: id, category and prompt must be strings")
            continue
        where = f"line {lineno} ({pid})"
        if cat not in CATEGORIES:
            errors.append(f"{where}: unknown category {cat!r}")
            continue
        m = ID_RE.match(pid)
        if not m:
            errors.append(f"{where}: id does not match <category>-NNN")
        elif m.group(1) != cat:
            errors.append(f"{where}: id prefix does not match category {cat!r}")
        else:
            numbers[cat].append(int(m.group(2)))
        if pid in seen_ids:
            errors.append(f"{where}: duplicate id")
        seen_ids.add(pid)
        if not prompt.isascii():
            errors.append(f"{where}: prompt contains non-ASCII characters")
        if prompt.strip() == "":
            errors.append(f"{where}: empty prompt")
        norm = " ".join(prompt.split()).lower()
        if norm in seen_prompts:
            errors.append(f"{where}: duplicate prompt text (same as {seen_prompts[norm]})")
        else:
            seen_prompts[norm] = pid
        n = approx_tokens(prompt)
        ok, msg = in_range(cat, n)
        if not ok:
            errors.append(f"{where}: {msg}, got {n}")
        counts[cat].append(n)

    for cat in CATEGORIES:
        nums = numbers[cat]
        if nums and sorted(nums) != list(range(1, len(nums) + 1)):
            errors.append(f"{cat}: ids are not consecutive from 001")
        if len(counts[cat]) < MIN_PER_CATEGORY:
            errors.append(f"{cat}: only {len(counts[cat])} prompts, need at least {MIN_PER_CATEGORY}")

    print(f"{path}")
    print(f"{'category':<8} {'count':>5} {'min':>6} {'median':>7} {'max':>6}")
    for cat in CATEGORIES:
        c = counts[cat]
        if c:
            print(f"{cat:<8} {len(c):>5} {min(c):>6} {statistics.median(c):>7g} {max(c):>6}")
        else:
            print(f"{cat:<8} {0:>5} {'-':>6} {'-':>7} {'-':>6}")
    print(f"{'total':<8} {sum(len(c) for c in counts.values()):>5}")

    if errors:
        print(f"\n{len(errors)} violation(s):")
        for e in errors:
            print(f"  {e}")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
