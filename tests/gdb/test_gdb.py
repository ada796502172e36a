#!/usr/bin/env python3
"""Tests of the gdb extension (tools/gdb), one case per ctest test.

Each case drives `gdb -batch` against gdb_fixture, stopped at a marker
comment of gdb_fixture.c (as glibc's test-mutex-printers does) or read
from a core file, and checks what the printers and the fmx commands show
against what the fixture knows: its threads' ids, its mutexes' addresses,
names and fields, the source lines of its waits and how long it let them
wait.  Exit 0 pass, 1 fail, 77 skip (with the reason printed).

Usage: test_gdb.py CASE --gdb GDB --gcore GCORE --script fastmutex-gdb.py
       --fixture F --static-fixture F --source gdb_fixture.c --build DIR --project DIR
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HOLD_WAIT_S = 1.2  # gdb_fixture's HOLD_WAIT_MS
TIMEOUT = 120


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(condition, what, output=None):
    if not condition:
        raise Failure(what + ("\n--- output ---\n" + output if output is not None else ""))


def marker_line(source, marker):
    with open(source) as f:
        for number, text in enumerate(f, 1):
            if "/* %s */" % marker in text:
                return number
    raise Failure("no marker %s in %s" % (marker, source))


def seconds(waited):
    """Seconds of a waited time as fmx shows it ("3s.222")."""
    match = re.fullmatch(r"(\d+)s\.(\d{3})", waited)
    check(match is not None, "not a waited time: %r" % waited)
    return int(match.group(1)) + int(match.group(2)) / 1000


class Run:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="fastmutex-gdb-")

    def gdb(self, program, commands, core=None, source=True, before=(), run_args=None,
            breakpoint=None):
        """Runs gdb in batch mode on `program` (and `core`), optionally
        running it with `run_args` to the marker `breakpoint` first, then
        `commands`; returns stdout and stderr together."""
        argv = [self.args.gdb, "-nx", "-batch", "-iex", "set debuginfod enabled off"]
        for command in before:
            argv += ["-iex", command]
        if source:
            argv += ["-ex", "source " + self.args.script]
        if breakpoint is not None:
            line = marker_line(self.args.source, breakpoint)
            argv += ["-ex", "break gdb_fixture.c:%d" % line, "-ex", "run"]
        for command in commands:
            argv += ["-ex", command]
        if run_args is not None:
            argv += ["--args", program] + run_args
        else:
            argv += [program] + ([core] if core else [])
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT, cwd=self.work)
        out = done.stdout.decode("utf-8", "replace")
        if breakpoint is not None and "hit Breakpoint" not in out \
                and re.search(r"ptrace: Operation not permitted|Could not trace the inferior", out):
            raise Skip("gdb may not trace processes here (ptrace refused)")
        return out

    def live_hold(self, commands, program=None, **kw):
        out = self.gdb(program or self.args.fixture, commands, run_args=["hold"],
                       breakpoint="FMX-BREAK-READY", **kw)
        return out, ready_values(out)

    def hold_core(self):
        """A core of gdb_fixture hold made with gcore, and the fixture's
        ready values, and the bounds on the waits it holds."""
        fixture = subprocess.Popen([self.args.fixture, "hold"], stdout=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, cwd=self.work)
        try:
            line = fixture.stdout.readline().decode()
            ready_at = time.monotonic()
            values = ready_values(line)
            check("pid" in values, "the fixture did not get ready", line)
            time.sleep(1.0)
            prefix = os.path.join(self.work, "core")
            done = subprocess.run([self.args.gcore, "-o", prefix, str(values["pid"])],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=TIMEOUT)
            dumped_by = time.monotonic()
        finally:
            fixture.kill()
            fixture.wait()
        core = "%s.%d" % (prefix, values["pid"])
        check(done.returncode == 0 and os.path.exists(core), "gcore failed",
              done.stdout.decode("utf-8", "replace"))
        # The waiters had waited HOLD_WAIT_S when the fixture got ready, and
        # the core was taken 1 s later at least.  Above, the slack is for
        # how long a loaded machine may keep a waiter between the start of
        # its wait and its sleep, which the fixture's HOLD_WAIT_S counts
        # from.
        bounds = (HOLD_WAIT_S + 1.0, HOLD_WAIT_S + (dumped_by - ready_at) + 5.0)
        return core, values, bounds


def ready_values(text):
    match = re.search(r"^ready (.*)$", text, re.M)
    values = {}
    if match:
        for item in match.group(1).split():
            key, value = item.split("=", 1)
            values[key] = int(value, 0)
    return values


def no_traceback(out):
    for bad in ("Traceback", "Python Exception", "Error occurred in Python"):
        check(bad not in out, "a Python error reached the user (%s)" % bad, out)


# ---------------------------------------------------------------------------
# What the views must show for gdb_fixture hold.

def check_fast_mutex_printer(out, v):
    held = re.search(r"= fast_mutex_t = \{State = held, WAITERS, Owner = (\d+) \(GdbOwner\), "
                     r"Contention = 1, Name = GdbHeld, Waiters = 1, \[1\] = (\d+) \(GdbWaiter\) "
                     r"waited (\S+)\}", out)
    check(held is not None, "p held_mutex", out)
    check(int(held.group(1)) == v["owner"] and int(held.group(2)) == v["waiter"],
          "p held_mutex: owner/waiter ids", out)
    return seconds(held.group(3))


def check_free_printer(out):
    check("= fast_mutex_t = {State = free, Owner = none, Contention = 1, Name = GdbFree, "
          "Waiters = 0}" in out, "p free_mutex", out)


def check_wdm_printer(out, v):
    expected = [
        r"_FAST_MUTEX 0x%x \(GdbWdm\) <wdm_mutex>" % v["wdm"],
        r"   \+0x000 Count            : 0n4 \(held, 1 waiter\)",
        r"   \+0x008 Owner            : 0x[0-9a-f]{16} \(thread %d, GdbOwner\)" % v["owner"],
        r"   \+0x010 Contention       : 0n1",
        r"   \+0x018 Event            : fast_mutex_t, owner %d \(GdbOwner\), flags WAITERS, "
        r"1 waiter" % v["owner"],
        r"   \+0x030 OldIrql          : 0n1 \(APC_LEVEL\)",
    ]
    check(re.search("\n".join(expected), out) is not None, "p wdm_mutex (dt layout)", out)


def waiter_rows(out):
    """The rows of `fmx waiters`, as lists of cells, by thread name."""
    lines = out.splitlines()
    header = [i for i, l in enumerate(lines) if l.startswith("Process ")]
    check(len(header) == 1, "fmx waiters: one header line", out)
    check(lines[header[0]].split() == ["Process", "PID", "Thread", "TID", "CtxSw", "User",
                                       "Kernel", "State", "Waited", "Mutex", "Owner", "Site"],
          "fmx waiters: the CLI's columns", out)
    rows = {}
    for line in lines[header[0] + 1:]:
        if re.match(r"\d+ threads? waiting\.", line):
            break
        cells = re.split(r"  +", line.strip())
        rows[cells[2]] = cells
    return rows


def check_waiters(out, v, args, live):
    rows = waiter_rows(out)
    check(set(rows) == {"GdbWaiter", "GdbWdmWaiter"}, "fmx waiters: the two waiters", out)
    check("2 threads waiting." in out, "fmx waiters: the count", out)
    site_wait = marker_line(args.source, "FMX-SITE-WAIT")
    site_wdm = marker_line(args.source, "FMX-SITE-WDM")
    expect = {
        "GdbWaiter": (v["waiter"], "0x%x (GdbHeld) <held_mutex>" % v["held"], site_wait),
        "GdbWdmWaiter": (v["wdm_waiter"], "0x%x (GdbWdm) <wdm_mutex>" % v["wdm"], site_wdm),
    }
    waited = []
    for name, (tid, mutex, line) in expect.items():
        cells = rows[name]
        check(len(cells) == 12, "fmx waiters: 12 cells in %s's row" % name, out)
        check(cells[1] == str(v["pid"]) and cells[3] == str(tid), "fmx waiters: %s ids" % name, out)
        check(cells[9] == mutex, "fmx waiters: %s's mutex" % name, out)
        check(cells[10] == "%d (GdbOwner)" % v["owner"], "fmx waiters: %s's owner" % name, out)
        check(cells[11].endswith(" gdb_fixture.c:%d" % line), "fmx waiters: %s's site" % name, out)
        if live:
            check(cells[4].isdigit() and cells[7] == "t", "fmx waiters: %s's /proc figures" % name,
                  out)
        else:
            # A core keeps the threads' times (NT_PRSTATUS), not their
            # state or context switches.
            check(cells[4] == "-" and cells[7] == "-" and re.fullmatch(r"\d+\.\d{3}s", cells[5])
                  and re.fullmatch(r"\d+\.\d{3}s", cells[6]), "fmx waiters: a core's figures", out)
        waited.append(seconds(cells[8]))
    return waited


def check_mutex(out, v, args):
    wdm = (r"FAST_MUTEX 0x%x \(GdbWdm\) <wdm_mutex> in (?:core of )?process %d \(gdb_fixture\)\n"
           r"  Count:        4 \(held, 1 waiter\)\n" % (v["wdm"], v["pid"]))
    check(re.search(wdm, out), "fmx mutex wdm_mutex: title and Count", out)
    check(re.search(r"  Owner:        0x[0-9a-f]{16} \(thread %d, GdbOwner\)\n"
                    r"  Contention:   1\n  OldIrql:      1 \(APC_LEVEL\)\n"
                    r"  Event.Lock:   fast_mutex_t at 0x%x <wdm_mutex.Event.Lock>\n"
                    r"    Owner:        %d \(GdbOwner\)\n"
                    r"    Flags:        WAITERS \(lock word 0x[0-9a-f]{8}\)\n"
                    r"    Contention:   1\n  Waiters:      1\n"
                    r"    %d \(GdbWdmWaiter\)  waited \S+  from wdm_waiter_thread\+0x[0-9a-f]+ "
                    r"gdb_fixture.c:%d\n"
                    % (v["owner"], v["wdm"] + 0x18, v["owner"], v["wdm_waiter"],
                       marker_line(args.source, "FMX-SITE-WDM")), out) is not None,
          "fmx mutex wdm_mutex: fields and waiter", out)
    held = re.search(r"fast_mutex_t 0x%x \(GdbHeld\) <held_mutex> in (?:core of )?process %d "
                     r"\(gdb_fixture\)\n"
                     r"  Owner:        %d \(GdbOwner\)\n"
                     r"  Flags:        WAITERS \(lock word 0x[0-9a-f]{8}\)\n"
                     r"  Contention:   1\n  Waiters:      1\n"
                     r"    %d \(GdbWaiter\)  waited (\S+)  from \S+ gdb_fixture.c:%d\n"
                     % (v["held"], v["pid"], v["owner"], v["waiter"],
                        marker_line(args.source, "FMX-SITE-WAIT")), out)
    check(held is not None, "fmx mutex held_mutex", out)
    return seconds(held.group(1))


def check_thread(out, v, args):
    line = marker_line(args.source, "FMX-SITE-WAIT")
    wait = re.search(r"Thread %d \(GdbWaiter\) of (?:core of )?process %d \(gdb_fixture\)\n"
                     r"  State: .*\n"
                     r"  Waiting for:  fast_mutex_t 0x%x \(GdbHeld\) <held_mutex>\n"
                     r"  Owner:        %d \(GdbOwner\)\n"
                     r"  Waited:       (\S+)\n"
                     r"  Called from:  \S+ gdb_fixture.c:%d\n"
                     % (v["waiter"], v["pid"], v["held"], v["owner"], line), out)
    check(wait is not None, "fmx thread WAITER: the wait", out)
    # The stack, down to the acquire inlined into waiter_thread.
    frame = re.search(r"  #\d +0x[0-9a-f]{16}  waiter_thread\S*  \S*gdb_fixture.c:%d\n"
                      r"      inlined: fast_mutex_acquire  \S*fastmutex.h:\d+\n" % line, out)
    check(frame is not None, "fmx thread WAITER: the stack with the inlined acquire", out)
    return seconds(wait.group(1))


def check_waited(waited, low, high, what, out):
    for w in waited:
        check(low <= w <= high, "%s: waited %.3f s, not within [%.3f, %.3f]" % (what, w, low, high),
              out)


# ---------------------------------------------------------------------------
# The cases.

def case_printers(run):
    out, v = run.live_hold(["p held_mutex", "p free_mutex", "p wdm_mutex", "p *&held_mutex"])
    no_traceback(out)
    waited = check_fast_mutex_printer(out, v)
    check_free_printer(out)
    check_wdm_printer(out, v)
    check_waited([waited], HOLD_WAIT_S, 60, "p held_mutex", out)


def case_waiters(run):
    out, v = run.live_hold(["fmx waiters"])
    no_traceback(out)
    check_waited(check_waiters(out, v, run.args, live=True), HOLD_WAIT_S, 60, "fmx waiters", out)


def case_mutex(run):
    out, v = run.live_hold(["fmx mutex wdm_mutex", "fmx mutex &held_mutex",
                            "fmx mutex wdm_mutex.Event.Lock"])
    no_traceback(out)
    check("fast_mutex_t 0x%x (GdbWdm) <wdm_mutex.Event.Lock> in process %d (gdb_fixture)\n"
          "  (the Event.Lock of FAST_MUTEX 0x%x <wdm_mutex>: see fmx mutex *(FAST_MUTEX *)0x%x)\n"
          % (v["wdm"] + 0x18, v["pid"], v["wdm"], v["wdm"]) in out,
          "fmx mutex wdm_mutex.Event.Lock: the FAST_MUTEX around it", out)
    check_waited([check_mutex(out, v, run.args)], HOLD_WAIT_S, 60, "fmx mutex", out)


def case_thread(run):
    # The waiter's tid is known only once the fixture runs: name it through
    # the fixture's own variable.
    out, v = run.live_hold(["python gdb.execute('fmx thread %d' % "
                            "int(gdb.parse_and_eval('waiter_tid')))", "fmx thread",
                            "python gdb.execute('fmx thread %d' % "
                            "int(gdb.parse_and_eval('owner_tid')))"])
    no_traceback(out)
    check_waited([check_thread(out, v, run.args)], HOLD_WAIT_S, 60, "fmx thread", out)
    # The main thread waited for GdbFree once and got it: the CLI's "Last
    # waited for and got", with the caller's line of the inlined acquire.
    check(re.search(r"Thread %d \(gdb_fixture\) of process %d \(gdb_fixture\)\n"
                    r"  State:        t \(tracing stop\).*\n"
                    r"  Waiting:      not for a fastmutex\n"
                    r"  Last waited for and got: 0x%x \(GdbFree\) <free_mutex> at \S+ "
                    r"gdb_fixture.c:%d(?: \(in hold, inlined\))?\n"
                    % (v["pid"], v["pid"], v["free"], marker_line(run.args.source, "FMX-SITE-GOT")),
                    out), "fmx thread (the selected thread, main)", out)
    # The owner holds both mutexes, each with one waiter (listed in the
    # order their waiters' records were made).
    holds = re.search(r"Thread %d \(GdbOwner\).*\n.*\n  Waiting:      not for a fastmutex\n"
                      r"  Holds:        (.*)\n                (.*)\n" % v["owner"], out)
    check(holds is not None and set(holds.groups()) == {
        "fast_mutex_t 0x%x (GdbHeld) <held_mutex>, 1 waiter" % v["held"],
        "FAST_MUTEX 0x%x (GdbWdm) <wdm_mutex>, 1 waiter" % v["wdm"]},
        "fmx thread OWNER: what it holds", out)


def check_holds(out, v, args, what):
    """fmx thread HOLDER: its long name, and HeldOne, HeldTwo and HeldThree
    held, and HeldFast, a FAST_MUTEX named by its own address, each with how
    long and where it was taken, nobody waiting."""
    check(re.search(r"Thread %d \(GdbHolderOfThreeMutexes\) of (?:core of )?process %d"
                    % (v["holder"], v["pid"]), out), "%s: the holder's long name" % what, out)
    for key, kind, name, marker in (("one", "fast_mutex_t", "HeldOne", "FMX-SITE-HOLD-ONE"),
                                    ("two", "fast_mutex_t", "HeldTwo", "FMX-SITE-HOLD-TWO"),
                                    ("three", "fast_mutex_t", "HeldThree", "FMX-SITE-HOLD-THREE"),
                                    ("fast", "FAST_MUTEX", "HeldFast", "FMX-SITE-HOLD-FAST")):
        check(re.search(r"\n  (?:Holds:        |              )%s 0x%x \(%s\) <held_%s>, "
                        r"held \d+s\.\d{3}\n                  taken at holder_thread(?:\.cold)?\+0x[0-9a-f]+ "
                        r"gdb_fixture.c:%d" % (kind, v[key], name, key, marker_line(args.source, marker)),
                        out), "%s: %s held" % (what, name), out)
    check(out.count(", held ") == 4, "%s: exactly four mutexes held" % what, out)
    # It waited for HeldFast before it got it: the FAST_MUTEX, by its own address.
    check(re.search(r"\n  Last waited for and got: FAST_MUTEX 0x%x \(HeldFast\) <held_fast> at "
                    r"holder_thread(?:\.cold)?\+0x[0-9a-f]+ gdb_fixture.c:%d"
                    % (v["fast"], marker_line(args.source, "FMX-SITE-HOLD-FAST")), out),
          "%s: the FAST_MUTEX last waited for and got" % what, out)


def case_holds(run):
    """With FASTMUTEX_VERIFY=order, fmx thread lists every mutex a thread
    holds, though nobody waits for them; long thread names are whole."""
    out = run.gdb(run.args.fixture, [
        "python gdb.execute('fmx thread %d' % int(gdb.parse_and_eval('holder_tid')))",
        "fmx waiters"], run_args=["holds"], breakpoint="FMX-BREAK-HOLDS",
        before=["set environment FASTMUTEX_VERIFY order"])
    no_traceback(out)
    v = ready_values(out)
    check("holder" in v, "the fixture did not get ready", out)
    check_holds(out, v, run.args, "live")
    check(re.search(r" GdbWaiterWithALongName +%d " % v["waiter"], out),
          "fmx waiters: the waiter's long name", out)

    # The same from a core made with gcore.
    env = dict(os.environ, FASTMUTEX_VERIFY="order")
    fixture = subprocess.Popen([run.args.fixture, "holds"], stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, cwd=run.work, env=env)
    try:
        v = ready_values(fixture.stdout.readline().decode())
        check("pid" in v, "the fixture did not get ready (core)")
        prefix = os.path.join(run.work, "holds")
        done = subprocess.run([run.args.gcore, "-o", prefix, str(v["pid"])],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    finally:
        fixture.kill()
        fixture.wait()
    core = "%s.%d" % (prefix, v["pid"])
    check(done.returncode == 0 and os.path.exists(core), "gcore failed",
          done.stdout.decode("utf-8", "replace"))
    out = run.gdb(run.args.fixture, ["fmx thread %d" % v["holder"]], core=core)
    no_traceback(out)
    check_holds(out, v, run.args, "core")


def case_static(run):
    """A fully static program: the extension is sourced, not auto-loaded."""
    out, v = run.live_hold(["fmx waiters", "p held_mutex", "p wdm_mutex"],
                           program=run.args.static_fixture)
    no_traceback(out)
    check("warning: Unable to find libthread_db" not in out or "GdbWaiter" in out,
          "the static program's threads", out)
    check_waiters(out, v, run.args, live=True)
    check_fast_mutex_printer(out, v)
    check_wdm_printer(out, v)
    # Without the extension sourced there is no fmx command.
    bare = run.gdb(run.args.static_fixture, ["fmx waiters"], source=False, run_args=["hold"],
                   breakpoint="FMX-BREAK-READY")
    check('Undefined command: "fmx"' in bare, "fmx exists only once sourced", bare)


def same_as_cli(run, core, out):
    """`fmx waiters` in gdb shows what `fmx waiters --core` shows, cell for
    cell."""
    fmx = os.path.join(run.args.build, "tools", "fmx", "fmx")
    done = subprocess.run([fmx, "waiters", "--core", core, "--exe", run.args.fixture],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    cli = done.stdout.decode("utf-8", "replace")
    check(done.returncode == 0, "fmx waiters --core", cli)
    check(waiter_rows(out) == waiter_rows(cli), "gdb's fmx waiters differs from the CLI's:\n" + cli,
          out)


def case_core_gcore(run):
    core, v, (low, high) = run.hold_core()
    out = run.gdb(run.args.fixture, ["p held_mutex", "p wdm_mutex", "fmx waiters",
                                     "fmx mutex wdm_mutex", "fmx mutex &held_mutex",
                                     "fmx thread %d" % v["waiter"]], core=core)
    no_traceback(out)
    waited = [check_fast_mutex_printer(out, v)]
    check_wdm_printer(out, v)
    waited += check_waiters(out, v, run.args, live=False)
    waited.append(check_mutex(out, v, run.args))
    waited.append(check_thread(out, v, run.args))
    check(re.search(r"Thread %d \(GdbWaiter\) of core of process %d \(gdb_fixture\)\n"
                    r"  State:        -, - context switches, user \d+\.\d{3}s, kernel \d+\.\d{3}s\n"
                    % (v["waiter"], v["pid"]), out), "fmx thread in a core: its times only", out)
    check_waited(waited, low, high, "the core's waits", out)
    same_as_cli(run, core, out)


def core_pattern_allows_cores():
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError as err:
        raise Skip("cannot read core_pattern: %s" % err)
    if pattern.startswith("|"):
        raise Skip("core_pattern pipes cores to a program (%s): no core file to read" % pattern)


def case_core_abort(run):
    """A core the deadlock abort leaves (FASTMUTEX_ON_DEADLOCK=abort), made
    by the kernel in a folder of the test's own."""
    core_pattern_allows_cores()
    env = dict(os.environ, FASTMUTEX_ON_DEADLOCK="abort")

    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    if hard == 0:
        raise Skip("the hard core size limit is 0: no core can be made")

    def allow_cores():
        # In the fixture's process only: the test's own shell keeps its limit.
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

    started = time.monotonic()
    done = subprocess.run([run.args.fixture, "deadlock"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, cwd=run.work, env=env, timeout=TIMEOUT,
                          preexec_fn=allow_cores)
    lasted = time.monotonic() - started
    text = done.stdout.decode("utf-8", "replace")
    check(done.returncode < 0 or done.returncode == 134, "the deadlock did not abort", text)
    cores = [f for f in os.listdir(run.work) if f == "core" or f.startswith("core.")]
    if not cores:
        raise Skip("the kernel wrote no core into the test's folder (core_pattern %s)"
                   % open("/proc/sys/kernel/core_pattern").read().strip())
    out = run.gdb(run.args.fixture, ["fmx waiters", "p lock_a", "p lock_b"],
                  core=os.path.join(run.work, cores[0]))
    no_traceback(out)
    rows = waiter_rows(out)
    check(set(rows) == {"DeadlockA", "DeadlockB"}, "fmx waiters: both threads of the cycle", out)
    line = marker_line(run.args.source, "FMX-SITE-DEADLOCK")
    for name, mutex in (("DeadlockA", "LockB"), ("DeadlockB", "LockA")):
        check(rows[name][9].endswith("(%s) <%s>" % (mutex, mutex.replace("Lock", "lock_").lower())),
              "%s waits for %s" % (name, mutex), out)
        check(rows[name][11].endswith("gdb_fixture.c:%d" % line), "%s's site" % name, out)
    check("Deadlock: the deadlock check found a cycle through" in out, "the cycle", out)
    # The library stamped the moment it aborted: the thread that ran the
    # deadlock check had waited its 1 s at least (the other one began a
    # little later), and no wait lasted longer than the program ran.
    waited = [seconds(rows[n][8]) for n in rows]
    check_waited(waited, 0.0, lasted, "the abort core's waits", out)
    check(max(waited) >= 1.0, "the abort core: the checking thread waited 1 s", out)
    same_as_cli(run, os.path.join(run.work, cores[0]), out)
    check(re.search(r"= fast_mutex_t = \{State = held, WAITERS, Owner = \d+ \(DeadlockA\), "
                    r"Contention = 1, Name = LockA, Waiters = 1, \[1\] = \d+ \(DeadlockB\) "
                    r"waited \S+\}", out), "p lock_a in the abort core", out)


def case_errors(run):
    """Bad input: one line each, starting "fmx", and no Python traceback."""
    expected = [
        ("fmx waiters", "fmx: no fastmutex registry in this process"),
        ("fmx waiters now", "fmx waiters: takes no argument"),
        ("fmx mutex 42", "fmx: mutex: '42' is of type int, not a fast_mutex_t or FAST_MUTEX"),
        ("fmx mutex no_such_thing", "fmx: mutex: No symbol \"no_such_thing\" in current context."),
        ("fmx mutex (fast_mutex_t *)0", "fmx: mutex: '(fast_mutex_t *)0' is a null pointer"),
        ("fmx mutex", "fmx mutex: which mutex? (usage: fmx mutex EXPR)"),
        ("fmx thread", "  Waiting:      not for a fastmutex\n\nStack:\n  #0 "),
        ("fmx thread abc", "fmx: thread: 'abc' is not a thread id"),
        ("fmx thread 4000000", "fmx: process %d has no thread 4000000"),
    ]
    out = run.gdb(run.args.fixture, ["p free_mutex"] + [c for c, _ in expected],
                  run_args=["quiet"], breakpoint="FMX-BREAK-QUIET")
    no_traceback(out)
    v = ready_values(out)
    check("= fast_mutex_t = {State = free, Owner = none, Contention = 0, Name = none, "
          "Waiters = 0}" in out, "p free_mutex with no registry", out)
    for command, message in expected:
        if "%d" in message:
            message = message % v["pid"]
        check(message in out, "%s: %r" % (command, message), out)
    # No process at all.
    out = run.gdb(run.args.fixture, ["fmx waiters", "fmx thread", "fmx mutex held_mutex"])
    no_traceback(out)
    check(out.count("fmx: no process: run the program, attach to it, or load a core file") == 3,
          "no process", out)


def case_corrupt(run):
    """A registry made garbage in the live process: each bad field is
    reported in one line, and the printers still show the mutex."""
    header = "(*(struct fmx_registry *)registry)"
    commands = []
    for field, value in (("magic", "0x12345678"), ("threads_used", "100000"),
                         ("record_size", "7"), ("names_offset", "8")):
        commands += ["set var $saved = %s.%s" % (header, field),
                     "set var %s.%s = %s" % (header, field, value),
                     "fmx waiters", "p held_mutex",
                     "set var %s.%s = $saved" % (header, field)]
    commands += ["fmx waiters"]
    out, v = run.live_hold(commands)
    no_traceback(out)
    for what in ("magic 0x12345678, not 0x58544d46", "100000 of 4096 records",
                 "header, record and name sizes", "1024 names at +0x8"):
        check(out.count("fmx: the registry at 0x") >= 4 and what in out,
              "corrupt registry reported: %s" % what, out)
    check(out.count("Waiters = unknown (the registry at 0x") == 4,
          "p held_mutex with a corrupt registry", out)
    check("2 threads waiting." in out, "fmx waiters once the registry is whole again", out)


def install(run, prefix, destdir=None):
    """Installs the build under `prefix` (in `destdir`, if given) and
    returns the path of the installed libfastmutex.so.X.Y.Z."""
    env = dict(os.environ, DESTDIR=destdir) if destdir else None
    done = subprocess.run(["cmake", "--install", run.args.build, "--prefix", prefix],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT,
                          env=env)
    check(done.returncode == 0, "cmake --install", done.stdout.decode())
    root = destdir or prefix
    libs = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
            if re.fullmatch(r"libfastmutex\.so\.\d+\.\d+\.\d+", f)]
    check(len(libs) == 1, "one libfastmutex.so.X.Y.Z installed under %s: %s" % (root, libs))
    return libs[0]


