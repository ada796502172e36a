# fastmutex's gdb extension: pretty printers for fast_mutex_t and FAST_MUTEX,
# and the commands `fmx waiters`, `fmx mutex EXPR` and `fmx thread [TID]`,
# the views of the fmx tool inside gdb, on a live process or a core file.
#
# gdb auto-loads this file for libfastmutex.so; a program linked with
# libfastmutex.a sources it (see fmx(1)).  The build puts the constants of
# the C headers in front of this text (tools/gdb/gen_constants.c); struct
# layouts and enum values come from the program's own debug info, so the
# extension reads whatever registry layout the library in the process has.
#
# Everything read from the process is untrusted: the registry may be torn,
# truncated or garbage, so every size, offset and count is checked before
# it steers a read, and strings are shown with non-printable bytes as '?'.

import os
import re
import struct
import time

import gdb
import gdb.printing
import gdb.types

# Caps on what a registry header may claim before it is believed: far above
# the real capacities, and low enough that garbage cannot make us read
# gigabytes.
MAX_RECORDS = 1 << 16
MAX_NAMES = 1 << 16


class FmxError(Exception):
    """A condition to report to the user in one line."""


class NoRegistry(FmxError):
    """The process has made no registry: none of its threads has waited for
    a fastmutex, and no mutex has a name."""


# ---------------------------------------------------------------------------
# Layout, from the debug info.

def lookup_type(name):
    try:
        return gdb.lookup_type(name)
    except gdb.error:
        raise FmxError("the type '%s' is not in this program's debug info "
                       "(is libfastmutex loaded, and built with -g?)" % name)


