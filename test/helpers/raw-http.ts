// An HTTP/1.1 client on one socket, for tests where the bytes matter: which
// connection a request goes on, interim (1xx) answers, a body still being sent
// when the answer comes. Reads answers framed by Content-Length, chunked
// encoding, or the connection's end.
import { connect, type Socket } from 'node:net'

export interface RawAnswer {
  status: number
  /** Header names in lowercase; every value kept. */
  headers: Record<string, string[]>
  body: string
  /** The interim (1xx) answers before it: status and headers. */
  interim: Array<{ status: number, headers: Record<string, string[]> }>
}

export class RawConnection {
  private buffer = Buffer.alloc(0)
  private ended = false
  private wake: (() => void) | undefined
  closed = false

  private constructor (readonly socket: Socket) {
    socket.on('data', (b: Buffer) => { this.buffer = Buffer.concat([this.buffer, b]); this.wake?.() })
    socket.on('end', () => { this.ended = true; this.wake?.() })
    socket.on('close', () => { this.closed = true; this.ended = true; this.wake?.() })
    socket.on('error', () => {})
  }

  static async open (url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url)
    const socket = connect(Number(port), hostname)
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    return new RawConnection(socket)
  }

  write (data: string | Buffer): void {
    this.socket.write(data)
  }

  /** A request: head lines (without the request line's CRLF) and an optional body, sized. */
  send (method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): void {
    let head = `${method} ${path} HTTP/1.1\r\nhost: test\r\n`
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
    if (body !== undefined && headers['transfer-encoding'] === undefined) head += `content-length: ${Buffer.byteLength(body)}\r\n`
    this.socket.write(head + '\r\n')
    if (body !== undefined) this.socket.write(body)
  }

  private async more (): Promise<boolean> {
    if (this.ended) return false
    await new Promise<void>(resolve => { this.wake = resolve })
    this.wake = undefined
    return true
  }

  private async head (): Promise<{ status: number, headers: Record<string, string[]> }> {
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n')
      if (end !== -1) {
        const lines = this.buffer.subarray(0, end).toString('latin1').split('\r\n')
        this.buffer = this.buffer.subarray(end + 4)
        const status = Number(lines[0].split(' ')[1])
        const headers: Record<string, string[]> = {}
        for (const line of lines.slice(1)) {
          const at = line.indexOf(':')
          const name = line.slice(0, at).trim().toLowerCase()
          ;(headers[name] ??= []).push(line.slice(at + 1).trim())
        }
        return { status, headers }
      }
      if (!await this.more()) throw new Error(`the connection ended before an answer (${this.buffer.length} bytes)`)
    }
  }

  /** The next answer (after its interim ones). */
  async answer (method = 'GET'): Promise<RawAnswer> {
    const interim: RawAnswer['interim'] = []
    for (;;) {
      const { status, headers } = await this.head()
      if (status >= 100 && status < 200 && status !== 101) { interim.push({ status, headers }); continue }
      let body = Buffer.alloc(0)
      if (method === 'HEAD' || status === 204 || status === 304 || status === 101) return { status, headers, body: '', interim }
      if (headers['transfer-encoding']?.[0] === 'chunked') {
        for (;;) {
          const eol = this.buffer.indexOf('\r\n')
          if (eol === -1) { if (!await this.more()) break; continue }
          const size = parseInt(this.buffer.subarray(0, eol).toString(), 16)
          if (this.buffer.length < eol + 2 + size + 2) { if (!await this.more()) break; continue }
          body = Buffer.concat([body, this.buffer.subarray(eol + 2, eol + 2 + size)])
          this.buffer = this.buffer.subarray(eol + 2 + size + 2)
          if (size === 0) break
        }
      } else if (headers['content-length'] !== undefined) {
        const size = Number(headers['content-length'][0])
        while (this.buffer.length < size) if (!await this.more()) break
        body = this.buffer.subarray(0, size)
        this.buffer = this.buffer.subarray(size)
      } else {
        while (await this.more());
        body = this.buffer
        this.buffer = Buffer.alloc(0)
      }
      return { status, headers, body: body.toString(), interim }
    }
  }

  /** Whatever the server sends until it closes (after a 101). */
  async until (text: string): Promise<string> {
    while (!this.buffer.toString().includes(text)) if (!await this.more()) break
    const all = this.buffer.toString()
    this.buffer = Buffer.alloc(0)
    return all
  }

  close (): void {
    this.socket.destroy()
  }
}
