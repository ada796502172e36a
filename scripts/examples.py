#!/usr/bin/env python3
"""The command-output examples of README.md and doc/, made from real runs.

    scripts/examples.sh [--update] [--build DIR]

Every example in the docs is marked, in Markdown by a line
`<!-- example: NAME -->` right above its fenced block, in roff by a line
`.\\" example: NAME` right above its .nf or .EX.  This script runs the
commands of each example against the real fmx, fixtures and drivers of a
build, normalizes what differs from run to run, and then either checks the
docs (the default: a diff and exit status 1 on any drift) or rewrites the
marked blocks (--update).  Exit status 77: the machine refuses what the
runs need (no ASLR switch, cores written elsewhere), with the reason.

What is normalized, and why:
- Addresses are not: every program runs under `setarch -R` (no address
  randomization), so an address is the same in every run of one build.
  The check does not compare them (ADDRESS): they move with the build's
  paths and compiler and with any change to the code.
- Process and thread ids become a fixed base per example plus the rank of
  the id's first appearance in the output; lock words are rewritten to
  hold the new id.
- Waited times become the example's first value, then (where later
  commands see longer waits) a third of a second more for each later
  distinct value.  CPU times, context switches and the state of a waiting
  thread (R in the moment it wakes to look at the mutex again), which
  depend on the scheduler, become 0.000s, 2 and S.
- The source and build folders become `.` and `build`, temporary folders
  the names the example shows.
- Where the order of lines is a race (which thread of a deadlock runs the
  check first), the lines are sorted.
- Measurements (the contention profile's counts and times, the outcome of
  the race driver) are not
  normalized: the docs keep the numbers of the run that wrote them, and
  the check leaves them out (MEASURED).
"""
import argparse
import difflib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "doc/fmx.1", "doc/fast_mutex.3", "doc/wdk.md"]
MD_MARK = re.compile(r"^<!-- example: ([\w.-]+) -->$")
ROFF_MARK = re.compile(r'^\.\\" example: ([\w.-]+)$')
SKIP = 77


class Skip(Exception):
    """The machine refuses something a run needs; the message says what."""


class Failed(Exception):
    """A run did not do what its example needs; the message says what."""


# ---- the marked blocks of the docs ----

def find_blocks(path):
    """Returns (lines, [(name, first, end)]): the content of each marked
    block is lines[first:end], between its opening and closing lines."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    for i, line in enumerate(lines):
        m = MD_MARK.match(line) or ROFF_MARK.match(line)
        if not m:
            continue
        md = line.startswith("<!--")
        opening = lines[i + 1] if i + 1 < len(lines) else ""
        if md and not opening.startswith("```") or not md and opening not in (".nf", ".EX"):
            raise Failed(f"{path}:{i + 1}: example {m.group(1)} is not followed by a block")
        closing = ("```",) if md else (".fi", ".EE")
        end = i + 2
        while end < len(lines) and lines[end] not in closing:
            end += 1
        if end == len(lines):
            raise Failed(f"{path}:{i + 1}: example {m.group(1)}'s block never ends")
        blocks.append((m.group(1), i + 2, end))
    return lines, blocks


def roff_escape(line):
    """A line of output as roff shows it literally in .nf or .EX."""
    line = line.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + line if line.startswith((".", "'")) else line


def render(path, text):
    lines = text.split("\n")
    return [roff_escape(l) for l in lines] if not path.endswith(".md") else lines


# ---- running programs ----

def no_aslr(argv):
    """argv run with address randomization off, so addresses repeat."""
    return ["setarch", "-R"] + argv


def child_env(extra=None):
    env = dict(os.environ)
    # Symbols come from the local debug files only, never the network.
    env.pop("DEBUGINFOD_URLS", None)
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


def with_cores():
    """In the child only: let it dump core, with the usual stack size (the
    stack limit places the mmap area, and so the libraries' addresses)."""
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, resource.RLIM_INFINITY))


