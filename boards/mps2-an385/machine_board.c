// machine for Outstack Micro's MPS2 AN385 board (included by extmod/modmachine.c).
#include "board.h"

static void mp_machine_idle(void) {
    __asm volatile ("wfi");
}

MP_NORETURN static void mp_machine_reset(void) {
    board_system_reset(BOARD_RESET_SOFT);
}

static mp_int_t mp_machine_reset_cause(void) {
    return board_reset_cause();
}
