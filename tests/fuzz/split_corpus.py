#!/usr/bin/env python3
"""Seeds for tools/fuzz from an mbox(.zst) of ../shared/corpus: every Nth message up to --count
(--mime: whole messages under 256 KiB; --html: their text/html parts, decoded), one per file."""
import argparse
import email
import email.policy
import os
import subprocess
import sys


def messages(path):
    data = subprocess.run(["zstd", "-dc", path], check=True, stdout=subprocess.PIPE).stdout if path.endswith(".zst") \
        else open(path, "rb").read()
    cur = []
    for line in data.split(b"\n"):
        if line.startswith(b"From ") and cur:
            yield b"\n".join(cur) + b"\n"
            cur = []
            continue
        if line.startswith(b"From ") and not cur:
            continue
        if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):  # mboxrd quoting
            line = line[1:]
        cur.append(line)
    if cur:
        yield b"\n".join(cur) + b"\n"


def main():
    ap = argparse.ArgumentParser()
    kind = ap.add_mutually_exclusive_group(required=True)
    kind.add_argument("--mime", action="store_true")
    kind.add_argument("--html", action="store_true")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("mbox")
    ap.add_argument("out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    all_msgs = [m for m in messages(a.mbox) if len(m) < 256 << 10]
    step = max(1, len(all_msgs) // (a.count * (3 if a.html else 1)))
    n = 0
    for i in range(0, len(all_msgs), step):
        if n >= a.count:
            break
        m = all_msgs[i]
        if a.html:
            msg = email.message_from_bytes(m, policy=email.policy.compat32)
            parts = [p for p in msg.walk() if p.get_content_type() == "text/html"]
            if not parts:
                continue
            m = parts[0].get_payload(decode=True) or b""
            if not m:
                continue
        with open(os.path.join(a.out, "%04d" % n), "wb") as f:
            f.write(m)
        n += 1
    print("split_corpus: %d seeds in %s" % (n, a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