def run(argv, cwd, env=None, timeout=60, stdout=True):
    """Runs argv to its end; returns (status, its standard output and error
    in the order written).  stdout=False drops standard output, for a
    program whose two streams are written by racing threads."""
    p = subprocess.run(argv, cwd=cwd, env=child_env(env),
                       stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                       stderr=subprocess.STDOUT if stdout else subprocess.PIPE,
                       text=True, timeout=timeout, preexec_fn=with_cores)
    return p.returncode, (p.stdout if stdout else p.stderr).rstrip("\n")


class Background:
    """A program left running while other commands look at it."""

    def __init__(self, argv, cwd, env=None):
        self.out = os.path.join(cwd, f"bg{time.monotonic_ns()}.out")
        with open(self.out, "w") as f:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=child_env(env), stdout=f,
                                         stderr=subprocess.STDOUT, preexec_fn=with_cores)

    def text(self):
        with open(self.out) as f:
            return f.read().rstrip("\n")

    def wait_for(self, pattern, seconds=30):
        """Polls its output until pattern matches; returns the match."""
        for _ in range(int(seconds * 20)):
            m = re.search(pattern, self.text(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise Failed(f"no '{pattern}' from {self.proc.args}: {self.text()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def poll(what, check, seconds=30):
    """Calls check() until it returns something true, which it returns."""
    for _ in range(int(seconds * 10)):
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise Failed(f"timed out waiting for {what}")


# ---- normalizing a run's output ----

ID_CONTEXTS = [
    r"\bpid[ =](\d+)", r"\btid (\d+)", r"\b[Tt]hread (\d+)", r"\bprocess (\d+)",
    r"\b[a-z_]+=(\d+)\b", r"\bcore\.(\d+)\b", r"\bfmx (?:waiters|mutex|thread|stat) (\d+)",
    r"\bfmx thread (?:--core \S+ )?\d+ (\d+)", r"\bfmx thread --core \S+ (\d+)",
    r"\bgcore -o \S+ (\d+)", r"\bfmx thread (\d+)\b",
    # "28308 (FileCreation)", but not a count, "4 (held, 1 waiter)", a
    # line, "demo.c:293 (in wait_until_created, inlined)", or a constant,
    # "0 (PASSIVE_LEVEL)".
    r"(?<![:.\w])(\d+) \((?!held|free|in |\d|[A-Z_]+\))[^)]*\)",
]
TABLE_HEAD = re.compile(r"^Process +PID +Thread +TID ")
WAITED = re.compile(r"\b(\d+)s\.(\d{3})\b")
CPU_TIME = re.compile(r"\b\d+\.\d{3}s\b")
LOCK_WORD = re.compile(r"lock word 0x([0-9a-f]{8})")
OWNER_MASK = 0x003FFFFF  # FAST_MUTEX_OWNER_MASK of include/fastmutex.h


class Normalizer:
    """Turns the raw output of one example's runs into what the docs show.
    All of an example's output is learned first, then normalized, so that
    an id or a waited time reads the same in every command of it."""

    def __init__(self, id_base, first_waited_ms, waited_step_ms, paths):
        self.id_base = id_base
        self.first_waited_ms = first_waited_ms
        self.waited_step_ms = waited_step_ms
        self.paths = sorted(paths.items(), key=lambda kv: -len(kv[0]))
        self.ids = {}
        self.waited = {}

    def learn(self, text):
        found = set()
        for pattern in ID_CONTEXTS:
            found.update(int(m) for m in re.findall(pattern, text))
        for row in table_rows(text):
            found.update(int(c) for c in (row[1], row[3]) if c.isdigit())
        # In the order they first appear: the kernel's numbers wrap around.
        first = {i: re.search(rf"(?<!\w){i}(?!\w)", text).start() for i in found if i > 1}
        for raw in sorted(first, key=first.get):
            self.ids.setdefault(raw, self.id_base + len(self.ids))

    def _waited(self, m):
        raw = m.group(0)
        if raw not in self.waited:
            ms = self.first_waited_ms + self.waited_step_ms * len(self.waited)
            self.waited[raw] = f"{ms // 1000}s.{ms % 1000:03d}"
        return self.waited[raw]

    def _lock_word(self, m):
        word = int(m.group(1), 16)
        owner = self.ids.get(word & OWNER_MASK, word & OWNER_MASK)
        return f"lock word 0x{(word & ~OWNER_MASK) | owner:08x}"

    def _id(self, m):
        canonical = self.ids.get(int(m.group(0)))
        return m.group(0) if canonical is None else str(canonical)

    def line(self, text):
        for raw, shown in self.paths:
            text = text.replace(raw, shown)
        text = LOCK_WORD.sub(self._lock_word, text)
        text = re.sub(r"(?<![\w])\d+(?![\w])", self._id, text)
        text = WAITED.sub(self._waited, text)
        text = CPU_TIME.sub("0.000s", text)
        text = re.sub(r"State:        R \(running\)", "State:        S (sleeping)", text)
        return re.sub(r"\b\d+ context switches", "2 context switches", text)

    def text(self, text):
        lines = text.split("\n")
        out, i = [], 0
        while i < len(lines):
            if TABLE_HEAD.match(lines[i]):
                end = i + 1
                while end < len(lines) and len(split_row(lines[i], lines[end])) > 1:
                    end += 1
                out += self.table(lines[i], lines[i + 1:end])
                i = end
            else:
                out.append(self.line(lines[i]))
                i += 1
        return "\n".join(sort_cycles(out))

    def table(self, head, rows):
        """A waiters table with its cells normalized, rows in thread id
        order (the registry's order is the order the threads came to wait),
        and its columns aligned again."""
        cells = [split_row(head, head)]
        body = [[self.line(c) for c in split_row(head, r)] for r in rows]
        for row in body:
            row[4] = "2" if row[4].isdigit() else row[4]
            row[7] = "S" if row[7] == "R" else row[7]
        cells += sorted(body, key=lambda r: (int(r[1]), int(r[3])))
        widths = [max(len(r[k]) for r in cells) for k in range(len(cells[0]))]
        return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]


def split_row(head, row):
    """The cells of a table row, cut where the header's columns start."""
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", head)]
    if len(row) < starts[-1] or any(row[s - 1] != " " for s in starts[1:]):
        return [row]
    bounds = starts + [len(row)]
    return [row[bounds[k]:bounds[k + 1]].strip() for k in range(len(starts))]


def table_rows(text):
    lines, rows = text.split("\n"), []
    for i, line in enumerate(lines):
        if TABLE_HEAD.match(line):
            for row in lines[i + 1:]:
                cells = split_row(line, row)
                if len(cells) == 1:
                    break
                rows.append(cells)
    return rows


def sort_cycles(lines):
    """A deadlock report starts at the thread whose check found the cycle,
    which is a race: its entries (a "thread" line and the lines below it)
    are put in order, as is the list of a "Deadlock:" line."""
    out, i = [], 0
    while i < len(lines):
        out.append(lines[i])
        i += 1
        if not lines[i - 1].startswith("fastmutex: deadlock detected"):
            continue
        entries = []
        while i < len(lines) and lines[i].startswith("  thread "):
            entry = [lines[i]]
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                entry.append(lines[i])
                i += 1
            entries.append(entry)
        out += [l for e in sorted(entries, key=by_name) for l in e]
    return [sort_deadlock_line(l) for l in out]


def by_name(entry):
    """Sorts lines by their words, whatever the ids in them."""
    text = entry if isinstance(entry, str) else entry[0]
    return re.sub(r"\d+", "", text)


def sort_deadlock_line(line):
    m = re.match(r"^(Deadlock: .* through )(.*)(\.)$", line)
    if not m:
        return line
    return m.group(1) + ", ".join(sorted(m.group(2).split(", "), key=by_name)) + m.group(3)


# ---- one example's runs ----

class Session:
    """The runs behind one or more examples: a scratch folder shown as
    /tmp, a transcript per example name, and the normalizer they share."""

    def __init__(self, build, id_base, first_waited_ms, waited_step_ms=333):
        self.build = build
        self.work = tempfile.mkdtemp(prefix="fmx-examples-")
        self.norm = Normalizer(id_base, first_waited_ms, waited_step_ms, {
            build: "build", ROOT + "/": "", self.work + "/": "/tmp/", self.work: "/tmp"})
        self.transcripts = {}
        self.backgrounds = []

    def bin(self, relative):
        return os.path.join(self.build, relative)

    def add(self, names, *lines):
        for name in names.split():
            self.transcripts.setdefault(name, []).extend(lines)

    def shell(self, names, shown, argv, env=None, status=0, stdout=True):
        """Runs argv, shows it as `$ shown` and its output under names."""
        rc, out = run(argv, self.work, env, stdout=stdout)
        if rc != status and "ptrace not permitted" in out:
            raise Skip(f"{shown}: this user may not trace the demo (ptrace_scope, no CAP_SYS_PTRACE)")
        if status is not None and rc != status:
            raise Failed(f"{shown}: exit status {rc}, not {status}:\n{out}")
        self.add(names, f"$ {shown}", *([out] if out else []))
        return out

    def background(self, argv, env=None):
        bg = Background(argv, self.work, env)
        self.backgrounds.append(bg)
        return bg

    def finish(self):
        for bg in self.backgrounds:
            bg.stop()
        # Cycles in order first, so that ids are numbered the same in every run.
        texts = {name: "\n".join(sort_cycles("\n".join(lines).split("\n")))
                 for name, lines in self.transcripts.items()}
        for text in texts.values():
            self.norm.learn(text)
        result = {name: demo_folder(self.norm.text(text)) for name, text in texts.items()}
        shutil.rmtree(self.work, ignore_errors=True)
        return result


def demo_folder(text):
    """fmx demo's folder has a random name (mkdtemp): one that looks alike."""
    return re.sub(r"\bfmx-demo-[A-Za-z0-9]{6}\b", "fmx-demo-q3Lr8Z", text)


def waiting_row(s, pid, thread):
    """The `fmx waiters PID` row of thread, once it waits (else None)."""
    rc, out = run([s.bin("tools/fmx/fmx"), "waiters", pid], s.work)
    rows = [r for r in table_rows(out) if r[2] == thread] if rc == 0 else []
    return rows[0] if rows else None


def demo_holding(s, names, shown_comment=""):
    """Starts `fmx demo fixed --hold 30000` and waits until FileMove waits
    for the held FastMutex; returns (pid, creation tid, FileMove's row)."""
    # --first creation: FileCreation takes its thread record (the KTHREAD
    # pointer `Owner` shows) before FileMove can, so that the pointer is the
    # same in every run.
    bg = s.background(no_aslr([s.bin("tools/fmx/fmx"), "demo", "fixed", "--first", "creation",
                               "--hold", "30000"]),
                      env={"TMPDIR": s.work})
    m = bg.wait_for(r"FileCreation \(tid (\d+)\) holds .* fmx waiters (\d+)$")
    row = poll("FileMove to wait", lambda: waiting_row(s, m.group(2), "FileMove"))
    s.add(names, "$ fmx demo fixed --first creation --hold 30000 &" + shown_comment, bg.text())
    return m.group(2), m.group(1), row


def gen_live(build):
    """README's and fmx(1)'s session on a running demo."""
    s = Session(build, 23523, 1204)
    fmx = s.bin("tools/fmx/fmx")
    pid, _, row = demo_holding(s, "live", "      # FileCreation holds the mutex 30 s")
    tid, mutex = row[3], row[9].split()[0]
    time.sleep(1)
    s.shell("live", f"fmx waiters {pid}                       # like WinDbg's !WrFastMutex",
            [fmx, "waiters", pid])
    s.shell("live", f"fmx mutex {pid} {mutex}    # like dt nt!_FAST_MUTEX", [fmx, "mutex", pid, mutex])
    s.shell("live", f"fmx thread {pid} {tid}            # like !mex.t: the wait, the stack",
            [fmx, "thread", pid, tid])
    return s.finish()


def gdb_session(s, names, exe, core, commands):
    """gdb on a core with the extension sourced, shown as typed."""
    script = s.bin("tools/gdb/fastmutex-gdb.py")
    argv = ["gdb", "-q", "-nx", "-batch", exe, core, "-ex", f"source {script}"]
    for c in commands:
        argv += ["-ex", f"echo @@@ {c}\\n", "-ex", c]
    rc, out = run(argv, s.work)
    if rc != 0 or "@@@" not in out:
        raise Failed(f"gdb failed ({rc}):\n{out}")
    s.add(names, f"$ gdb -q {exe} {core}", f"(gdb) source {script}")
    for chunk in out.split("@@@ ")[1:]:
        command, _, rest = chunk.partition("\n")
        kept = [l for l in rest.rstrip("\n").split("\n") if not l.startswith("[New LWP")]
        s.add(names, f"(gdb) {command}", *kept)


def gen_core(build):
    """A gcore of the demo while FileMove waits: fmx --core and gdb."""
    s = Session(build, 28302, 2492)
    fmx = s.bin("tools/fmx/fmx")
    pid, creation, row = demo_holding(s, "core")
    waiter, core = row[3], f"fmx.core.{pid}"
    time.sleep(1)
    rc, out = run(["gcore", "-o", "fmx.core", pid], s.work)
    if rc != 0 or not os.path.exists(os.path.join(s.work, core)):
        raise Failed(f"gcore failed: {out}")
    s.add("core", f"$ gcore -o fmx.core {pid}")
    s.shell("core", f"fmx waiters --core {core}                 # like !WrFastMutex",
            [fmx, "waiters", "--core", core])
    s.shell("core", f"fmx mutex --core {core} FastMutex         # like dt nt!_FAST_MUTEX",
            [fmx, "mutex", "--core", core, "FastMutex"])
    s.shell("core", f"fmx thread --core {core} {waiter}            # like !mex.t",
            [fmx, "thread", "--core", core, waiter])
    s.shell("core", f"fmx thread --core {core} {creation}            # the owner: what it holds",
            [fmx, "thread", "--core", core, creation])
    gdb_session(s, "gdb-core", fmx, core,
                ["p FastMutex", "fmx waiters", "fmx mutex FastMutex", f"fmx thread {waiter}"])
    return s.finish()


def abort_core(s):
    """Runs diag_fixture into a deadlock with FASTMUTEX_ON_DEADLOCK=abort;
    returns the core's name."""
    pattern = open("/proc/sys/kernel/core_pattern").read().strip()
    if pattern.startswith("|") or "/" in pattern:
        raise Skip(f"core_pattern is '{pattern}': the kernel writes no core here")
    fixture = s.bin("tests/diag/diag_fixture")
    env = {"FASTMUTEX_DEADLOCK_MS": "200", "FASTMUTEX_ON_DEADLOCK": "abort"}
    s.add("abort", "$ ulimit -c unlimited")
    s.shell("abort", f"FASTMUTEX_DEADLOCK_MS=200 FASTMUTEX_ON_DEADLOCK=abort {fixture} deadlock",
            no_aslr([fixture, "deadlock"]), env=env, status=-signal.SIGABRT)
    cores = [f for f in os.listdir(s.work) if f == "core" or f.startswith("core.")]
    if not cores:
        raise Skip(f"core_pattern is '{pattern}', yet the kernel wrote no core")
    os.rename(os.path.join(s.work, cores[0]), os.path.join(s.work, "core"))
    s.add("abort", "Aborted (core dumped)")
    return "core"


def gen_abort(build):
    """The deadlock report, the core it leaves, and gdb's printer on it."""
    # Both threads wait until the abort, a few ms apart: one waited time.
    s = Session(build, 18222, 200, 0)
    core = abort_core(s)
    s.shell("abort", f"fmx waiters --core {core}", [s.bin("tools/fmx/fmx"), "waiters", "--core", core])
    gdb_session(s, "gdb-print", s.bin("tests/diag/diag_fixture"), core, ["p lock_a"])
    return s.finish()


def gen_verify(build):
    """FASTMUTEX_VERIFY=order on examples/lock_order.c."""
    s = Session(build, 3411, 0)
    program = s.bin("examples/lock_order")
    s.shell("verify", f"FASTMUTEX_VERIFY=order {program}", no_aslr([program]),
            env={"FASTMUTEX_VERIFY": "order"})
    return s.finish()


def gen_settings(build):
    """The line a FASTMUTEX_* value that does not parse gets (the verifier
    makes the library read its settings at once)."""
    s = Session(build, 4000, 0)
    program = s.bin("examples/lock_order")
    out = run([program], s.work, env={"FASTMUTEX_DEADLOCK_MS": " 200", "FASTMUTEX_VERIFY": "order"})[1]
    s.add("settings", *[l for l in out.split("\n") if l.startswith("fastmutex: ignoring")])
    return s.finish()


def gen_drivers(build):
    """fmx driver on the example driver and on the tests' drivers."""
    s = Session(build, 20335, 1767)
    fmx = s.bin("tools/fmx/fmx")
    root = os.path.join(s.work, "wdkdemo")
    os.mkdir(root)
    race = s.bin("examples/driver/filemove_race.so")
    s.shell("driver-race", f"fmx driver {race} --root /tmp/wdkdemo",
            no_aslr([fmx, "driver", race, "--root", root]))
    fixed = s.bin("examples/driver/filemove_fixed.so")
    s.shell("driver-fixed", f"fmx driver {fixed} --root /tmp/wdkdemo",
            no_aslr([fmx, "driver", fixed, "--root", root]))
    # The report comes from a driver thread while fmx prints its progress:
    # only the report, whose place among those lines is a race.
    apc = s.bin("examples/driver/filemove_apc.so")
    s.shell("driver-apc", f"fmx driver {apc} --root /tmp/wdkdemo >/dev/null",
            no_aslr([fmx, "driver", apc, "--root", root]), status=None, stdout=False)
    holder = s.bin("tests/wdk/testdrv_holder.so")
    bg = s.background(no_aslr([fmx, "driver", holder, "--root", root]))
    bg.wait_for(r"HolderThread: holding")
    pid = bg.wait_for(r"^driver: .*\(pid (\d+)\)$").group(1)
    poll("WaiterThread to wait", lambda: waiting_row(s, pid, "WaiterThread"))
    time.sleep(1)
    s.shell("driver-waiters", f"fmx waiters {pid}", [fmx, "waiters", pid])
    deadlock = s.bin("tests/wdk/testdrv_deadlock.so")
    s.shell("driver-deadlock",
            f"FASTMUTEX_DEADLOCK_MS=200 fmx driver {deadlock} --root /tmp/wdkdemo --timeout 2",
            no_aslr([fmx, "driver", deadlock, "--root", root, "--timeout", "2"]),
            env={"FASTMUTEX_DEADLOCK_MS": "200"}, status=1)
    return s.finish()


def gen_misuse(build):
    """The report of a recursive acquire, from examples/add_order.c."""
    s = Session(build, 26014, 0)
    program = s.bin("examples/add_order")
    out = run(no_aslr([program]), s.work)[1]
    s.add("misuse", *[l for l in out.split("\n") if l.startswith(("fastmutex:", "  "))])
    return s.finish()


def gen_stats(build):
    """The contention profile of a run of the demo."""
    s = Session(build, 13041, 0)
    fmx = s.bin("tools/fmx/fmx")
    profile = os.path.join(s.work, "prof.txt")
    s.shell("stats", "FASTMUTEX_STATS=/tmp/prof.txt fmx demo fixed >/dev/null",
            no_aslr([fmx, "demo", "fixed"]), env={"FASTMUTEX_STATS": profile, "TMPDIR": s.work},
            stdout=False)
    with open(profile) as f:
        s.add("stats", "$ cat /tmp/prof.txt", f.read().rstrip("\n"))
    return s.finish()


def gen_stat_live(build):
    """fmx stat on a running demo, on a process without a profile, and the
    line for a profile file that cannot be written."""
    s = Session(build, 9862, 0)
    fmx = s.bin("tools/fmx/fmx")
    bg = s.background(no_aslr([fmx, "demo", "fixed", "--files", "20000"]),
                      env={"FASTMUTEX_STATS": "on", "TMPDIR": s.work})
    pid = bg.wait_for(r"held for each file \(pid (\d+)\)").group(1)
    poll("both threads to have taken the mutex",
         lambda: run([fmx, "stat", pid], s.work)[1].count(" demo.c:") >= 2)
    s.add("stat-live", "$ FASTMUTEX_STATS=on fmx demo fixed --files 20000 &")
    s.shell("stat-live", f"fmx stat {pid}    # the demo's threads run in this child",
            [fmx, "stat", pid])
    bg.stop()
    plain = s.background(no_aslr([fmx, "demo", "fixed", "--first", "creation", "--hold", "30000"]),
                         env={"TMPDIR": s.work})
    pid = plain.wait_for(r"fmx waiters (\d+)$").group(1)
    s.add("stat-none-line", s.shell("stat-none", f"fmx stat {pid}", [fmx, "stat", pid], status=1))
    out = run([fmx, "demo", "fixed", "--files", "10"], s.work,
              env={"FASTMUTEX_STATS": "/nonexistent-dir/profile.txt", "TMPDIR": s.work})[1]
    s.add("stats-bad-file", *[l for l in out.split("\n") if l.startswith("fastmutex: ignoring")])
    return s.finish()


def gen_driver_holds(build):
    """What a system thread holds, with the verifier on, though it waits
    for nothing: the example driver built to keep its mutex 4 s."""
    s = Session(build, 21442, 1111)
    fmx = s.bin("tools/fmx/fmx")
    root = os.path.join(s.work, "wdkdemo")
    os.mkdir(root)
    driver = s.bin("tests/wdk/testdrv_filemove_hold.so")
    bg = s.background(no_aslr([fmx, "driver", driver, "--root", root]),
                      env={"FASTMUTEX_VERIFY": "order"})
    pid = bg.wait_for(r"^driver: .*\(pid (\d+)\)$").group(1)
    row = poll("FileMoveThread to wait", lambda: waiting_row(s, pid, "FileMoveThread"))
    s.add("driver-holds", "$ FASTMUTEX_VERIFY=order fmx driver "
          "build/tests/wdk/testdrv_filemove_hold.so --root /tmp/wdkdemo &")
    s.shell("driver-holds", f"fmx waiters {pid}", [fmx, "waiters", pid])
    holder = re.search(r"(\d+) \(FileCreationThread\)", row[10]).group(1)
    s.shell("driver-holds", f"fmx thread {pid} {holder}", [fmx, "thread", pid, holder])
    return s.finish()


GENERATORS = [gen_live, gen_core, gen_abort, gen_verify, gen_settings, gen_misuse, gen_stats,
              gen_drivers, gen_stat_live, gen_driver_holds]


# ---- checking and updating the docs ----

# Numbers that are measurements, not normalized but left out of the check:
# the docs keep those of the run that wrote them.  The profile's counts
# and times depend on how the threads were scheduled.
MEASURED = {
    "stats": re.compile(r"^ +\d+ +\d+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+(?=  (?:FAST_MUTEX )?0x)", re.M),
    "stat-live": re.compile(r"^ +\d+ +\d+ +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+(?=  (?:FAST_MUTEX )?0x)", re.M),
    # Without a lock, how many files the mover finds is the race's outcome.
    "driver-race": re.compile(r"(?<=^FileMoveThread: ).*", re.M),
}


def unmeasured(name, lines):
    """lines with the example's measured numbers masked, for comparing;
    their rows in order, since the measurements order them."""
    pattern = MEASURED.get(name)
    if pattern is None:
        return lines
    return sorted(pattern.sub("<measured>", "\n".join(lines)).split("\n"))

# Addresses are kept as a run printed them, but not compared: where code
# and data land depends on the whole build (its paths, the compiler's
# version, every change anywhere in the library), while what the examples
# promise (names, states, counts, call sites by file and line) does not.
ADDRESS = re.compile(r"0x[0-9a-f]{8,16}\b")


# Lines that a run may or may not print, left out of the check: whether the
# example driver's FileCreationThread had to wait for the mutex before it
# took it (and so has a last wait to show) is a race with FileMoveThread.
RACY = {
    "driver-holds": re.compile(r"^  Last waited for and got: "),
}


def comparable(name, lines):
    racy = RACY.get(name)
    return [ADDRESS.sub("0x<address>", line) for line in unmeasured(name, lines)
            if racy is None or not racy.match(line)]


def generate(build, wanted):
    examples = {}
    for gen in GENERATORS:
        examples.update(gen(build))
    missing = sorted(wanted - set(examples))
    if missing:
        raise Failed(f"the docs mark examples no run makes: {', '.join(missing)}")
    return examples


def apply(examples, update):
    """Checks (or rewrites) every marked block; returns the number that
    drifted from the run."""
    drifted = 0
    for doc in DOCS:
        path = os.path.join(ROOT, doc)
        if not os.path.exists(path):
            continue
        lines, blocks = find_blocks(path)
        for name, first, end in reversed(blocks):
            fresh = render(doc, examples[name])
            # --update writes what the run printed; the check ignores what
            # may differ between runs (measurements, racy lines, addresses).
            same = lines[first:end] == fresh if update else \
                comparable(name, lines[first:end]) == comparable(name, fresh)
            if same:
                continue
            drifted += 1
            if not update:
                sys.stdout.writelines(difflib.unified_diff(
                    [l + "\n" for l in lines[first:end]], [l + "\n" for l in fresh],
                    f"{doc} (example {name})", f"a run (example {name})"))
            lines[first:end] = fresh
        if update:
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
    return drifted


def main():
    ap = argparse.ArgumentParser(description="Check (or --update) the docs' examples from real runs.")
    ap.add_argument("--update", action="store_true", help="rewrite the marked blocks")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="the build folder")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    try:
        if subprocess.run(no_aslr(["true"]), stderr=subprocess.DEVNULL).returncode != 0:
            raise Skip("setarch -R fails: address randomization cannot be switched off here")
        wanted = {n for doc in DOCS if os.path.exists(os.path.join(ROOT, doc))
                  for n, _, _ in find_blocks(os.path.join(ROOT, doc))[1]}
        drifted = apply(generate(build, wanted), args.update)
    except Skip as e:
        print(f"examples: skipped: {e}")
        return SKIP
    except (Failed, OSError, subprocess.SubprocessError) as e:
        print(f"examples: {e}", file=sys.stderr)
        return 1
    if drifted and not args.update:
        print(f"examples: {drifted} example(s) differ from a run; "
              "scripts/examples.sh --update rewrites them", file=sys.stderr)
        return 1
    print(f"examples: {'rewrote' if args.update else 'checked'} the docs' examples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
