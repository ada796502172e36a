/* A core dump, read with libelf (layout and rules in core.h). */
#include "core.h"
#include "untrusted.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/procfs.h>
#include <sys/stat.h>
#include <unistd.h>

/* The notes are read into this machine's own structures (struct
 * elf_prstatus and friends), so only cores of this architecture are read. */
#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#define HOST_MACHINE_NAME "x86-64"
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#define HOST_MACHINE_NAME "AArch64"
#else
#error "fmx reads cores of x86-64 and AArch64 only"
#endif

static const char *machine_name(unsigned machine)
{
    switch (machine) {
    case EM_386:
        return "i386";
    case EM_X86_64:
        return "x86-64";
    case EM_ARM:
        return "ARM";
    case EM_AARCH64:
        return "AArch64";
    case EM_PPC64:
        return "PowerPC64";
    case EM_S390:
        return "s390";
    case EM_RISCV:
        return "RISC-V";
    default:
        return "unknown";
    }
}

static const char *elf_type_name(unsigned type)
{
    switch (type) {
    case ET_REL:
        return "an object file";
    case ET_EXEC:
        return "an executable";
    case ET_DYN:
        return "a shared object or position-independent executable";
    default:
        return "not a core dump";
    }
}

/* The header: an ELF core of this machine. */
static int check_header(struct fmx_core *core, char *why, size_t whylen)
{
    if (elf_kind(core->elf) != ELF_K_ELF) {
        fmx_set_why(why, whylen, "not an ELF file, so not a core dump");
        return EPROTO;
    }
    GElf_Ehdr ehdr;
    if (gelf_getehdr(core->elf, &ehdr) == NULL) {
        fmx_set_why(why, whylen, "its ELF header cannot be read (%s)", elf_errmsg(-1));
        return EPROTO;
    }
    if (ehdr.e_type != ET_CORE) {
        fmx_set_why(why, whylen, "an ELF file but not a core dump (it is %s)", elf_type_name(ehdr.e_type));
        return EPROTO;
    }
    if (ehdr.e_machine != HOST_MACHINE || ehdr.e_ident[EI_CLASS] != ELFCLASS64 ||
        ehdr.e_ident[EI_DATA] != ELFDATA2LSB) {
        fmx_set_why(why, whylen, "a core of another architecture (%s, e_machine %u); this fmx reads %s cores",
                machine_name(ehdr.e_machine), (unsigned)ehdr.e_machine, HOST_MACHINE_NAME);
        return EPROTO;
    }
    return 0;
}

/* Every segment lies inside the file; a core cut short says so here. */
static int check_segments(struct fmx_core *core, char *why, size_t whylen)
{
    size_t n;
    if (elf_getphdrnum(core->elf, &n) != 0) {
        fmx_set_why(why, whylen, "its program headers cannot be read (%s): truncated or corrupt",
                elf_errmsg(-1));
        return EPROTO;
    }
    uint64_t needed = 0;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr phdr;
        if (gelf_getphdr(core->elf, (int)i, &phdr) == NULL) {
            fmx_set_why(why, whylen, "program header %zu cannot be read (%s)", i, elf_errmsg(-1));
            return EPROTO;
        }
        if (phdr.p_offset > UINT64_MAX - phdr.p_filesz) {
            fmx_set_why(why, whylen, "segment %zu has an impossible size", i);
            return EPROTO;
        }
        if (phdr.p_offset + phdr.p_filesz > needed)
            needed = phdr.p_offset + phdr.p_filesz;
    }
    if (needed > core->file_size) {
        fmx_set_why(why, whylen, "truncated: its segments need %llu bytes, the file has %llu",
                (unsigned long long)needed, (unsigned long long)core->file_size);
        return EPROTO;
    }
    return 0;
}

static int add_thread(struct fmx_core *core, const struct elf_prstatus *status)
{
    if (status->pr_pid <= 0)
        return 0; /* not a thread id: ignore the note */
    struct fmx_core_thread *threads = realloc(core->threads, (core->nthreads + 1) * sizeof *threads);
    if (threads == NULL)
        return ENOMEM;
    core->threads = threads;
    threads[core->nthreads++] = (struct fmx_core_thread){
        .tid = status->pr_pid,
        .user_seconds = (double)status->pr_utime.tv_sec + (double)status->pr_utime.tv_usec / 1e6,
        .kernel_seconds = (double)status->pr_stime.tv_sec + (double)status->pr_stime.tv_usec / 1e6,
    };
    return 0;
}

static void read_auxv(struct fmx_core *core, const unsigned char *desc, size_t size)
{
    for (size_t off = 0; off + 16 <= size; off += 16) {
        uint64_t type, value;
        memcpy(&type, desc + off, 8);
        memcpy(&value, desc + off + 8, 8);
        if (type == AT_ENTRY)
            core->entry = value;
    }
}

