// Just enough of the Redis protocol (RESP2/RESP3) to pipeline a few commands over a fresh
// connection and read one reply each: the Valkey probe needs no client library's retries,
// reconnects or offline queue between it and the server's first answer.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { withTimeout } from './probe-support.ts';

export type RespValue = string | number | null | RespError | RespValue[];

export class RespError {
  constructor(readonly message: string) {}
}

const encodeCommand = (args: string[]): Buffer => {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.from(a);
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
};

/** Parses one RESP2/RESP3 value from buf at offset; undefined when more bytes are needed. */
const parseResp = (buf: Buffer, offset: number): { value: RespValue; next: number } | undefined => {
  const eol = buf.indexOf('\r\n', offset);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[offset]);
  const line = buf.toString('utf8', offset + 1, eol);
  const after = eol + 2;
  switch (type) {
    case '+':
      return { value: line, next: after };
    case '-':
    case '!':
      return { value: new RespError(line), next: after };
    case ':':
      return { value: Number(line), next: after };
    case '_':
      return { value: null, next: after };
    case '$':
    case '=':
    case '(': {
      if (type === '(') return { value: line, next: after };
      const len = Number(line);
      if (len < 0) return { value: null, next: after };
      if (buf.length < after + len + 2) return undefined;
      return { value: buf.toString('utf8', after, after + len), next: after + len + 2 };
    }
    case '*':
    case '~':
    case '>':
    case '%': {
      let n = Number(line);
      if (n < 0) return { value: null, next: after };
      if (type === '%') n *= 2;
      const items: RespValue[] = [];
      let pos = after;
      for (let i = 0; i < n; i++) {
        const item = parseResp(buf, pos);
        if (!item) return undefined;
        items.push(item.value);
        pos = item.next;
      }
      return { value: items, next: pos };
    }
    default:
      throw new Error(`unexpected reply byte ${JSON.stringify(type)}: not a Redis/Valkey server`);
  }
};

/** Sends the commands pipelined over a fresh connection; resolves to one reply per command. */
export const respRoundTrip = (
  opts: { host: string; port: number; tls: boolean; servername?: string },
  commands: string[][],
  timeoutMs: number,
): Promise<RespValue[]> => {
  let socket: Socket | undefined;
  const work = new Promise<RespValue[]>((resolve, reject) => {
    const onConnect = () => socket!.write(Buffer.concat(commands.map(encodeCommand)));
    socket = opts.tls
      ? tlsConnect({ host: opts.host, port: opts.port, servername: opts.servername }, onConnect)
      : netConnect({ host: opts.host, port: opts.port }, onConnect);
    let buf = Buffer.alloc(0);
    let offset = 0;
    const replies: RespValue[] = [];
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        for (;;) {
          const r = parseResp(buf, offset);
          if (!r) break;
          replies.push(r.value);
          offset = r.next;
          if (replies.length === commands.length) {
            socket!.end();
            resolve(replies);
            return;
          }
        }
      } catch (e) {
        socket!.destroy();
        reject(e);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })));
  });
  return withTimeout(work, timeoutMs, () => socket?.destroy()).finally(() => socket?.destroy());
};
