// The notes API on Express with litefs-proxy's middleware. Mount the proxy
// before any body parser: a write that must go to the primary is streamed
// there as it came.
import express from 'express'
import litefs from 'litefs-proxy/express'

/**
 * @param {{ litefs: import('litefs-proxy/express').ExpressLitefsOptions,
 *           database: () => import('better-sqlite3').Database }} options
 * @returns {{ app: import('express').Express, proxy: import('litefs-proxy/express').LitefsMiddleware }}
 */
export function buildApp ({ litefs: options, database }) {
  const app = express()
  const proxy = litefs(options)
  app.use(proxy)
  app.use(express.json())

  app.post('/notes', (req, res) => {
    const { user, text } = req.body ?? {}
    if (typeof user !== 'string' || typeof text !== 'string') return res.status(400).json({ error: 'user and text are required' })
    const { lastInsertRowid } = database().prepare('INSERT INTO notes (user, text) VALUES (?, ?)').run(user, text)
    res.status(201).json({ id: Number(lastInsertRowid) })
  })

  app.get('/notes', (req, res) => {
    const notes = database().prepare('SELECT id, text FROM notes WHERE user = ? ORDER BY id').all(String(req.query.user))
    res.json({ notes })
  })

  app.use(litefs.errorHandler()) // proxy errors (504, 503…) as one-line JSON
  return { app, proxy }
}
