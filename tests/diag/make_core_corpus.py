#!/usr/bin/env python3
"""Makes the core fuzzer's seed corpus (tests/diag/corpus_core/): small core
files laid out as Linux writes them (ELF header, a PT_NOTE segment with
NT_PRPSINFO, NT_PRSTATUS for two threads, NT_AUXV and NT_FILE, then PT_LOAD
segments), whose memory holds a registry from the registry corpus and the
mutexes its records wait for.  A real core is megabytes; these keep only
what fmx reads, so that the fuzzer can mutate them quickly.

    make_core_corpus.py MAKE_SEEDS REGISTRY_CORPUS_DIR OUTPUT_DIR

The build runs it over the seeds it writes (from tests/diag/make_seeds.c),
so the cores follow the registry layout the build compiles: record sizes
come from each registry's header, and where a record keeps its thread id
and mutex from `MAKE_SEEDS --offsets`.
"""
import os
import struct
import subprocess
import sys

PID = 4242
REGISTRY_AT = 0x10000
MUTEXES_AT = 0x20000
ENTRY = 0x30000
HEADER = "<IIIIIIIIiIQQqQ"  # struct fmx_registry


def note(kind, desc):
    name = b"CORE\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)


def prstatus(tid):
    desc = bytearray(336)
    struct.pack_into("<i", desc, 32, tid)  # pr_pid
    struct.pack_into("<qq", desc, 48, 1, 250000)  # pr_utime
    return bytes(desc)


def prpsinfo():
    desc = bytearray(136)
    desc[1:2] = b"S"
    struct.pack_into("<i", desc, 24, PID)  # pr_pid
    desc[40:56] = b"diag_fixture".ljust(16, b"\0")
    return bytes(desc)


def auxv():
    return struct.pack("<QQQQ", 9, ENTRY, 0, 0)  # AT_ENTRY, AT_NULL


def file_note():
    path = b"/usr/bin/diag_fixture\0"
    return struct.pack("<QQQQQ", 1, 4096, ENTRY, ENTRY + 4096, 0) + path


def record_offsets(make_seeds):
    """Where struct fmx_record keeps tid and mutex, as the build compiles it."""
    out = subprocess.run([make_seeds, "--offsets"], check=True, capture_output=True, text=True).stdout
    fields = dict(item.split("=") for item in out.split())
    return int(fields["tid"]), int(fields["mutex"])


def registry_image(path, tid_offset, mutex_offset):
    """The registry of the corpus file, made this core's: its pid, and each
    record's mutex moved into the mutex segment."""
    reg = bytearray(open(path, "rb").read())
    fields = list(struct.unpack_from(HEADER, reg))
    fields[8] = PID
    struct.pack_into(HEADER, reg, 0, *fields)
    record_size, roff, used = fields[3], fields[10], fields[7]
    for i in range(used):
        at = roff + i * record_size
        if at + record_size <= len(reg):
            struct.pack_into("<Q", reg, at + mutex_offset, MUTEXES_AT + 16 * i)
            if i == 0:
                struct.pack_into("<i", reg, at + tid_offset, PID)
    return bytes(reg)


def mutexes():
    # Lock words: owner PID + 1 with the WAITERS bit, then a free one.
    return struct.pack("<IIII", (PID + 1) | 0x400000, 1, 1, 0) + bytes(16 * 7)


def core(registry):
    notes = note(3, prpsinfo()) + note(1, prstatus(PID)) + note(1, prstatus(PID + 1)) + \
        note(6, auxv()) + note(0x46494C45, file_note())
    segments = [(4, notes, 0, 4), (1, registry, REGISTRY_AT, 4096), (1, mutexes(), MUTEXES_AT, 4096)]
    phoff = 64
    offset = phoff + 56 * len(segments)
    phdrs, body = b"", b""
    for kind, data, vaddr, align in segments:
        phdrs += struct.pack("<IIQQQQQQ", kind, 4 | 2, offset + len(body), vaddr, 0, len(data),
                             len(data), align)
        body += data
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, phoff, 0, 0, 64, 56, len(segments),
                               64, 0, 0)
    return ehdr + phdrs + body


def main():
    make_seeds, seeds, out = sys.argv[1:]
    tid_offset, mutex_offset = record_offsets(make_seeds)
    os.makedirs(out, exist_ok=True)
    for name in ("hold-valid", "deadlock-valid"):
        with open(os.path.join(out, name + ".core"), "wb") as f:
            f.write(core(registry_image(os.path.join(seeds, name), tid_offset, mutex_offset)))


main()
