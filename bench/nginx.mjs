// nginx as the bench runs it: a plain reverse proxy in front of one app — one process
// (`master_process off`, as one sidecar process per node), upstream keep-alive, no access
// log, no consistency at all: the floor a proxy hop reaches on this machine. Used by
// real-litefs.mjs (its read rows) and profile-serve.mjs.
import { accessSync, constants, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** The nginx binary, or an error naming the script that installs it. */
export function nginxBinary () {
  const bin = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find(p => { try { accessSync(p, constants.X_OK); return true } catch { return false } })
  if (bin === undefined) throw new Error('nginx is not installed (scripts/install-test-deps.sh installs it)')
  return bin
}

/** Write `dir`/nginx.conf: listen on 127.0.0.1:`port`, proxy to 127.0.0.1:`target`. Returns its path. */
export function writeNginxConf (dir, port, target) {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(k => `  ${k}_temp_path ${join(dir, k)};`).join('\n')
  const file = join(dir, 'nginx.conf')
  writeFileSync(file, `master_process off;
daemon off;
worker_processes 1;
error_log stderr warn;
pid ${join(dir, 'nginx.pid')};
events { worker_connections 4096; }
http {
  access_log off;
${temp}
  # A client's connection and an upstream one are otherwise closed after 1,000
  # requests (nginx's default): the one-connection probe would see it closed.
  keepalive_requests 100000000;
  upstream app { server 127.0.0.1:${target}; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:${port} backlog=8192;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
}
`)
  return file
}
