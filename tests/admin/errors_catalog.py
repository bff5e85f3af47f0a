#!/usr/bin/env python3
"""errors_catalog.py SRC [--list] - every error message of ftctl, ftlogd and
ftvmm has an entry in Documentation/errors.md.

What counts as a message (Documentation/errors.md, "How this catalog is
kept"): the string literals inside the argument list of a call to
Status::Error, Status::Errno, Wrap, Fail, Err (ftlogd's control replies),
fprintf(stderr, ...) or fmt::print(stderr, ...), in every .cc and .h file
under ftctl/, ftlogd/ and ftvmm/ (found recursively, so files may move
between subfolders), but not in tests: *_test.cc, fuzz_*.cc, and folders
tests/, guests/, tools/. Each literal is cut at its placeholders ({...}
of fmt, %... of printf, \\n); every piece with 4 or more characters
(punctuation and spaces at its ends aside) must be found, as it is, inside
one message (the first column, between backquotes) of a table of
Documentation/errors.md.

--list prints the pieces with where they are, and the ones missing.
"""
import os
import re
import sys

src = sys.argv[1]
listing = "--list" in sys.argv
CALL = re.compile(r"\b(?:(?:Status::Error|Status::Errno|Wrap|Fail|Err)\s*\(|"
                  r"(?:std::)?fprintf\s*\(\s*stderr\b|fmt::print\s*\(\s*stderr\b)")
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%[-+ #0-9.*]*(?:ll|l|z|h|j)?[a-zA-Z]|\\n|\\t")


def sources():
    for comp in ("ftctl", "ftlogd", "ftvmm"):
        for root, dirs, files in os.walk(os.path.join(src, comp)):
            dirs[:] = sorted(d for d in dirs if d not in ("tests", "guests", "tools"))
            for f in sorted(files):
                if f.endswith((".cc", ".h")) and not f.endswith("_test.cc") \
                        and not f.startswith("fuzz_"):
                    yield os.path.join(root, f)


def literal_end(text, i):
    """text[i] is a quote: the index after the literal."""
    q = text[i]
    i += 1
    while text[i] != q:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def call_args(text, i):
    """text[i] is just after the call's '(': the argument text."""
    depth, j = 1, i
    while depth:
        c = text[j]
        if c in "\"'":
            j = literal_end(text, j)
            continue
        if c == "/" and text[j + 1] == "/":
            j = text.index("\n", j)
            continue
        depth += {"(": 1, ")": -1}.get(c, 0)
        j += 1
    return text[i:j - 1]


def literals(args):
    """The string literals of args, adjacent ones joined."""
    out, j, last_end = [], 0, -1
    while j < len(args):
        c = args[j]
        if c == "'":
            j = literal_end(args, j)
        elif c == '"':
            e = literal_end(args, j)
            body = args[j + 1:e - 1]
            if out and args[last_end:j].strip() == "":
                out[-1] += body
            else:
                out.append(body)
            j = last_end = e
        else:
            j += 1
    return out


def pieces(lit):
    for p in PLACEHOLDER.split(lit):
        p = p.replace('\\"', '"').replace("\\\\", "\\")
        p = re.sub(r"^[\s\W]+|[\s\W]+$", "", p)
        if len(p) >= 4:
            yield p


def catalog():
    msgs = []
    for line in open(os.path.join(src, "Documentation/errors.md"), encoding="utf-8"):
        if line.startswith("|") and not re.match(r"\|\s*-", line):
            cell = re.split(r"(?<!\\)\|", line)[1]
            msgs += re.findall(r"`([^`]+)`", cell)
    return msgs


found = {}
for path in sources():
    text = open(path, encoding="utf-8").read()
    for m in CALL.finditer(text):
        if "stderr" in m.group(0):
            start = text.index(",", m.start()) + 1
        elif m.group(0).endswith("("):
            start = m.end()
        else:
            continue  # a name, not a call
        args = call_args(text, start)
        line = text.count("\n", 0, m.start()) + 1
        for lit in literals(args):
            for p in pieces(lit):
                found.setdefault(p, []).append(f"{os.path.relpath(path, src)}:{line}")

msgs = catalog()
missing = {p: w for p, w in found.items() if not any(p in m for m in msgs)}
if listing:
    for p, w in sorted(found.items()):
        print(f"{'MISSING ' if p in missing else ''}{p!r}  {w[0]}")
for p, w in sorted(missing.items(), key=lambda x: x[1][0]):
    print(f"FAIL: {p!r} ({', '.join(w)}) is in no message of Documentation/errors.md")
print(f"errors catalog: {len(found)} message pieces, {len(msgs)} entries, "
      f"{len(missing)} pieces missing")
sys.exit(1 if missing or not found else 0)
