"""Check a headless-Chromium screenshot of the HTML report and the browser's
network log, with the Python standard library only.

Usage: html_check.py SCREENSHOT.png NETLOG.json

The screenshot must not be blank: a fair share of its pixels differ from
the white background, and the charts' colours (Okabe-Ito blue, vermillion
and bluish green) each cover many pixels, which only rendered SVG charts
produce. The network log must hold no request that a page started:
Chromium's own background requests carry the initiator "not an origin",
and they cannot leave the machine because CI runs the browser in its own
network namespace with every host name unresolvable.
"""

import json
import struct
import sys
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chart colours from src/report/charts.rs and src/report/svg.rs.
CHART_COLOURS = {"blue #0072B2": (0x00, 0x72, 0xB2), "vermillion #D55E00": (0xD5, 0x5E, 0x00), "green #009E73": (0x00, 0x9E, 0x73)}
MIN_COLOUR_PIXELS = 200
MIN_INK_SHARE = 0.03
# Every second pixel of every second row is checked, which keeps pure
# Python under a few seconds for a 1200x3000 screenshot.
SAMPLE_STEP = 2


def read_png(path):
    """Returns the width, the height and the sampled rows of (r, g, b)
    tuples of an 8-bit RGB or RGBA PNG."""
    data = open(path, "rb").read()
    if data[:8] != PNG_SIGNATURE:
        raise ValueError(f"{path} is not a PNG file")
    offset, idat, header = 8, b"", None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}, interlace {interlace}")
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        unfilter(raw[start], line, previous, channels)
        if y % SAMPLE_STEP == 0:
            step = channels * SAMPLE_STEP
            rows.append([tuple(line[x : x + 3]) for x in range(0, stride, step)])
        previous = line
    return width, height, rows


def unfilter(kind, line, previous, bpp):
    """Undoes one PNG scanline filter in place (RFC 2083, section 6)."""
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        up_left = previous[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            line[i] = (line[i] + paeth(left, up, up_left)) & 0xFF


def paeth(left, up, up_left):
    """Returns the Paeth predictor: the neighbour closest to left + up - up_left."""
    estimate = left + up - up_left
    distance_left = abs(estimate - left)
    distance_up = abs(estimate - up)
    distance_up_left = abs(estimate - up_left)
    if distance_left <= distance_up and distance_left <= distance_up_left:
        return left
    if distance_up <= distance_up_left:
        return up
    return up_left


def near(pixel, colour, tolerance=24):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


def check_screenshot(path, failures):
    width, height, rows = read_png(path)
    pixels = [pixel for row in rows for pixel in row]
    ink = sum(1 for pixel in pixels if min(pixel) < 235)
    share = ink / len(pixels)
    print(f"screenshot {width}x{height}: {share:.1%} of pixels not background")
    if share < MIN_INK_SHARE:
        failures.append(f"the screenshot is nearly blank: {share:.2%} of pixels differ from white")
    for name, colour in CHART_COLOURS.items():
        count = sum(1 for pixel in pixels if near(pixel, colour))
        print(f"  {name}: {count} sampled pixels")
        if count < MIN_COLOUR_PIXELS:
            failures.append(f"chart colour {name} covers only {count} sampled pixels; the charts did not render")


def check_netlog(path, failures):
    log = json.load(open(path))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    started = [
        event["params"]
        for event in log["events"]
        if names.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in event.get("params", {})
    ]
    by_page = [params for params in started if params.get("initiator") != "not an origin"]
    print(f"network log: {len(started)} requests started, {len(by_page)} by a page")
    for params in by_page:
        failures.append(f"the page requested {params.get('url')} (initiator {params.get('initiator')})")


def main():
    failures = []
    check_screenshot(sys.argv[1], failures)
    check_netlog(sys.argv[2], failures)
    if failures:
        print("HTML report check FAILED:")
        for failure in failures:
            print("  " + failure)
        sys.exit(1)
    print("HTML report check: rendered with its charts, no request from the page")


if __name__ == "__main__":
    main()
