#!/usr/bin/python3
"""Opens the credmint console in headless Chromium (Selenium + the system chromedriver)
and checks what a person would see; run by tests/governance/console.rs.

The appliance's CA is trusted the way a browser trusts it: an NSS database in a throwaway
HOME (certutil), never --ignore-certificate-errors. The caller authenticates either with
an operator certificate (imported into the same NSS database and auto-selected for the
console's origin through the profile's auto_select_certificate content setting, the
per-profile form of the AutoSelectCertificateForUrls policy) or with a bearer token sent
on every request through CDP Network.setExtraHTTPHeaders.

Exits non-zero, saying why, on any missing tool or failed check.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
from urllib.parse import urlsplit

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    sys.exit("selenium missing: apt-get install -y python3-selenium (run with /usr/bin/python3)")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def fail(message):
    sys.exit(f"console check failed: {message}")


def run(*args):
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")


def nss_home(args):
    """A HOME whose ~/.pki/nssdb trusts the CA (and holds the operator identity)."""
    home = tempfile.mkdtemp(prefix="credmint-console-home-")
    db = f"sql:{home}/.pki/nssdb"
    os.makedirs(f"{home}/.pki/nssdb")
    run("certutil", "-d", db, "-N", "--empty-password")
    run("certutil", "-d", db, "-A", "-t", "C,,", "-n", "credmint-ca", "-i", args.ca)
    if args.client_cert:
        p12 = f"{home}/operator.p12"
        run("openssl", "pkcs12", "-export", "-in", args.client_cert, "-inkey", args.client_key,
            "-out", p12, "-passout", "pass:console", "-name", "credmint-operator")
        run("pk12util", "-d", db, "-i", p12, "-W", "console")
    return home


def browser(args, home):
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            fail(f"{tool} missing: apt-get install -y chromium chromium-driver")
    # Chromium reads the NSS database under $HOME; chromedriver passes its environment on.
    os.environ["HOME"] = home
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--window-size=1280,900", f"--user-data-dir={home}/profile"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if args.client_cert:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(args.url))
        rule = {"setting": {"filters": [{"ISSUER": {"CN": args.issuer_cn}}]}}
        opts.add_experimental_option("prefs", {"profile": {"content_settings": {"exceptions": {
            "auto_select_certificate": {f"{origin},*": rule}}}}})
    # An explicit driver path: Selenium never looks for, or downloads, one of its own.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(90)
    if args.bearer_file:
        with open(args.bearer_file) as f:
            token = f.read().strip()
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders",
                               {"headers": {"Authorization": f"Bearer {token}"}})
    return driver


def check(driver, args):
    driver.get(args.url)
    WebDriverWait(driver, 60).until(EC.presence_of_element_located((By.ID, "expiry-chart")))
    if driver.title != "credmint console":
        fail(f"title is {driver.title!r}: {driver.find_element(By.TAG_NAME, 'body').text[:300]}")
    viewer = driver.find_element(By.ID, "viewer").text
    if viewer != args.expect_viewer:
        fail(f"the page says it is read as {viewer!r}, expected {args.expect_viewer!r}")
    for name in args.expect_integration:
        rows = driver.find_elements(By.CSS_SELECTOR, "#inventory tr.integration")
        if not any(r.get_attribute("data-name") == name and name in r.text for r in rows):
            fail(f"integration {name!r} not shown in the inventory table")
    days = driver.find_elements(By.CSS_SELECTOR, "#expiry-chart g.day")
    if len(days) != 7:
        fail(f"the expiry chart has {len(days)} day bars, expected 7")
    expiring = sum(int(d.get_attribute("data-certificates")) + int(d.get_attribute("data-tokens"))
                   for d in days)
    if expiring != args.expect_expiring:
        fail(f"the chart counts {expiring} expiring credentials, expected {args.expect_expiring}")
    bars = driver.find_elements(By.CSS_SELECTOR, "#expiry-chart rect")
    if not any(b.size["height"] > 0 for b in bars):
        fail("the expiry chart draws no bar")
    for section in ("health", "pending", "signals"):
        driver.find_element(By.ID, section)
    # The inline stylesheet applied: the CSP's hash matches it.
    header = driver.find_element(By.TAG_NAME, "header").value_of_css_property("background-color")
    if header != "rgba(29, 36, 48, 1)":
        fail(f"stylesheet not applied (header background {header})")
    refused = [e["message"] for e in driver.get_log("browser")
               if "Content Security Policy" in e["message"] or e["level"] == "SEVERE"]
    if refused:
        fail(f"browser console errors: {refused}")
    # The whole page, not just the first screen.
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": metrics["width"], "height": metrics["height"],
                 "scale": 1}})
    os.makedirs(os.path.dirname(os.path.abspath(args.screenshot)), exist_ok=True)
    with open(args.screenshot, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print(json.dumps({"screenshot": os.path.abspath(args.screenshot), "viewer": viewer,
                      "expiring": expiring,
                      "integrations": len(driver.find_elements(By.CSS_SELECTOR,
                                                               "#inventory tr.integration"))}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True, help="PEM of the CA the console's TLS chains to")
    p.add_argument("--client-cert", help="operator certificate chain (PEM)")
    p.add_argument("--client-key", help="operator private key (PEM)")
    p.add_argument("--issuer-cn", help="CN of the operator certificate's issuer")
    p.add_argument("--bearer-file", help="file holding a bearer token")
    p.add_argument("--expect-viewer", required=True, help="who the header says is reading")
    p.add_argument("--expect-integration", action="append", default=[])
    p.add_argument("--expect-expiring", type=int, required=True,
                   help="credentials the chart must count over its days")
    p.add_argument("--screenshot", required=True)
    args = p.parse_args()
    if bool(args.client_cert) == bool(args.bearer_file):
        fail("give exactly one of --client-cert or --bearer-file")
    home = nss_home(args)
    try:
        driver = browser(args, home)
        try:
            check(driver, args)
        finally:
            driver.quit()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
