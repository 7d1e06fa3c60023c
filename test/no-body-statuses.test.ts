// A 204 or 304 has no body, whatever its Content-Length says: RFC 9110 §8.6
// lets a 304 carry the length of the representation it stands for, and apps
// put one on a 204 too. undici, reading such an answer, counts the bytes that
// never come as a broken answer; the client of a forwarded write, or of serve,
// got nothing at all (its connection dropped). Passed on whole instead: the
// 304 as sent, the 204 without the Content-Length it may not carry. In every
// flavour (a replica forwarding to the primary; serve in front of its app),
// read from a raw socket.
import t from 'tap'
import { connect } from 'node:net'
import { FLAVOURS, pair } from './helpers/pairs.js'
import { until } from './helpers/fake-litefs.js'
import type { Handler } from './helpers/framework-apps.js'

/** Answer once the body is read (a framework may have read it already). */
const afterBody = (answer: Handler): Handler => (req, res) => {
  if (req.readableEnded) answer(req, res)
  else req.resume().on('end', () => { answer(req, res) })
}
const routes = (): Record<string, Handler> => ({
  'POST /not-modified': afterBody((_req, res) => { res.writeHead(304, { 'content-length': '5', etag: '"v1"' }).end() }),
  'POST /no-content': afterBody((_req, res) => { res.writeHead(204, { 'content-length': '5' }).end() })
})

/** One request on a raw connection; its answer's head (the connection stays open: a body-less answer ends with its head). */
async function head (url: string, path: string): Promise<string> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  let got = ''
  socket.setEncoding('latin1').on('data', (d: string) => { got += d })
  socket.on('error', () => {})
  socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}`)
  try {
    await until(() => got.includes('\r\n\r\n') || socket.destroyed, 'an answer, or the connection gone')
  } finally {
    socket.destroy()
  }
  return got
}

for (const flavour of FLAVOURS) {
  t.test(flavour, async t => {
    const { replica } = await pair(t, flavour, { routes })
    await until(() => replica.state.primaryHostname === 'node-a', 'the replica knows its primary')
    const notModified = await head(replica.url, '/not-modified')
    t.match(notModified, /^HTTP\/1\.1 304 /, 'the 304 reaches the client')
    t.match(notModified, /\r\netag: "v1"\r\n/i)
    const noContent = await head(replica.url, '/no-content')
    t.match(noContent, /^HTTP\/1\.1 204 /, 'the 204 reaches the client')
    t.notMatch(noContent, /content-length/i, 'without a Content-Length')
  })
}
