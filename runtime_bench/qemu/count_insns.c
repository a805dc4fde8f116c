/*
 * gs-bench instruction counter: a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that counts the
 * aarch64 instructions a guest executes, split into the classes that carry a network's MACs.
 *
 *   qemu-aarch64 -cpu neoverse-n1 -plugin libgs_count.so,out=FILE  program ...
 *
 * Snapshots: the guest marks a point by issuing syscall number GS_MARK (not a Linux syscall; QEMU
 * answers ENOSYS); each mark appends the running totals to the snapshot list. At exit, FILE gets one
 * line per snapshot and a last line for the whole run:
 *
 *   mark <arg> total <n> sdot <n> smmla <n> fmla <n> smlal <n>
 *   exit 0 total <n> ...
 *
 * The difference of two snapshots is what ran between them (e.g. one inference, without start-up).
 *
 * Classes are decoded from the A64 encoding, not from a disassembler (Debian's capstone 4 predates
 * the Armv8.6 matrix-multiply instructions):
 *   sdot  SDOT/UDOT/USDOT/SUDOT, vector and by element (Armv8.2 dot product: int8 GEMM on A76/N1);
 *   smmla SMMLA/UMMLA/USMMLA (Armv8.6 i8mm);
 *   fmla  FMLA/FMLS vector and by element, single/double precision (fp32 GEMM);
 *   smlal SMLAL/UMLAL/SMULL/UMULL widening vector multiplies (int8 GEMM without dot product).
 *
 * Debian ships no qemu-plugin.h, so the few API declarations used are written out below; they match
 * include/qemu/qemu-plugin.h of QEMU 7.2 (API version 1). Counting is per translation block with
 * inline adds (no helper calls): exact for a single guest thread, which is how gs-bench counts.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1,
                             uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                             uint64_t a7, uint64_t a8);
typedef void (*udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op,
                                              void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb_t cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define GS_MARK 0x6773 /* "gs" */
enum { TOTAL, SDOT, SMMLA, FMLA, SMLAL, NCLASS };
static const char *const class_names[NCLASS] = {"total", "sdot", "smmla", "fmla", "smlal"};

static uint64_t counts[NCLASS];
static FILE *out;

/* The class of one A64 instruction word (TOTAL: none of the MAC classes). */
static int classify(uint32_t w)
{
    if ((w & 0x9FE0F400) == 0x0E809400) /* SDOT/UDOT (opcode 0010), USDOT (0011): vector, size 10 */
        return SDOT;
    if ((w & 0x9F00E400) == 0x0F00E000) /* SDOT/UDOT (1110), SUDOT/USDOT (1111): by element */
        return SDOT;
    if ((w & 0xDFE0F400) == 0x4E80A400) /* SMMLA/UMMLA (0100), USMMLA (0101) */
        return SMMLA;
    if ((w & 0xBF20FC00) == 0x0E20CC00) /* FMLA/FMLS vector (bit 23), single/double (bit 22) */
        return FMLA;
    if ((w & 0xBF80B400) == 0x0F801000) /* FMLA (0001)/FMLS (0101) by element, single/double */
        return FMLA;
    if ((w & 0x9F20BC00) == 0x0E208000) /* SMLAL/UMLAL (1000), SMULL/UMULL (1100): vector */
        return SMLAL;
    if ((w & 0x9F007400) == 0x0F002000) /* SMLAL/UMLAL (0010), SMULL/UMULL (1010): by element */
        return SMLAL;
    return TOTAL;
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    uint64_t n[NCLASS] = {0};
    size_t insns = qemu_plugin_tb_n_insns(tb);
    n[TOTAL] = insns;
    for (size_t i = 0; i < insns; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t w;
        if (qemu_plugin_insn_size(insn) != 4)
            continue;
        memcpy(&w, qemu_plugin_insn_data(insn), 4);
        int c = classify(w);
        if (c != TOTAL)
            n[c]++;
    }
    for (int c = 0; c < NCLASS; c++)
        if (n[c])
            qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &counts[c], n[c]);
}

static void write_line(const char *what, uint64_t arg)
{
    fprintf(out, "%s %" PRIu64, what, arg);
    for (int c = 0; c < NCLASS; c++)
        fprintf(out, " %s %" PRIu64, class_names[c], counts[c]);
    fputc('\n', out);
    fflush(out);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num == GS_MARK)
        write_line("mark", a1);
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    write_line("exit", 0);
    fclose(out);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0)
            path = argv[i] + 4;
    if (path == NULL || strcmp(info->target_name, "aarch64") != 0 || info->system_emulation) {
        fprintf(stderr, "gs_count: needs out=FILE and qemu-aarch64 (user mode)\n");
        return 1;
    }
    out = fopen(path, "w");
    if (out == NULL) {
        perror(path);
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