def field_offsets(struct_type):
    """Byte offset of every field of struct_type, by name."""
    return {f.name: f.bitpos // 8 for f in struct_type.strip_typedefs().fields()}


def enum_values(name):
    return gdb.types.make_enum_dict(lookup_type(name))


def display_string(raw):
    """Bytes up to the first NUL, with every byte that is not printable
    ASCII shown as '?', so that text the process wrote cannot reach the
    terminal as control sequences."""
    raw = bytes(raw).split(b"\0", 1)[0]
    return "".join(chr(b) if 0x20 <= b < 0x7f else "?" for b in raw)


def read_memory(address, length, what):
    try:
        return bytes(gdb.selected_inferior().read_memory(address, length))
    except (gdb.MemoryError, gdb.error, OverflowError, ValueError) as err:
        raise FmxError("cannot read %s at 0x%x (%d bytes): %s" % (what, address, length, err))


def value_at(buffer, type_):
    return gdb.Value(buffer, type_)


# ---------------------------------------------------------------------------
# The registry.

class Record:
    """One thread's record, copied out of the registry."""

    def __init__(self, slot, address, value, raw, name_offset, name_len, held_capacity):
        self.slot = slot
        self.address = address
        self.seq = int(value["seq"])
        self.state = int(value["state"])
        self.tid = int(value["tid"])
        self.kind = int(value["kind"])
        self.owner_seen = int(value["owner_seen"])
        self.mutex = int(value["mutex"])
        self.outer = int(value["outer"])
        self.wait_start_ns = int(value["wait_start_ns"])
        self.site = int(value["site"])
        self.acquired_mutex = int(value["acquired_mutex"])
        self.acquired_site = int(value["acquired_site"])
        self.deadlock = int(value["deadlock"]) != 0
        self.thread_name = display_string(raw[name_offset:name_offset + name_len])
        # The mutexes it holds, while FASTMUTEX_VERIFY=order publishes them
        # (registry version 4): a count past the array lists the array.
        # Each as (mutex, outer, site, since): outer is the FAST_MUTEX around
        # the mutex, 0 for a fast_mutex_t.
        self.held_count = int(value["held_count"]) if held_capacity else 0
        self.held = [held_entry(value["held"][i])
                     for i in range(min(self.held_count, held_capacity))]


def held_entry(value):
    """(mutex, outer, site, since_ns) of a held list entry; outer only where
    the mutex lies at that FAST_MUTEX's Event.Lock (another process wrote
    it), as fmx's reader lets it stand."""
    mutex = int(value["mutex"])
    fields = [f.name for f in value.type.strip_typedefs().fields()]
    outer = int(value["outer"]) if "outer" in fields else 0
    if not outer or mutex < FMX_WDM_LOCK_OFFSET or mutex - FMX_WDM_LOCK_OFFSET != outer:
        outer = 0
    return (mutex, outer, int(value["site"]), int(value["since_ns"]))


def registry_symbol():
    """The library's own pointer to the registry (the static `registry` of
    registry.c), in whichever objfile carries the library."""
    try:
        symbols = gdb.lookup_static_symbols("registry")
    except gdb.error:
        symbols = []
    found = [s for s in symbols
             if s.symtab is not None and s.symtab.filename.endswith("registry.c")
             and "fmx_registry" in str(s.type)]
    if not found:
        raise FmxError("this program has no fastmutex library with debug info "
                       "(no 'registry' of registry.c)")
    # A program may carry the library twice (linked in and loaded as a
    # shared library); the copy in use is the one that made a registry.
    for symbol in found:
        if int(symbol.value()) != 0:
            return symbol
    return found[0]


class Registry:
    """A checked copy of the process's registry: header, records, names."""

    def __init__(self):
        inferior = gdb.selected_inferior()
        if inferior.pid == 0:
            raise FmxError("no process: run the program, attach to it, or load a core file")
        self.header_type = lookup_type("struct fmx_registry")
        self.record_type = lookup_type("struct fmx_record")
        self.name_type = lookup_type("struct fmx_name")
        self.states = enum_values("enum fmx_record_state")
        self.kinds = enum_values("enum fmx_mutex_kind")
        self.address = int(registry_symbol().value())
        if self.address == 0:
            raise NoRegistry("no fastmutex registry in this process: no thread has waited "
                             "for a fastmutex and no mutex has a name")
        self._read_header()
        self._read_records()
        self._read_names()

    def _read_header(self):
        size = self.header_type.sizeof
        header = value_at(read_memory(self.address, size, "the registry header"), self.header_type)
        fields = field_offsets(self.header_type)
        magic = int(header["magic"])
        if magic != FMX_REGISTRY_MAGIC:
            raise FmxError("the registry at 0x%x is corrupt: magic 0x%08x, not 0x%08x"
                           % (self.address, magic, FMX_REGISTRY_MAGIC))
        self.version = int(header["version"])
        self.pid = int(header["pid"])
        sizes = (int(header["header_size"]), int(header["record_size"]), int(header["name_size"]))
        want = (size, self.record_type.sizeof, self.name_type.sizeof)
        if sizes != want:
            raise FmxError("the registry at 0x%x is corrupt: header, record and name sizes %s, "
                           "the library's debug info says %s" % (self.address, sizes, want))
        self.used = int(header["threads_used"])
        capacity = int(header["thread_capacity"])
        self.name_capacity = int(header["name_capacity"])
        self.records_offset = int(header["records_offset"])
        self.names_offset = int(header["names_offset"])
        records_end = self.records_offset + capacity * self.record_type.sizeof
        if not (self.used <= capacity <= MAX_RECORDS and self.name_capacity <= MAX_NAMES
                and self.records_offset >= size and self.names_offset >= records_end):
            raise FmxError("the registry at 0x%x is corrupt: %d of %d records at +0x%x, "
                           "%d names at +0x%x" % (self.address, self.used, capacity,
                                                  self.records_offset, self.name_capacity,
                                                  self.names_offset))
        # Fields of later registry versions, None where this one lacks them.
        self.realtime_offset_ns = int(header["realtime_offset_ns"]) \
            if "realtime_offset_ns" in fields else None
        self.stamp_mono_ns = int(header["stamp_mono_ns"]) if "stamp_mono_ns" in fields else None

    def _read_records(self):
        size = self.record_type.sizeof
        base = self.address + self.records_offset
        raw = read_memory(base, self.used * size, "the registry records") if self.used else b""
        name_field = self.record_type.strip_typedefs()["thread_name"]
        name_offset, name_len = name_field.bitpos // 8, name_field.type.sizeof
        fields = {f.name: f for f in self.record_type.strip_typedefs().fields()}
        held_capacity = fields["held"].type.sizeof // fields["held"].type.target().sizeof \
            if "held" in fields else 0
        self.records = []
        self.changing = 0
        for slot in range(self.used):
            chunk = raw[slot * size:(slot + 1) * size]
            rec = Record(slot, base + slot * size, value_at(chunk, self.record_type), chunk,
                         name_offset, name_len, held_capacity)
            # An odd seq: the thread was changing its record when the process
            # stopped, so the record may be torn.
            if rec.seq & 1:
                self.changing += 1
                continue
            self.records.append(rec)

    def _read_names(self):
        size = self.name_type.sizeof
        raw = read_memory(self.address + self.names_offset, self.name_capacity * size,
                          "the registry names")
        offsets = field_offsets(self.name_type)
        name_len = self.name_type.strip_typedefs()["name"].type.sizeof
        self.names = {}
        for i in range(self.name_capacity):
            chunk = raw[i * size:(i + 1) * size]
            mutex = int(value_at(chunk, self.name_type)["mutex"])
            if mutex != 0:
                at = offsets["name"]
                self.names[mutex] = display_string(chunk[at:at + name_len])

    def waiting(self):
        return [r for r in self.records if r.state == self.states["FMX_RECORD_WAITING"]]

    def is_wdm(self, rec):
        return rec.kind == self.kinds["FMX_KIND_WDM"]

    def record_of_tid(self, tid):
        for rec in self.records:
            if rec.state != self.states["FMX_RECORD_FREE"] and rec.tid == tid:
                return rec
        return None

    def record_at(self, address):
        """The record a FAST_MUTEX's Owner points at, or None."""
        offset = address - self.address - self.records_offset
        size = self.record_type.sizeof
        if offset < 0 or offset % size != 0:
            return None
        slot = offset // size
        return next((r for r in self.records if r.slot == slot), None)


def try_registry():
    """The registry, or None and the error that says why not."""
    try:
        return Registry(), None
    except FmxError as err:
        return None, err
    except gdb.error as err:  # gdb.MemoryError too: the printers never raise
        return None, FmxError(str(err))


# ---------------------------------------------------------------------------
# Time: how long a wait has lasted, live or in a core.

def core_file_path():
    text = gdb.execute("info files", to_string=True)
    match = re.search(r"Local core dump file:\s*`(.*)', file type", text)
    return match.group(1) if match else None


def now_ns(registry):
    """CLOCK_MONOTONIC of the process "now", and None with a reason when it
    cannot be known.  Live, the host's clock (the same machine's).  In a
    core, the time the library stamped as it aborted, else the core file's
    modification time taken back to CLOCK_MONOTONIC with the offset the
    library recorded."""
    connection = gdb.selected_inferior().connection
    kind = connection.type if connection is not None else None
    if kind == "native":
        return time.monotonic_ns(), None
    if kind != "core":
        return None, "the clock of a %s target is not known" % kind
    if registry.stamp_mono_ns:
        return registry.stamp_mono_ns, None
    if registry.realtime_offset_ns is None:
        return None, ("the registry (version %d) records no clock offset, so a core's waits "
                      "cannot be timed" % registry.version)
    path = core_file_path()
    try:
        return os.stat(path).st_mtime_ns - registry.realtime_offset_ns, None
    except (OSError, TypeError):
        return None, "cannot stat the core file %r" % path


def format_waited(wait_start_ns, now):
    if now is None:
        return "?"
    ms = max(now - wait_start_ns, 0) // 1000000
    return "%ds.%03d" % (ms // 1000, ms % 1000)


# ---------------------------------------------------------------------------
# Threads and processes.

def thread_by_tid(tid):
    for thread in gdb.selected_inferior().threads():
        if thread.ptid[1] == tid:
            return thread
    return None


def is_live():
    connection = gdb.selected_inferior().connection
    return connection is not None and connection.type == "native"


def read_proc(path):
    try:
        with open(path, "rb") as f:
            return f.read(4096)
    except OSError:
        return None


def thread_name(tid, registry):
    """A thread's name: gdb's (live), else the one its record keeps; "exited"
    when the process has no such thread."""
    thread = thread_by_tid(tid)
    if thread is None:
        return "exited"
    rec = registry.record_of_tid(tid) if registry is not None else None
    long_name = rec.thread_name if rec is not None else ""
    if thread.name:
        comm = display_string(thread.name.encode("utf-8", "replace"))
        # The kernel keeps 15 bytes of a name: while the comm is those of
        # the record's long name, the long name is the thread's.
        return long_name if len(comm) == 15 and long_name.startswith(comm) else comm
    return long_name or "?"


def target_kind():
    """How fmx names what it reads: "process", or "core of process"."""
    connection = gdb.selected_inferior().connection
    return "core of process" if connection is not None and connection.type == "core" \
        else "process"


def process_name():
    inferior = gdb.selected_inferior()
    comm = read_proc("/proc/%d/comm" % inferior.pid) if is_live() else None
    if comm is not None:
        return display_string(comm.rstrip(b"\n"))
    return display_string(os.path.basename(inferior.progspace.filename or "?").encode()[:15])


NT_PRSTATUS = 1
MAX_NOTES = 64 << 20


def core_notes(path):
    """(type, descriptor) of every note of an ELF64 little-endian core file,
    each bounds-checked against the file: the core is untrusted input."""
    with open(path, "rb") as f:
        header = f.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4:6] != b"\x02\x01":
            return
        phoff, = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        size = os.fstat(f.fileno()).st_size
        if phentsize < 56 or phoff + phnum * phentsize > size:
            return
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            kind, _, offset, _, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
            if kind != 4 or filesz > MAX_NOTES or offset + filesz > size:  # PT_NOTE
                continue
            f.seek(offset)
            yield from split_notes(f.read(filesz))


def split_notes(data):
    at = 0
    while at + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, at)
        desc = at + 12 + (namesz + 3) // 4 * 4
        end = desc + (descsz + 3) // 4 * 4
        if end > len(data):
            return
        yield kind, data[desc:desc + descsz]
        at = end


