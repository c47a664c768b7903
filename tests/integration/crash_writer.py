"""Child process for the crash test: append forever with fsync=each, print every ack at once."""

import sys
import threading

from walrus.storage import Store


def main() -> None:
    root, writers = sys.argv[1], int(sys.argv[2])
    store = Store(root, fsync="each")
    if not store.has_segment("t", 0):
        store.create_segment("t", 0)
    out = sys.stdout
    lock = threading.Lock()

    def writer(k: int) -> None:
        i = 0
        while True:
            payload = f"{k}:{i}:".encode() + bytes([i % 251]) * (i % 700)
            offset = store.append("t", 0, payload)
            with lock:
                out.write(f"{offset} {k} {i}\n")
                out.flush()
            i += 1

    print("ready", flush=True)
    for k in range(writers):
        threading.Thread(target=writer, args=(k,), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
