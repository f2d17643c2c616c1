#!/usr/bin/python3
"""A real browser against `mailvault serve`: headless Chromium (Debian's chromium +
chromium-driver) driven by Debian's python3-selenium.

Builds its own archive (data/mail/sample plus crafted mail), a config with two users, starts
`mailvault serve` on a random port and a "remote" HTTP listener that hostile HTML mail points
at, then: logs in, searches, narrows by a facet, opens a result with the keyboard, copies the
link (clipboard read back), opens a second message through its direct link in a fresh session
(login in between lands on it), downloads an attachment and the original (SHA-256 equal to
`mailvault show`), and opens the HTML mail that tries to run script, load remote content and
submit a form: none of it happens (browser console, the listener, the server's log).

Environment: MV_BINARY (mailvault), MV_DATA_DIR (data/), MV_SCREENSHOT_DIR (where the two
screenshots go; default ./browser-screenshots), MV_REQUIRE_SERVERS=1 (a missing browser is a
failure, else a skip: exit 77), MV_KEEP_TMP=1 (keep the temp dir for debugging).
"""
import base64
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

SKIP = 77
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def fail_or_skip(why):
    if os.environ.get("MV_REQUIRE_SERVERS") == "1":
        print("FAIL: " + why + " (MV_REQUIRE_SERVERS=1)")
        sys.exit(1)
    print("SKIP: " + why)
    sys.exit(SKIP)


try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    fail_or_skip("python3-selenium is not installed")
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    fail_or_skip("chromium / chromium-driver are not installed")

MV = os.environ.get("MV_BINARY", "mailvault")
DATA = os.environ.get("MV_DATA_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "data")

checks = []


def check(cond, what):
    checks.append(what)
    if not cond:
        raise AssertionError(what)
    print("ok   " + what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the "remote" server the hostile mail points at: it must see no request at all -------

class Listener:
    def __init__(self):
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                outer.requests.append(self.command + " " + self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"remote")

            do_GET = do_POST = do_HEAD = _any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


# --- crafted mail --------------------------------------------------------------------------

PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
ATTACHMENT = bytes((i * 37 + 11) % 256 for i in range(5000))


def hostile_mail(remote):
    r = "http://127.0.0.1:%d" % remote
    html = f"""<html><head>
<base href="{r}/base/">
<meta http-equiv="refresh" content="0;url={r}/refresh">
<link rel="stylesheet" href="{r}/style.css">
<style>body {{ background: url({r}/bg.png) }} h1.ok {{ color: #1c6b35 }}</style>
<script>console.log('MV-SCRIPT-RAN'); new Image().src = '{r}/script';</script>
</head><body onload="console.log('MV-ONLOAD-RAN')">
<h1 class="ok" id="greeting">Hello from the HTML part</h1>
<p>Remote image: <img id="remote" src="{r}/pixel.png" alt="tracker"></p>
<p>Inline logo: <img id="logo" src="cid:logo@mailvault.test" alt="logo" width="16" height="16"></p>
<img src=x onerror="console.log('MV-ONERROR-RAN')">
<svg><script>console.log('MV-SVG-RAN')</script></svg>
<form id="f" action="{r}/form" method="post"><input name="secret" value="s">
<button id="send" type="submit">Send</button></form>
<p><a id="jslink" href="javascript:console.log('MV-JSLINK-RAN')">run me</a></p>
<iframe src="{r}/iframe"></iframe>
<div id="styled" style="background-image: url({r}/div.png); font-weight: bold">styled text</div>
<p>Visit <a id="extlink" href="{r}/link">our site</a>.</p>
</body></html>"""
    b64 = lambda data: "\r\n".join(
        base64.b64encode(data).decode()[i:i + 76] for i in range(0, len(base64.b64encode(data)), 76))
    return ("From: Mallory <mallory@example.org>\r\n"
            "To: Alice <alice@example.org>\r\n"
            "Subject: Quarterly zebrafish report\r\n"
            "Date: Tue, 03 Feb 2026 10:00:00 +0000\r\n"
            "Message-ID: <zebrafish-1@example.org>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
            "--outer\r\n"
            "Content-Type: multipart/related; boundary=\"rel\"\r\n\r\n"
            "--rel\r\n"
            "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
            "--alt\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "The zebrafish report is attached. This is the plain text part.\r\n"
            "--alt\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            + b64(html.encode()) + "\r\n"
            "--alt--\r\n"
            "--rel\r\n"
            "Content-Type: image/png\r\n"
            "Content-ID: <logo@mailvault.test>\r\n"
            "Content-Disposition: inline; filename=\"logo.png\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            + b64(PNG_1x1) + "\r\n"
            "--rel--\r\n"
            "--outer\r\n"
            "Content-Type: application/octet-stream; name=\"zebrafish-report.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"zebrafish-report.bin\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
            + b64(ATTACHMENT) + "\r\n"
            "--outer--\r\n").encode()


def bob_mail():
    return ("From: Carol <carol@example.org>\r\n"
            "To: Bob <bob@example.org>\r\n"
            "Subject: Bob only: salary platypus\r\n"
            "Date: Wed, 04 Feb 2026 09:00:00 +0000\r\n"
            "Message-ID: <platypus-1@example.org>\r\n\r\n"
            "Only Bob may read this.\r\n").encode()


# --- archive, config, server ---------------------------------------------------------------

def run(args, stdin=None, check_rc=True):
    p = subprocess.run(args, input=stdin, capture_output=True)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s" % (" ".join(args[:4]), p.returncode, p.stderr.decode(errors="replace")))
    return p


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def wait_for_download(directory, name, timeout=30):
    path = os.path.join(directory, name)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and not os.path.exists(path + ".crdownload"):
            with open(path, "rb") as f:
                return f.read()
        time.sleep(0.1)
    raise AssertionError("no download %s in %s (have %s)" % (name, directory, os.listdir(directory)))


def new_browser(download_dir):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--window-size=1280,900", "--disable-gpu",
              "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
              "--disable-extensions", "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--lang=en-US"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {
        "download.default_directory": download_dir,
        "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
    return driver


def login(driver, user, password):
    WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "login-form")))
    form = driver.find_element(By.ID, "login-form")
    form.find_element(By.NAME, "username").send_keys(user)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 20).until(EC.presence_of_element_located((By.ID, "logout-form")))


