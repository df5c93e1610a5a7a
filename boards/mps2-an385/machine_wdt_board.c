// machine.WDT on the AN385's CMSDK APB watchdog (included by extmod/machine_wdt.c).
// Its first expiry raises an NMI (board.c records the cause WDT), its second resets the board.
#include "board.h"

#define WDOG_LOAD (*(volatile uint32_t *)0x40008000)
#define WDOG_CONTROL (*(volatile uint32_t *)0x40008008)
#define WDOG_INTCLR (*(volatile uint32_t *)0x4000800c)
#define WDOG_LOCK (*(volatile uint32_t *)0x40008c00)
#define WDOG_UNLOCK_KEY (0x1acce551u)
#define WDOG_INTEN_RESEN (3u)
#define WDOG_MAX_MS (0xffffffffu / (BOARD_CLOCK_HZ / 1000u))

struct _machine_wdt_obj_t {
    mp_obj_base_t base;
};

static const machine_wdt_obj_t machine_wdt = { { &machine_wdt_type } };

static machine_wdt_obj_t *mp_machine_wdt_make_new_instance(mp_obj_t id, mp_int_t timeout_ms) {
    if (mp_obj_get_int(id) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("WDT id must be 0"));
    }
    if (timeout_ms < 1 || (mp_uint_t)timeout_ms > WDOG_MAX_MS) {
        mp_raise_ValueError(MP_ERROR_TEXT("WDT timeout out of range"));
    }
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_LOAD = (uint32_t)timeout_ms * (BOARD_CLOCK_HZ / 1000u);
    WDOG_CONTROL = WDOG_INTEN_RESEN;
    WDOG_LOCK = 0;
    return (machine_wdt_obj_t *)&machine_wdt;
}

static void mp_machine_wdt_feed(machine_wdt_obj_t *self) {
    (void)self;
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    WDOG_INTCLR = 1;  // clears the interrupt and reloads the counter
    WDOG_LOCK = 0;
}
