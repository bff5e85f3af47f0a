"""helpparse.py - usage lines of the programs' help, as token lists, for
the man page and completion tests."""
import re
import subprocess


def run(*argv):
    """stdout of argv; raises with its stderr if it fails."""
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def tokens(line):
    """A usage form as tokens: no Markdown, brackets and bars apart."""
    line = line.replace("`", "").replace("*", "").replace("…", "...")
    line = re.sub(r"^(Usage:|where)\s", " ", line.strip())
    return re.sub(r"([\[\]{}|])", r" \1 ", line).split()


def strip_global(t):
    """Drop ftctl's global options ([-j] [-s] [-p]) after the program."""
    while len(t) >= 4 and t[0] == "ftctl" and t[1] == "[" and t[3] == "]" \
            and re.fullmatch(r"-[jsp]", t[2]):
        del t[1:4]
    return t


def forms(lines, prog):
    """Join continuation lines into forms: a form starts with the program
    name or is a definition "WORD := ..."."""
    out = []
    for line in lines:
        t = tokens(line)
        if not t:
            continue
        if t[0] == prog or (len(t) > 1 and t[1] == ":=") or not out:
            out.append(t)
        else:
            out[-1] += t
    return [" ".join(strip_global(t)) for t in out]


def help_forms(text, prog):
    """The usage forms of a help text: from "Usage:" to the first line
    that is neither indented nor "where ..."."""
    lines, on = [], False
    for line in text.splitlines():
        if line.startswith("Usage:"):
            on = True
        elif on and not (line.startswith(" ") or line.startswith("where ")):
            break
        if on:
            lines.append(line)
    return forms(lines, prog)


def ftctl_commands(t, obj):
    """The commands of a form of `ftctl OBJ` (tokens): the word after the
    object, or each alternative of a { ... | ... } group there, with the
    tokens of the form that belong to it."""
    if len(t) < 3 or t[1] != obj:
        return []
    if t[2] != "{":
        if re.fullmatch(r"[a-z][a-z-]*", t[2]):
            return [(t[2], t[3:])]
        return [(None, t[2:])]
    alts, cur, depth, end = [], [], 0, len(t)
    for i in range(2, len(t)):
        w = t[i]
        depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(w, 0)
        if depth == 1 and w == "|":
            alts.append(cur)
            cur = []
        elif depth >= 1 and not (depth == 1 and w == "{"):
            cur.append(w)
        if depth == 0:
            end = i + 1
            break
    alts.append(cur)
    if not all(a and re.fullmatch(r"[a-z][a-z-]*", a[0]) for a in alts):
        return [(None, t[2:])]
    return [(a[0], a[1:] + t[end:]) for a in alts]