def core_thread_times(tid):
    """User and kernel seconds of a thread, from its NT_PRSTATUS note in the
    core (the generic elf_prstatus of 64-bit Linux: pr_pid at 32, pr_utime
    and pr_stime as timevals at 48 and 64), or None."""
    path = core_file_path()
    try:
        for kind, desc in core_notes(path) if path else ():
            if kind == NT_PRSTATUS and len(desc) >= 80 \
                    and struct.unpack_from("<i", desc, 32)[0] == tid:
                user_s, user_us, sys_s, sys_us = struct.unpack_from("<qqqq", desc, 48)
                return user_s + user_us / 1e6, sys_s + sys_us / 1e6
    except (OSError, struct.error):
        return None
    return None


def proc_figures(tid):
    """State letter, context switches, user and kernel seconds of a thread:
    live, all from /proc; in a core, only the times its notes keep ("-"
    and None for the rest); None when nothing is known."""
    if not is_live():
        times = core_thread_times(tid)
        return ("-", None) + times if times else None
    base = "/proc/%d/task/%d/" % (gdb.selected_inferior().pid, tid)
    stat, status = read_proc(base + "stat"), read_proc(base + "status")
    if stat is None or status is None or b")" not in stat:
        return None
    fields = stat[stat.rindex(b")") + 2:].split()
    switches = re.findall(rb"^(?:non)?voluntary_ctxt_switches:\s*(\d+)", status, re.M)
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        return (chr(fields[0][0]), sum(int(n) for n in switches),
                int(fields[11]) / ticks, int(fields[12]) / ticks)
    except (IndexError, ValueError):
        return None


STATE_WORDS = {"R": "running", "S": "sleeping", "D": "disk sleep", "T": "stopped",
               "t": "tracing stop", "Z": "zombie", "X": "dead", "I": "idle"}


# ---------------------------------------------------------------------------
# Code addresses: function+offset and file:line.

class Thread:
    """Selects another thread for a while and back, frame included."""

    def __init__(self, thread):
        self.thread = thread

    def __enter__(self):
        self.saved = gdb.selected_thread()
        try:
            self.frame = gdb.selected_frame()
        except gdb.error:
            self.frame = None
        self.thread.switch()
        return self.thread

    def __exit__(self, *exc):
        if self.saved is not None and self.saved.is_valid():
            self.saved.switch()
            if self.frame is not None and self.frame.is_valid():
                self.frame.select()
        return False


