#!/bin/sh
# Writes static/litefs.yml (static lease, app-0 the primary) and consul/litefs.yml:
# one file for every pod, each pod named by ${POD_NAME}, which LiteFS fills in.
# test/deploy-examples.test.ts checks that this gives the committed bytes.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
lp=${LITEFS_PROXY:-litefs-proxy}
api='http://{hostname}.app.default.svc.cluster.local:20202'
$lp config --node '${POD_NAME}' --primary app-0 --advertise-url "$api" \
  --exec 'node examples/fastify/server.mjs' --out "$here/static/litefs.yml"
$lp config --lease consul --node '${POD_NAME}' --advertise-url "$api" \
  --consul-url http://consul.consul.svc.cluster.local:8500 --consul-key litefs/app --promote \
  --exec 'node examples/fastify/server.mjs' --out "$here/consul/litefs.yml"
