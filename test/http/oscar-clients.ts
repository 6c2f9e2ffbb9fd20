// Requests exactly as OSCAR's own clients send them, over real HTTP (headers matter here),
// and a check of every answer against OSCAR's published contract. Used by the
// oscar-compat*.test.ts files. Sources, read from the public repositories:
// - oscar-cli (grycap/oscar-cli pkg/service/service.go, cmd/service_run.go): Go net/http,
//   `http.NewRequest` with a body and no Content-Type; run and job bodies are an io.Pipe of
//   base64 (chunked, no Content-Length); User-Agent Go-http-client/1.1.
// - oscar_python (grycap/oscar_python oscar_python/_utils.py make_request): `requests` with
//   `data=<str>`: no Content-Type; a body-less DELETE/POST carries Content-Length: 0.
// - OSCAR's Robot Framework suite (grycap/oscar-tests resources/*.resource): RequestsLibrary
//   with headers Authorization, Content-Type: text/json and Accept: application/json on every
//   call, body-less ones included (Content-Length: 0).
import { Readable } from 'node:stream';
import { request } from 'undici';
import { expect } from 'vitest';
import { loadOscarContract } from '../support/oscar-contract.ts';

const loaded = loadOscarContract();
/** OSCAR's contract; without it the answers are still checked, only not against the schema. */
export const contract = loaded.contract;

export type Style = 'oscar-cli' | 'oscar_python' | 'robot';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The body parsed, when it is JSON. */
  json: any;
}

export interface CallOptions {
  authorization?: string;
  /** A string or bytes; oscar-cli's run/job bodies go chunked (an io.Pipe in Go). */
  body?: string | Buffer;
  chunked?: boolean;
}

const BASE_HEADERS: Record<Style, Record<string, string>> = {
  'oscar-cli': { 'user-agent': 'Go-http-client/1.1', 'accept-encoding': 'gzip' },
  oscar_python: { 'user-agent': 'python-requests/2.32.3', 'accept-encoding': 'gzip, deflate', accept: '*/*' },
  robot: {
    'user-agent': 'python-requests/2.32.3',
    'accept-encoding': 'gzip, deflate',
    accept: 'application/json',
    'content-type': 'text/json',
  },
};

/** One request as `style` sends it. */
export const send = async (
  base: string,
  style: Style,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  opts: CallOptions = {},
): Promise<Answer> => {
  const headers: Record<string, string> = { ...BASE_HEADERS[style] };
  if (opts.authorization) headers.authorization = opts.authorization;
  let body: string | Buffer | Readable | undefined = opts.body;
  if (opts.chunked && opts.body !== undefined) body = Readable.from([Buffer.from(opts.body)]);
  // requests sends Content-Length: 0 on a body-less call other than GET; Go sends none.
  if (body === undefined && method !== 'GET' && style !== 'oscar-cli') headers['content-length'] = '0';
  const res = await request(`${base}${path}`, { method, headers, body });
  const text = await res.body.text();
  let json: unknown;
  if (String(res.headers['content-type'] ?? '').includes('json') && text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: res.statusCode, headers: res.headers as Answer['headers'], text, json };
};

/**
 * The answer as OSCAR documents it for `template` (contract/oscar-swagger-v4.1.2.yaml):
 * - a success body validates against the schema OSCAR declares for its status;
 * - an error carries a status OSCAR declares for the route, with Flotilla's one error body
 *   ({code, message, statusCode}; OSCAR sends the same statuses with plain text).
 * `extension` names a documented Flotilla difference (DESIGN.md): the check then asserts the
 * contract does flag it, so an exception cannot hide a regression.
 */
export const expectOscar = (
  method: string,
  template: string,
  res: Answer,
  opts: { extension?: string } = {},
): void => {
  if (res.status >= 400) {
    expect(res.json, `${method} ${template}: ${res.text}`).toMatchObject({
      statusCode: res.status,
      code: expect.stringMatching(/^[A-Z_]+$/),
      message: expect.any(String),
    });
    expect(res.json.message.length).toBeGreaterThan(0);
  }
  if (!contract) return;
  expect(contract.hasOperation(method, template), `${method} ${template} is not in OSCAR's contract`).toBe(
    true,
  );
  const body = res.status >= 400 ? '' : res.text === '' ? '' : (res.json ?? res.text);
  const result = contract.validateOscarResponse(method, template, res.status, body);
  if (opts.extension) {
    expect(result.ok, `${method} ${template} now matches OSCAR: drop the extension "${opts.extension}"`).toBe(
      false,
    );
    return;
  }
  expect(
    result.errors,
    `${method} ${template} → ${res.status} does not match OSCAR: ${res.text.slice(0, 300)}`,
  ).toEqual([]);
};

export const basicAuth = (user: string, password: string): string =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Polls the job listing until the job ended; its status. */
export const waitForJob = async (
  base: string,
  service: string,
  job: string,
  authorization: string,
  timeoutMs = 20_000,
): Promise<string> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await send(base, 'oscar-cli', 'GET', `/system/logs/${service}`, { authorization });
    const status = res.json?.jobs?.[job]?.status;
    if (status === 'Succeeded' || status === 'Failed') return status;
    if (Date.now() > deadline) throw new Error(`job ${job} of ${service} did not end: ${res.text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

export const JOB_NAME = (service: string) =>
  new RegExp(`^${service}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`);
