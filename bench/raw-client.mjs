// A minimal HTTP/1.1 keep-alive client over node:net, for measurements that
// need microsecond timestamps (autocannon's histograms hold whole milliseconds)
// and thousands of real connections at little cost to the measuring process.
// One request at a time per connection; responses framed by content-length or
// chunked encoding. Times are process.hrtime.bigint() (CLOCK_MONOTONIC: one
// clock for every process on the machine).
import { connect as netConnect } from 'node:net'

const CRLFCRLF = Buffer.from('\r\n\r\n')
const CHUNK_END = Buffer.from('0\r\n\r\n')

/** The bytes of one request (built once, written many times). */
export function requestBytes ({ method = 'GET', path = '/items', host = 'localhost', headers = {}, body } = {}) {
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n`
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
  if (body !== undefined) head += `content-length: ${Buffer.byteLength(body)}\r\n`
  return Buffer.from(head + '\r\n' + (body ?? ''))
}

export class Conn {
  constructor (socket) {
    this.socket = socket
    this.buf = null
    this.waiting = null // { resolve, reject }
    this.headEnd = -1
    this.need = -1 // total bytes of the response, when known; -2: chunked
    socket.setNoDelay(true)
    socket.on('data', chunk => this.onData(chunk))
    socket.on('error', err => this.fail(err))
    socket.on('close', () => this.fail(new Error('connection closed')))
  }

  static async open (port, host = '127.0.0.1') {
    const socket = netConnect(port, host)
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new Conn(socket)
  }

  /** Send `bytes`; resolves with { status, headers (raw text), body, at } once the whole response arrived. */
  request (bytes) {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject }
      this.socket.write(bytes)
    })
  }

  onData (chunk) {
    const at = process.hrtime.bigint()
    this.buf = this.buf === null ? chunk : Buffer.concat([this.buf, chunk])
    if (this.headEnd === -1) {
      const i = this.buf.indexOf(CRLFCRLF)
      if (i === -1) return
      this.headEnd = i + 4
      const head = this.buf.toString('latin1', 0, i)
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      this.need = m !== null ? this.headEnd + Number(m[1]) : /\r\ntransfer-encoding:\s*chunked/i.test(head) ? -2 : this.headEnd
    }
    let end
    if (this.need === -2) {
      const j = this.buf.indexOf(CHUNK_END, this.headEnd)
      if (j === -1) return
      end = j + CHUNK_END.length
    } else {
      if (this.buf.length < this.need) return
      end = this.need
    }
    const head = this.buf.toString('latin1', 0, this.headEnd)
    const body = this.buf.toString('utf8', this.headEnd, end)
    this.buf = end < this.buf.length ? this.buf.subarray(end) : null
    this.headEnd = -1
    this.need = -1
    const w = this.waiting
    this.waiting = null
    w?.resolve({ status: Number(head.slice(9, 12)), head, body, at })
  }

  fail (err) {
    const w = this.waiting
    this.waiting = null
    w?.reject(err)
  }

  close () {
    this.socket.removeAllListeners('close')
    this.socket.destroy()
  }
}

/** Percentiles of an array of numbers (sorted in place). */
export function percentiles (values) {
  values.sort((a, b) => a - b)
  const at = q => values.length === 0 ? NaN : values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))]
  const mean = values.reduce((s, v) => s + v, 0) / (values.length || 1)
  return { n: values.length, min: values[0], p50: at(0.5), p90: at(0.9), p99: at(0.99), max: values[values.length - 1], mean }
}
