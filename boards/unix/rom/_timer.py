# machine.Timer of the virtual board. A board's timer interrupt runs its callback as a
# soft IRQ between two bytecodes, even inside a loop that never yields; here a thread
# plays the timer hardware and hands the callback to micropython.schedule likewise.
import _thread
import micropython
import time

ONE_SHOT = 0
PERIODIC = 1


class Timer:
    ONE_SHOT = ONE_SHOT
    PERIODIC = PERIODIC

    def __init__(self, id=-1, **kw):
        self.gen = 0  # bumped by init/deinit: an old timer thread notices and ends
        if kw:
            self.init(**kw)

    def init(self, mode=PERIODIC, period=-1, callback=None, freq=None):
        if freq:
            period = 1000 // freq
        if period < 1:
            raise ValueError("Timer period must be at least 1 ms")
        self.gen += 1
        self.mode, self.period, self.callback = mode, period, callback
        _thread.start_new_thread(self._run, (self.gen,))

    def deinit(self):
        self.gen += 1

    def _run(self, gen):
        while True:
            time.sleep_ms(self.period)
            if gen != self.gen:
                return
            try:
                micropython.schedule(self.callback, self)
            except RuntimeError:
                pass  # the soft-IRQ queue is full: this tick is lost, as on a board
            if self.mode == ONE_SHOT:
                return
