#!/bin/sh
# Writes litefs.yml for Fly.io: a Consul lease (Fly's, `fly consul attach`),
# candidates in the primary region only, the lease hostname the Machine ID
# (what Fly's edge needs in `fly-replay: instance=<id>`). One file for every
# Machine: LiteFS fills in the ${FLY_*} variables. test/deploy-examples.test.ts
# checks that this gives the committed bytes.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
${LITEFS_PROXY:-litefs-proxy} config --lease consul --node '${FLY_MACHINE_ID}' \
  --advertise-url 'http://{hostname}.vm.${FLY_APP_NAME}.internal:20202' \
  --candidate='${FLY_REGION == PRIMARY_REGION}' --promote \
  --consul-url '${FLY_CONSUL_URL}' --consul-key 'litefs/${FLY_APP_NAME}' \
  --exec 'node examples/fastify/server.mjs' --out "$here/litefs.yml"
