// A small notes API with litefs-proxy: the app to copy. The plugin makes every
// node look like one database to a client behind a load balancer: writes that
// land on a replica go to the primary, and a read after a write waits until
// this node has that write.
import Fastify from 'fastify'
import litefs from 'litefs-proxy/fastify'

/** The table the app needs; create it on the primary (replicas receive it). */
export const SCHEMA = `CREATE TABLE IF NOT EXISTS notes (
  id INTEGER PRIMARY KEY,
  user TEXT NOT NULL,
  text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_user ON notes (user, id);`

const noteBody = {
  type: 'object',
  required: ['user', 'text'],
  additionalProperties: false,
  properties: {
    user: { type: 'string', minLength: 1, maxLength: 100 },
    text: { type: 'string', minLength: 1, maxLength: 10_000 }
  }
}

const userQuery = {
  type: 'object',
  required: ['user'],
  properties: { user: { type: 'string', minLength: 1, maxLength: 100 } }
}

/**
 * The notes API. `database` is called on every request, never kept: the
 * handle can change under the app (the dev cluster reopens it when a node
 * changes role). `litefs` is the plugin's options; `false` leaves the plugin
 * out, to see what a replicated app does without it.
 *
 * @param {{ litefs: import('litefs-proxy/fastify').FastifyLitefsOptions | false,
 *           database: () => import('better-sqlite3').Database,
 *           logger?: boolean | object }} options
 */
export function buildApp ({ litefs: pluginOptions, database, logger = false }) {
  const app = Fastify({ logger })
  if (pluginOptions !== false) app.register(litefs, pluginOptions)

  app.post('/notes', { schema: { body: noteBody } }, async (request, reply) => {
    const { user, text } = request.body
    const { lastInsertRowid } = database().prepare('INSERT INTO notes (user, text) VALUES (?, ?)').run(user, text)
    return reply.code(201).send({ id: Number(lastInsertRowid) })
  })

  app.get('/notes', { schema: { querystring: userQuery } }, async request => {
    const notes = database().prepare('SELECT id, text FROM notes WHERE user = ? ORDER BY id').all(request.query.user)
    return { notes }
  })

  return app
}
