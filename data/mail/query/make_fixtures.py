#!/usr/bin/python3
"""Writes the query fixture messages (q01.eml ... q16.eml) next to this script.

Deterministic: rerunning produces the same bytes. See README.md for what each holds
and tests/unit/query/query_golden_test.cpp for the expected result sets.
"""
import base64
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def b64_lines(data):
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def msg(name, headers, body):
    text = "".join(f"{k}: {v}\n" for k, v in headers) + "\n" + body
    if not text.endswith("\n"):
        text += "\n"
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(text.encode("utf-8"))


def std(n, frm, to, subject, date, extra=()):
    return [("From", frm), ("To", to), ("Subject", subject), ("Date", date),
            ("Message-ID", f"<q{n:02d}@fixture.example>"), ("MIME-Version", "1.0"), *extra]


pdf = b"%PDF-1.4\n% quarterly numbers\n" + bytes(range(256)) * 4
msg("q01.eml",
    std(1, "=?UTF-8?Q?Alice_M=C3=BCller?= <alice@example.com>", "Bob Builder <bob@example.org>",
        "Quarterly report", "Tue, 25 Apr 2023 10:02:11 +0000",
        [("X-Customer-Id", "C-1001"), ("Content-Type", 'multipart/mixed; boundary="b1"')]),
    "--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    "Please find the quarterly report attached. The numbers are running late.\n\n"
    "--b1\nContent-Type: application/pdf; name=\"report.pdf\"\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\nContent-Transfer-Encoding: base64\n\n"
    + b64_lines(pdf) + "\n--b1--\n")

msg("q02.eml",
    std(2, "Bob Builder <bob@example.org>", "=?UTF-8?Q?Alice_M=C3=BCller?= <alice@example.com>",
        "Re: Quarterly report", "Wed, 03 May 2023 09:00:00 +0000",
        [("Cc", "Carol Singer <carol@example.net>"), ("In-Reply-To", "<q01@fixture.example>"),
         ("Content-Type", "text/plain; charset=us-ascii")]),
    "Thanks, the report looks fine.\nKernel panic on the build server though.\n")

msg("q03.eml",
    std(3, "Carol Singer <carol@example.net>", "alice@example.com", "Lunch on Friday",
        "Thu, 15 Jun 2023 12:30:00 +0000",
        [("Content-Type", "text/plain; charset=iso-8859-1"), ("Content-Transfer-Encoding", "quoted-printable")]),
    "Shall we meet for lunch? The caf=E9 near the station.\n")

msg("q04.eml",
    std(4, "Dave Kernel <dave@example.com>", "list@lists.example.org", "Kernel build failure",
        "Sat, 31 Dec 2022 23:59:59 +0000", [("Content-Type", "text/plain")]),
    "The kernel build fails with an interrupt storm.\nA cache flush is needed before the reboot.\n")

msg("q05.eml",
    std(5, "=?ISO-8859-1?Q?J=FCrgen_Gro=DF?= <juergen@example.de>", "team@example.de", "Besprechung morgen",
        "Mon, 01 Mar 2021 08:15:00 +0100",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]),
    "Die Häuser werden gebaut. Wir treffen uns morgen im Büro.\n")

msg("q06.eml",
    std(6, "Wang Wei <wang@example.cn>", "alice@example.com", "=?UTF-8?B?" +
        base64.b64encode("项目进度报告".encode()).decode() + "?=", "Tue, 10 Jan 2023 03:00:00 +0000",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]),
    "我们的项目进度很好。数据库迁移已经完成。\n")

msg("q07.eml",
    std(7, "Tanaka <tanaka@example.jp>", "alice@example.com", "=?UTF-8?B?" +
        base64.b64encode("会議の議事録".encode()).decode() + "?=", "Tue, 14 Feb 2023 01:00:00 +0000",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]),
    "本日の会議の議事録を送ります。東京オフィスにて。\n")

msg("q08.eml",
    std(8, "Kim <kim@example.kr>", "alice@example.com", "=?UTF-8?B?" +
        base64.b64encode("회의 일정".encode()).decode() + "?=", "Mon, 20 Mar 2023 05:00:00 +0000",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Transfer-Encoding", "8bit")]),
    "다음 주 회의 일정을 알려드립니다.\n")

blob = bytes((i * 7919) % 251 for i in range(160 * 1024))
msg("q09.eml",
    std(9, "Erin Storage <erin@example.com>", "bob@example.org", "Backup image",
        "Fri, 07 Jul 2023 18:00:00 +0000", [("Content-Type", 'multipart/mixed; boundary="b9"')]),
    "--b9\nContent-Type: text/plain\n\nThe nightly backup image is attached.\n\n"
    "--b9\nContent-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\"data.bin\"\nContent-Transfer-Encoding: base64\n\n"
    + b64_lines(blob) + "\n--b9--\n")

msg("q10.eml",
    std(10, "Frank <frank@example.com>", "bob@example.org", "Confidential plan",
        "Sat, 04 Jul 2020 10:00:00 +0000", [("Bcc", "Secret Keeper <secret@example.com>"),
                                            ("Content-Type", "text/plain")]),
    "The phoenix project starts next week.\n")

msg("q11.eml",
    std(11, "Bob Builder <bob@example.org>", "alice@example.com", "Meeting notes",
        "Tue, 25 Apr 2023 08:00:00 +0000", [("Content-Type", "text/plain")]),
    "Notes: everybody runs the tests, nobody ran the linter.\n")

msg("q12.eml",
    std(12, "Shop <news@shop.example>", "alice@example.com", "Newsletter",
        "Mon, 11 Nov 2019 11:11:11 +0000", [("Content-Type", "text/html; charset=utf-8"),
                                            ("Content-Transfer-Encoding", "8bit")]),
    "<html><body><p>Special <b>offer</b> for MÜLLER fans</p><script>var hidden='zzscript';</script></body></html>\n")

msg("q13.eml",
    std(13, "Bob Builder <bob@example.org>", "alice@example.com", "Spreadsheet",
        "Sat, 01 Jul 2023 07:00:00 +0000", [("Content-Type", 'multipart/mixed; boundary="b13"')]),
    "--b13\nContent-Type: text/plain\n\nThe overview sheet.\n\n"
    "--b13\nContent-Type: application/vnd.ms-excel\n"
    "Content-Disposition: attachment; filename*=UTF-8''%C3%9Cbersicht.xls\nContent-Transfer-Encoding: base64\n\n"
    + b64_lines(b"sheet bytes" * 20) + "\n--b13--\n")

msg("q14.eml",
    std(14, "Grace <grace@example.com>", "bob@example.org", "Wildcard testing",
        "Sat, 05 May 2018 05:05:05 +0000", [("Content-Type", "text/plain")]),
    "configuration configurable configure\n")

msg("q15.eml",
    std(15, "Heidi <heidi@example.com>", "bob@example.org", "Letter with From lines",
        "Tue, 08 Aug 2023 08:08:08 +0000", [("Content-Type", "text/plain")]),
    "Dear Bob,\n\nFrom the desk of Heidi: a line that mbox must quote.\n>From an already quoted line.\n\nBye\n")

msg("q16.eml",
    std(16, "Ivan <ivan@example.com>", "bob@example.org", "Unrelated chatter",
        "Wed, 01 Feb 2017 10:00:00 +0000", [("Content-Type", "text/plain")]),
    "Nothing to see here: the weather is nice.\n")
