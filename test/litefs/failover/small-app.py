# The failover suite's small non-Node app behind `litefs-proxy serve`: a Python
# standard-library HTTP server on 127.0.0.1 in the node's namespace, writing
# tokens and reading them back, naming its node in x-node. It knows nothing of
# LiteFS: serve does the holding, forwarding and cookies. One SQLite connection,
# opened on first use (never creating the file), closed after 1 s idle and after
# any error, so it holds LiteFS's mount as little as it can: the suite runs its
# apps beside LiteFS, not under its exec (which stops the app before unmounting),
# and an app behind serve is not told that LiteFS went away. The README's advice
# for apps under exec (one connection kept for the process) is what
# examples/docker-compose/python/notes.py does.
#   NODE, PORT, MOUNT
import json
import os
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NODE = os.environ['NODE']
PATH = os.path.join(os.environ['MOUNT'], 'app.db')
lock = threading.Lock()
conn = None
last_use = 0.0


def database():
    global conn, last_use
    last_use = time.monotonic()
    if conn is None:
        conn = sqlite3.connect(f'file:{PATH}?mode=rw', uri=True, timeout=0.25, isolation_level=None, check_same_thread=False)
    return conn


def close():
    global conn
    if conn is not None:
        try:
            conn.close()
        except sqlite3.Error:
            pass
    conn = None


def closer():
    while True:
        time.sleep(0.2)
        with lock:
            if conn is not None and time.monotonic() - last_use > 1:
                close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('content-type', 'application/json')
        self.send_header('content-length', str(len(data)))
        self.send_header('x-node', NODE)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get('content-length') or 0)) or b'{}')
        with lock:
            try:
                database().execute('INSERT INTO tokens (token) VALUES (?)', (str(body['token']),))
            except sqlite3.Error as err:
                close()
                return self.answer(500, {'error': str(err), 'code': 'SQLITE_ERROR'})
        self.answer(201, {'ok': True})

    def do_GET(self):
        token = self.path.rsplit('/', 1)[-1]
        with lock:
            try:
                n = database().execute('SELECT count(*) FROM tokens WHERE token = ?', (token,)).fetchone()[0]
            except sqlite3.Error as err:
                close()
                return self.answer(500, {'error': str(err), 'code': 'SQLITE_ERROR'})
        self.answer(200, {'found': n > 0})


threading.Thread(target=closer, daemon=True).start()
server = ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), Handler)
print('listening', flush=True)
server.serve_forever()
