#!/usr/bin/env python3
"""completion.py BUILD SRC - the bash completion offers what help lists.

Runs each program's completion function under bash (bash-completion
loaded, COMP_WORDS and COMP_CWORD set as bash sets them) and checks
COMPREPLY:
- ftctl: every global option, object and command of `ftctl help` and
  `ftctl OBJECT help`, every keyword and option of each command (also
  with the object and command abbreviated to 3 letters), the values an
  option lists (`--type exit|entry|...`), and files where a value or a
  positional argument is a PATH;
- ftvmm: every subcommand, every option of `ftvmm SUBCOMMAND --help`,
  files for the image and for options whose value is a FILE, SOCKET,
  PREFIX or lock area, the choices of `TEXT:{a,b}` options;
- ftlogd: every option of `ftlogd --help`, a file for `--config`.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

from helpparse import ftctl_commands, help_forms, run

build, src = sys.argv[1], os.path.abspath(sys.argv[2])
FTCTL = os.path.join(build, "ftctl/ftctl")
FTVMM = os.path.join(build, "ftvmm/ftvmm")
FTLOGD = os.path.join(build, "ftlogd/ftlogd")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
PATHLIKE = {"PATH", "FILE", "SOCKET", "AREA", "IMAGE", "PREFIX", "FILES", "SNAPSHOT"}
tmp = tempfile.mkdtemp(prefix="ftcomp.")
afile = os.path.join(tmp, "some-file")
open(afile, "w").close()
cases = []  # (words, expected subset, why)


def case(words, want, why):
    if want:
        cases.append((list(words), set(want), why))


def keywords(rest):
    """Keywords and options of a form's tail: {word: ARG or None} and
    {option: [values]}. A lowercase word right after an option, or after
    '|' following such a value, is a value of that option."""
    kws, values = {}, {}
    last, owner = None, None  # last meaningful token; option owning values
    for i, w in enumerate(rest):
        if w in "[]{}" or w.startswith(","):
            continue
        if w == "|":
            continue
        if re.fullmatch(r"--?[a-z][a-z-]*", w):
            kws[w], owner = None, w
        elif re.fullmatch(r"[a-z][a-z_-]*", w):
            if last is not None and (last == owner or last in values.get(owner, [])) \
                    and owner and owner.startswith("-"):
                values.setdefault(owner, []).append(w)
            else:
                kws[w], owner = None, w
        elif re.fullmatch(r"[A-Z][A-Z_]*", w) and last in kws and kws[last] is None:
            kws[last] = w
        last = w
    return kws, values


# ftctl
top = run(FTCTL, "help")
objects = [o.strip() for o in re.search(r"OBJECT := \{(.*?)\}", top).group(1).split("|")]
case(["ftctl", ""], objects + ["help"], "objects")
opts = re.search(r"OPTIONS := \{(.*?)\}\s*$", top, re.M).group(1)
glob = []
for o in opts.split("|"):
    m = re.fullmatch(r"\s*(-\w+)(?:\[(\w+)\])?\s*", o)
    glob += [m.group(1)] + ([m.group(1) + m.group(2)] if m.group(2) else [])
case(["ftctl", "-"], glob, "global options")
for obj in objects:
    cmds = []
    for f in help_forms(run(FTCTL, obj, "help"), "ftctl"):
        for cmd, rest in ftctl_commands(f.split(), obj):
            if cmd:
                cmds.append(cmd)
            for ab in (False, True):
                pre = ["ftctl", obj[:3] if ab else obj] + \
                      ([cmd[:3] if ab else cmd] if cmd else [])
                i = 0
                while i < len(rest) and re.fullmatch(r"[A-Z][A-Z_]*", rest[i]):
                    if rest[i] in PATHLIKE and not ab:
                        case(pre + [tmp + "/"], [afile], f"{' '.join(pre)} {rest[i]}")
                    pre.append("x")
                    i += 1
                kws, values = keywords(rest[i:])
                why = " ".join(pre)
                case(pre + ["-"], [k for k in kws if k.startswith("-")], why)
                case(pre + [""], [k for k in kws if not k.startswith("-")], why)
                for k, vals in values.items():
                    case(pre + [k, ""], vals, f"{why} {k}")
                for k, arg in kws.items():
                    if arg in PATHLIKE:
                        case(pre + [k, tmp + "/"], [afile], f"{why} {k} {arg}")
    if cmds:
        case(["ftctl", obj, ""], cmds, f"commands of {obj}")

# ftvmm
subs = re.findall(r"^  ([a-z]+)\s", run(FTVMM, "--help").split("Subcommands:")[-1], re.M)
case(["ftvmm", ""], subs, "subcommands")
for s in subs:
    text = run(FTVMM, s, "--help")
    options = {}
    for m in re.finditer(r"^\s+(?:-\w,)?(--[a-z-]+)(?: (\S+))?((?:.*)(?:\n {20,}.*)*)", text, re.M):
        options[m.group(1)] = (m.group(2) or "", m.group(3))
    case(["ftvmm", s, "-"], options, f"ftvmm {s} options")
    for o, (typ, desc) in options.items():
        if not typ.startswith("TEXT"):
            continue
        choice = re.fullmatch(r"TEXT:\{(.*)\}", typ)
        if choice:
            case(["ftvmm", s, o, ""], choice.group(1).split(","), f"ftvmm {s} {o}")
        elif re.search(r"\b(FILE|SOCKET|PREFIX)\b|^\s*Lock area", desc):
            case(["ftvmm", s, o, tmp + "/"], [afile], f"ftvmm {s} {o} (a path)")
    if re.search(r"^Positionals:\n\s+[A-Z]+ TEXT", text, re.M):
        case(["ftvmm", s, tmp + "/"], [afile], f"ftvmm {s} positional file")

# ftlogd
for f in help_forms(run(FTLOGD, "--help"), "ftlogd"):
    t = f.split()
    case(["ftlogd", "-"], [w for w in t if w.startswith("-")], "ftlogd options")
    for i, w in enumerate(t[:-1]):
        if w.startswith("-") and t[i + 1] in PATHLIKE:
            case(["ftlogd", w, tmp + "/"], [afile], f"ftlogd {w}")

# One bash for all cases.
script = [f"source {BASH_COMPLETION}"]
for p in ("ftctl", "ftvmm", "ftlogd"):
    script.append(f"source {shlex.quote(os.path.join(src, 'completion', p))}")
script.append(r'''_t() {
	COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
	local fn
	fn=$(complete -p "$1" | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
	"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
	printf '%s\n' "${COMPREPLY[@]}"
	echo @@@
}''')
for words, _, _ in cases:
    script.append("_t " + " ".join(shlex.quote(w) for w in words))
p = subprocess.run(["bash", "--norc", "--noprofile"], input="\n".join(script) + "\n",
                   capture_output=True, text=True, cwd=tmp)
replies = p.stdout.split("@@@\n")
errors = 0
if len(replies) != len(cases) + 1:
    print(f"FAIL: bash gave {len(replies) - 1} replies for {len(cases)} cases; "
          f"stderr: {p.stderr.strip()[:2000]}")
    errors += 1
for (words, want, why), reply in zip(cases, replies):
    got = set(reply.split("\n")) - {""}
    missing = want - got
    if missing:
        errors += 1
        print(f"FAIL: {' '.join(shlex.quote(w) for w in words)!s} ({why}): "
              f"missing {sorted(missing)}, offered {sorted(got)}")
os.remove(afile)
os.rmdir(tmp)
print(f"completion: {len(cases)} cases, {errors} failed")
sys.exit(1 if errors else 0)