def build_against(run, prefix, lib):
    """gdb_fixture built as a user would against the installed library."""
    libdir = os.path.dirname(lib)
    program = os.path.join(run.work, "gdb_fixture_shared")
    done = subprocess.run(["cc", "-g", "-O1", "-std=c17", "-D_GNU_SOURCE",
                           "-I" + os.path.join(prefix, "include"), run.args.source, "-o", program,
                           "-L" + libdir, "-lfastmutex", "-pthread", "-Wl,-rpath," + libdir],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)
    check(done.returncode == 0, "building against the installed library", done.stdout.decode())
    return program


def check_stripped(run, program, lib, where):
    """A library stripped of its debug info (as a package ships it without
    its -dbg file) leaves the extension without the registry's layout: it
    says so in one line, and the printers still show the mutex itself."""
    done = subprocess.run(["strip", "--strip-debug", lib], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=TIMEOUT)
    check(done.returncode == 0, "strip", done.stdout.decode())
    out = run.gdb(program, ["fmx waiters", "p held_mutex"], source=False, before=where,
                  run_args=["hold"], breakpoint="FMX-BREAK-READY")
    no_traceback(out)
    check("fmx: the type 'struct fmx_registry' is not in this program's debug info" in out,
          "fmx waiters without the library's debug info", out)
    check(re.search(r"= fast_mutex_t = \{State = held, WAITERS, Owner = \d+ \(GdbOwner\), "
                    r"Contention = 1, Name = unknown, Waiters = unknown \(the type", out),
          "p held_mutex without the library's debug info", out)


