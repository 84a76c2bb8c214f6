#!/usr/bin/python3
"""A report page as a person sees it: opened in headless Chromium, screenshotted, and checked.

    report_page.py PAGE.html SCREENSHOT.png [--width 1200] [--height 2400] [--grids N] [--charts N]

Checks, one line per failure, exit 1 if any:
  * the page is self-contained: no script, no stylesheet link, no URL; every picture and link
    names a file beside the page that exists;
  * Chromium (network off: every host resolves to nothing) renders it to a screenshot of the
    window's size that is not blank;
  * every picture loaded and decoded in the browser at its file's size (a copy of the page with a
    script that lists each image's naturalWidth × naturalHeight, read back with --dump-dom);
  * the charts rendered: pixels of the charts' first series colour (PLplot's palette, blue
    31,119,180) in the screenshot, at least 400 per chart (--charts), and at least --grids grids
    among the pictures.
"""
import argparse
import html
import html.parser
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from PIL import Image


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.bad = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "link", "iframe", "object", "embed"):
            self.bad.append(f"<{tag}> element")
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag == "a":
            self.links.append(a.get("href", ""))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("page")
    ap.add_argument("shot")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=2400)
    ap.add_argument("--grids", type=int, default=1)
    ap.add_argument("--charts", type=int, default=1)
    args = ap.parse_args()
    page = pathlib.Path(args.page).resolve()
    problems = []

    text = page.read_text(encoding="utf-8")
    parser = Links()
    parser.feed(text)
    problems += parser.bad
    if "://" in text or "url(" in text:
        problems.append("the page names a URL")
    for src in parser.images + parser.links:
        f = page.parent / src
        if not src or src.startswith("/") or ".." in pathlib.PurePath(src).parts:
            problems.append(f"not a file beside the page: {src!r}")
        elif not f.is_file() or f.stat().st_size == 0:
            problems.append(f"missing or empty: {src}")
    if len(parser.images) < args.grids + args.charts:
        problems.append(f"{len(parser.images)} pictures, expected at least {args.grids + args.charts}")

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("report_page: chromium is not installed (apt install chromium)")
        return 1
    def chromium(*extra):
        with tempfile.TemporaryDirectory() as profile:
            cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
                   f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
                   f"--window-size={args.width},{args.height}", *extra]
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120,
                                  env=dict(os.environ, HOME=profile))

    run = chromium(f"--screenshot={os.path.abspath(args.shot)}", page.as_uri())
    if run.returncode != 0 or not os.path.exists(args.shot):
        print(f"report_page: chromium failed ({run.returncode})")
        return 1

    # Which pictures the browser loaded, at what size: a copy of the page with a probe script.
    probe = page.parent / f".report_probe_{os.getpid()}.html"
    script = ("<script>window.addEventListener('load',()=>{const p=document.createElement('pre');p.id='probe';"
              "p.textContent=[...document.images].map(i=>'IMG|'+i.getAttribute('src')+'|'+i.naturalWidth+'|'+"
              "i.naturalHeight+'|').join(' ');document.body.appendChild(p);});</script>")
    probe.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    try:
        dom = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri()).stdout.decode(errors="replace")
    finally:
        probe.unlink()
    loaded = {}
    for m in re.finditer(r"IMG\|([^|]*)\|(\d+)\|(\d+)\|", dom):
        loaded[html.unescape(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    grids = 0
    for src in parser.images:
        if src not in loaded or loaded[src][0] == 0:
            problems.append(f"not rendered by the browser: {src}")
        elif src.endswith(".png"):
            size = Image.open(page.parent / src).size
            if loaded[src] != size:
                problems.append(f"{src} rendered at {loaded[src]}, the file is {size}")
            grids += not src.startswith("chart") and not src.startswith("loss") and not src.startswith("steps")
    if grids < args.grids:
        problems.append(f"{grids} grids rendered, expected at least {args.grids}")

    shot = Image.open(args.shot).convert("RGB")
    if shot.size != (args.width, args.height):
        problems.append(f"screenshot is {shot.size}, expected {(args.width, args.height)}")
    px = shot.getdata()
    n = len(px)
    white = sum(1 for p in px if p == (255, 255, 255))
    if white > 0.98 * n:
        problems.append(f"the page is blank ({white} of {n} pixels white)")
    blue = sum(1 for r, g, b in px if abs(r - 31) <= 12 and abs(g - 119) <= 12 and abs(b - 180) <= 12)
    if blue < 400 * args.charts:
        problems.append(f"charts not rendered: {blue} pixels of the first series' colour, expected >= {400 * args.charts}")

    for p in problems:
        print(f"report_page: {page.name}: {p}")
    print(f"report_page: {page.name}: {len(parser.images)} pictures ({len(loaded)} loaded), {blue} chart pixels, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
