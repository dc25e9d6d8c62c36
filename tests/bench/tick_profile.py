#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Per-tick profile of the engine from a valgrind lackey memory trace.

This VM has no hardware performance counters, and after the engine's 10 ms
sleep nearly everything it touches is cold, so what a tick costs follows
from how many instructions it runs and how many distinct cache lines and
pages it touches. lackey (--trace-mem=yes) lists every instruction and data
access; this script cuts the trace into ticks at each execution of a marker
function (run once per tick) and reports, per kind of tick, the average
instructions, distinct 64-byte code and data lines, and 4 KiB pages, by
function.

    valgrind --tool=lackey --trace-mem=yes --log-fd=9 BIN engine 4 9>&1 \\
        >/dev/null 2>/dev/null | tick_profile.py BIN [MARKER]

tests/bench/tick_profile.sh runs exactly that. Ticks are grouped by their
instruction count (to the nearest 1000): at 100 Hz with the default
samplers, the common kind is a tick of the 100 Hz samplers alone and the
larger ones add the 10 Hz and 1 Hz samplers. Under valgrind the engine runs
~50x slower and misses deadlines, so the missed-tick path shows up too.
"""
import bisect
import collections
import os
import re
import subprocess
import sys

LOW_LIMIT = 0x4000000  # valgrind maps the main program below, ld.so and libraries above


def symbols(path, dynamic=False):
    args = ["nm", "-n", "--defined-only"] + (["-D"] if dynamic else []) + [path]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "tTwWiI":
            syms.append((int(f[0], 16), f[2].split("@", 1)[0]))
    return syms


def libc_symbols(binary):
    """(path, symbols) of the libc the binary loads, with the local symbols of
    its debug file when installed (the memchr/strchr variants are local)."""
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    m = re.search(r"libc\.so\.6 => (\S+)", ldd)
    if not m:
        return None, []
    path = os.path.realpath(m.group(1))
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    b = re.search(r"Build ID: ([0-9a-f]+)", notes)
    if b:
        dbg = "/usr/lib/debug/.build-id/%s/%s.debug" % (b.group(1)[:2], b.group(1)[2:])
        if os.path.exists(dbg):
            return path, symbols(dbg)
    return path, symbols(path, dynamic=True)


class Resolver:
    def __init__(self):
        self.addrs, self.names, self.cache = [], [], {}

    def add(self, syms, base, prefix):
        merged = sorted(list(zip(self.addrs, self.names)) + [(a + base, prefix + n) for a, n in syms])
        self.addrs = [a for a, _ in merged]
        self.names = [n for _, n in merged]
        self.cache.clear()

    def name(self, a):
        n = self.cache.get(a)
        if n is None:
            i = bisect.bisect_right(self.addrs, a) - 1
            n = self.names[i] if i >= 0 else "?"
            if a >= LOW_LIMIT and not n.startswith("libc:"):
                n = "ld.so/vdso/other"
            self.cache[a] = n
        return n


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: tick_profile.py BINARY [MARKER] < lackey-trace")
    binary = sys.argv[1]
    marker = sys.argv[2] if len(sys.argv) > 2 else "windows_check"
    main_syms = symbols(binary)
    link = dict((n, a) for a, n in main_syms)
    if marker not in link or "_start" not in link:
        sys.exit("tick_profile: %s has no symbol %s or _start" % (binary, marker))
    libc_path, lsyms = libc_symbols(binary)
    lstart = dict((n, a) for a, n in lsyms).get("__libc_start_main")

    res = Resolver()
    base = tick = None
    after_start = False
    kinds = collections.defaultdict(lambda: [0, collections.Counter(), collections.Counter(),
                                             collections.Counter(), 0, 0, 0, 0])
    cur = None

    def close(t):
        n = sum(t[0].values())
        k = kinds[(n + 500) // 1000]
        k[0] += 1
        k[4] += len(t[3])
        k[5] += sum(1 for p in t[3] if p[0] == "I")
        k[6] += len(t[4])
        k[7] += len(t[5])
        for f, c in t[0].items():
            k[1][f] += c
            k[2][f] += len(t[1][f])
            k[3][f] += len(t[2][f])

    # TICK_PAGES=1: also list the pages of the last tick of each common kind,
    # each with the function that touched it first (a page is a TLB entry:
    # in a VM a cold one costs a two-level page walk).
    want_pages = os.environ.get("TICK_PAGES") == "1"
    pages, last_pages = None, {}
    fn = None
    for line in sys.stdin:
        if len(line) < 4 or line[0] == "=":
            continue
        kind = line[:2]
        try:
            a = int(line[3:].split(",", 1)[0], 16)
        except ValueError:
            continue
        if kind == "I ":
            if base is None:
                # ld.so runs first; its jump to the program's entry is
                # the first instruction below LOW_LIMIT.
                if a < LOW_LIMIT:
                    base = a - link["_start"]
                    if base & 0xfff:
                        sys.exit("tick_profile: cannot place %s in the trace" % binary)
                    res.add(main_syms, base, "")
                    tick = link[marker] + base
                    after_start = True
                continue
            if after_start and a >= LOW_LIMIT:
                # _start calls __libc_start_main: libc's load address.
                after_start = False
                if lstart is not None:
                    res.add(lsyms, a - lstart, "libc:")
            if a == tick:
                if cur is not None:
                    close(cur)
                    if pages is not None:
                        n = sum(cur[0].values())
                        last_pages[(n + 500) // 1000] = pages
                if want_pages:
                    pages = {}
                cur = (collections.Counter(), collections.defaultdict(set),
                       collections.defaultdict(set), set(), set(), set())
            if cur is None:
                continue
            fn = res.name(a)
            cur[0][fn] += 1
            cur[1][fn].add(a >> 6)
            cur[4].add(a >> 6)
            cur[3].add(("I", a >> 12))
            if pages is not None:
                pages.setdefault(("I", a >> 12), (fn, set()))[1].add(a >> 6)
        elif cur is not None:
            cur[2][fn].add(a >> 6)
            cur[5].add(a >> 6)
            cur[3].add(("D", a >> 12))
            if pages is not None:
                pages.setdefault(("D", a >> 12), (fn, set()))[1].add(a >> 6)
    if base is None:
        sys.exit("tick_profile: no instruction of the program in the trace")
    if libc_path and lstart is None:
        print("(libc functions not resolved: no __libc_start_main in %s)" % libc_path)

    print("ticks by instructions (to 1000): count")
    for key in sorted(kinds):
        print("  ~%6d: %d" % (key * 1000, kinds[key][0]))
    for key in sorted(kinds):
        k = kinds[key]
        n = k[0]
        if n < 3 or key == 0:
            continue
        print("\n== ticks of ~%d instructions (%d ticks; per tick: %.0f instructions, "
              "%.0f code lines, %.0f data lines, %.0f pages of which %.0f code)"
              % (key * 1000, n, sum(k[1].values()) / n,
                 k[6] / n, k[7] / n, k[4] / n, k[5] / n))
        print("%-44s %9s %7s %7s" % ("function (a line two touch counts twice)", "instr",
                                      "ilines", "dlines"))
        for f, c in k[1].most_common(30):
            print("%-44s %9.0f %7.1f %7.1f" % (f[:44], c / n, k[2][f] / n, k[3][f] / n))
        if key in last_pages:
            print("pages of the last such tick (kind, address, lines, first touched by):")
            for (pk, pg), (f, lines) in sorted(last_pages[key].items(), key=lambda x: (x[0][0], x[0][1])):
                print("  %s %012x %3d  %s" % (pk, pg << 12, len(lines), f))


if __name__ == "__main__":
    main()
