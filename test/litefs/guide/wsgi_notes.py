"""A notes app in the standard library alone (wsgiref + sqlite3), as a non-Node
user of the guide writes one: the database is LiteFS's, through its mount.

    MOUNT=/litefs HOST=127.0.0.1 PORT=8000 python3 wsgi_notes.py

POST /notes {"user", "text"} -> 201 {"id"}; GET /notes?user=U -> 200 {"notes": [text, ...]}.
Prints "listening" once it accepts connections. On SIGTERM (LiteFS's exec passes
it on when LiteFS stops) it stops accepting, finishes the requests in flight and
exits, so LiteFS unmounts with no file of ours open.
"""
import json
import os
import signal
import threading
import sqlite3
import sys
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

DB = os.path.join(os.environ['MOUNT'], 'db.sqlite3')
# mode=rw: never create the database. Under a stopped LiteFS the mount point is a
# plain directory, where a created database would take writes that are lost.
DB_URI = 'file:' + quote(DB) + '?mode=rw'


# One connection held for the life of the process. A process whose last
# connection to a WAL database closes lets go of the WAL index (-shm), and its
# next open initializes it again; on a LiteFS replica that races LiteFS's own
# rewrite of the -shm as it applies each transaction, and the process dies of
# SIGBUS (seen within seconds of reads on a replica under writes, with Python's
# sqlite3 and better-sqlite3 alike). Holding a file open in the mount is safe
# here because LiteFS runs this app (exec): it stops the app before it unmounts.
anchor = None
anchor_lock = threading.Lock()


def connect():
    global anchor
    with anchor_lock:
        if anchor is None:  # opened on first use: the database may not exist when the app starts
            held = sqlite3.connect(DB_URI, uri=True, check_same_thread=False)
            held.execute('SELECT count(*) FROM sqlite_master').fetchall()  # maps the -shm
            anchor = held
    return sqlite3.connect(DB_URI, uri=True, timeout=5)


def answer(start_response, status, payload):
    body = json.dumps(payload).encode()
    start_response(status, [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
    return [body]


def app(environ, start_response):
    method = environ['REQUEST_METHOD']
    if environ.get('PATH_INFO') != '/notes':
        return answer(start_response, '404 Not Found', {'error': 'not found'})
    try:
        con = connect()
        try:
            if method == 'POST':
                length = int(environ.get('CONTENT_LENGTH') or 0)
                note = json.loads(environ['wsgi.input'].read(length))
                with con:
                    cur = con.execute('INSERT INTO notes (user, text) VALUES (?, ?)', (str(note['user']), str(note['text'])))
                return answer(start_response, '201 Created', {'id': cur.lastrowid})
            if method == 'GET':
                user = parse_qs(environ.get('QUERY_STRING', '')).get('user', [''])[0]
                rows = con.execute('SELECT text FROM notes WHERE user = ? ORDER BY id', (user,)).fetchall()
                return answer(start_response, '200 OK', {'notes': [r[0] for r in rows]})
            return answer(start_response, '405 Method Not Allowed', {'error': method})
        finally:
            con.close()
    except sqlite3.Error as e:
        return answer(start_response, '500 Internal Server Error', {'error': f'{type(e).__name__}: {e}'})


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = False  # server_close() waits for the requests in flight
    block_on_close = True
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == '__main__':
    server = make_server(os.environ.get('HOST', '127.0.0.1'), int(os.environ['PORT']), app, server_class=Server, handler_class=QuietHandler)
    # shutdown() waits for serve_forever's loop: called from another thread.
    stop = lambda *_: threading.Thread(target=server.shutdown).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print('listening', flush=True)
    server.serve_forever()
    # Serve what is already in the listen backlog before closing it: closing
    # would reset those connections, which a proxy cannot tell from a failure.
    server.socket.setblocking(False)
    while True:
        try:
            conn, addr = server.socket.accept()
        except OSError:
            break
        conn.setblocking(True)
        server.process_request(conn, addr)
    server.server_close()
    sys.exit(0)
