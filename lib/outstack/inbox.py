# A server's one bounded inbox: a ring of preallocated slots, so putting and taking a
# message never allocates. Each slot holds the message, its argument, where it came from
# (a Client waiting for the reply, a Subscription, or None for a plain cast) and a sequence
# number that ties a reply to the call it answers.


class Inbox:
    def __init__(self, size):
        self.size = size
        self.msg = [None] * size
        self.arg = [None] * size
        self.src = [None] * size
        self.seq = [0] * size
        self.head = 0
        self.count = 0
        self.high = 0  # high-water mark since start
        self.taken = 0  # messages handed to the server since start

    def put(self, msg, arg, src, seq):
        if self.count == self.size:
            return False
        i = (self.head + self.count) % self.size
        self.msg[i] = msg
        self.arg[i] = arg
        self.src[i] = src
        self.seq[i] = seq
        self.count += 1
        if self.count > self.high:
            self.high = self.count
        return True

    def drop(self):
        # Forget the head slot (after the caller has read its fields).
        i = self.head
        self.msg[i] = self.arg[i] = self.src[i] = None
        self.head = (i + 1) % self.size
        self.count -= 1
        self.taken += 1

    def clear(self):
        while self.count:
            self.drop()