/* NT_FILE: count, page size, count (start, end, offset) triples, then
 * count NUL-terminated paths.  Finds the path mapped at core->entry. */
static void read_file_note(struct fmx_core *core, const unsigned char *desc, size_t size)
{
    uint64_t count;
    if (core->entry == 0 || size < 16)
        return;
    memcpy(&count, desc, 8);
    if (count > (size - 16) / 24)
        return;
    const char *names = (const char *)desc + 16 + count * 24;
    const char *end = (const char *)desc + size;
    for (uint64_t i = 0; i < count && names < end; i++) {
        size_t len = strnlen(names, (size_t)(end - names));
        if (names + len == end)
            return; /* the last path is not terminated */
        uint64_t start, stop;
        memcpy(&start, desc + 16 + i * 24, 8);
        memcpy(&stop, desc + 16 + i * 24 + 8, 8);
        if (start <= core->entry && core->entry < stop) {
            fmx_display_string(core->exe, names, len < sizeof core->exe - 1 ? len : sizeof core->exe - 1);
            return;
        }
        names += len + 1;
    }
}

/* One note of a PT_NOTE segment; the CORE notes fill in *core.  NT_FILE is
 * handed back to read once NT_AUXV has given the entry point. */
static int read_note(struct fmx_core *core, const GElf_Nhdr *nhdr, const char *name,
                     const unsigned char *desc, const unsigned char **file_note, size_t *file_size)
{
    if (nhdr->n_namesz != sizeof "CORE" || memcmp(name, "CORE", sizeof "CORE") != 0)
        return 0;
    if (nhdr->n_type == NT_PRSTATUS && nhdr->n_descsz >= sizeof(struct elf_prstatus)) {
        struct elf_prstatus status;
        memcpy(&status, desc, sizeof status);
        return add_thread(core, &status);
    }
    if (nhdr->n_type == NT_PRPSINFO && nhdr->n_descsz >= sizeof(struct elf_prpsinfo)) {
        struct elf_prpsinfo info;
        memcpy(&info, desc, sizeof info);
        if (info.pr_pid > 0)
            core->pid = info.pr_pid;
        _Static_assert(sizeof info.pr_fname < sizeof core->name, "a comm fits fmx_comm");
        fmx_display_string(core->name, info.pr_fname, sizeof info.pr_fname);
    } else if (nhdr->n_type == NT_AUXV) {
        read_auxv(core, desc, nhdr->n_descsz);
    } else if (nhdr->n_type == NT_FILE) {
        *file_note = desc;
        *file_size = nhdr->n_descsz;
    }
    return 0;
}

static int read_notes(struct fmx_core *core, char *why, size_t whylen)
{
    size_t n;
    const unsigned char *file_note = NULL;
    size_t file_size = 0;
    (void)elf_getphdrnum(core->elf, &n);
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr phdr;
        if (gelf_getphdr(core->elf, (int)i, &phdr) == NULL || phdr.p_type != PT_NOTE || phdr.p_filesz == 0)
            continue;
        Elf_Data *data = elf_getdata_rawchunk(core->elf, (int64_t)phdr.p_offset, phdr.p_filesz,
                                              phdr.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
        if (data == NULL)
            continue;
        GElf_Nhdr nhdr;
        size_t name_at, desc_at;
        for (size_t off = 0; (off = gelf_getnote(data, off, &nhdr, &name_at, &desc_at)) > 0;) {
            const unsigned char *bytes = data->d_buf;
            int err = read_note(core, &nhdr, (const char *)bytes + name_at, bytes + desc_at, &file_note,
                                &file_size);
            if (err != 0) {
                fmx_set_why(why, whylen, "out of memory");
                return err;
            }
        }
    }
    if (core->pid <= 0 && core->nthreads > 0)
        core->pid = core->threads[0].tid;
    if (core->pid <= 0) {
        fmx_set_why(why, whylen, "a core without process notes (NT_PRPSINFO, NT_PRSTATUS)");
        return EPROTO;
    }
    if (file_note != NULL)
        read_file_note(core, file_note, file_size);
    return 0;
}

static int inspect(struct fmx_core *core, char *why, size_t whylen)
{
    snprintf(core->name, sizeof core->name, "?");
    int err = check_header(core, why, whylen);
    if (err == 0)
        err = check_segments(core, why, whylen);
    if (err == 0)
        err = read_notes(core, why, whylen);
    if (err != 0)
        fmx_core_close(core);
    return err;
}

int fmx_core_open(const char *path, struct fmx_core *core, char *why, size_t whylen)
{
    *core = (struct fmx_core){.fd = -1};
    (void)elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        fmx_set_why(why, whylen, "%s", strerror(err));
        return err;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fmx_set_why(why, whylen, "not a regular file");
        close(fd);
        return EPROTO;
    }
    core->fd = fd;
    core->file_size = (uint64_t)st.st_size;
    core->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    core->elf = elf_begin(fd, ELF_C_READ, NULL);
    if (core->elf == NULL) {
        fmx_set_why(why, whylen, "not an ELF file, so not a core dump (%s)", elf_errmsg(-1));
        fmx_core_close(core);
        return EPROTO;
    }
    return inspect(core, why, whylen);
}

