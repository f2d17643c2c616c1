#!/usr/bin/python3
"""Writes hostile MIME messages for fuzz_replay.mime (README "Resource bounds under hostile mail"),
smaller than tests/e2e/hostile's but past every parse limit, so that the replay (also the
ASan + UBSan one of .ci/run) walks the code that cuts them: usage: hostile_mime.py OUTDIR."""
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
head = "From: a@example.org\r\nTo: b@example.org\r\nMessage-ID: <{0}@hostile.test>\r\nSubject: {0}\r\n" \
       "Date: Wed, 1 May 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"


def write(name, text):
    with open(os.path.join(out, name + ".eml"), "w", newline="") as f:
        f.write(text)


# More parts than ParseLimits::max_parts (10,000).
parts = [head.format("parts") + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n']
for i in range(10500):
    parts.append("--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i)
parts.append("--b--\r\n")
write("parts-10500", "".join(parts))

# Nested 5,000 deep.
depth = 5000
nest = [head.format("nesting")]
for i in range(depth):
    nest.append('Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (i, i))
nest.append("Content-Type: text/plain\r\n\r\ninnermost\r\n")
for i in reversed(range(depth)):
    nest.append("--n%d--\r\n" % i)
write("nesting-5000", "".join(nest))

# A header line of a part past its 64 KiB bound, and one of the top level of 2 MiB.
write("part-header-200k", head.format("part header") + 'Content-Type: multipart/mixed; boundary="p"\r\n\r\n'
      "--p\r\nContent-Type: text/plain\r\nX-Long: " + "x" * (200 << 10) + "\r\n\r\nbody\r\n--p--\r\n")
write("top-header-2m", head.format("top header").replace("Subject: top header", "Subject: " + "y" * (2 << 20)) +
      "\r\nbody\r\n")

# A base64 bomb: 4 MiB of base64 zeros, as an attachment and as the text.
b64 = ("A" * 76 + "\r\n") * ((4 << 20) // 78)
write("base64-zeros", head.format("base64") + 'Content-Type: multipart/mixed; boundary="z"\r\n\r\n'
      "--z\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64 +
      "--z\r\nContent-Type: application/octet-stream; name=\"zeros.bin\"\r\nContent-Disposition: attachment\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--z--\r\n")

# 12,000 lines starting with "--" but no boundary among them.
write("dashes", head.format("dashes") + "Content-Type: text/plain\r\n\r\n" + "-- not a boundary\r\n" * 12000)
