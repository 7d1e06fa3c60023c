#!/bin/sh
# Writes litefs/<variant>/node-N.yml, one per node, from settings.<variant>.yml.
# The generated files are committed; test/deploy-examples.test.ts checks that
# this gives the same bytes. Needs litefs-proxy (npm i -g litefs-proxy, or in
# this repository: LITEFS_PROXY="node dist/esm/cli/main.js" after npm run build).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
for variant in sidecar fastify consul; do
  mkdir -p "$here/litefs/$variant"
  for node in node-1 node-2 node-3; do
    ${LITEFS_PROXY:-litefs-proxy} config --settings "$here/settings.$variant.yml" --node "$node" \
      --out "$here/litefs/$variant/$node.yml"
  done
done
