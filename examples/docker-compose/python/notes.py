"""A tiny notes app: WSGI, Python's standard library only, SQLite on LiteFS.

It knows nothing about LiteFS's replication: litefs-proxy serve, in front of it,
sends writes that land on a replica to the primary and holds a read until this
node has the client's last write. The app opens the database per request, holds
one connection open besides (see connect(): LiteFS replicas need it), and
creates its table on the primary (replicas are read-only and receive it).

    POST /notes  {"user": "ada", "text": "hello"}  ->  201 {"id": 1}
    GET  /notes?user=ada                            ->  200 {"notes": [{"id": 1, "text": "hello"}]}

Environment: NOTES_DB (default /litefs/notes.db), NOTES_PORT (default 8000).
"""
import json
import os
import signal
import sqlite3
import sys
import threading
from socketserver import ThreadingMixIn
from urllib.parse import parse_qs, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

DB = os.environ.get("NOTES_DB", "/litefs/notes.db")
PORT = int(os.environ.get("NOTES_PORT", "8000"))
# mode=rw: requests never create the database. On a replica the primary's
# arrives; and if LiteFS were gone, its mount point would be a plain directory
# where a new database would take writes that are lost.
DB_URI = "file:" + quote(DB) + "?mode=rw"
SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, user TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS notes_user ON notes (user, id);
"""

# One connection held for the life of the process, besides one per request. A
# process whose last connection to a WAL database closes lets go of the WAL
# index (-shm), and its next open maps it again; on a LiteFS replica that races
# LiteFS's own rewrite of the -shm as it applies each transaction, and the
# process dies of SIGBUS (seen in `npm run test:deploy` within a minute of reads
# on a replica under writes). Holding a file open in the mount is safe because
# LiteFS runs this app (exec:) and stops it before it unmounts.
anchor = None
anchor_lock = threading.Lock()


def connect():
    global anchor
    with anchor_lock:
        if anchor is None:  # on first use: the database may not exist when the app starts
            held = sqlite3.connect(DB_URI, uri=True, check_same_thread=False)
            held.execute("SELECT count(*) FROM sqlite_master").fetchall()  # maps the -shm
            anchor = held
    return sqlite3.connect(DB_URI, uri=True, timeout=5)


def create_schema():
    """On the primary: WAL mode and the table. A replica has a .primary file and receives both."""
    if os.path.exists(os.path.join(os.path.dirname(DB), ".primary")):
        return
    db = sqlite3.connect(DB, timeout=5)  # the one place that may create the file
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
    finally:
        db.close()


def answer(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def app(environ, start_response):
    method = environ["REQUEST_METHOD"]
    if environ.get("PATH_INFO") != "/notes":
        return answer(start_response, "404 Not Found", {"error": "not found"})
    try:
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            note = json.loads(environ["wsgi.input"].read(length) or b"null")
            if not isinstance(note, dict) or not isinstance(note.get("user"), str) or not isinstance(note.get("text"), str):
                return answer(start_response, "400 Bad Request", {"error": 'expected {"user": "...", "text": "..."}'})
            db = connect()
            try:
                with db:
                    cur = db.execute("INSERT INTO notes (user, text) VALUES (?, ?)", (note["user"], note["text"]))
                return answer(start_response, "201 Created", {"id": cur.lastrowid})
            finally:
                db.close()
        if method == "GET":
            user = parse_qs(environ.get("QUERY_STRING", "")).get("user", [""])[0]
            db = connect()
            try:
                rows = db.execute("SELECT id, text FROM notes WHERE user = ? ORDER BY id", (user,)).fetchall()
            finally:
                db.close()
            return answer(start_response, "200 OK", {"notes": [{"id": i, "text": t} for i, t in rows]})
        return answer(start_response, "405 Method Not Allowed", {"error": "GET or POST"})
    except (ValueError, sqlite3.Error) as err:
        # e.g. a replica that has not received the table yet, or a bad body
        return answer(start_response, "503 Service Unavailable", {"error": str(err)})


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # litefs-proxy serve logs a line per request
        pass


if __name__ == "__main__":
    # SIGTERM (from notes-start, from LiteFS) ends serve_forever: a clean exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    create_schema()
    with make_server("127.0.0.1", PORT, app, server_class=Server, handler_class=Quiet) as server:
        print(f"notes: listening on 127.0.0.1:{PORT}, database {DB}", file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
