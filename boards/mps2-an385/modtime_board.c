// time.time() for Outstack Micro's MPS2 AN385 board (included by extmod/modtime.c).
// No RTC on this board: seconds since the start, as time.time_ns() counts nanoseconds.
static mp_obj_t mp_time_time_get(void) {
    return mp_obj_new_int_from_uint(mp_hal_ticks_ms() / 1000u);
}
