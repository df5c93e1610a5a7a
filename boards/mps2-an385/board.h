// Outstack Micro's MPS2 AN385 board: what board.c gives the rest of the firmware.
#ifndef OUTSTACK_MPS2_BOARD_H
#define OUTSTACK_MPS2_BOARD_H

#include <stdint.h>

#define BOARD_CLOCK_HZ (25000000u)

// Kept in SSRAM2, which no part of the image uses and QEMU leaves alone over a system reset.
typedef struct _board_noinit_t {
    uint32_t magic;
    uint32_t cause;       // reset cause of the next start (BOARD_RESET_*)
    uint32_t fault_kind;  // exception number (IPSR) of the last fault, 0 if none
    uint32_t fault_pc;
    uint32_t fault_lr;
    uint32_t fault_cfsr;
    uint32_t fault_mmfar;
    uint32_t fault_bfar;
    uint32_t backup[4];   // at 0x20000020: survives resets, not a power cut
    uint32_t running;     // at 0x20000030: the number of the server whose handler runs (the
                          // kernel writes it before each handler, 0 after), outstack.hal.noinit
    uint32_t fault_running;  // `running` when the last fault or watchdog NMI came
    uint32_t vm_starts;   // VM starts since the last reset: 2 and up are soft reboots
} board_noinit_t;

#define BOARD_NOINIT ((volatile board_noinit_t *)0x20000000)

int board_reset_cause(void);
__attribute__((noreturn)) void board_system_reset(uint32_t cause);

#endif
