"""The web page of `pbc serve` in a real browser: headless Chromium, with JavaScript turned
off, driven by Selenium through Debian's chromedriver (SE_OFFLINE=true: Selenium Manager
downloads nothing). Started by cli/tests/serve_ui.rs with a server whose run waits at a gate.

It signs in with a token, sees the pending approval with its details (stage, playbook, who
may decide, deadline, escalation level, and the approval message: proposed action,
rollback, input), checks that a form with a forged CSRF token is refused (403) and changes
nothing, approves, and follows the run's page until the run has finished. The last line
printed is a JSON summary.
"""

import argparse
import json
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

HANG = 60  # seconds: a hang guard, not a timing


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def wait_url(driver, pred, what):
    """Waits until the browser has navigated to a page whose URL satisfies `pred` (a click
    on a link or a submit button returns before the next page has loaded)."""
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        url = driver.current_url
        if pred(url):
            try:
                driver.find_element(By.TAG_NAME, "main")
                return url
            except Exception:
                pass
        time.sleep(0.1)
    fail(f"{what}: the browser is at {driver.current_url}")


def text(driver, css):
    return driver.find_element(By.CSS_SELECTOR, css).text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--approval", required=True)
    a = ap.parse_args()

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--no-proxy-server", "--window-size=390,844"):  # a phone's viewport
        opts.add_argument(arg)
    opts.add_argument("--user-data-dir=" + tempfile.mkdtemp(prefix="pbc-chromium-"))
    # The page must work with JavaScript off.
    opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.set_page_load_timeout(HANG)
    summary = {}
    try:
        # Not signed in: the page sends the browser to the sign-in form.
        driver.get(a.url + "/ui")
        check("/ui/login" in driver.current_url, f"not sent to sign in: {driver.current_url}")
        driver.find_element(By.ID, "token").send_keys(a.token)
        driver.find_element(By.ID, "sign-in").click()
        wait_url(driver, lambda u: u.rstrip("/").endswith("/ui"), "after sign-in")

        # The pending approval, with its details.
        card = driver.find_element(By.ID, "approval-" + a.approval)
        body = card.text
        for want in ("apply in deploy", a.run, "ann@example.com", "sre"):
            check(want in body, f"the approval card lacks {want!r}:\n{body}")
        deadline = card.find_element(By.CSS_SELECTOR, "dd.deadline").text
        check(deadline.startswith("20"), f"no deadline: {deadline!r}")
        check(card.find_element(By.CSS_SELECTOR, "dd.level").text == "0 of 1",
              "escalation level: " + card.find_element(By.CSS_SELECTOR, "dd.level").text)
        card.find_element(By.CSS_SELECTOR, "h3 a").click()
        wait_url(driver, lambda u: u.endswith("/ui/approvals/" + a.approval), "the approval page")
        message = text(driver, "#message")
        for want in ("stage:", "proposed:", "rollback:", "input:", "1.4.2", "approvers:", "deadline:"):
            check(want in message, f"the approval message lacks {want!r}:\n{message}")
        check(text(driver, "#approval-status") == "pending", "not pending")

        # A forged CSRF token, sent with the browser's own session cookie, is refused.
        session = driver.get_cookie("pbc_session")
        check(session is not None and session.get("httpOnly") and session.get("sameSite") == "Strict",
              f"the session cookie: {session}")
        req = urllib.request.Request(
            f"{a.url}/ui/approvals/{a.approval}/approve",
            data=urllib.parse.urlencode({"csrf": "f" * 64}).encode(),
            headers={"Cookie": f"pbc_session={session['value']}",
                     "Content-Type": "application/x-www-form-urlencoded"},
            method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            status = opener.open(req, timeout=HANG).status
        except urllib.error.HTTPError as e:
            status = e.code
        summary["forged_csrf_status"] = status
        check(status == 403, f"a forged CSRF token answered {status}")
        driver.refresh()
        check(text(driver, "#approval-status") == "pending", "the forged form changed the approval")

        # Approve; the run's page follows the run (it reloads itself) until it finishes.
        driver.find_element(By.ID, "approve").click()
        wait_url(driver, lambda u: u.endswith(f"/ui/runs/{a.run}"), f"after approving run {a.run}")
        deadline = time.monotonic() + HANG
        status = ""
        while time.monotonic() < deadline:
            status = text(driver, "#run-status")
            if status == "succeeded":
                break
            time.sleep(0.5)
            driver.refresh()
        summary["run_status"] = status
        check(status == "succeeded", f"the run is {status!r}")
        audit = text(driver, "ol.audit")
        check("approval-granted" in audit and "sam@example.com" in audit, f"audit trail:\n{audit}")
    finally:
        driver.quit()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
