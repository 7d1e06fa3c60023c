import { ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { litefsError } from './answers.js'
import type { LitefsCore } from './proxy.js'
import { nextStep, type LitefsAnswer, type LitefsInfo } from './request.js'
import { sendAnswer } from './send-answer.js'
import { afterAnswerInFlight } from './pipelined.js'
import { decline } from './upgrade-decline.js'
import { isWebSocket, markUpgrade, type UpgradeSocket } from './upgrade-socket.js'

// The upgrade entry of the node:http wrapper and the Express middleware: a
// server's 'upgrade' event (a WebSocket handshake for `ws`, Socket.IO's engine,
// any upgrade listener) decided as any request, before the app's listener
// sees it; any other upgrade is declined (upgrade-decline.ts). Passthrough goes to the listener untouched; a read is held until
// this node has the client's TXID; a handshake on a path that writes
// (`alwaysForward`) is tunnelled to the primary (tunnel.ts), or handed to the
// listener on the primary itself. An answer of litefs-proxy's own (504 for a
// read held too long, 503 with no primary…) is written on the raw connection
// as HTTP, its one-line JSON body and `Connection: close`, and the connection
// ends with it. A client that leaves while held lets go of its wait
// (upgrade-socket.ts). The decision is the core's: this only stands a
// ServerResponse on the raw socket, so that the core sees a request as any.

/** A server's 'upgrade' listener (`server.on('upgrade', listener)`). */
export type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

/** `listener`, behind the core's decision. */
export function upgradeEntry (core: LitefsCore<ServerResponse>, listener: UpgradeListener): UpgradeListener {
  return (req, socket, head) => {
    // Not a WebSocket handshake (`Upgrade: h2c` from `curl --http2`, on a POST
    // too): served as a plain request (upgrade-decline.ts), on the server the
    // connection came to (net.Server gives each of its sockets `server`).
    if (!isWebSocket(req)) {
      const server = (socket as Duplex & { server: Server }).server
      afterAnswerInFlight(socket, () => { decline(server, req, socket, head) })
      return
    }
    const marked = markUpgrade(req, socket, head)
    afterAnswerInFlight(socket, () => { decideUpgrade(core, listener, req, socket, marked) })
  }
}

/** Decide a handshake whose socket is free (no earlier answer going out on it). */
function decideUpgrade (core: LitefsCore<ServerResponse>, listener: UpgradeListener, req: IncomingMessage, socket: Duplex, marked: UpgradeSocket): void {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false // an answer instead of a 101 is the connection's last
  res.assignSocket(socket as Socket)
  res.once('finish', () => { socket.end() })
  const settle = (info: LitefsInfo): void => {
    switch (nextStep(info)) {
      case 'app': {
        const early = marked.take()
        res.detachSocket(socket as Socket)
        listener(req, socket, early)
        return
      }
      case 'answer': return sendAnswer(res, info.answer as LitefsAnswer)
      // Tunnelled (the tunnel owns the connection now), or the client left.
      case 'none': if (info.aborted === true) socket.destroy()
    }
  }
  const decided = core.decide(res)
  if (decided instanceof Promise) {
    decided.then(settle, (err: Error) => { sendAnswer(res, litefsError('LITEFS_INTERNAL', err.message)) })
  } else {
    settle(decided)
  }
}