def source_lines(pc):
    """(file, line, function) for the code at pc and, when it lies in
    inlined code, for each call that inlined it, innermost first, as fmx
    lists them: gdb keeps an inlined function's call site as the file and
    line of its symbol."""
    sal = gdb.find_pc_line(pc)
    try:
        block = gdb.block_for_pc(pc)
    except RuntimeError:
        block = None
    functions = []
    while block is not None and not block.is_static and not block.is_global:
        if block.function is not None:
            functions.append(block.function)
        block = block.superblock
    if sal.symtab is None or not functions:
        return []
    lines = [(sal.symtab.filename, sal.line, functions[0].name)]
    for inlined, caller in zip(functions, functions[1:]):
        if inlined.symtab is not None:
            lines.append((inlined.symtab.filename, inlined.line, caller.name))
    return lines


def caller_line(site):
    """(file, line, function) of the call before a return address into the
    code that called the library: the first line not in the library's own
    inline functions, so that an acquire inlined into its caller names the
    caller's line; None when the debug info does not say."""
    lines = source_lines(site - 1)
    for line in lines:
        if not line[2].startswith("fast_mutex_"):
            return line
    return lines[-1] if lines else None


def elf_name(name):
    """The ELF name of a symbol gdb shows with GCC's clone suffixes spelled
    out ("f[cold]", "f[clone .constprop.0]"), as fmx shows it ("f.cold")."""
    return re.sub(r"\[clone (\.[^\]]*)\]", r"\1", re.sub(r"\[cold\]", ".cold", name))


def symbol_offset(pc, return_address=True):
    """"function+0xoff" of an address, from the ELF symbol table as fmx
    reads it (a call in the part GCC moved out of line is in "f.cold"), or
    None.  A return address is looked up one byte back: a call that ends a
    function returns to the next one."""
    lookup = pc - 1 if return_address else pc
    try:
        text = gdb.execute("info symbol 0x%x" % lookup, to_string=True)
    except gdb.error:
        return None
    match = re.match(r"(\S+)(?: \+ (\d+))? in section", text)
    if match is None:
        return None
    return "%s+0x%x" % (elf_name(match.group(1)), int(match.group(2) or 0) + pc - lookup)


def format_site(site):
    """A call site as fmx shows it: "FileMoveThread+0x20b demo.c:292", or
    with "(in F, inlined)" when the line belongs to a function inlined
    there."""
    if site == 0:
        return "?"
    where = symbol_offset(site)
    text = where if where is not None else "0x%x" % site
    line = caller_line(site)
    if line is None:
        return text
    path, number, function = line
    text += " %s:%d" % (os.path.basename(path), number)
    symbol = where.split("+")[0] if where else ""
    if function and symbol != function and not symbol.startswith(function + "."):
        text += " (in %s, inlined)" % function
    return text


# ---------------------------------------------------------------------------
# Mutexes.

MUTEX_TAGS = ("fast_mutex", "_FAST_MUTEX")


