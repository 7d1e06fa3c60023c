// The notes API on plain node:http, wrapped by litefs-proxy: no framework, one
// request listener.
import { wrap } from 'litefs-proxy/http'

async function json (req) {
  let text = ''
  for await (const chunk of req) text += chunk
  return JSON.parse(text)
}

function send (res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

/**
 * @param {{ litefs: import('litefs-proxy/http').HttpLitefsOptions,
 *           database: () => import('better-sqlite3').Database }} options
 * @returns {import('litefs-proxy/http').WrappedListener}
 */
export function buildListener ({ litefs: options, database }) {
  return wrap(async (req, res) => {
    const url = new URL(req.url, 'http://app')
    try {
      if (req.method === 'POST' && url.pathname === '/notes') {
        const { user, text } = await json(req)
        const { lastInsertRowid } = database().prepare('INSERT INTO notes (user, text) VALUES (?, ?)').run(String(user), String(text))
        return send(res, 201, { id: Number(lastInsertRowid) })
      }
      if (req.method === 'GET' && url.pathname === '/notes') {
        return send(res, 200, { notes: database().prepare('SELECT id, text FROM notes WHERE user = ? ORDER BY id').all(url.searchParams.get('user')) })
      }
      send(res, 404, { error: 'not found' })
    } catch (err) {
      send(res, 400, { error: err.message })
    }
  }, options)
}
