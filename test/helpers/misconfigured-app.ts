// Run as a child process: one app, as a user writes it, with one
// misconfiguration (a mount that does not exist), its logger chosen by
// LOGGER. It asks for the mount twice and exits; the parent counts how often
// the user is told, across stdout and stderr.
//
//   ADAPTER  fastify | express | http
//   LOGGER   default | pino | pino-error (pino at level error: hides warn lines)
//   MOUNT    the mount that does not exist
import Fastify from 'fastify'
import express from 'express'
import pino from 'pino'
import { litefs } from '../../lib/fastify.js'
import { litefs as expressLitefs } from '../../lib/express.js'
import { wrap } from '../../lib/http.js'

const { ADAPTER, LOGGER, MOUNT } = process.env as Record<string, string>
const options = { db: 'app.db', mount: MOUNT, api: false as const }
const logger = LOGGER === 'default' ? undefined : pino({ level: LOGGER === 'pino' ? 'info' : 'error' })

let core: { state: { refresh: () => void } }
let close: () => Promise<void>
if (ADAPTER === 'fastify') {
  // Fastify's own choices: `logger: false` (its default), or a pino logger.
  const app = Fastify(logger === undefined ? {} : { loggerInstance: logger })
  await app.register(litefs, options)
  await app.ready()
  core = app.litefs
  close = async () => { await app.close() }
} else if (ADAPTER === 'express') {
  const proxy = expressLitefs(logger === undefined ? options : { ...options, logger })
  express().use(proxy)
  core = proxy.core
  close = proxy.close
} else {
  const listener = wrap((_req, res) => { res.end() }, logger === undefined ? options : { ...options, logger })
  core = listener.core
  close = listener.close
}
core.state.refresh()
core.state.refresh()
await close()
await new Promise(resolve => setTimeout(resolve, 50)) // a process warning is printed on a later tick