def member_path(type_, offset):
    """".Event.Lock": the members of a variable of type type_ down to the
    mutex at `offset` into it, with what the debug info leaves over as
    "+0x10"."""
    path = ""
    for _ in range(16):
        basic = type_.strip_typedefs()
        if offset == 0 and basic.code == gdb.TYPE_CODE_STRUCT and basic.tag in MUTEX_TAGS:
            break
        if basic.code not in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            break
        inside = [f for f in basic.fields() if f.name and not f.artificial and f.bitpos // 8
                  <= offset < f.bitpos // 8 + f.type.sizeof]
        if not inside:
            break
        path += "." + inside[0].name
        offset -= inside[0].bitpos // 8
        type_ = inside[0].type
    return path + ("+0x%x" % offset if offset else "")


def data_symbol(address):
    """The variable at `address`, as fmx names it: "held_mutex", or with
    the members down to the mutex, "wdm_mutex.Event.Lock"; "" when none."""
    try:
        text = gdb.execute("info symbol 0x%x" % address, to_string=True)
    except gdb.error:
        return ""
    match = re.match(r"(\S+)(?: \+ (\d+))? in section (\S+)", text)
    if match is None or match.group(3).startswith(".text"):
        return ""
    name, offset = match.group(1), int(match.group(2) or 0)
    symbol = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if symbol is None:
        return name + ("+0x%x" % offset if offset else "")
    return name + member_path(symbol.type, offset)


def format_mutex(address, name):
    """"0x55d0c0a0 (FastMutex)", with the variable when it is not the name:
    "0x55d0c0a0 (GdbHeld) <held_mutex>"."""
    text = "0x%x (%s)" % (address, name) if name else "0x%x" % address
    symbol = data_symbol(address)
    return text + " <%s>" % symbol if symbol and symbol != name else text


def format_owner(tid, registry):
    return "%d (%s)" % (tid, thread_name(tid, registry)) if tid else "none"


def mutex_name(registry, *addresses):
    if registry is None:
        return ""
    for address in addresses:
        if address and address in registry.names:
            return registry.names[address]
    return ""


def waiter_mutex(registry, rec):
    """The address a user knows a waiter's mutex by: the FAST_MUTEX for a
    waiter of one, the fast_mutex_t otherwise."""
    return rec.outer if registry.is_wdm(rec) and rec.outer else rec.mutex


def lock_word_owner(rec):
    """The owner of the mutex a waiter waits for, from its lock word, else
    what the waiter saw last."""
    try:
        word = int.from_bytes(read_memory(rec.mutex, 4, "the lock word"), "little")
        return word & FAST_MUTEX_OWNER_MASK
    except FmxError:
        return max(rec.owner_seen, 0)


def waiters_of(registry, address):
    """Records waiting for the mutex at `address` (a fast_mutex_t, or a
    FAST_MUTEX through its outer address), oldest first."""
    if registry is None:
        return []
    found = [r for r in registry.waiting()
             if r.mutex == address or (registry.is_wdm(r) and r.outer == address)]
    return sorted(found, key=lambda r: r.wait_start_ns)


LOCK_WORD_FLAGS = (
    (FAST_MUTEX_WAITERS, "WAITERS"), (FAST_MUTEX_WOKEN, "WOKEN"), (FAST_MUTEX_TRYING, "TRYING"),
    (FAST_MUTEX_SLEEPERS, "SLEEPERS"), (FAST_MUTEX_ROBUST_HELD, "ROBUST_HELD"),
    (FAST_MUTEX_INCONSISTENT, "INCONSISTENT"), (FAST_MUTEX_NOTRECOVERABLE, "NOTRECOVERABLE"),
    (FAST_MUTEX_SHARED, "SHARED"),
)


def flags_text(word):
    flags = "".join(" " + name for bit, name in LOCK_WORD_FLAGS if word & bit)
    known = FAST_MUTEX_OWNER_MASK
    for bit, _ in LOCK_WORD_FLAGS:
        known |= bit
    if word & ~known:
        flags += " (unknown bits)"
    return flags or " none"


def count_meaning(count):
    """FAST_MUTEX.Count as Windows reads it."""
    waiting = (count & 0xffffffff) // FM_LOCK_WAITER_INC
    return "%s, %d waiter%s%s" % ("free" if count & FM_LOCK_BIT else "held", waiting,
                                  "" if waiting == 1 else "s",
                                  ", a waiter woken" if count & FM_LOCK_WAITER_WOKEN else "")


def irql_name(irql):
    names = {PASSIVE_LEVEL: "PASSIVE_LEVEL", APC_LEVEL: "APC_LEVEL",
             DISPATCH_LEVEL: "DISPATCH_LEVEL", HIGH_LEVEL: "HIGH_LEVEL"}
    return names.get(irql, "IRQL %d" % irql)


def wdm_owner_text(owner, registry):
    """FAST_MUTEX.Owner is the holder's registry record (KeGetCurrentThread):
    the thread it names."""
    if owner == 0:
        return "(null)"
    rec = registry.record_at(owner) if registry is not None else None
    if rec is None or rec.tid <= 0:
        return "0x%016x" % owner
    return "0x%016x (thread %d, %s)" % (owner, rec.tid, thread_name(rec.tid, registry))


def value_address(value):
    return int(value.address) if value.address is not None else None


# ---------------------------------------------------------------------------
# Pretty printers.

class FastMutexPrinter:
    """p m, for a fast_mutex_t: state, owner, contention, name, waiters."""

    def __init__(self, value):
        self.value = value

    def to_string(self):
        return "fast_mutex_t"

    def children(self):
        word = int(self.value["word"]) & 0xffffffff
        owner = word & FAST_MUTEX_OWNER_MASK
        address = value_address(self.value)
        registry, why = try_registry() if address is not None else (None, None)
        state = "held" if owner else "free"
        if int(self.value["queue"]) & 0xffffffff in (FAST_MUTEX_SHARED_QUEUE, FAST_MUTEX_ROBUST_QUEUE):
            state += ", shared between processes"
        yield "State", state + (",%s" % flags_text(word) if word & ~FAST_MUTEX_OWNER_MASK else "")
        yield "Owner", format_owner(owner, registry)
        yield "Contention", str(int(self.value["contention"]))
        known = registry is not None or isinstance(why, NoRegistry)
        yield "Name", (mutex_name(registry, address) or "none") if known else "unknown"
        if isinstance(why, NoRegistry):
            yield "Waiters", "0"
            return
        if registry is None:
            yield "Waiters", "unknown (%s)" % why if why else "unknown (not in memory)"
            return
        waiters = waiters_of(registry, address)
        now, _ = now_ns(registry)
        yield "Waiters", str(len(waiters))
        for i, rec in enumerate(waiters):
            yield "[%d]" % (i + 1), "%d (%s) waited %s" % (
                rec.tid, thread_name(rec.tid, registry), format_waited(rec.wait_start_ns, now))


class WdmFastMutexPrinter:
    """p FastMutex, for a FAST_MUTEX: its fields at their offsets, with their
    Windows meaning, as WinDbg's `dt nt!_FAST_MUTEX` lists them."""

    def __init__(self, value):
        self.value = value

    def to_string(self):
        value = self.value
        address = value_address(value)
        registry, _ = try_registry() if address is not None else (None, None)
        offsets = field_offsets(value.type)
        lock = value["Event"]["Lock"]
        lock_address = value_address(lock)
        word = int(lock["word"]) & 0xffffffff
        count = int(value["Count"])
        irql = int(value["OldIrql"])
        waiters = waiters_of(registry, address) if address is not None else []
        name = mutex_name(registry, lock_address, address)
        rows = [
            ("Count", "0n%d (%s)" % (count, count_meaning(count))),
            ("Owner", wdm_owner_text(int(value["Owner"]), registry)),
            ("Contention", "0n%d" % int(value["Contention"])),
            ("Event", "fast_mutex_t, owner %s, flags%s, %d waiter%s"
             % (format_owner(word & FAST_MUTEX_OWNER_MASK, registry), flags_text(word),
                len(waiters), "" if len(waiters) == 1 else "s")),
            ("OldIrql", "0n%d (%s)" % (irql, irql_name(irql))),
        ]
        title = "_FAST_MUTEX" + (" " + format_mutex(address, name) if address is not None else "")
        lines = [title] + ["   +0x%03x %-16s : %s" % (offsets[field], field, text)
                           for field, text in rows]
        return "\n".join(lines)


def build_printers():
    printers = gdb.printing.RegexpCollectionPrettyPrinter("fastmutex")
    printers.add_printer("fast_mutex_t", "^fast_mutex$", FastMutexPrinter)
    printers.add_printer("FAST_MUTEX", "^_FAST_MUTEX$", WdmFastMutexPrinter)
    return printers


# ---------------------------------------------------------------------------
# Commands.

def run_command(body):
    """Runs a command's body so that every failure is one line "fmx: ...",
    never a Python traceback."""
    try:
        body()
    except FmxError as err:
        raise gdb.GdbError("fmx: %s" % err)
    except gdb.GdbError:
        raise
    except (gdb.error, gdb.MemoryError) as err:
        raise gdb.GdbError("fmx: %s" % err)


class FmxCommand(gdb.Command):
    """fastmutex views: fmx waiters, fmx mutex EXPR, fmx thread [TID]."""

    def __init__(self):
        super().__init__("fmx", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


WAITER_COLUMNS = ("Process", "PID", "Thread", "TID", "CtxSw", "User", "Kernel", "State",
                  "Waited", "Mutex", "Owner", "Site")


class FmxWaiters(gdb.Command):
    """Every thread waiting for a fastmutex, as WinDbg's !WrFastMutex.
Usage: fmx waiters
The columns of `fmx waiters` outside gdb; on a core file CtxSw, User,
Kernel and State are "-" (the core does not keep them)."""

    def __init__(self):
        super().__init__("fmx waiters", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, argument, from_tty):
        if argument.strip():
            raise gdb.GdbError("fmx waiters: takes no argument (usage: fmx waiters)")
        run_command(self.show)

    def row(self, registry, rec, now, process):
        figures = proc_figures(rec.tid)
        state, switches, user, kernel = figures if figures else ("-", None, None, None)
        return (process, str(gdb.selected_inferior().pid), thread_name(rec.tid, registry),
                str(rec.tid), "-" if switches is None else str(switches),
                "-" if user is None else "%.3fs" % user,
                "-" if kernel is None else "%.3fs" % kernel, state,
                format_waited(rec.wait_start_ns, now),
                format_mutex(waiter_mutex(registry, rec),
                             mutex_name(registry, rec.mutex, rec.outer if registry.is_wdm(rec) else 0)),
                format_owner(lock_word_owner(rec), registry),
                format_site(rec.site))

    def show(self):
        registry = Registry()
        now, why = now_ns(registry)
        process = process_name()
        waiting = registry.waiting()
        rows = [self.row(registry, rec, now, process) for rec in waiting]
        if rows:
            widths = [max(len(cells[i]) for cells in rows + [WAITER_COLUMNS])
                      for i in range(len(WAITER_COLUMNS))]
            for cells in [WAITER_COLUMNS] + rows:
                gdb.write("  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths)) + "  "
                          + cells[-1] + "\n")
        gdb.write("%d thread%s waiting.\n" % (len(rows), "" if len(rows) == 1 else "s"))
        cycle = [rec for rec in waiting if rec.deadlock]
        if cycle:
            gdb.write("Deadlock: the deadlock check found a cycle through %s.\n" % ", ".join(
                "%d (%s)" % (rec.tid, thread_name(rec.tid, registry)) for rec in cycle))
        if registry.changing:
            gdb.write("%d record%s were being written when the process stopped and could not "
                      "be read.\n" % (registry.changing, "" if registry.changing == 1 else "s"))
        if why and rows:
            gdb.write("Waited is unknown: %s.\n" % why)


def mutex_value(expression):
    """The fast_mutex_t or FAST_MUTEX an expression names (through one
    pointer), with its kind."""
    try:
        value = gdb.parse_and_eval(expression)
    except gdb.error as err:
        raise FmxError("mutex: %s" % err)
    basic = value.type.strip_typedefs()
    if basic.code == gdb.TYPE_CODE_PTR:
        if int(value) == 0:
            raise FmxError("mutex: '%s' is a null pointer" % expression)
        value = value.dereference()
        basic = value.type.strip_typedefs()
    tag = basic.tag if basic.code == gdb.TYPE_CODE_STRUCT else None
    if tag not in MUTEX_TAGS or value.address is None:
        raise FmxError("mutex: '%s' is of type %s, not a fast_mutex_t or FAST_MUTEX in memory (or a "
                       "pointer to one); for an address write *(fast_mutex_t *)ADDR"
                       % (expression, value.type))
    return value, tag == "_FAST_MUTEX"


class FmxMutex(gdb.Command):
    """One mutex, as WinDbg's dt nt!_FAST_MUTEX: owner, contention, waiters.
Usage: fmx mutex EXPR
EXPR is a fast_mutex_t or a FAST_MUTEX (or a pointer to one), e.g.
`fmx mutex FastMutex` or `fmx mutex *(fast_mutex_t *)0x55d1f6a96380`.
For a FAST_MUTEX it adds Count, Owner, Contention and OldIrql, decoded as
Windows reads them."""

    def __init__(self):
        super().__init__("fmx mutex", gdb.COMMAND_DATA, gdb.COMPLETE_EXPRESSION)

    def invoke(self, argument, from_tty):
        if not argument.strip():
            raise gdb.GdbError("fmx mutex: which mutex? (usage: fmx mutex EXPR)")
        run_command(lambda: self.show(argument.strip()))

    def show(self, expression):
        if gdb.selected_inferior().pid == 0:
            raise FmxError("no process: run the program, attach to it, or load a core file")
        value, wdm = mutex_value(expression)
        registry, why = try_registry()
        address = int(value.address)
        lock = value["Event"]["Lock"] if wdm else value
        lock_address = int(lock.address)
        name = mutex_name(registry, lock_address, address)
        inferior = gdb.selected_inferior()
        gdb.write("%s %s in %s %d (%s)\n" % ("FAST_MUTEX" if wdm else "fast_mutex_t",
                                             format_mutex(address, name), target_kind(),
                                             inferior.pid, process_name()))
        if not wdm and registry is not None:
            outer = next((r.outer for r in registry.waiting()
                          if registry.is_wdm(r) and r.mutex == address), 0)
            if outer:
                gdb.write("  (the Event.Lock of FAST_MUTEX %s: see fmx mutex "
                          "*(FAST_MUTEX *)0x%x)\n" % (format_mutex(outer, ""), outer))
        if wdm:
            count = int(value["Count"])
            gdb.write("  Count:        %d (%s)\n" % (count, count_meaning(count)))
            gdb.write("  Owner:        %s\n" % wdm_owner_text(int(value["Owner"]), registry))
            gdb.write("  Contention:   %d\n" % int(value["Contention"]))
            gdb.write("  OldIrql:      %d (%s)\n" % (int(value["OldIrql"]),
                                                     irql_name(int(value["OldIrql"]))))
            gdb.write("  Event.Lock:   fast_mutex_t at %s\n" % format_mutex(lock_address, ""))
        self.show_lock(lock, registry, "    " if wdm else "  ")
        self.show_waiters(registry, why, address)

    def show_lock(self, lock, registry, indent):
        word = int(lock["word"]) & 0xffffffff
        gdb.write("%sOwner:        %s\n" % (indent, format_owner(word & FAST_MUTEX_OWNER_MASK,
                                                                 registry)))
        gdb.write("%sFlags:       %s (lock word 0x%08x)\n" % (indent, flags_text(word), word))
        gdb.write("%sContention:   %d\n" % (indent, int(lock["contention"])))

    def show_waiters(self, registry, why, address):
        if isinstance(why, NoRegistry):
            gdb.write("  Waiters:      0\n")
            return
        if registry is None:
            gdb.write("  Waiters:      unknown (%s)\n" % why)
            return
        waiters = waiters_of(registry, address)
        now, _ = now_ns(registry)
        gdb.write("  Waiters:      %d\n" % len(waiters))
        for rec in waiters:
            gdb.write("    %d (%s)  waited %s  from %s%s\n" % (
                rec.tid, thread_name(rec.tid, registry), format_waited(rec.wait_start_ns, now),
                format_site(rec.site), "  [deadlock]" if rec.deadlock else ""))


def parse_tid(argument):
    text = argument.strip()
    if not text:
        thread = gdb.selected_thread()
        if thread is None:
            raise FmxError("no process: run the program, attach to it, or load a core file")
        return thread.ptid[1] or thread.ptid[0]
    if not re.fullmatch(r"[0-9]{1,9}", text) or int(text) == 0:
        raise FmxError("thread: '%s' is not a thread id" % text)
    return int(text)


class FmxThread(gdb.Command):
    """One thread, as WinDbg's !mex.t: its wait and its stack to file:line.
Usage: fmx thread [TID]
TID is the kernel thread id (LWP), as `fmx waiters` shows it; without it,
the selected thread."""

    def __init__(self):
        super().__init__("fmx thread", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, argument, from_tty):
        run_command(lambda: self.show(argument))

    def show(self, argument):
        tid = parse_tid(argument)
        if gdb.selected_inferior().pid == 0:
            raise FmxError("no process: run the program, attach to it, or load a core file")
        thread = thread_by_tid(tid)
        if thread is None:
            raise FmxError("%s %d has no thread %d" % (target_kind(), gdb.selected_inferior().pid,
                                                       tid))
        registry, why = try_registry()
        gdb.write("Thread %d (%s) of %s %d (%s)\n" % (
            tid, thread_name(tid, registry), target_kind(), gdb.selected_inferior().pid,
            process_name()))
        state, switches, user, kernel = proc_figures(tid) or ("-", None, None, None)
        gdb.write("  State:        %s, %s context switches, user %s, kernel %s\n" % (
            "-" if state == "-" else "%s (%s)" % (state, STATE_WORDS.get(state, "unknown")),
            "-" if switches is None else switches,
            "-" if user is None else "%.3fs" % user, "-" if kernel is None else "%.3fs" % kernel))
        if isinstance(why, NoRegistry):
            gdb.write("  Waiting:      not for a fastmutex\n")
        elif registry is None:
            gdb.write("  Waiting:      unknown (%s)\n" % why)
        else:
            self.show_wait(registry, tid)
        self.show_stack(thread)

    def show_wait(self, registry, tid):
        rec = registry.record_of_tid(tid)
        if rec is None or rec.state != registry.states["FMX_RECORD_WAITING"]:
            gdb.write("  Waiting:      not for a fastmutex\n")
        else:
            now, why = now_ns(registry)
            wdm = registry.is_wdm(rec)
            name = mutex_name(registry, rec.mutex, rec.outer if wdm else 0)
            gdb.write("  Waiting for:  %s %s\n" % ("FAST_MUTEX" if wdm else "fast_mutex_t",
                                                   format_mutex(waiter_mutex(registry, rec), name)))
            gdb.write("  Owner:        %s\n" % format_owner(lock_word_owner(rec), registry))
            gdb.write("  Waited:       %s%s\n" % (format_waited(rec.wait_start_ns, now),
                                                  " (%s)" % why if why else ""))
            gdb.write("  Called from:  %s\n" % format_site(rec.site))
            if rec.deadlock:
                gdb.write("  Deadlock:     yes: the deadlock check found this wait in a cycle\n")
        self.show_held(registry, tid)
        if rec is not None and rec.acquired_mutex:
            # The record keeps the FAST_MUTEX of its last wait, the one that
            # ended in this acquisition: shown by its own address.
            got, kind = rec.acquired_mutex, ""
            if registry.is_wdm(rec) and rec.outer and got >= FMX_WDM_LOCK_OFFSET and \
                    got - FMX_WDM_LOCK_OFFSET == rec.outer:
                got, kind = rec.outer, "FAST_MUTEX "
            gdb.write("  Last waited for and got: %s%s at %s\n" % (
                kind, format_mutex(got, mutex_name(registry, rec.acquired_mutex)),
                format_site(rec.acquired_site)))

    def show_held(self, registry, tid):
        """The mutexes the thread holds: every one while FASTMUTEX_VERIFY=order
        lists them in its record, and those others wait for."""
        waited = {}
        for rec in registry.waiting():
            if rec.mutex in waited:
                waited[rec.mutex][1] += 1
            elif lock_word_owner(rec) == tid:
                waited[rec.mutex] = [rec, 1]
        lines = []
        own = registry.record_of_tid(tid)
        if own is not None and own.held:
            now, _ = now_ns(registry)
            for mutex, outer, site, since in own.held:
                lines.append(self.listed_hold(registry, tid, (mutex, outer), site, since, now,
                                              waited.get(mutex)))
            if own.held_count > len(own.held):
                lines.append("and %d more (a record lists %d)" % (own.held_count - len(own.held),
                                                                  len(own.held)))
        listed = {held[0] for held in own.held} if own is not None else set()
        for rec, count in waited.values():
            if rec.mutex in listed:
                continue
            wdm = registry.is_wdm(rec)
            name = mutex_name(registry, rec.mutex, rec.outer if wdm else 0)
            lines.append("%s %s, %d waiter%s" % (
                "FAST_MUTEX" if wdm else "fast_mutex_t", format_mutex(waiter_mutex(registry, rec), name),
                count, "" if count == 1 else "s"))
        for i, line in enumerate(lines):
            gdb.write("  %-14s%s\n" % ("Holds:" if i == 0 else "", line))

    @staticmethod
    def listed_hold(registry, tid, held, site, since, now, waited):
        """One mutex of a record's held list, as fmx thread shows it: held is
        (mutex, outer), a FAST_MUTEX named by its own address, outer."""
        mutex, outer = held
        rec, count = waited if waited is not None else (None, 0)
        if rec is not None and registry.is_wdm(rec):
            outer = waiter_mutex(registry, rec)
        wdm = outer != 0
        address = outer if wdm else mutex
        name = mutex_name(registry, mutex, outer)
        try:
            word = int.from_bytes(read_memory(mutex, 4, "the lock word"), "little")
            doubt = "" if word & FAST_MUTEX_OWNER_MASK == tid \
                else " [its lock word names another owner]"
        except FmxError:
            doubt = " [no mutex readable there]"
        return "%s %s, held %s%s%s\n  %-14s  taken at %s" % (
            "FAST_MUTEX" if wdm else "fast_mutex_t", format_mutex(address, name),
            format_waited(since, now), ", %d waiter%s" % (count, "" if count == 1 else "s")
            if count else "", doubt, "", format_site(site))

    def show_stack(self, thread):
        gdb.write("\nStack:\n")
        with Thread(thread):
            frame = gdb.newest_frame()
            inlined = []
            number = 0
            while frame is not None and number < 64:
                if frame.type() == gdb.INLINE_FRAME:
                    inlined.append(frame)
                else:
                    self.show_frame(number, frame, inlined)
                    inlined = []
                    number += 1
                try:
                    frame = frame.older()
                except gdb.error:
                    break

    def show_frame(self, number, frame, inlined):
        pc = frame.pc()
        where = symbol_offset(pc, number > 0 and frame.newer().type() != gdb.SIGTRAMP_FRAME) or "??"
        sal = frame.find_sal()
        if sal.symtab is not None:
            place = "%s:%d" % (sal.symtab.filename, sal.line)
        else:
            place = "(%s)" % (gdb.solib_name(pc) or gdb.selected_inferior().progspace.filename
                              or "unknown module")
        gdb.write("  #%-2d 0x%016x  %s  %s\n" % (number, pc, where, place))
        # The calls inlined at this address, from the outermost inward.
        for inner in reversed(inlined):
            inner_sal = inner.find_sal()
            function = inner.function()
            gdb.write("      inlined: %s  %s:%d\n" % (
                function.name if function else "??",
                inner_sal.symtab.filename if inner_sal.symtab else "??", inner_sal.line))


def register(objfile):
    """Registers the printers for `objfile` (None: for every program) and
    the commands, which a second load replaces."""
    gdb.printing.register_pretty_printer(objfile, build_printers(), replace=True)
    FmxCommand()
    FmxWaiters()
    FmxMutex()
    FmxThread()


register(gdb.current_objfile())
