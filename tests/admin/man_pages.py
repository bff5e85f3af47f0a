#!/usr/bin/env python3
"""man_pages.py BUILD SRC - the man pages keep up with the programs' help.

- every object of `ftctl help` has its page ftctl-OBJECT.8, named in
  ftctl(8), and every command of `ftctl OBJECT help` is described in it;
- each SYNOPSIS form of the ftctl pages is a usage line of `ftctl ...
  help` and each usage line is in its object's page (markup, spacing and
  the global options [-j] [-s] [-p] aside);
- ftlogd(8)'s SYNOPSIS is `ftlogd --help`; every subcommand of `ftvmm
  --help` has a SYNOPSIS form in ftvmm(1), which names exactly the options
  of `ftvmm SUBCOMMAND --help`;
- every page was generated and renders with `man -l` without warnings.
"""
import os
import re
import subprocess
import sys

import helpparse
from helpparse import forms, help_forms

build, src = sys.argv[1], sys.argv[2]
FTCTL = os.path.join(build, "ftctl/ftctl")
FTVMM = os.path.join(build, "ftvmm/ftvmm")
FTLOGD = os.path.join(build, "ftlogd/ftlogd")
MD = os.path.join(src, "Documentation/man")
ROFF = os.path.join(build, "Documentation/man")
errors = []


def err(msg):
    errors.append(msg)


def run(*argv):
    try:
        return helpparse.run(*argv)
    except RuntimeError as e:
        err(str(e))
        return ""


def section(md, name):
    out, on = [], False
    for line in md.splitlines():
        if line.startswith("## "):
            on = line[3:].strip() == name
            continue
        if on:
            out.append(line)
    return out


def page(name):
    path = os.path.join(MD, name + ".md")
    if not os.path.exists(path):
        err(f"{name}: no page {os.path.relpath(path, src)}")
        return ""
    return open(path, encoding="utf-8").read()


# ftctl: objects, commands, synopses.
top = run(FTCTL, "help")
m = re.search(r"OBJECT := \{(.*?)\}", top)
objects = [o.strip() for o in m.group(1).split("|")] if m else []
if not objects:
    err("ftctl help lists no OBJECT")
ftctl_md = page("ftctl.8")
page_forms = {"ftctl.8": forms(section(ftctl_md, "SYNOPSIS"), "ftctl")}
help_of = {"": help_forms(top, "ftctl")}
for o in objects:
    help_of[o] = help_forms(run(FTCTL, o, "help"), "ftctl")
    if not help_of[o]:
        err(f"ftctl {o} help prints no usage")
    md = page(f"ftctl-{o}.8")
    page_forms[f"ftctl-{o}.8"] = forms(section(md, "SYNOPSIS"), "ftctl")
    if f"`{o}`" not in ftctl_md or f"ftctl-{o}(8)" not in ftctl_md:
        err(f"ftctl.8.md does not name object `{o}` and its page ftctl-{o}(8)")
    for f in help_of[o]:
        t = f.split()
        if len(t) < 3 or t[1] != o:
            continue
        cmds = [c for c, _ in helpparse.ftctl_commands(t, o) if c]
        for c in cmds:
            if c != "help" and not re.search(rf"`({o} )?{c}[` ]", md):
                err(f"ftctl-{o}.8.md: command `{c}` is not described")

every_help_form = {f for fs in help_of.values() for f in fs}
for name, fs in page_forms.items():
    if not fs:
        err(f"{name}.md: no SYNOPSIS")
    for f in fs:
        if f not in every_help_form:
            err(f"{name}.md SYNOPSIS: \"{f}\" is not printed by any ftctl help")
for o in objects:
    for f in help_of[o]:
        t = f.split()
        if len(t) > 1 and t[1] == o and f not in page_forms[f"ftctl-{o}.8"]:
            err(f"ftctl-{o}.8.md SYNOPSIS lacks \"{f}\" (ftctl {o} help)")
for f in help_of[""]:
    if f not in page_forms["ftctl.8"]:
        err(f"ftctl.8.md SYNOPSIS lacks \"{f}\" (ftctl help)")

# ftlogd: the SYNOPSIS is its usage.
want = help_forms(run(FTLOGD, "--help"), "ftlogd")
got = forms(section(page("ftlogd.8"), "SYNOPSIS"), "ftlogd")
if not want or sorted(want) != sorted(got):
    err(f"ftlogd.8.md SYNOPSIS {got} != ftlogd --help {want}")

# ftvmm: a SYNOPSIS form per subcommand, with the options of its --help.
vmm = page("ftvmm.1")
syn = forms(section(vmm, "SYNOPSIS"), "ftvmm")
subs = re.findall(r"^  ([a-z]+)\s", run(FTVMM, "--help").split("Subcommands:")[-1], re.M)
if not subs:
    err("ftvmm --help lists no subcommand")
for s in subs:
    form = [f for f in syn if f.startswith(f"ftvmm {s} ")]
    if len(form) != 1:
        err(f"ftvmm.1.md SYNOPSIS: {len(form)} forms for `ftvmm {s}`")
        continue
    opts = set(re.findall(r"^\s+(?:-\w,)?(--[a-z-]+)", run(FTVMM, s, "--help"), re.M))
    opts.discard("--help")
    shown = set(re.findall(r"--[a-z-]+", form[0]))
    for o in sorted(opts - shown):
        err(f"ftvmm.1.md SYNOPSIS of `ftvmm {s}` lacks {o}")
    for o in sorted(shown - opts):
        err(f"ftvmm.1.md SYNOPSIS of `ftvmm {s}` has {o}, not an option of it")
    for o in sorted(opts):
        if not re.search(rf"^`{o}`", vmm, re.M) and not re.search(rf"^`--\S.*`{o}`", vmm, re.M):
            err(f"ftvmm.1.md OPTIONS: {o} is not described")

# The generated pages render.
env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
for md in sorted(os.listdir(MD)):
    if not re.search(r"\.[1-8]\.md$", md):
        continue
    roff = os.path.join(ROFF, md[:-3])
    if not os.path.exists(roff):
        err(f"{md}: not generated ({roff})")
        continue
    p = subprocess.run(["man", "--warnings", "-l", roff], capture_output=True, text=True, env=env)
    title = md.split(".")[0].upper()
    if p.returncode != 0 or p.stderr.strip() or not p.stdout.startswith(title + "("):
        err(f"man -l {roff}: exit {p.returncode}, {p.stderr.strip()!r}, starts {p.stdout[:40]!r}")
    for s in ("NAME", "SYNOPSIS", "DESCRIPTION"):
        if f"\n{s}\n" not in p.stdout:
            err(f"man -l {roff}: no {s} section")

for e in errors:
    print("FAIL:", e)
print(f"man pages: {len(objects)} ftctl objects, {len(subs)} ftvmm subcommands; "
      f"{len(errors)} problems")
sys.exit(1 if errors else 0)
