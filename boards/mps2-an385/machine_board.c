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

static mp_obj_t mp_machine_unique_id(void) {
    // QEMU models no device ID: every emulated board is the same part.
    return mp_obj_new_bytes((const byte *)"MPS2AN385", 9);
}

static mp_obj_t mp_machine_get_freq(void) {
    return mp_obj_new_int(BOARD_CLOCK_HZ);
}

static void mp_machine_set_freq(size_t n_args, const mp_obj_t *args) {
    mp_raise_ValueError(MP_ERROR_TEXT("the clock is fixed at 25 MHz"));
}

// The core sleeps (WFI) until the time is up; interrupts (UART0, SysTick) wake it meanwhile.
static void mp_machine_lightsleep(size_t n_args, const mp_obj_t *args) {
    if (n_args == 0) {
        __asm volatile ("wfi");
        return;
    }
    mp_int_t ms = mp_obj_get_int(args[0]);
    mp_uint_t start = mp_hal_ticks_ms();
    while ((mp_int_t)(mp_hal_ticks_ms() - start) < ms) {
        __asm volatile ("wfi");
    }
}

// Sleeps, then starts again from reset with the cause DEEPSLEEP (RAM is kept by QEMU).
MP_NORETURN static void mp_machine_deepsleep(size_t n_args, const mp_obj_t *args) {
    mp_machine_lightsleep(n_args, args);
    board_system_reset(BOARD_RESET_DEEPSLEEP);
}