int fmx_core_from_image(const void *data, size_t size, struct fmx_core *core, char *why, size_t whylen)
{
    *core = (struct fmx_core){.fd = -1, .file_size = size};
    (void)elf_version(EV_CURRENT);
    core->elf = elf_memory((char *)data, size);
    if (core->elf == NULL) {
        fmx_set_why(why, whylen, "not an ELF file (%s)", elf_errmsg(-1));
        return EPROTO;
    }
    return inspect(core, why, whylen);
}

void fmx_core_close(struct fmx_core *core)
{
    if (core->elf != NULL)
        elf_end(core->elf);
    if (core->fd >= 0)
        close(core->fd);
    free(core->threads);
    *core = (struct fmx_core){.fd = -1};
}

int fmx_core_read(const struct fmx_core *core, uint64_t addr, void *buf, size_t len)
{
    size_t n;
    if (elf_getphdrnum(core->elf, &n) != 0 || addr > UINT64_MAX - len)
        return EFAULT;
    for (size_t i = 0; i < n; i++) {
        GElf_Phdr phdr;
        if (gelf_getphdr(core->elf, (int)i, &phdr) == NULL || phdr.p_type != PT_LOAD)
            continue;
        if (addr < phdr.p_vaddr || addr - phdr.p_vaddr > phdr.p_memsz ||
            len > phdr.p_memsz - (addr - phdr.p_vaddr))
            continue;
        uint64_t rel = addr - phdr.p_vaddr;
        if (rel > phdr.p_filesz || len > phdr.p_filesz - rel)
            return ENODATA;
        /* check_segments() has seen the segment inside the file. */
        Elf_Data *data = elf_getdata_rawchunk(core->elf, (int64_t)(phdr.p_offset + rel), len, ELF_T_BYTE);
        if (data == NULL)
            return EIO;
        memcpy(buf, data->d_buf, len);
        return 0;
    }
    return EFAULT;
}

const struct fmx_core_thread *fmx_core_thread(const struct fmx_core *core, pid_t tid)
{
    for (size_t i = 0; i < core->nthreads; i++)
        if (core->threads[i].tid == tid)
            return &core->threads[i];
    return NULL;
}

bool fmx_core_next_region(struct fmx_core *core, uint32_t magic, size_t max, size_t *index, const void **data,
                          size_t *size, uint64_t *address)
{
    size_t n;
    if (elf_getphdrnum(core->elf, &n) != 0)
        return false;
    for (; *index < n; (*index)++) {
        GElf_Phdr phdr;
        uint32_t first;
        if (gelf_getphdr(core->elf, (int)*index, &phdr) == NULL || phdr.p_type != PT_LOAD ||
            phdr.p_filesz < sizeof first || fmx_core_read(core, phdr.p_vaddr, &first, sizeof first) != 0 ||
            first != magic)
            continue;
        size_t len = phdr.p_filesz < max ? (size_t)phdr.p_filesz : max;
        /* check_segments() has seen the segment inside the file. */
        Elf_Data *chunk = elf_getdata_rawchunk(core->elf, (int64_t)phdr.p_offset, len, ELF_T_BYTE);
        if (chunk == NULL)
            continue;
        *data = chunk->d_buf;
        *size = len;
        *address = phdr.p_vaddr;
        (*index)++;
        return true;
    }
    return false;
}

int fmx_core_registry(struct fmx_core *core, struct fmx_registry_reader *reader, char *why, size_t whylen)
{
    char corrupt[200] = "";
    size_t index = 0, size;
    const void *data;
    uint64_t address;
    *reader = (struct fmx_registry_reader){.fd = -1};
    while (fmx_core_next_region(core, FMX_REGISTRY_MAGIC, FMX_READER_MAX_IMAGE, &index, &data, &size, &address)) {
        char reason[200];
        if (fmx_registry_from_image(data, size, reader, reason, sizeof reason) != 0) {
            snprintf(corrupt, sizeof corrupt, "%s", reason);
            continue;
        }
        /* A forked child may still map its parent's registry: only the
         * one this process made describes its threads. */
        if (reader->layout.pid == core->pid) {
            core->registry_address = address;
            return 0;
        }
        fmx_registry_close(reader);
    }
    if (corrupt[0] != '\0') {
        fmx_set_why(why, whylen, "core of process %d: %s", (int)core->pid, corrupt);
        return EPROTO;
    }
    fmx_set_why(why, whylen,
            "core of process %d (%s) has no fastmutex registry: it did not use fastmutex, or it had "
            "neither named a mutex nor had a thread wait for one",
            (int)core->pid, core->name);
    return ENOENT;
}