def hit_total(driver):
    return int(driver.find_element(By.ID, "hit-count").get_attribute("data-total"))


def console(driver):
    return [e.get("message", "") for e in driver.get_log("browser")]


def main():
    tmp = tempfile.mkdtemp(prefix="mv-browser-")
    procs = []
    drivers = []
    listener = Listener()
    shots = os.environ.get("MV_SCREENSHOT_DIR") or os.path.join(os.getcwd(), "browser-screenshots")
    os.makedirs(shots, exist_ok=True)
    try:
        archive = os.path.join(tmp, "archive")
        port = free_port()
        base = "http://127.0.0.1:%d" % port

        # Mail: the sample Maildir for alice, a hostile HTML mail for alice, one for bob only.
        crafted = os.path.join(tmp, "crafted")
        os.makedirs(crafted)
        with open(os.path.join(crafted, "zebrafish.eml"), "wb") as f:
            f.write(hostile_mail(listener.port))
        bobdir = os.path.join(tmp, "bob")
        os.makedirs(bobdir)
        with open(os.path.join(bobdir, "platypus.eml"), "wb") as f:
            f.write(bob_mail())

        alice_pw, bob_pw = "correct horse alice 1", "battery staple bob 2"
        hashes = {}
        for user, pw in (("alice", alice_pw), ("bob", bob_pw)):
            hashes[user] = run([MV, "passwd"], stdin=(pw + "\n").encode()).stdout.decode().strip()
        config = os.path.join(tmp, "mailvault.toml")
        with open(config, "w") as f:
            f.write('[archive]\npath = "%s"\n\n[links]\nbase_url = "%s"\n\n' % (archive, base))
            f.write('[serve]\nlisten = "127.0.0.1:%d"\n\n' % port)
            f.write('[users.alice]\npassword_hash = "%s"\nmailboxes = ["alice"]\nrole = "user"\n\n' % hashes["alice"])
            f.write('[users.bob]\npassword_hash = "%s"\nmailboxes = ["bob"]\nrole = "user"\n' % hashes["bob"])
        mv = [MV, "--config", config, "--quiet"]
        run(mv + ["import", os.path.join(DATA, "mail", "sample"), "--mailbox", "alice"])
        run(mv + ["import", crafted, "--mailbox", "alice", "--folder", "Reports"])
        run(mv + ["import", bobdir, "--mailbox", "bob"])

        def find(q):
            out = run(mv + ["search", q, "--json"]).stdout.decode()
            hits = [json.loads(line) for line in out.splitlines() if line.strip()]
            if len(hits) == 1 and isinstance(hits[0], list):
                hits = hits[0]
            return hits
        zebra = find("zebrafish")
        check(len(zebra) == 1, "the CLI finds the crafted HTML mail")
        zebra_docno, zebra_link = zebra[0]["docno"], zebra[0]["link"]
        bob_docno = find("platypus")[0]["docno"]

        log_path = os.path.join(tmp, "serve.log")
        log = open(log_path, "wb")
        server = subprocess.Popen(mv + ["serve", "--listen", "127.0.0.1:%d" % port], stdout=log, stderr=log)
        procs.append(server)
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(log_path, "rb") as f:
                if b"listening on" in f.read():
                    break
            if server.poll() is not None:
                raise RuntimeError("serve exited: " + open(log_path, errors="replace").read())
            time.sleep(0.1)
        else:
            raise RuntimeError("serve did not start: " + open(log_path, errors="replace").read())

        downloads = os.path.join(tmp, "downloads")
        os.makedirs(downloads)
        d = new_browser(downloads)
        drivers.append(d)
        wait = WebDriverWait(d, 20)

        # 1. Log in: / without a session goes to the login page.
        d.get(base + "/")
        check("/login" in d.current_url, "without a session the browser lands on the login page")
        login(d, "alice", alice_pw)

        # 2. Search through the search box.
        q = d.find_element(By.ID, "q")
        q.clear()
        q.send_keys("the")
        q.send_keys(Keys.RETURN)
        wait.until(EC.presence_of_element_located((By.ID, "hits")))
        total = hit_total(d)
        check(total > 1 and len(d.find_elements(By.CSS_SELECTOR, "#hits .hit")) > 1,
              "search 'the' lists hits (%d)" % total)
        check(len(d.find_elements(By.CSS_SELECTOR, "#facets .facet")) > 0, "facets are shown beside the hits")
        d.save_screenshot(os.path.join(shots, "search.png"))
        d.set_window_size(390, 844)  # a phone
        d.save_screenshot(os.path.join(shots, "search-phone.png"))
        check(d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;"),
              "the search page fits a phone's width (no sideways scrolling)")
        d.set_window_size(1280, 900)

        # 3. Narrow by a facet: a folder (else mailbox/year) with fewer hits than the total.
        target = None
        for kind in ("folder", "year", "mailbox"):
            for a in d.find_elements(By.CSS_SELECTOR, '#facets .facet[data-facet="%s"] a.facet-link' % kind):
                n = int(a.find_element(By.CLASS_NAME, "facet-count").text)
                if 0 < n < total:
                    target = (kind, a.get_attribute("href"), n)
                    break
            if target:
                break
        check(target is not None, "a facet narrows the search")
        d.find_element(By.CSS_SELECTOR, 'a.facet-link[href="%s"]' % urllib.parse.urlsplit(target[1])._replace(
            scheme="", netloc="").geturl()).click()
        wait.until(lambda drv: hit_total(drv) != total)
        check(hit_total(d) == target[2], "the %s facet narrowed %d hits to %d" % (target[0], total, target[2]))

        # 4. Keyboard: '/' focuses the search box; j marks the first hit, Enter opens it.
        body = d.find_element(By.TAG_NAME, "body")
        body.send_keys("/")
        check(d.switch_to.active_element.get_attribute("id") == "q", "'/' focuses the search box")
        d.switch_to.active_element.send_keys(Keys.ESCAPE)
        first = d.find_elements(By.CSS_SELECTOR, "#hits .hit")[0]
        first_docno = first.get_attribute("data-docno")
        d.find_element(By.TAG_NAME, "body").send_keys("j")
        check("current" in first.get_attribute("class"), "'j' marks the first hit")
        d.switch_to.active_element.send_keys(Keys.RETURN)
        wait.until(EC.presence_of_element_located((By.ID, "message")))
        msg = d.find_element(By.ID, "message")
        check(msg.get_attribute("data-docno") == first_docno and d.current_url.endswith("/m/" + first_docno),
              "Enter opens the marked hit (/m/%s)" % first_docno)

        # 5. Copy link: the button, then the 'c' shortcut; read the clipboard back.
        d.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        title, link = msg.get_attribute("data-title"), msg.get_attribute("data-link")
        check(link == base + "/m/" + first_docno, "data-link is the direct link")
        read_clip = "navigator.clipboard.readText().then(arguments[0], function (e) { arguments[0]('ERR ' + e); });"
        d.find_element(By.ID, "copy-link").click()
        wait.until(lambda drv: drv.find_element(By.ID, "copy-status").text.startswith("Copied"))
        clip = d.execute_async_script(read_clip)
        check(clip == title + "\n" + link, "'Copy link' puts title and link on the clipboard: %r" % clip)
        d.execute_async_script("navigator.clipboard.writeText('something else').then(arguments[0]);")
        d.find_element(By.TAG_NAME, "body").send_keys("c")
        wait.until(lambda drv: drv.execute_async_script(read_clip) == title + "\n" + link)
        check(True, "'c' copies the same text")
        check("Copied" in d.find_element(By.ID, "copy-status").text, "a confirmation is shown after copying")
        d.save_screenshot(os.path.join(shots, "message.png"))
        d.set_window_size(390, 844)
        d.save_screenshot(os.path.join(shots, "message-phone.png"))
        check(d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;"),
              "the message page fits a phone's width")
        d.set_window_size(1280, 900)
        app_console = console(d)
        check(not [m for m in app_console if "Content Security Policy" in m],
              "the app's pages cause no CSP violation (no inline script or style)")

        # 6. Another user's message answers 404, like one that does not exist.
        d.get(base + "/m/%d" % bob_docno)
        check(not d.find_elements(By.ID, "message") and "Not found" in d.page_source,
              "bob's message is not found for alice")

        # 7. The crafted mail: attachment and original, same bytes as the CLI gives.
        d.get(base + "/m/%d" % zebra_docno)
        wait.until(EC.presence_of_element_located((By.ID, "message")))
        att = [a for a in d.find_elements(By.CSS_SELECTOR, "#attachments a.attachment-link")
               if a.text == "zebrafish-report.bin"]
        check(len(att) == 1, "the attachment is listed")
        k = att[0].get_attribute("href").rsplit("/", 1)[1]
        att[0].click()
        got = wait_for_download(downloads, "zebrafish-report.bin")
        cli_att = os.path.join(tmp, "cli-attachment")
        run(mv + ["show", str(zebra_docno), "--attachment", k, "-o", cli_att])
        with open(cli_att, "rb") as f:
            want = f.read()
        check(sha256(got) == sha256(want) == sha256(ATTACHMENT),
              "downloaded attachment %s has the SHA-256 of `show --attachment %s`" % (k, k))
        d.find_element(By.ID, "download-raw").click()
        got_raw = wait_for_download(downloads, "%d.eml" % zebra_docno)
        cli_raw = run(mv + ["show", str(zebra_docno), "--raw"]).stdout
        check(sha256(got_raw) == sha256(cli_raw), "downloaded original has the SHA-256 of `show --raw`")

        # 8. The HTML view: no script, no remote request, no form; the cid: image shows.
        console(d)  # get_log hands out new entries only: start from here
        d.find_element(By.ID, "show-html").click()
        frame = wait.until(EC.presence_of_element_located((By.ID, "html-frame")))
        check("sandbox" in (d.execute_script("return arguments[0].getAttributeNames();", frame) or []) and
              not frame.get_attribute("sandbox").strip(), "the HTML is in an <iframe sandbox> without allow-*")
        d.switch_to.frame(frame)
        WebDriverWait(d, 20).until(EC.presence_of_element_located((By.ID, "greeting")))
        check(d.find_element(By.ID, "greeting").text == "Hello from the HTML part", "the HTML mail's text shows")
        for tag in ("script", "form", "input", "button", "iframe", "svg", "base", "meta[http-equiv]", "link"):
            check(not d.find_elements(By.CSS_SELECTOR, tag), "no <%s> inside the frame" % tag)
        check(not d.find_elements(By.ID, "remote"), "the remote image is gone")
        logo = d.find_elements(By.ID, "logo")
        # The cid: part comes inline (data:): a sandboxed frame's own requests carry no session.
        check(len(logo) == 1 and logo[0].get_attribute("src") ==
              "data:image/png;base64," + base64.b64encode(PNG_1x1).decode(),
              "the cid: image is the message's own part, inlined")
        WebDriverWait(d, 10).until(lambda drv: drv.find_element(By.ID, "logo").get_property("naturalWidth") == 1)
        check(True, "the cid: image shows")
        jslink = d.find_element(By.ID, "jslink")
        check(not jslink.get_attribute("href"), "the javascript: link has no href")
        jslink.click()
        ext = d.find_element(By.ID, "extlink")
        check(ext.get_attribute("target") == "_blank" and "noopener" in (ext.get_attribute("rel") or ""),
              "external links open apart, without opener or referrer")
        d.switch_to.default_content()
        time.sleep(2)  # give anything that might still fire the time to reach the listener
        frame_console = console(d)
        check(not [m for m in frame_console if "MV-" in m], "no script of the mail ran (console: %r)" %
              [m for m in frame_console if "MV-" in m])
        check(listener.requests == [], "the remote listener got no request (got %r)" % listener.requests)
        check(d.current_url.endswith("/m/%d/html" % zebra_docno), "the page did not navigate away")

        # 9. A direct link in a fresh session: login in between lands on the message.
        d2_dl = os.path.join(tmp, "downloads2")
        os.makedirs(d2_dl)
        d2 = new_browser(d2_dl)
        drivers.append(d2)
        d2.get(zebra_link)
        check("/login" in d2.current_url, "a direct link without a session goes to the login page")
        login(d2, "alice", alice_pw)
        WebDriverWait(d2, 20).until(EC.presence_of_element_located((By.ID, "message")))
        check(d2.current_url == zebra_link and
              d2.find_element(By.ID, "message").get_attribute("data-docno") == str(zebra_docno),
              "after login the fresh session is on the linked message")

        # 10. Log out ends the session: the link asks for a login again.
        d2.find_element(By.CSS_SELECTOR, "#logout-form button").click()
        WebDriverWait(d2, 20).until(EC.presence_of_element_located((By.ID, "login-form")))
        d2.get(zebra_link)
        check("/login" in d2.current_url, "after logging out the link asks for a login again")

        # 11. The server's side: its log has no error; the audit log saw the reads.
        with open(log_path, errors="replace") as f:
            serve_log = f.read()
        check("error" not in serve_log.lower(), "the server's log has no error")
        audit = [json.loads(line) for line in
                 run(mv + ["audit", "--json", "--user", "alice"]).stdout.decode().splitlines() if line.strip()]
        actions = {a.get("action") for a in audit}
        for want_action in ("login", "search", "view", "attachment", "raw", "html", "logout"):
            check(want_action in actions, "the audit log has alice's %s" % want_action)
        check(not [a for a in audit if "/form" in json.dumps(a) or str(listener.port) in json.dumps(a)],
              "the audit log shows no request caused by the mail's content")
        print("PASS: %d checks; screenshots in %s" % (len(checks), shots))
        return 0
    except Exception:
        traceback.print_exc()
        for drv in drivers:
            try:
                drv.save_screenshot(os.path.join(shots, "failure-%d.png" % drivers.index(drv)))
                print("--- page at failure: " + drv.current_url)
                print("--- console: %r" % console(drv))
            except Exception:
                pass
        try:
            print("--- serve log:\n" + open(os.path.join(tmp, "serve.log"), errors="replace").read()[-4000:])
        except OSError:
            pass
        print("FAIL after %d checks" % len(checks))
        return 1
    finally:
        for drv in drivers:
            try:
                drv.quit()
            except Exception:
                pass
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        listener.stop()
        if os.environ.get("MV_KEEP_TMP") == "1":
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
