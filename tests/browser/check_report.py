#!/usr/bin/env python3
"""check_report.py - renders an HTML report in headless Chromium and checks what a person would see.

usage: check_report.py CHROMIUM REPORT.html WORKDIR

Fails (exit 1) when the page logs anything to the console (the report runs no script, so any message is an
error), when it requests anything (Chromium's net log: a request whose initiator is the page), or when the
screenshot is blank (too few distinct colours, too little variance). Before judging the report, the same checks
are run on two pages made to fail them - one that logs an error and fetches an image, one that is blank - so a
check that cannot see a failure fails too. Python standard library only.
"""
import json
import os
import struct
import subprocess
import sys
import zlib

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--enable-logging=stderr", "--v=0", "--window-size=1200,2400"]


def render(chromium, html, workdir, name):
    """Screenshot and net log of html; returns (console lines, page requests, png path)."""
    png = os.path.join(workdir, name + ".png")
    netlog = os.path.join(workdir, name + ".netlog.json")
    for path in (png, netlog):
        if os.path.exists(path):
            os.remove(path)
    cmd = [chromium] + FLAGS + ["--screenshot=" + png, "--log-net-log=" + netlog, "file://" + os.path.abspath(html)]
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=180, text=True, errors="replace")
    if not os.path.exists(png):
        sys.exit("check_report: chromium wrote no screenshot for %s:\n%s" % (html, run.stderr[-2000:]))
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    requests = []
    with open(netlog) as f:
        for event in json.load(f).get("events", []):
            params = event.get("params", {})
            # the browser's own traffic (updates, time) has no origin; the page's requests have one ("null" for file:)
            if "url" in params and "initiator" in params and params["initiator"] != "not an origin":
                requests.append(params["url"])
    return console, requests, png


def png_pixels(path):
    """(width, height, channels, rows of bytes) of an 8-bit RGB or RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s is not a PNG" % path)
    pos, idat, width = 8, [], 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color not in (2, 6):
                raise ValueError("%s: bit depth %d, colour type %d not handled" % (path, depth, color))
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = prev[i], prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, channels, rows


def blankness(path):
    """(distinct colours, standard deviation of grey levels) over every 4th pixel of every 4th row."""
    width, height, channels, rows = png_pixels(path)
    colours, n, s, s2 = set(), 0, 0.0, 0.0
    for y in range(0, height, 4):
        row = rows[y]
        for x in range(0, width * channels, 4 * channels):
            r, g, b = row[x], row[x + 1], row[x + 2]
            colours.add((r, g, b))
            grey = 0.299 * r + 0.587 * g + 0.114 * b
            n, s, s2 = n + 1, s + grey, s2 + grey * grey
    mean = s / n
    return len(colours), max(s2 / n - mean * mean, 0) ** 0.5


def is_blank(path):
    colours, spread = blankness(path)
    return colours < 50 or spread < 10, colours, spread


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    chromium, report, workdir = sys.argv[1:]
    os.makedirs(workdir, exist_ok=True)
    bad = os.path.join(workdir, "control-errors.html")
    with open(bad, "w") as f:
        f.write('<!DOCTYPE html><html><body><p>control</p><img src="https://example.invalid/x.png">'
                '<script>console.error("control error")</script></body></html>')
    console, requests, _ = render(chromium, bad, workdir, "control-errors")
    if not console or not requests:
        sys.exit("check_report: the checks cannot see a console error (%d) or a request (%d) on the control page"
                 % (len(console), len(requests)))
    blank = os.path.join(workdir, "control-blank.html")
    with open(blank, "w") as f:
        f.write("<!DOCTYPE html><html><body></body></html>")
    _, _, png = render(chromium, blank, workdir, "control-blank")
    if not is_blank(png)[0]:
        sys.exit("check_report: a blank page was not judged blank")

    console, requests, png = render(chromium, report, workdir, "report")
    failed = False
    for line in console:
        print("console: " + line)
        failed = True
    for url in requests:
        print("request: " + url)
        failed = True
    blank_page, colours, spread = is_blank(png)
    print("report screenshot %s: %d colours, grey-level spread %.1f%s" % (png, colours, spread, " (blank)" if blank_page else ""))
    if blank_page or failed:
        sys.exit("check_report: FAILED")
    print("check_report: %s renders without console messages or requests, and is not blank" % report)


if __name__ == "__main__":
    main()