def case_autoload(run):
    """The installed extension is auto-loaded by gdb for a program linked
    with the installed libfastmutex.so, found as gdb finds glibc's."""
    prefix = os.path.join(run.work, "prefix")
    lib = install(run, prefix)
    scripts = os.path.join(prefix, "share", "gdb", "auto-load")
    script = scripts + os.path.realpath(lib) + "-gdb.py"
    check(os.path.isfile(script), "the auto-load script at %s" % script)
    check(os.path.isfile(os.path.join(prefix, "share", "fastmutex", "fastmutex-gdb.py")),
          "the script to source, under share/fastmutex")
    program = build_against(run, prefix, lib)
    # The two lines fmx(1) tells users of a prefix other than /usr to add.
    where = ["add-auto-load-scripts-directory " + scripts, "add-auto-load-safe-path " + prefix]
    out = run.gdb(program, ["info auto-load python-scripts", "p held_mutex", "fmx waiters"],
                  source=False, before=where, run_args=["hold"], breakpoint="FMX-BREAK-READY")
    no_traceback(out)
    v = ready_values(out)
    check(re.search(r"Yes\s+%s" % re.escape(script), out), "gdb auto-loaded the script", out)
    check_fast_mutex_printer(out, v)
    check_waiters(out, v, run.args, live=True)
    # Outside the safe path gdb refuses it, as it does any script.
    out = run.gdb(program, ["fmx waiters"], source=False, before=where[:1],
                  run_args=["hold"], breakpoint="FMX-BREAK-READY")
    check("declined" in out and 'Undefined command: "fmx"' in out,
          "the script is not loaded outside the safe path", out)
    check_stripped(run, program, lib, where)


def case_autoload_usr(run):
    """Installed for /usr (as a package does, through DESTDIR), the script
    lands in /usr/share/gdb/auto-load under the library's own path: where an
    unmodified Debian gdb looks, as it finds glibc's printers."""
    destdir = os.path.join(run.work, "destdir")
    lib = install(run, "/usr", destdir)[len(destdir):]
    check(lib.startswith("/usr/"), "the library under /usr: %s" % lib)
    script = destdir + "/usr/share/gdb/auto-load" + lib + "-gdb.py"
    check(os.path.isfile(script), "the script at %s" % script)


CASES = {name[len("case_"):]: f for name, f in globals().items() if name.startswith("case_")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    for option in ("gdb", "gcore", "script", "fixture", "static_fixture", "source", "build",
                   "project"):
        parser.add_argument("--" + option.replace("_", "-"), required=True)
    args = parser.parse_args()
    run = Run(args)
    try:
        CASES[args.case](run)
    except Failure as failure:
        print("gdb.%s: FAIL: %s" % (args.case, failure))
        return 1
    except Skip as skip:
        print("gdb.%s: skipped: %s" % (args.case, skip))
        return 77
    finally:
        shutil.rmtree(run.work, ignore_errors=True)
    print("gdb.%s: ok" % args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
