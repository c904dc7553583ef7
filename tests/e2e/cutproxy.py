# tests/e2e/cutproxy.py - a TCP proxy that a scenario can cut.
#
# cutproxy.py LISTEN TARGET FLAG: forwards 127.0.0.1:LISTEN to
# 127.0.0.1:TARGET; while the file FLAG exists it refuses new connections
# and closes the open ones. Started by e2e_start_cut_proxy (lib.sh).
import os, socket, sys, threading, time
listen, target, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
conns, lock = set(), threading.Lock()
def cut():
    return os.path.exists(flag)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d or cut():
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()
def reaper():
    while True:
        time.sleep(0.1)
        if cut():
            with lock:
                for s in list(conns):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                conns.clear()
threading.Thread(target=reaper, daemon=True).start()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", listen))
ls.listen(64)
while True:
    c, _ = ls.accept()
    if cut():
        c.close()
        continue
    try:
        u = socket.create_connection(("127.0.0.1", target), timeout=5)
    except OSError:
        c.close()
        continue
    with lock:
        conns.update((c, u))
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()
